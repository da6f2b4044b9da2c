/**
 * The messages simulated agents send, and how the probe finds them again.
 *
 * An RFC 5424 message whose MSG starts with a marker:
 *
 *   <14>1 2026-11-27T14:20:00.123Z agent-0-17 loadgen - - - lg=3f2a9c01:17:42:81234567890 xxxx…
 *
 * `lg=<run>:<agent>:<seq>:<sendMicros>`: the run id (8 hex digits, so records
 * of an earlier or a concurrent run are never counted), the agent number, the
 * agent's sequence number (0, 1, 2, …, for loss and duplicates) and the send
 * time on the monotonic clock (see clock.ts); padding brings the message to
 * the requested size. Everything is ASCII, so characters are bytes.
 *
 * The node keeps MSG as the record's `msg`, which the file sink writes
 * unescaped (no quote, backslash or control character in it), so the probe
 * finds `"msg":"lg=` in a raw NDJSON line with a byte search and reads the
 * numbers in place: no JSON parse, no string per line.
 */
import { randomBytes } from 'node:crypto';

export const RUN_ID_LENGTH = 8;
export const MARKER = 'lg=';
/** The marker as it appears inside a file sink record. */
export const NDJSON_MARKER = Buffer.from(`"msg":"${MARKER}`, 'latin1');
const COLON = 0x3a;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

export function newRunId(): string {
  return randomBytes(RUN_ID_LENGTH / 2).toString('hex');
}

export interface Marker {
  runId: string;
  agent: number;
  seq: number;
  sendMicros: number;
}

export class MessageFormatter {
  private isoForMs = -1;
  private iso = '';
  private readonly padding: string;

  constructor(private readonly runId: string, private readonly size: number) {
    this.padding = ' ' + 'x'.repeat(size);
  }

  format(hostname: string, agent: number, seq: number, sendMicros: number, wallMs: number): string {
    // Many messages share a millisecond; toISOString is the costliest step here.
    if (wallMs !== this.isoForMs) {
      this.isoForMs = wallMs;
      this.iso = new Date(wallMs).toISOString();
    }
    const head = `<14>1 ${this.iso} ${hostname} loadgen - - - ${MARKER}${this.runId}:${agent}:${seq}:${sendMicros}`;
    const missing = this.size - head.length;
    // Padding starts with a space; a lone trailing space could be trimmed, so pad by 2 or more.
    return missing >= 2 ? head + this.padding.slice(0, missing) : head;
  }
}

/** The marker at the start of a record's `msg`, or null. */
export function parseMarker(msg: string): Marker | null {
  const m = /^lg=([0-9a-f]{8}):(\d+):(\d+):(\d+)(?: |$)/.exec(msg);
  if (m === null) return null;
  return { runId: m[1]!, agent: Number(m[2]), seq: Number(m[3]), sendMicros: Number(m[4]) };
}

/**
 * Reads `<run>:<agent>:<seq>:<sendMicros>` from bytes, for one run. The
 * fields of the last successful read are left on the instance, so the probe's
 * hot loop allocates nothing.
 */
export class MarkerReader {
  agent = 0;
  seq = 0;
  sendMicros = 0;
  private readonly runId: Buffer;
  private position = 0;

  constructor(runId: string) {
    this.runId = Buffer.from(runId, 'latin1');
  }

  /** Whether `buf` holds this run's marker fields at `at` (just after `lg=`), within `end`. */
  read(buf: Buffer, at: number, end: number): boolean {
    const runEnd = at + this.runId.length;
    if (runEnd >= end || buf.compare(this.runId, 0, this.runId.length, at, runEnd) !== 0 || buf[runEnd] !== COLON) return false;
    this.position = runEnd + 1;
    const agent = this.number(buf, end, true);
    const seq = agent < 0 ? -1 : this.number(buf, end, true);
    const sendMicros = seq < 0 ? -1 : this.number(buf, end, false);
    if (sendMicros < 0) return false;
    this.agent = agent;
    this.seq = seq;
    this.sendMicros = sendMicros;
    return true;
  }

  /** Digits at the current position, then (when `colon`) a ':'; -1 when absent. */
  private number(buf: Buffer, end: number, colon: boolean): number {
    let p = this.position;
    let value = 0;
    const start = p;
    while (p < end) {
      const c = buf[p]!;
      if (c < DIGIT_0 || c > DIGIT_9) break;
      value = value * 10 + (c - DIGIT_0);
      p++;
    }
    if (p === start || p - start > 15) return -1;
    if (colon) {
      if (buf[p] !== COLON) return -1;
      p++;
    }
    this.position = p;
    return value;
  }
}
