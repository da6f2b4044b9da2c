/**
 * OTLP/HTTP logs (`POST /v1/logs`) to LogRecords. Protobuf is decoded into the
 * same shape as OTLP/JSON, so one mapping serves both. The mapping is
 * documented in docs/http.md.
 */
import { LogRecord, DEFAULT_SEVERITY, type SourceInfo, type StructuredData } from '../../core/record.js';
import { ProtobufReader, WireType } from './protobuf.js';

export class OtlpError extends Error {}

export interface OtlpAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  arrayValue?: { values?: OtlpAnyValue[] };
  kvlistValue?: { values?: OtlpKeyValue[] };
  bytesValue?: string;
}
export interface OtlpKeyValue { key: string; value?: OtlpAnyValue }
export interface OtlpLogRecord {
  timeUnixNano?: string | number;
  observedTimeUnixNano?: string | number;
  severityNumber?: number;
  severityText?: string;
  body?: OtlpAnyValue;
  attributes?: OtlpKeyValue[];
  flags?: number;
  traceId?: string;
  spanId?: string;
  eventName?: string;
}
export interface OtlpScopeLogs { scope?: { name?: string; version?: string }; logRecords?: OtlpLogRecord[] }
export interface OtlpResourceLogs { resource?: { attributes?: OtlpKeyValue[] }; scopeLogs?: OtlpScopeLogs[] }
export interface OtlpLogsRequest { resourceLogs?: OtlpResourceLogs[] }

// ---------------------------------------------------------------------------
// Protobuf → the OTLP/JSON shape (opentelemetry/proto/collector/logs/v1)

/** A request holding more log records than a decoder was allowed to build. */
export class TooManyRecordsError extends Error {
  constructor(readonly maxRecords: number) {
    super(`more than ${maxRecords} records in one request`);
  }
}

/** How many more records a decoder may build: checked as each is built, so a hostile body never expands past it. */
interface RecordAllowance {
  left: number;
  readonly max: number;
}

export function decodeOtlpProtobuf(buf: Buffer, maxRecords = Infinity): OtlpLogsRequest {
  const r = new ProtobufReader(buf);
  const resourceLogs: OtlpResourceLogs[] = [];
  const allowance: RecordAllowance = { left: maxRecords, max: maxRecords };
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1 && wire === WireType.LengthDelimited) resourceLogs.push(readResourceLogs(r.sub(), allowance));
    else r.skip(wire);
  }
  return { resourceLogs };
}

function readResourceLogs(r: ProtobufReader, allowance: RecordAllowance): OtlpResourceLogs {
  const out: OtlpResourceLogs = { scopeLogs: [] };
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1 && wire === WireType.LengthDelimited) out.resource = { attributes: readAttributesOf(r.sub(), 1, 0) };
    else if (field === 2 && wire === WireType.LengthDelimited) out.scopeLogs!.push(readScopeLogs(r.sub(), allowance));
    else r.skip(wire);
  }
  return out;
}

/** The repeated KeyValue field `field` of a message whose values sit `depth` levels down. */
function readAttributesOf(r: ProtobufReader, field: number, depth: number): OtlpKeyValue[] {
  const out: OtlpKeyValue[] = [];
  while (!r.done) {
    const [f, wire] = r.tag();
    if (f === field && wire === WireType.LengthDelimited) out.push(readKeyValue(r.sub(), depth));
    else r.skip(wire);
  }
  return out;
}

function readScopeLogs(r: ProtobufReader, allowance: RecordAllowance): OtlpScopeLogs {
  const out: OtlpScopeLogs = { logRecords: [] };
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1 && wire === WireType.LengthDelimited) {
      const s = r.sub();
      const scope: { name?: string; version?: string } = {};
      while (!s.done) {
        const [f, w] = s.tag();
        if (f === 1 && w === WireType.LengthDelimited) scope.name = s.string();
        else if (f === 2 && w === WireType.LengthDelimited) scope.version = s.string();
        else s.skip(w);
      }
      out.scope = scope;
    } else if (field === 2 && wire === WireType.LengthDelimited) {
      if (--allowance.left < 0) throw new TooManyRecordsError(allowance.max);
      out.logRecords!.push(readLogRecord(r.sub()));
    } else r.skip(wire);
  }
  return out;
}

function readLogRecord(r: ProtobufReader): OtlpLogRecord {
  const out: OtlpLogRecord = {};
  const attributes: OtlpKeyValue[] = [];
  while (!r.done) {
    const [field, wire] = r.tag();
    switch (field) {
      case 1: if (wire === WireType.Fixed64) { out.timeUnixNano = r.fixed64().toString(); continue; } break;
      case 11: if (wire === WireType.Fixed64) { out.observedTimeUnixNano = r.fixed64().toString(); continue; } break;
      case 2: if (wire === WireType.Varint) { out.severityNumber = r.varint(); continue; } break;
      case 3: if (wire === WireType.LengthDelimited) { out.severityText = r.string(); continue; } break;
      case 5: if (wire === WireType.LengthDelimited) { out.body = readAnyValue(r.sub(), 0); continue; } break;
      case 6: if (wire === WireType.LengthDelimited) { attributes.push(readKeyValue(r.sub(), 0)); continue; } break;
      case 9: if (wire === WireType.LengthDelimited) { out.traceId = r.bytesHex(); continue; } break;
      case 10: if (wire === WireType.LengthDelimited) { out.spanId = r.bytesHex(); continue; } break;
      case 12: if (wire === WireType.LengthDelimited) { out.eventName = r.string(); continue; } break;
    }
    r.skip(wire);
  }
  out.attributes = attributes;
  return out;
}

function readKeyValue(r: ProtobufReader, depth: number): OtlpKeyValue {
  const out: OtlpKeyValue = { key: '' };
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1 && wire === WireType.LengthDelimited) out.key = r.string();
    else if (field === 2 && wire === WireType.LengthDelimited) out.value = readAnyValue(r.sub(), depth);
    else r.skip(wire);
  }
  return out;
}

/** Arrays and key-value lists nest; a body may nest them this deep (deeper would exhaust the stack). */
const MAX_VALUE_DEPTH = 32;

function readAnyValue(r: ProtobufReader, depth: number): OtlpAnyValue {
  if (depth > MAX_VALUE_DEPTH) throw new OtlpError(`values nested deeper than ${MAX_VALUE_DEPTH} levels`);
  const out: OtlpAnyValue = {};
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1 && wire === WireType.LengthDelimited) out.stringValue = r.string();
    else if (field === 2 && wire === WireType.Varint) out.boolValue = r.varint() !== 0;
    else if (field === 3 && wire === WireType.Varint) out.intValue = r.varint();
    else if (field === 4 && wire === WireType.Fixed64) out.doubleValue = r.double();
    else if (field === 5 && wire === WireType.LengthDelimited) {
      const a = r.sub();
      const values: OtlpAnyValue[] = [];
      while (!a.done) {
        const [f, w] = a.tag();
        if (f === 1 && w === WireType.LengthDelimited) values.push(readAnyValue(a.sub(), depth + 1));
        else a.skip(w);
      }
      out.arrayValue = { values };
    } else if (field === 6 && wire === WireType.LengthDelimited) out.kvlistValue = { values: readAttributesOf(r.sub(), 1, depth + 1) };
    else if (field === 7 && wire === WireType.LengthDelimited) out.bytesValue = r.bytesHex();
    else r.skip(wire);
  }
  return out;
}

// ---------------------------------------------------------------------------
// The OTLP shape → LogRecords

/** SD-IDs under which OTLP context is kept (32473: the example enterprise number). */
export const OTEL_SD = {
  resource: 'otel-resource@32473',
  attributes: 'otel-log@32473',
  scope: 'otel-scope@32473',
  trace: 'otel-trace@32473',
} as const;

/** OTLP severity numbers (1-24) to syslog severities (0-7). */
export function syslogSeverity(severityNumber: number | undefined): number {
  if (severityNumber === undefined || severityNumber <= 0 || severityNumber > 24) return DEFAULT_SEVERITY;
  if (severityNumber <= 8) return 7; // TRACE, DEBUG
  if (severityNumber <= 12) return 6; // INFO
  if (severityNumber <= 16) return 4; // WARN
  if (severityNumber <= 20) return 3; // ERROR
  return 2; // FATAL → critical
}

// OTLP/JSON arrives as whatever JSON.parse made of it: every field is checked
// before use, a wrong type is an OtlpError (400), never a TypeError. No String()
// of a client's object either: String([[[...]]]) recurses as deep as it nests.

/** A repeated field: absent is empty, anything but an array is a bad body. */
function listOf(value: unknown, what: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new OtlpError(`${what} is not an array`);
  return value;
}

/** A message field: absent is null, anything but an object is a bad body. */
function objectOf(value: unknown, what: string): Record<string, unknown> | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw new OtlpError(`${what} is not an object`);
  return value as Record<string, unknown>;
}

/** A string field; numbers and booleans are taken as their text. Absent: undefined. */
function textOf(value: unknown, what: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new OtlpError(`${what} is not a string`);
}

function keyOf(kv: unknown): { key: string; value: unknown } {
  if (kv === null || typeof kv !== 'object' || typeof (kv as OtlpKeyValue).key !== 'string') throw new OtlpError('an attribute without a string key');
  return kv as { key: string; value: unknown };
}

function defineOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  // Not `obj[key] = value`: a key named __proto__ would replace the prototype instead of being kept.
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function plain(value: unknown, depth = 0): unknown {
  if (value === undefined || value === null || typeof value !== 'object') return null;
  if (depth > MAX_VALUE_DEPTH) throw new OtlpError(`values nested deeper than ${MAX_VALUE_DEPTH} levels`);
  const v = value as Record<string, unknown>;
  if (typeof v.stringValue === 'string') return v.stringValue;
  if (typeof v.boolValue === 'boolean') return v.boolValue;
  if (v.intValue !== undefined && v.intValue !== null) return Number(textOf(v.intValue, 'intValue'));
  if (typeof v.doubleValue === 'number') return v.doubleValue;
  if (v.arrayValue !== undefined && v.arrayValue !== null) {
    return listOf(objectOf(v.arrayValue, 'arrayValue')?.values, 'arrayValue.values').map((x) => plain(x, depth + 1));
  }
  if (v.kvlistValue !== undefined && v.kvlistValue !== null) {
    const out: Record<string, unknown> = {};
    for (const item of listOf(objectOf(v.kvlistValue, 'kvlistValue')?.values, 'kvlistValue.values')) {
      const kv = keyOf(item);
      defineOwn(out, kv.key, plain(kv.value, depth + 1));
    }
    return out;
  }
  if (typeof v.bytesValue === 'string') return v.bytesValue;
  return null;
}

function text(value: unknown): string {
  const v = plain(value);
  return typeof v === 'string' ? v : v === null ? '' : JSON.stringify(v);
}

function attributeMap(attributes: unknown): Record<string, string> | null {
  const list = listOf(attributes, 'attributes');
  if (list.length === 0) return null;
  const out: Record<string, string> = {};
  for (const item of list) {
    const kv = keyOf(item);
    defineOwn(out, kv.key, text(kv.value));
  }
  return out;
}

/** The largest epoch milliseconds a Date holds (ECMA-262 21.4.1.1); beyond it toISOString throws. */
const MAX_DATE_MS = 8.64e15;

/** Epoch ms of a nanosecond timestamp given as a decimal string or number; 0 when absent. */
function nanosToMs(value: unknown): number {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'number') {
    const ms = Math.floor(value / 1e6);
    if (!(ms <= MAX_DATE_MS)) throw new OtlpError(`bad timestamp ${value}`);
    return ms;
  }
  // Named by type, not JSON.stringify: the client's value may nest deeper than stringify recurses.
  if (typeof value !== 'string') throw new OtlpError(`bad timestamp: a ${Array.isArray(value) ? 'array' : typeof value}, not a decimal string`);
  if (!/^\d{1,20}$/.test(value)) throw new OtlpError(`bad timestamp ${JSON.stringify(value.slice(0, 40))}`);
  // At most 20 digits: under 10^14 ms, inside what a Date holds.
  return value.length <= 6 ? 0 : Number(value.slice(0, -6));
}

export function otlpToRecords(request: OtlpLogsRequest, source: SourceInfo, received: string, maxRecords = Infinity): LogRecord[] {
  const body = objectOf(request, 'the body');
  if (body === null) throw new OtlpError('the body is not an ExportLogsServiceRequest object');
  const records: LogRecord[] = [];
  for (const rlItem of listOf(body.resourceLogs, 'resourceLogs')) {
    const rl = objectOf(rlItem, 'a resourceLogs entry');
    const resource = attributeMap(objectOf(rl?.resource, 'resource')?.attributes);
    const hostname = resource?.['host.name'] ?? null;
    const app = resource?.['service.name'] ?? null;
    const procid = resource?.['process.pid'] ?? null;
    for (const slItem of listOf(rl?.scopeLogs, 'scopeLogs')) {
      const sl = objectOf(slItem, 'a scopeLogs entry');
      const scopeObject = objectOf(sl?.scope, 'scope');
      const scopeName = textOf(scopeObject?.name, 'scope.name');
      const scopeVersion = textOf(scopeObject?.version, 'scope.version');
      const scope = scopeName ? { name: scopeName, ...(scopeVersion ? { version: scopeVersion } : {}) } : null;
      for (const lrItem of listOf(sl?.logRecords, 'logRecords')) {
        const lr = objectOf(lrItem, 'a logRecord');
        if (lr === null) throw new OtlpError('a logRecord is not an object');
        if (records.length >= maxRecords) throw new TooManyRecordsError(maxRecords);
        const rec = new LogRecord();
        rec.received = received;
        rec.source = source;
        const ms = nanosToMs(lr.timeUnixNano) || nanosToMs(lr.observedTimeUnixNano);
        rec.ts = ms > 0 ? new Date(ms).toISOString() : received;
        rec.severity = syslogSeverity(typeof lr.severityNumber === 'number' ? lr.severityNumber : undefined);
        rec.hostname = hostname;
        rec.app = app;
        rec.procid = procid;
        rec.msgid = typeof lr.eventName === 'string' && lr.eventName !== '' ? lr.eventName : null;
        rec.msg = text(lr.body);
        const sd: StructuredData = {};
        if (resource) sd[OTEL_SD.resource] = resource;
        const attributes = attributeMap(lr.attributes);
        const severityText = textOf(lr.severityText, 'severityText');
        if (attributes || severityText) sd[OTEL_SD.attributes] = { ...(attributes ?? {}), ...(severityText ? { 'otel.severity_text': severityText } : {}) };
        if (scope) sd[OTEL_SD.scope] = scope;
        const traceId = textOf(lr.traceId, 'traceId');
        const spanId = textOf(lr.spanId, 'spanId');
        if (traceId) sd[OTEL_SD.trace] = { trace_id: traceId, ...(spanId ? { span_id: spanId } : {}) };
        rec.sd = Object.keys(sd).length > 0 ? sd : null;
        rec.size = rec.msg.length;
        records.push(rec);
      }
    }
  }
  return records;
}
