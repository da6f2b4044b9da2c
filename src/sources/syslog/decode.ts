/**
 * From a frame's bytes to a LogRecord: decode and parse. Shared by every
 * syslog transport; attribution (tenant, host key) follows in the session.
 */
import { isUtf8 } from 'node:buffer';
import { LogRecord, type SourceInfo } from '../../core/record.js';
import { parseSyslog } from './parse.js';

const REPLACEMENT = '\uFFFD';

/** The chunk last scanned and a view of it: frames of one chunk share it. */
let viewed: Buffer | null = null;
let view: DataView | null = null;

/**
 * Whether bytes [start, end) hold nothing JSON must escape: no control
 * character, `"` or `\`. Four bytes a step (SWAR: a byte below 0x20, equal to
 * 0x22 or 0x5c, or with the high bit set, sets that byte's high bit); bytes
 * of a word that hits, and any UTF-8 (high bit), are then looked at one by one.
 * Three times faster than a regular expression on the decoded text.
 */
export function jsonSafeBytes(buf: Buffer, start: number, end: number): boolean {
  if (buf !== viewed) {
    viewed = buf;
    view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  const words = view!;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const x = words.getUint32(i, true);
    const quote = x ^ 0x22222222;
    const backslash = x ^ 0x5c5c5c5c;
    const hits = ((x - 0x20202020) & ~x) | ((quote - 0x01010101) & ~quote) | ((backslash - 0x01010101) & ~backslash) | x;
    if ((hits & 0x80808080) !== 0) break;
  }
  for (; i < end; i++) {
    const c = buf[i]!;
    if (c < 0x20 || c === 0x22 || c === 0x5c) return false;
  }
  return true;
}

/**
 * Decode one frame. The string is a copy, so the record never pins the socket
 * chunk. U+FFFD in the text is either a sender's own replacement character or
 * our substitution for invalid bytes; only then are the bytes checked.
 */
export function decodeSyslogFrame(buf: Buffer, start: number, frameEnd: number, source: SourceInfo, received: string, nowMs: number): LogRecord {
  // Trailing LF/CR/NUL are never part of a message (the parser would drop them), and
  // leaving them out keeps the frame-level escape check below meaningful.
  let end = frameEnd;
  while (end > start) {
    const c = buf[end - 1];
    if (c === 0x0a || c === 0x0d || c === 0x00) end--;
    else break;
  }
  const text = buf.toString('utf8', start, end);
  const rec = new LogRecord();
  rec.received = received;
  rec.source = source;
  rec.size = frameEnd - start;
  if (text.indexOf(REPLACEMENT) >= 0 && !isUtf8(buf.subarray(start, end))) rec.invalidUtf8 = true;
  // One scan of the frame instead of one per field when the record is encoded.
  rec.jsonSafe = jsonSafeBytes(buf, start, end);
  parseSyslog(text, rec, nowMs);
  return rec;
}
