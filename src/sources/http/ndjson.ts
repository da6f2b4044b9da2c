/**
 * The newline-delimited ingest endpoint: each line is either a JSON object
 * (fields below) or plain text (the whole line is the message). A request is
 * all or nothing: one bad line refuses it, naming the line.
 */
import { TooManyRecordsError } from './otlp.js';
import { LogRecord, type SourceInfo, type StructuredData } from '../../core/record.js';

export class NdjsonError extends Error {}

const SEVERITY_NAMES: Record<string, number> = {
  emerg: 0, emergency: 0, alert: 1, crit: 2, critical: 2, err: 3, error: 3, warning: 4, warn: 4, notice: 5, info: 6, informational: 6, debug: 7,
};
const KNOWN = new Set(['msg', 'message', 'hostname', 'host', 'app', 'service', 'procid', 'pid', 'msgid', 'severity', 'level', 'facility', 'ts', 'timestamp', 'time']);
/** Fields of a JSON line that have no LogRecord field of their own. */
export const NDJSON_FIELDS_SD = 'fields@32473';

function optionalString(value: unknown, field: string, line: number): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  throw new NdjsonError(`line ${line}: "${field}" must be a string`);
}

function severityOf(value: unknown, line: number): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 7) return value;
  if (typeof value === 'string' && Object.hasOwn(SEVERITY_NAMES, value.toLowerCase())) return SEVERITY_NAMES[value.toLowerCase()]!;
  throw new NdjsonError(`line ${line}: severity must be 0-7 or a name such as "warning"`);
}

/** The largest epoch milliseconds a Date holds (ECMA-262 21.4.1.1); beyond it toISOString throws. */
const MAX_DATE_MS = 8.64e15;

function timestampOf(value: unknown, line: number): string | null {
  if (value === undefined || value === null) return null;
  const ms = typeof value === 'number' ? value : typeof value === 'string' ? Date.parse(value) : NaN;
  if (!(Math.abs(ms) <= MAX_DATE_MS)) throw new NdjsonError(`line ${line}: ts must be an RFC 3339 time or epoch milliseconds`);
  return typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(value) ? value : new Date(ms).toISOString();
}

/** A JSON value as text; nesting too deep to serialize (JSON.parse takes any depth, stringify recurses) is the line's fault. */
function jsonText(value: unknown, line: number): string {
  try {
    return JSON.stringify(value);
  } catch (err) {
    if (err instanceof RangeError) throw new NdjsonError(`line ${line}: a value is nested too deeply`);
    throw err;
  }
}

export function ndjsonToRecords(body: string, source: SourceInfo, received: string, maxRecords = Infinity): LogRecord[] {
  const records: LogRecord[] = [];
  let lineNumber = 0;
  let start = 0;
  while (start < body.length) {
    let end = body.indexOf('\n', start);
    if (end < 0) end = body.length;
    lineNumber++;
    let line = body.slice(start, end);
    start = end + 1;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.trim() === '') continue;
    if (records.length >= maxRecords) throw new TooManyRecordsError(maxRecords);
    const rec = new LogRecord();
    rec.received = received;
    rec.ts = received;
    rec.source = source;
    rec.size = Buffer.byteLength(line);
    if (line.charCodeAt(0) !== 0x7b /* { */) {
      rec.msg = line;
      records.push(rec);
      continue;
    }
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      throw new NdjsonError(`line ${lineNumber}: not valid JSON (${(err as Error).message})`);
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new NdjsonError(`line ${lineNumber}: expected a JSON object`);
    const o = obj as Record<string, unknown>;
    const message = o.msg ?? o.message;
    rec.msg = typeof message === 'string' ? message : message === undefined ? '' : jsonText(message, lineNumber);
    rec.hostname = optionalString(o.hostname ?? o.host, 'hostname', lineNumber);
    rec.app = optionalString(o.app ?? o.service, 'app', lineNumber);
    rec.procid = optionalString(o.procid ?? o.pid, 'procid', lineNumber);
    rec.msgid = optionalString(o.msgid, 'msgid', lineNumber);
    rec.severity = severityOf(o.severity ?? o.level, lineNumber) ?? rec.severity;
    if (o.facility !== undefined) {
      if (typeof o.facility !== 'number' || !Number.isInteger(o.facility) || o.facility < 0 || o.facility > 23) {
        throw new NdjsonError(`line ${lineNumber}: facility must be an integer from 0 to 23`);
      }
      rec.facility = o.facility;
    }
    rec.ts = timestampOf(o.ts ?? o.timestamp ?? o.time, lineNumber) ?? received;
    const extra: Record<string, string> = {};
    let hasExtra = false;
    for (const key of Object.keys(o)) {
      if (KNOWN.has(key)) continue;
      const v = o[key];
      Object.defineProperty(extra, key, { value: typeof v === 'string' ? v : jsonText(v, lineNumber), enumerable: true, writable: true, configurable: true });
      hasExtra = true;
    }
    if (hasExtra) rec.sd = { [NDJSON_FIELDS_SD]: extra } as StructuredData;
    records.push(rec);
  }
  return records;
}
