/**
 * Reads one segment file front to back and verifies every entry on the way:
 * the segment header, each entry's framing, that ids run on consecutively
 * from the segment's name, and each CRC. Bytes come in through one reusable
 * read buffer, so scanning a segment of any size costs one buffer of memory
 * (plus an entry larger than the buffer, read on its own).
 */
import type { FileHandle } from 'node:fs/promises';
import {
  ENTRY_HEADER_BYTES, SEGMENT_HEADER_BYTES, decodeEntryHeader, decodeSegmentHeader, entryChecksumMatches, type EntryHeader,
} from './format.js';

/** One verified entry of a segment. */
export interface ScannedEntry {
  /** Consecutive within its chain. */
  readonly id: number;
  /** The bytes given to append(): the sink's encoded records. */
  readonly payload: Buffer;
  /** Records the payload holds, as given to append(). */
  readonly records: number;
}

export type PeekResult =
  /** The next entry's header is sound and its bytes are all below the limit (its CRC is checked by next()). */
  | { kind: 'entry'; id: number; payloadBytes: number }
  | { kind: 'end' }
  | { kind: 'bad'; reason: string; offset: number };

export type ScanResult =
  | { kind: 'entry'; entry: ScannedEntry; recordsBefore: number; bytes: number }
  /** Every byte up to the limit has been read and verified. */
  | { kind: 'end' }
  /** The next entry's payload is larger than the caller's budget; it was not consumed. */
  | { kind: 'over_budget' }
  /** What starts at `offset` is not a valid entry: nothing from there on can be trusted. */
  | { kind: 'bad'; reason: string; offset: number };

export class SegmentScanner {
  /** File offset of the next byte to verify. */
  offset = 0;
  /** The id the next entry must carry. */
  nextId: number;
  /** Records before the segment's first entry, once its header has been read. */
  recordsBefore: number | null = null;
  private readonly buf: Buffer;
  /** File offset of buf[0], and how many bytes of buf are valid. */
  private bufStart = 0;
  private bufLength = 0;

  /**
   * @param firstId the id the segment's name promises for its first entry
   * @param limit bytes of the file that may be read (the durable size of a segment still being written)
   * @param resumeAt where an earlier scanner of this file stopped (0: from the segment header), and `resumeId` the id expected there
   */
  constructor(private readonly handle: FileHandle, firstId: number, public limit: number, readBufferBytes: number, resumeAt = 0, resumeId = firstId) {
    this.nextId = resumeId;
    this.offset = resumeAt;
    this.bufStart = resumeAt;
    this.buf = Buffer.allocUnsafeSlow(Math.max(readBufferBytes, ENTRY_HEADER_BYTES + SEGMENT_HEADER_BYTES));
  }

  /** The next entry's id and size, without consuming it. */
  async peek(): Promise<PeekResult> {
    if (this.offset === 0) {
      if (this.limit < SEGMENT_HEADER_BYTES) return this.bad('short_segment_header');
      if (!(await this.fill(SEGMENT_HEADER_BYTES))) return this.bad('file_shorter_than_recorded');
      const header = decodeSegmentHeader(this.buf.subarray(0, SEGMENT_HEADER_BYTES));
      if (typeof header === 'string') return this.bad(header);
      if (header.firstId !== this.nextId) return this.bad('segment_name_mismatch');
      this.recordsBefore = header.recordsBefore;
      this.offset = SEGMENT_HEADER_BYTES;
    }
    const remaining = this.limit - this.offset;
    if (remaining === 0) return { kind: 'end' };
    if (remaining < ENTRY_HEADER_BYTES) return this.bad('short_entry_header');
    if (!(await this.fill(ENTRY_HEADER_BYTES))) return this.bad('file_shorter_than_recorded');
    return this.headerHere(remaining);
  }

  /**
   * peek() without waiting, when the answer needs no read (the next header
   * is in the read buffer, or the limit is reached); null otherwise. Replay
   * runs through here for all but one entry per read-buffer's worth.
   */
  peekBuffered(): PeekResult | null {
    if (this.offset === 0 || this.offset < this.bufStart) return null;
    const remaining = this.limit - this.offset;
    if (remaining === 0) return { kind: 'end' };
    if (remaining < ENTRY_HEADER_BYTES || this.bufStart + this.bufLength - this.offset < ENTRY_HEADER_BYTES) return null;
    return this.headerHere(remaining);
  }

  /** The entry header at `offset`, present in the read buffer, checked as far as it can be without the payload. */
  private headerHere(remaining: number): PeekResult {
    const header = decodeEntryHeader(this.buf, this.offset - this.bufStart);
    if (typeof header === 'string') return this.bad(header);
    if (header.id !== this.nextId) return this.bad('unexpected_id');
    if (ENTRY_HEADER_BYTES + header.payloadBytes > remaining) return this.bad('short_payload');
    return { kind: 'entry', id: header.id, payloadBytes: header.payloadBytes };
  }

  async next(payloadBudget = Number.POSITIVE_INFINITY): Promise<ScanResult> {
    const peeked = await this.peek();
    if (peeked.kind !== 'entry') return peeked;
    if (peeked.payloadBytes > payloadBudget) return { kind: 'over_budget' };
    const total = ENTRY_HEADER_BYTES + peeked.payloadBytes;
    if (total > this.buf.length) {
      // Larger than the read buffer: read this entry into memory of its own.
      const whole = Buffer.allocUnsafeSlow(total);
      if (!(await this.readExactly(whole, this.offset))) return this.bad('file_shorter_than_recorded');
      return this.verified(whole, 0, whole.subarray(ENTRY_HEADER_BYTES), total);
    }
    if (!(await this.fill(total))) return this.bad('file_shorter_than_recorded');
    return this.takeBuffered(total);
  }

  /**
   * next() without waiting, when the whole next entry is in the read buffer;
   * null when it needs a read (or is not an entry: next() says what it is).
   */
  nextBuffered(): ScanResult | null {
    const peeked = this.peekBuffered();
    if (peeked === null || peeked.kind !== 'entry') return null;
    const total = ENTRY_HEADER_BYTES + peeked.payloadBytes;
    if (this.bufStart + this.bufLength - this.offset < total) return null;
    return this.takeBuffered(total);
  }

  private takeBuffered(total: number): ScanResult {
    const headerAt = this.offset - this.bufStart;
    // A copy: the read buffer is reused, and the sink may hold a payload for a long time.
    const payload = Buffer.from(this.buf.subarray(headerAt + ENTRY_HEADER_BYTES, headerAt + total));
    return this.verified(this.buf, headerAt, payload, total);
  }

  private verified(headerBytes: Buffer, headerAt: number, payload: Buffer, total: number): ScanResult {
    if (!entryChecksumMatches(headerBytes, headerAt, payload)) return this.bad('checksum_mismatch');
    // Verified: the header fields can be trusted now.
    const header = decodeEntryHeader(headerBytes, headerAt) as EntryHeader;
    this.offset += total;
    this.nextId++;
    return { kind: 'entry', entry: { id: header.id, payload, records: header.records }, recordsBefore: header.recordsBefore, bytes: total };
  }

  private bad(reason: string): { kind: 'bad'; reason: string; offset: number } {
    return { kind: 'bad', reason, offset: this.offset };
  }

  /** Make file bytes [offset, offset + count) present in the read buffer. False: the file ended first. */
  private async fill(count: number): Promise<boolean> {
    const have = this.bufStart + this.bufLength - this.offset;
    if (this.offset >= this.bufStart && have >= count) return true;
    // Keep the unread tail, move it to the front, and read after it as much as fits below the limit.
    if (this.offset >= this.bufStart && have > 0) this.buf.copy(this.buf, 0, this.offset - this.bufStart, this.bufStart + this.bufLength);
    this.bufStart = this.offset;
    this.bufLength = Math.max(0, have);
    const want = Math.min(this.buf.length, this.limit - this.offset);
    while (this.bufLength < want) {
      const { bytesRead } = await this.handle.read(this.buf, this.bufLength, want - this.bufLength, this.bufStart + this.bufLength);
      if (bytesRead === 0) break;
      this.bufLength += bytesRead;
    }
    return this.bufLength >= count;
  }

  private async readExactly(into: Buffer, position: number): Promise<boolean> {
    let done = 0;
    while (done < into.length) {
      const { bytesRead } = await this.handle.read(into, done, into.length - done, position + done);
      if (bytesRead === 0) return false;
      done += bytesRead;
    }
    return true;
  }
}
