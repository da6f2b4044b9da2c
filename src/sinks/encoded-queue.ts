/**
 * Encoded records waiting to be written, held as bytes in large chunks
 * outside the JS heap rather than as strings: a deep queue then costs the
 * garbage collector nothing, and a write is one writev() of whole chunks.
 *
 *   append(line) … mark(batch)  append … mark   append …
 *   ├──────── chunk 0 ─────────┤├──── chunk 1 ───── (open) ┤
 *   take(max) → [chunk 0, chunk 1]   written → release(2) → marks settle
 *
 * Chunks hold whole lines only, so any prefix of chunks ends on a record
 * boundary. A mark records where one write() call's records end; once the
 * bytes up to it are released, its ack commits — or fails, when the chunks
 * were released as failed (a sender that dropped some of their records).
 */
import type { AckToken } from '../core/ack.js';

interface Mark {
  /** Offset, in bytes ever appended, just past this batch's last line. */
  end: number;
  records: number;
  ack: AckToken | null;
  /** Part of this batch was in chunks released as failed: its ack fails too. */
  failed: boolean;
}

export class EncodedQueue {
  /** Bytes appended and not yet released. */
  bytes = 0;
  private readonly chunks: Buffer[] = [];
  private open: Buffer | null = null;
  private openUsed = 0;
  private appended = 0;
  private released = 0;
  private readonly marks: Mark[] = [];
  /** End of the last settled mark: released bytes past it belong to the next mark. */
  private settledEnd = 0;
  /** Size of the next chunk allocated: grows from firstChunkSize while the queue stays busy. */
  private nextChunkSize: number;

  /**
   * `firstChunkSize`: a queue that was empty starts with a chunk this small
   * and doubles up to `chunkSize` as it fills, so thousands of mostly idle
   * per-tenant queues do not each hold a full chunk.
   */
  constructor(private readonly chunkSize: number, private readonly firstChunkSize = chunkSize) {
    this.nextChunkSize = firstChunkSize;
  }

  /** Append one line; `ascii`: the caller knows it holds only ASCII, so it is copied without UTF-8 encoding. */
  append(line: string, ascii = false): void {
    // A UTF-16 unit encodes to at most 3 UTF-8 bytes: measure exactly only when that bound does not fit.
    const room = this.open === null ? 0 : this.open.length - this.openUsed;
    const bytes = ascii ? line.length : line.length * 3 <= room ? 0 : Buffer.byteLength(line);
    if (room === 0 || bytes > room) {
      this.seal();
      this.open = Buffer.allocUnsafeSlow(Math.max(this.nextChunkSize, bytes));
      if (this.nextChunkSize < this.chunkSize) this.nextChunkSize = Math.min(this.chunkSize, this.nextChunkSize * 2);
    }
    const written = this.open!.write(line, this.openUsed, ascii ? 'latin1' : 'utf8');
    this.openUsed += written;
    this.appended += written;
    this.bytes += written;
  }

  /** The records appended since the last mark form one batch, settled by `ack`. */
  mark(records: number, ack: AckToken | null): void {
    this.marks.push({ end: this.appended, records, ack, failed: false });
  }

  /** Close the open chunk so it can be taken. */
  seal(): void {
    if (this.open !== null && this.openUsed > 0) this.chunks.push(this.open.subarray(0, this.openUsed));
    this.open = null;
    this.openUsed = 0;
  }

  get empty(): boolean {
    return this.bytes === 0;
  }

  /** Bytes of the `index`-th oldest chunk, the open one last; 0 past the end. */
  chunkBytesAt(index: number): number {
    if (index < this.chunks.length) return this.chunks[index]!.length;
    return index === this.chunks.length ? this.openUsed : 0;
  }

  /**
   * The `index`-th oldest chunk (sealing the open one when it is that one),
   * for a caller that takes chunks one at a time; it stays queued until
   * released. Call only for an index with chunkBytesAt(index) > 0.
   */
  chunkAt(index: number): Buffer {
    if (index === this.chunks.length) this.seal();
    return this.chunks[index]!;
  }

  /**
   * The oldest chunks, up to `maxBytes` (at least one), sealing the open
   * chunk when it fits. They stay queued until released.
   */
  take(maxBytes: number): Buffer[] {
    const out: Buffer[] = [];
    let size = 0;
    for (const chunk of this.chunks) {
      if (out.length > 0 && size + chunk.length > maxBytes) return out;
      out.push(chunk);
      size += chunk.length;
    }
    if (this.openUsed > 0 && (out.length === 0 || size + this.openUsed <= maxBytes)) {
      this.seal();
      out.push(this.chunks[this.chunks.length - 1]!);
    }
    return out;
  }

  /**
   * The first `count` chunks were sent: drop them and settle the batches they
   * complete. `failed`: some of their records could not be delivered, so those
   * batches' acks fail, and so does the ack of a batch that straddles into the
   * chunks still queued. Returns records settled.
   */
  release(count: number, failed = false): number {
    for (const chunk of this.chunks.splice(0, count)) {
      this.released += chunk.length;
      this.bytes -= chunk.length;
    }
    let records = 0;
    let settled = 0;
    while (settled < this.marks.length && this.marks[settled]!.end <= this.released) {
      const mark = this.marks[settled++]!;
      records += mark.records;
      this.settledEnd = mark.end;
      if (failed || mark.failed) mark.ack?.fail();
      else mark.ack?.commit();
    }
    this.marks.splice(0, settled);
    if (failed && this.marks.length > 0 && this.released > this.settledEnd) this.marks[0]!.failed = true;
    if (this.bytes === 0) this.nextChunkSize = this.firstChunkSize;
    return records;
  }

  /**
   * The record starting at `offset` in the `chunk`-th oldest chunk could not
   * be delivered: the batch it belongs to fails its ack once released.
   */
  failRecord(chunk: number, offset: number): void {
    let at = this.released + offset;
    for (let i = 0; i < chunk; i++) at += this.chunks[i]!.length;
    for (const mark of this.marks) {
      if (mark.end > at) {
        mark.failed = true;
        return;
      }
    }
  }

  /** Give up on everything queued (the sink is destroyed): pending acks fail. Returns the records given up on. */
  failAll(): number {
    let records = 0;
    for (const mark of this.marks) {
      records += mark.records;
      mark.ack?.fail();
    }
    this.marks.length = 0;
    this.chunks.length = 0;
    this.open = null;
    this.openUsed = 0;
    this.bytes = 0;
    this.nextChunkSize = this.firstChunkSize;
    return records;
  }
}
