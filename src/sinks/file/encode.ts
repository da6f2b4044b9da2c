/**
 * A LogRecord as one NDJSON line. Built by hand (as pino does): the common
 * string needs no escaping, which one regex test (a single character class,
 * so no backtracking) proves; only the rest go through JSON.stringify.
 * Field reference: docs/record.md.
 */
import { isAscii, LogRecord, SourceInfo } from '../../core/record.js';
import type { EncodedQueue } from '../encoded-queue.js';

const NEEDS_ESCAPE = /[\u0000-\u001f"\\]/;

function str(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"';
}

function strOrNull(s: string | null): string {
  return s === null ? 'null' : str(s);
}

/** Set by encodeRecord: the line it returned is all ASCII. */
let lineAscii = false;

/**
 * Append rec's line to `queue`. A line known to be ASCII (a record decoded
 * from an ASCII frame: the common case) is copied into the queue's chunk
 * character for character, without UTF-8 encoding.
 */
export function appendRecord(queue: EncodedQueue, rec: LogRecord): void {
  const line = encodeRecord(rec);
  queue.append(line, lineAscii);
}

export function encodeRecord(rec: LogRecord): string {
  // The frame-level check in decode spares the per-field ones (see LogRecord.jsonSafe).
  if (rec.jsonSafe) {
    // tenant (a configured id), host (hex) and received (ISO time) are ASCII by construction.
    lineAscii = rec.ascii && (rec.source === null || rec.source.jsonAscii);
    const line = '{"ts":"' + rec.ts
      + '","received":"' + rec.received
      + '","tenant":"' + rec.tenant
      + '","host":"' + rec.host
      + '","hostname":' + (rec.hostname === null ? 'null' : '"' + rec.hostname + '"')
      + ',"app":' + (rec.app === null ? 'null' : '"' + rec.app + '"')
      + ',"procid":' + (rec.procid === null ? 'null' : '"' + rec.procid + '"')
      + ',"msgid":' + (rec.msgid === null ? 'null' : '"' + rec.msgid + '"')
      + ',"facility":' + rec.facility
      + ',"severity":' + rec.severity
      + ',"sd":' + (rec.sd === null ? 'null' : JSON.stringify(rec.sd))
      + ',"msg":"' + rec.msg
      + '","source":' + (rec.source === null ? 'null' : rec.source.json);
    return finish(line, rec);
  }
  const line = '{"ts":' + str(rec.ts)
    + ',"received":"' + rec.received
    + '","tenant":"' + rec.tenant
    + '","host":"' + rec.host
    + '","hostname":' + strOrNull(rec.hostname)
    + ',"app":' + strOrNull(rec.app)
    + ',"procid":' + strOrNull(rec.procid)
    + ',"msgid":' + strOrNull(rec.msgid)
    + ',"facility":' + rec.facility
    + ',"severity":' + rec.severity
    + ',"sd":' + (rec.sd === null ? 'null' : JSON.stringify(rec.sd))
    + ',"msg":' + str(rec.msg)
    + ',"source":' + (rec.source === null ? 'null' : rec.source.json);
  lineAscii = false;
  return finish(line, rec);
}

/**
 * Host metadata objects come from the metadata cache, frozen and shared by
 * every record of the host: encode each once, not once per record.
 */
interface EncodedMeta {
  json: string;
  ascii: boolean;
}

const metaJson = new WeakMap<object, EncodedMeta>();

function encodeMeta(meta: Record<string, unknown>): EncodedMeta {
  let encoded = metaJson.get(meta);
  if (encoded === undefined) {
    const json = JSON.stringify(meta);
    encoded = { json, ascii: isAscii(json) };
    if (Object.isFrozen(meta)) metaJson.set(meta, encoded);
  }
  return encoded;
}

function finish(line: string, rec: LogRecord): string {
  if (rec.meta !== null) {
    const meta = encodeMeta(rec.meta);
    line += ',"meta":' + meta.json;
    if (!meta.ascii) lineAscii = false;
  }
  if (rec.parseError) line += ',"parse_error":true';
  if (rec.invalidUtf8) line += ',"invalid_utf8":true';
  return line + '}\n';
}

/**
 * The inverse of encodeRecord, for records read back from a disk buffer.
 * Throws on a line that is not an encoded record (buffer entries are
 * CRC-checked, so that means a bug, not a torn write).
 */
export function decodeRecord(line: string): LogRecord {
  const o = JSON.parse(line) as Record<string, unknown>;
  const rec = new LogRecord();
  rec.ts = String(o.ts);
  rec.received = String(o.received);
  rec.tenant = String(o.tenant);
  rec.host = String(o.host);
  rec.hostname = (o.hostname as string | null) ?? null;
  rec.app = (o.app as string | null) ?? null;
  rec.procid = (o.procid as string | null) ?? null;
  rec.msgid = (o.msgid as string | null) ?? null;
  rec.facility = Number(o.facility);
  rec.severity = Number(o.severity);
  rec.sd = (o.sd as LogRecord['sd']) ?? null;
  rec.msg = String(o.msg);
  const source = o.source as { protocol: SourceInfo['protocol']; address: string; port: number } | null;
  rec.source = source ? new SourceInfo(source.protocol, source.address, source.port) : null;
  rec.meta = (o.meta as Record<string, unknown> | undefined) ?? null;
  rec.parseError = o.parse_error === true;
  rec.invalidUtf8 = o.invalid_utf8 === true;
  rec.size = line.length;
  return rec;
}
