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

export function decodeOtlpProtobuf(buf: Buffer): OtlpLogsRequest {
  const r = new ProtobufReader(buf);
  const resourceLogs: OtlpResourceLogs[] = [];
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1 && wire === WireType.LengthDelimited) resourceLogs.push(readResourceLogs(r.sub()));
    else r.skip(wire);
  }
  return { resourceLogs };
}

function readResourceLogs(r: ProtobufReader): OtlpResourceLogs {
  const out: OtlpResourceLogs = { scopeLogs: [] };
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1 && wire === WireType.LengthDelimited) out.resource = { attributes: readAttributesOf(r.sub(), 1) };
    else if (field === 2 && wire === WireType.LengthDelimited) out.scopeLogs!.push(readScopeLogs(r.sub()));
    else r.skip(wire);
  }
  return out;
}

/** The repeated KeyValue field `field` of a message. */
function readAttributesOf(r: ProtobufReader, field: number): OtlpKeyValue[] {
  const out: OtlpKeyValue[] = [];
  while (!r.done) {
    const [f, wire] = r.tag();
    if (f === field && wire === WireType.LengthDelimited) out.push(readKeyValue(r.sub()));
    else r.skip(wire);
  }
  return out;
}

function readScopeLogs(r: ProtobufReader): OtlpScopeLogs {
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
      case 5: if (wire === WireType.LengthDelimited) { out.body = readAnyValue(r.sub()); continue; } break;
      case 6: if (wire === WireType.LengthDelimited) { attributes.push(readKeyValue(r.sub())); continue; } break;
      case 9: if (wire === WireType.LengthDelimited) { out.traceId = r.bytesHex(); continue; } break;
      case 10: if (wire === WireType.LengthDelimited) { out.spanId = r.bytesHex(); continue; } break;
      case 12: if (wire === WireType.LengthDelimited) { out.eventName = r.string(); continue; } break;
    }
    r.skip(wire);
  }
  out.attributes = attributes;
  return out;
}

function readKeyValue(r: ProtobufReader): OtlpKeyValue {
  const out: OtlpKeyValue = { key: '' };
  while (!r.done) {
    const [field, wire] = r.tag();
    if (field === 1 && wire === WireType.LengthDelimited) out.key = r.string();
    else if (field === 2 && wire === WireType.LengthDelimited) out.value = readAnyValue(r.sub());
    else r.skip(wire);
  }
  return out;
}

function readAnyValue(r: ProtobufReader, depth = 0): OtlpAnyValue {
  if (depth > 32) throw new OtlpError('values nested deeper than 32 levels');
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
    } else if (field === 6 && wire === WireType.LengthDelimited) out.kvlistValue = { values: readAttributesOf(r.sub(), 1) };
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

function plain(value: OtlpAnyValue | undefined, depth = 0): unknown {
  if (value === undefined || value === null || typeof value !== 'object') return null;
  if (depth > 32) throw new OtlpError('values nested deeper than 32 levels');
  if (typeof value.stringValue === 'string') return value.stringValue;
  if (typeof value.boolValue === 'boolean') return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (typeof value.doubleValue === 'number') return value.doubleValue;
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map((v) => plain(v, depth + 1));
  if (value.kvlistValue !== undefined) {
    const out: Record<string, unknown> = {};
    for (const kv of value.kvlistValue.values ?? []) out[String(kv.key)] = plain(kv.value, depth + 1);
    return out;
  }
  if (typeof value.bytesValue === 'string') return value.bytesValue;
  return null;
}

function text(value: OtlpAnyValue | undefined): string {
  const v = plain(value);
  return typeof v === 'string' ? v : v === null ? '' : JSON.stringify(v);
}

function attributeMap(attributes: OtlpKeyValue[] | undefined): Record<string, string> | null {
  if (!Array.isArray(attributes) || attributes.length === 0) return null;
  const out: Record<string, string> = {};
  for (const kv of attributes) {
    if (kv === null || typeof kv !== 'object' || typeof kv.key !== 'string') throw new OtlpError('an attribute without a string key');
    Object.defineProperty(out, kv.key, { value: text(kv.value), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Epoch ms of a nanosecond timestamp given as a decimal string or number; 0 when absent. */
function nanosToMs(value: string | number | undefined): number {
  if (value === undefined) return 0;
  if (typeof value === 'number') return Math.floor(value / 1e6);
  if (typeof value !== 'string' || !/^\d{1,20}$/.test(value)) throw new OtlpError(`bad timestamp ${JSON.stringify(value)}`);
  return value.length <= 6 ? 0 : Number(value.slice(0, -6));
}

export function otlpToRecords(request: OtlpLogsRequest, source: SourceInfo, received: string): LogRecord[] {
  if (request === null || typeof request !== 'object') throw new OtlpError('the body is not an ExportLogsServiceRequest object');
  const records: LogRecord[] = [];
  const resourceLogs = request.resourceLogs ?? [];
  if (!Array.isArray(resourceLogs)) throw new OtlpError('resourceLogs is not an array');
  for (const rl of resourceLogs) {
    const resource = attributeMap(rl?.resource?.attributes);
    const hostname = resource?.['host.name'] ?? null;
    const app = resource?.['service.name'] ?? null;
    const procid = resource?.['process.pid'] ?? null;
    for (const sl of rl?.scopeLogs ?? []) {
      const scope = sl?.scope?.name ? { name: String(sl.scope.name), ...(sl.scope.version ? { version: String(sl.scope.version) } : {}) } : null;
      for (const lr of sl?.logRecords ?? []) {
        if (lr === null || typeof lr !== 'object') throw new OtlpError('a logRecord is not an object');
        const rec = new LogRecord();
        rec.received = received;
        rec.source = source;
        const ms = nanosToMs(lr.timeUnixNano) || nanosToMs(lr.observedTimeUnixNano);
        rec.ts = ms > 0 ? new Date(ms).toISOString() : received;
        rec.severity = syslogSeverity(lr.severityNumber);
        rec.hostname = hostname;
        rec.app = app;
        rec.procid = procid;
        rec.msgid = typeof lr.eventName === 'string' && lr.eventName !== '' ? lr.eventName : null;
        rec.msg = text(lr.body);
        const sd: StructuredData = {};
        if (resource) sd[OTEL_SD.resource] = resource;
        const attributes = attributeMap(lr.attributes);
        if (attributes || lr.severityText) sd[OTEL_SD.attributes] = { ...(attributes ?? {}), ...(lr.severityText ? { 'otel.severity_text': String(lr.severityText) } : {}) };
        if (scope) sd[OTEL_SD.scope] = scope;
        if (lr.traceId) sd[OTEL_SD.trace] = { trace_id: String(lr.traceId), ...(lr.spanId ? { span_id: String(lr.spanId) } : {}) };
        rec.sd = Object.keys(sd).length > 0 ? sd : null;
        rec.size = rec.msg.length;
        records.push(rec);
      }
    }
  }
  return records;
}
