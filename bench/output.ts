/**
 * Reading what a server wrote: when it has finished (its files stop growing),
 * when its last line was written (the files' modification time), how many lines
 * there are, and whether each message loggen sent is there exactly once.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';

const CHUNK_BYTES = 8 * 1024 * 1024;
const NEWLINE = 0x0a;

/** Each line of a file as a Buffer view, without its newline; a last unterminated line too. */
export function* fileLines(file: string): Generator<Buffer> {
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    let carry: Buffer | null = null;
    for (;;) {
      const read = readSync(fd, chunk, 0, CHUNK_BYTES, null);
      if (read === 0) break;
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(NEWLINE, start);
        if (nl < 0 || nl >= read) break;
        const piece = chunk.subarray(start, nl);
        yield carry ? Buffer.concat([carry, piece]) : piece;
        carry = null;
        start = nl + 1;
      }
      if (start < read) {
        // Copied: the chunk buffer is reused by the next read.
        const rest = Buffer.from(chunk.subarray(start, read));
        carry = carry ? Buffer.concat([carry, rest]) : rest;
      }
    }
    if (carry && carry.length > 0) yield carry;
  } finally {
    closeSync(fd);
  }
}

export function countLines(files: string[]): number {
  let lines = 0;
  for (const file of files) {
    const fd = openSync(file, 'r');
    try {
      const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      for (;;) {
        const read = readSync(fd, chunk, 0, CHUNK_BYTES, null);
        if (read === 0) break;
        let at = chunk.indexOf(NEWLINE, 0);
        while (at >= 0 && at < read) {
          lines++;
          at = chunk.indexOf(NEWLINE, at + 1);
        }
      }
    } finally {
      closeSync(fd);
    }
  }
  return lines;
}

export interface OutputSnapshot {
  bytes: number;
  /** Latest modification time over the files, in epoch milliseconds (sub-millisecond precision). */
  lastWriteMs: number;
}

export function snapshot(files: string[]): OutputSnapshot {
  let bytes = 0;
  let lastWriteMs = 0;
  for (const file of files) {
    const st = statSync(file, { bigint: true, throwIfNoEntry: false });
    if (!st) continue;
    bytes += Number(st.size);
    lastWriteMs = Math.max(lastWriteMs, Number(st.mtimeNs / 1000n) / 1000);
  }
  return { bytes, lastWriteMs };
}

export interface Delivery {
  lines: number;
  lastWriteMs: number;
  /** The files stopped growing before `expected` lines were there (loss, or a stall longer than quietMs). */
  short: boolean;
}

/**
 * Wait until the server has written `expected` lines, or its files have not
 * grown for `quietMs` (whatever is missing by then is lost), or `timeoutMs`.
 */
export async function waitForDelivery(outputFiles: () => string[], expected: number,
  { quietMs = 2000, timeoutMs = 300_000, pollMs = 100 } = {}): Promise<Delivery> {
  const deadline = Date.now() + timeoutMs;
  let lastBytes = -1;
  let stableSince = Date.now();
  let countedAtBytes = -1;
  let lines = 0;
  for (;;) {
    const files = outputFiles();
    const snap = snapshot(files);
    const now = Date.now();
    if (snap.bytes !== lastBytes) {
      lastBytes = snap.bytes;
      stableSince = now;
    }
    const stableMs = now - stableSince;
    // Counting reads the files: only once they have stopped growing for a moment.
    if (stableMs >= Math.min(300, quietMs) && countedAtBytes !== snap.bytes) {
      lines = countLines(files);
      countedAtBytes = snap.bytes;
      if (lines >= expected) return { lines, lastWriteMs: snap.lastWriteMs, short: false };
    }
    if (stableMs >= quietMs || now > deadline) {
      if (countedAtBytes !== snap.bytes) lines = countLines(files);
      return { lines, lastWriteMs: snapshot(files).lastWriteMs, short: lines < expected };
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

export interface RecordCheck {
  lines: number;
  /** Distinct (thread, seq) messages of loggen found. */
  distinct: number;
  duplicates: number;
  /** Lines without loggen's `seq: N, thread: T`. */
  unrecognised: number;
  /** Lines that are not one JSON object (json output only). */
  invalidJson: number;
}

const SEQUENCE = /seq: (\d+), thread: (\d+)/;

/** Check every line: one JSON object each (for json output), each loggen message once. */
export function checkRecords(files: string[], format: 'json' | 'raw'): RecordCheck {
  const seen = new Set<number>();
  const check: RecordCheck = { lines: 0, distinct: 0, duplicates: 0, unrecognised: 0, invalidJson: 0 };
  for (const file of files) {
    for (const line of fileLines(file)) {
      check.lines++;
      const text = line.toString('utf8');
      if (format === 'json') {
        try {
          const value: unknown = JSON.parse(text);
          if (typeof value !== 'object' || value === null || Array.isArray(value)) check.invalidJson++;
        } catch {
          check.invalidJson++;
        }
      }
      const match = SEQUENCE.exec(text);
      if (!match) {
        check.unrecognised++;
        continue;
      }
      // loggen numbers messages per thread: (thread, seq) is unique within one run.
      const key = Number(match[2]) * 1e11 + Number(match[1]);
      if (seen.has(key)) check.duplicates++;
      else seen.add(key);
    }
  }
  check.distinct = seen.size;
  return check;
}
