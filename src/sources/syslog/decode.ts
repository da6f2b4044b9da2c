/**
 * From a frame's bytes to a LogRecord: decode and parse. Shared by every
 * syslog transport; attribution (tenant, host key) follows in the session.
 */
import { isUtf8 } from 'node:buffer';
import { LogRecord, type SourceInfo } from '../../core/record.js';
import { parseSyslog } from './parse.js';

const REPLACEMENT = '\uFFFD';
/** One character class, so no backtracking: what JSON would have to escape. */
const NEEDS_JSON_ESCAPE = /[\u0000-\u001f"\\]/;

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
  rec.jsonSafe = !NEEDS_JSON_ESCAPE.test(text);
  parseSyslog(text, rec, nowMs);
  return rec;
}
