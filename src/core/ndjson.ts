/**
 * A LogRecord as one NDJSON line. Built by hand (as pino does): the common
 * string needs no escaping, which the decoder's scan of the frame proves
 * (LogRecord.jsonSafe) or one regex test (a single character class, so no
 * backtracking) does; only the rest go through JSON.stringify. The file sink
 * appends lines of ASCII to its chunks without UTF-8 encoding them. The one
 * record codec: the file and NATS sinks, the disk buffer and the admin tail
 * all use it.
 * Field reference: docs/record.md.
 */
import { isAscii, LogRecord, SourceInfo } from './record.js';

/** Where appendRecord writes a line (a sink's EncodedQueue). */
export interface LineAppender {
  /** `ascii`: every character of `line` is ASCII, so it may be copied without UTF-8 encoding. */
  append(line: string, ascii: boolean): void;
}

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
export function appendRecord(queue: LineAppender, rec: LogRecord): void {
  const line = encodeRecord(rec);
  queue.append(line, lineAscii);
}

/**
 * Records of one connection repeat most of their line: everything from
 * tenant to the opening quote of msg (same host, app, procid, msgid and
 * priority, no SD), and everything after msg (same source, metadata object
 * and flags). Each part is kept from the connection's last record (on its
 * SourceInfo) and rebuilt only when one of its fields differs, so a line is
 * six pieces instead of thirty. Kept per connection, not per encoder: with
 * thousands of agents each sending a trickle, consecutive records are of
 * different connections, and rebuilding both parts was a third of what a
 * worker allocated under W5 (a sampling heap profile, docs/benchmarks.md).
 */
class LineParts {
  tenant = '';
  host = '';
  hostname: string | null = null;
  app: string | null = null;
  procid: string | null = null;
  msgid: string | null = null;
  facility = -1;
  severity = -1;
  middle = '';
  meta: Record<string, unknown> | null = null;
  flags = -1;
  tail = '';
  tailAscii = true;
}

/** The parts of records that have no source (none do when received; kept for any that may). */
const sourcelessParts = new LineParts();

function partsOf(source: SourceInfo | null): LineParts {
  if (source === null) return sourcelessParts;
  return (source.lineParts as LineParts | null) ?? (source.lineParts = new LineParts());
}

/**
 * Makes V8 store a concatenated string as one flat string (as pino's flatstr
 * does: converting it to a number flattens it in place), so every line built
 * from it copies one piece rather than walking its concatenations again.
 */
function flatten(s: string): void {
  Number(s);
}

/** `","tenant":…,"severity":N` of a record whose fields need no escaping (LogRecord.jsonSafe). */
function safeHeaderFields(rec: LogRecord): string {
  return '","tenant":"' + rec.tenant
    + '","host":"' + rec.host
    + '","hostname":' + (rec.hostname === null ? 'null' : '"' + rec.hostname + '"')
    + ',"app":' + (rec.app === null ? 'null' : '"' + rec.app + '"')
    + ',"procid":' + (rec.procid === null ? 'null' : '"' + rec.procid + '"')
    + ',"msgid":' + (rec.msgid === null ? 'null' : '"' + rec.msgid + '"')
    + ',"facility":' + rec.facility
    + ',"severity":' + rec.severity;
}

export function encodeRecord(rec: LogRecord): string {
  // The frame-level check in decode spares the per-field ones (see LogRecord.jsonSafe).
  if (rec.jsonSafe && rec.sd === null) {
    const parts = partsOf(rec.source);
    if (rec.tenant !== parts.tenant || rec.host !== parts.host || rec.hostname !== parts.hostname || rec.app !== parts.app
      || rec.procid !== parts.procid || rec.msgid !== parts.msgid || rec.facility !== parts.facility || rec.severity !== parts.severity) {
      parts.middle = safeHeaderFields(rec) + ',"sd":null,"msg":"';
      flatten(parts.middle);
      parts.tenant = rec.tenant;
      parts.host = rec.host;
      parts.hostname = rec.hostname;
      parts.app = rec.app;
      parts.procid = rec.procid;
      parts.msgid = rec.msgid;
      parts.facility = rec.facility;
      parts.severity = rec.severity;
    }
    const flags = (rec.parseError ? 1 : 0) | (rec.invalidUtf8 ? 2 : 0) | (rec.metaMissing === null ? 0 : rec.metaMissing === 'timeout' ? 4 : 8);
    if (rec.meta !== parts.meta || flags !== parts.flags) {
      lineAscii = rec.source === null || rec.source.jsonAscii;
      parts.tail = finish('","source":' + (rec.source === null ? 'null' : rec.source.json), rec);
      flatten(parts.tail);
      parts.tailAscii = lineAscii;
      parts.meta = rec.meta;
      // Metadata that could change (not frozen) is encoded again for the next record.
      parts.flags = rec.meta === null || Object.isFrozen(rec.meta) ? flags : -1;
    }
    // tenant (a configured id), host (hex) and received (ISO time) are ASCII by construction.
    lineAscii = rec.ascii && parts.tailAscii;
    return '{"ts":"' + rec.ts + '","received":"' + rec.received + parts.middle + rec.msg + parts.tail;
  }
  if (rec.jsonSafe) {
    lineAscii = rec.ascii && (rec.source === null || rec.source.jsonAscii);
    const line = '{"ts":"' + rec.ts
      + '","received":"' + rec.received
      + safeHeaderFields(rec)
      + ',"sd":' + JSON.stringify(rec.sd)
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
  if (rec.metaMissing !== null) line += ',"meta_missing":"' + rec.metaMissing + '"';
  if (rec.parseError) line += ',"parse_error":true';
  if (rec.invalidUtf8) line += ',"invalid_utf8":true';
  return line + '}\n';
}

/** The source of the record decoded last: a run of one connection's records shares it, and so its line parts. */
let lastDecodedSource: SourceInfo | null = null;

function decodedSource(protocol: SourceInfo['protocol'], address: string, port: number): SourceInfo {
  const last = lastDecodedSource;
  if (last !== null && last.protocol === protocol && last.address === address && last.port === port) return last;
  return (lastDecodedSource = new SourceInfo(protocol, address, port));
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
  rec.source = source ? decodedSource(source.protocol, source.address, source.port) : null;
  rec.meta = (o.meta as Record<string, unknown> | undefined) ?? null;
  rec.metaMissing = o.meta_missing === 'timeout' || o.meta_missing === 'unavailable' ? o.meta_missing : null;
  rec.parseError = o.parse_error === true;
  rec.invalidUtf8 = o.invalid_utf8 === true;
  rec.size = line.length;
  return rec;
}
