/**
 * One chain of segments in one folder: the entries of one tenant, ids
 * consecutive across its segments (or, in a buffer written before there was
 * a chain per tenant, the entries of every tenant: the legacy chain, only
 * read). A chain knows its files, where appends go next and where its reader
 * stands; the DiskBuffer that owns its chains decides when to write, which
 * chain to read next and when space is freed (docs/disk-buffer.md).
 *
 * A chain is a flow of the buffer's deficit round-robin: `nextCost` is the
 * size of its next entry ready to read, found by peek() from the entry's
 * header without reading its payload.
 */
import { mkdir, open, readdir, rename, stat, truncate, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Counter } from 'prom-client';
import { DrrFlow } from '../../core/fair.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { syncDirectory } from './checkpoint.js';
import type { DiskBufferConfig } from './config.js';
import {
  ENTRY_HEADER_BYTES, SEGMENT_HEADER_BYTES, encodeEntryHeader, encodeSegmentHeader, parseSegmentName, segmentName,
} from './format.js';
import { SegmentScanner, type ScannedEntry } from './segment-scanner.js';

/** One appended batch, as the reader hands it out. */
export interface BufferEntry extends ScannedEntry {
  /** The tenant it was appended for; null for an entry written before the buffer kept a chain per tenant. */
  readonly tenant: string | null;
}

export interface Segment {
  readonly firstId: number;
  readonly file: string;
  /** Bytes in the file, counting a write in progress only once it has completed. */
  bytes: number;
  /** Bytes known to be fsynced: the reader reads no further. */
  durableBytes: number;
  /** Id of the last entry in the segment (firstId - 1 while empty). */
  lastId: number;
  /** No more entries go into it (a reader found damage in it, or it did not continue the id sequence). */
  sealed: boolean;
  /** Fully acknowledged and no longer counted: its file is being removed. */
  released: boolean;
}

export interface PendingAppend {
  readonly chain: SegmentChain;
  readonly payload: Buffer;
  readonly records: number;
  /** Bytes reserved for it: its entry, plus a segment header if it is planned to open a segment. */
  cost: number;
  readonly resolve: (result: { written: true; id: number }) => void;
  readonly reject: (err: Error) => void;
}

/** An entry being written: a pending append with its id assigned. */
interface FramedEntry {
  readonly append: PendingAppend;
  readonly id: number;
  readonly recordsBefore: number;
}

/** The entries of one write round that go into one segment. */
export interface SegmentWrite {
  /** null: this round creates the segment. */
  segment: Segment | null;
  readonly firstId: number;
  readonly recordsBefore: number;
  readonly entries: FramedEntry[];
  /** Bytes this round adds to the segment (its header included when it creates it). */
  bytes: number;
}

/** What the chains of one buffer share: its settings, its name and its counters. */
export interface ChainContext {
  readonly name: string;
  readonly config: DiskBufferConfig;
  readonly telemetry: Telemetry;
  readonly droppedCorrupt: Counter.Internal;
  readonly discardedCorrupt: Counter.Internal;
  readonly discardedTornTail: Counter.Internal;
}

/** A write round failed and taking it back failed too: the chain's tail is unknown. `cause` is the write's error. */
export class UndoFailedError extends Error {}

/** Headers and small payloads are copied into chunks of this size, so a batch of small entries is one large write. */
const STAGING_BYTES = 256 * 1024;
/** Payloads at least this large are written from the caller's buffer rather than copied. */
const COPY_BELOW_BYTES = 16 * 1024;

export class SegmentChain extends DrrFlow {
  readonly segments: Segment[] = [];
  /** The segment appends go to (always the newest; null: the next append starts one), and its handle (closed while idle when many chains are open). */
  appendTo: Segment | null = null;
  private appendHandle: FileHandle | null = null;

  nextId = 1;
  /** Records in every entry ever assigned an id (the next entry's recordsBefore). */
  private recordsTotal = 0;
  acknowledged = 0;
  /** Planned size of the segment the next admitted append goes to; null: it opens a new segment. */
  plannedTail: number | null = null;
  /** Appends admitted and not yet taken by a write round. */
  pendingAppends = 0;

  // The reader: position in memory, from the first unacknowledged entry after open.
  private readerSegment: Segment | null = null;
  private readerHandle: FileHandle | null = null;
  private scanner: SegmentScanner | null = null;
  /** Where the reader stands in readerSegment while its file is closed (to bound open files). */
  private readerOffset = 0;
  private readerNextId = 0;
  /** Segments at or before this firstId have been read through. */
  private readerPassed = 0;
  /** Entries below this id are not handed out again (acknowledged before open). */
  private readFrom = 1;
  lastReadId = 0;
  /** What the next entry read should carry; a larger id means entries were lost to damage. */
  private expectedId = 1;
  private expectedRecordsBefore: number | null = null;
  /** Payload bytes + 1 of the next entry ready to read (an empty payload still costs a turn); 0 when none is known to be. */
  nextCost = 0;
  /** The reader found damage in the segment appended to and sealed it: the owner re-plans. */
  sealedByReader = false;
  /** Its entries are not handed out for now (DiskBuffer.hold()). */
  held = false;

  constructor(
    readonly tenant: string | null,
    readonly dir: string,
    private readonly ctx: ChainContext,
    /** Never appended to: the legacy chain. */
    readonly readOnly: boolean,
    /** The folder exists; otherwise it is created with the chain's first segment. */
    private dirExists: boolean,
  ) {
    super();
  }

  /** Bytes of its segment files (released ones excluded). */
  get bytes(): number {
    let bytes = 0;
    for (const segment of this.segments) bytes += segment.bytes;
    return bytes;
  }

  get unacknowledged(): number {
    return this.nextId - 1 - this.acknowledged;
  }

  get hasOpenReader(): boolean {
    return this.readerHandle !== null;
  }

  get hasWriteHandle(): boolean {
    return this.appendHandle !== null;
  }

  // ── planning ─────────────────────────────────────────────────────────

  /** What an entry with this payload would cost if admitted now (the same rule the write round applies). */
  plannedCost(payloadBytes: number): number {
    const size = ENTRY_HEADER_BYTES + payloadBytes;
    return this.opensSegment(this.plannedTail, size) ? size + SEGMENT_HEADER_BYTES : size;
  }

  advancePlan(payloadBytes: number): void {
    const size = ENTRY_HEADER_BYTES + payloadBytes;
    this.plannedTail = (this.opensSegment(this.plannedTail, size) ? SEGMENT_HEADER_BYTES : this.plannedTail!) + size;
  }

  /** Plan from the actual state again (the caller re-plans the pending appends on top). */
  resetPlan(): void {
    this.plannedTail = this.appendTo !== null && !this.appendTo.sealed ? this.appendTo.bytes : null;
  }

  /** An entry starts a new segment when there is none to append to, or when it would push a non-empty one past segmentBytes. */
  private opensSegment(tail: number | null, entryBytes: number): boolean {
    return tail === null || (tail > SEGMENT_HEADER_BYTES && tail + entryBytes > this.ctx.config.segmentBytes);
  }

  /**
   * When everything in the newest segment is acknowledged, stop appending to
   * it so it can be deleted (the caller makes sure no write is planned into
   * it): otherwise a full buffer whose reader has caught up could never free
   * it. Returns whether it did.
   */
  retireIfAcknowledged(): boolean {
    const active = this.appendTo;
    if (active === null || this.pendingAppends > 0) return false;
    if (active.lastId < active.firstId || active.lastId > this.acknowledged) return false;
    active.sealed = true;
    this.appendTo = null;
    void this.closeWriteHandle();
    this.plannedTail = null;
    return true;
  }

  /** Close the newest segment's handle while the chain is idle; the next round reopens it. */
  async closeWriteHandle(): Promise<void> {
    const handle = this.appendHandle;
    this.appendHandle = null;
    await handle?.close().catch(() => undefined);
  }

  // ── writing ──────────────────────────────────────────────────────────

  /**
   * This chain's part of a write round: ids assigned, entries framed and
   * written with one writev() per segment touched, then one fdatasync. A
   * segment is fsynced before the next one is started, so only the newest
   * segment can ever end in a torn entry. On failure what was written is
   * taken back and the error thrown (an UndoFailedError if that failed too).
   */
  async write(appends: PendingAppend[]): Promise<SegmentWrite[]> {
    const idBefore = this.nextId;
    const recordsBefore = this.recordsTotal;
    if (this.appendTo?.sealed) await this.closeAppendSegment().catch(() => undefined);
    const writes = this.planWrites(appends);
    const previousAppendTo = this.appendTo;
    const created: Segment[] = [];
    try {
      // After a failed round, or while idle among many chains, the newest segment is kept but its handle closed.
      if (this.appendTo !== null && this.appendHandle === null) this.appendHandle = await open(this.appendTo.file, 'r+');
      for (const write of writes) {
        if (write.segment === null) {
          if (this.appendHandle !== null) await this.appendHandle.datasync();
          await this.closeAppendSegment();
          write.segment = await this.createSegment(write.firstId);
          created.push(write.segment);
        }
        const segment = write.segment;
        await writeFully(this.appendHandle!, frame(write), write.bytes, segment.bytes);
        segment.bytes += write.bytes;
        segment.lastId = write.firstId + write.entries.length - 1;
      }
      await this.appendHandle?.datasync();
      if (created.length > 0) await syncDirectory(this.dir);
    } catch (err) {
      await this.undoRound(writes, created, previousAppendTo, err as Error, idBefore, recordsBefore);
      throw err;
    }
    for (const write of writes) write.segment!.durableBytes = write.segment!.bytes;
    return writes;
  }

  /** Assign ids and segments to a batch, by the same rule admission planned with. */
  private planWrites(batch: PendingAppend[]): SegmentWrite[] {
    const writes: SegmentWrite[] = [];
    let tail = this.appendTo !== null ? this.appendTo.bytes : null;
    let current: SegmentWrite | null = null;
    for (const append of batch) {
      const size = ENTRY_HEADER_BYTES + append.payload.length;
      if (this.opensSegment(tail, size)) {
        current = { segment: null, firstId: this.nextId, recordsBefore: this.recordsTotal, entries: [], bytes: SEGMENT_HEADER_BYTES };
        writes.push(current);
        tail = SEGMENT_HEADER_BYTES;
      } else if (current === null) {
        current = { segment: this.appendTo, firstId: this.nextId, recordsBefore: this.recordsTotal, entries: [], bytes: 0 };
        writes.push(current);
      }
      current.entries.push({ append, id: this.nextId, recordsBefore: this.recordsTotal });
      current.bytes += size;
      tail! += size;
      this.nextId++;
      this.recordsTotal += append.records;
    }
    return writes;
  }

  private async createSegment(firstId: number): Promise<Segment> {
    if (!this.dirExists) {
      await mkdir(this.dir, { recursive: true });
      await syncDirectory(path.dirname(this.dir));
      this.dirExists = true;
    }
    const file = path.join(this.dir, segmentName(firstId));
    const handle = await open(file, 'wx');
    const segment: Segment = { firstId, file, bytes: 0, durableBytes: 0, lastId: firstId - 1, sealed: false, released: false };
    this.segments.push(segment);
    this.appendTo = segment;
    this.appendHandle = handle;
    return segment;
  }

  private async closeAppendSegment(): Promise<void> {
    const handle = this.appendHandle;
    this.appendHandle = null;
    this.appendTo = null;
    await handle?.close();
  }

  /**
   * A round failed part-way (ENOSPC, EIO): take back what it wrote, so no
   * entry of a rejected append survives and ids stay consecutive.
   */
  private async undoRound(writes: SegmentWrite[], created: Segment[], previousAppendTo: Segment | null, err: Error, idBefore: number, recordsBefore: number): Promise<void> {
    this.ctx.telemetry.emit('bufferWriteFailed', { buffer: this.ctx.name, tenant: this.tenant, error: err.message });
    this.nextId = idBefore;
    this.recordsTotal = recordsBefore;
    try {
      await this.closeAppendSegment().catch(() => undefined);
      for (const segment of created) {
        this.segments.splice(this.segments.indexOf(segment), 1);
        await unlink(segment.file).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'ENOENT') throw e; });
      }
      if (previousAppendTo !== null) {
        const touched = writes.find((w) => w.segment === previousAppendTo);
        if (touched !== undefined) {
          await truncate(previousAppendTo.file, previousAppendTo.durableBytes);
          previousAppendTo.bytes = previousAppendTo.durableBytes;
          previousAppendTo.lastId = touched.firstId - 1;
        }
        // Back to where the round started: the next round appends to it again (its handle is reopened then).
        this.appendTo = previousAppendTo;
      }
    } catch (undoErr) {
      throw new UndoFailedError(`disk buffer ${this.ctx.name}: a write failed (${err.message}) and could not be undone (${(undoErr as Error).message}); reopen the buffer`, { cause: err });
    }
  }

  // ── reading ──────────────────────────────────────────────────────────

  /**
   * Find the next entry ready to read and set nextCost to its size (0: none
   * yet). Skips what was acknowledged before open and what damage made
   * unreadable (counted). Only durable bytes are read.
   */
  async peek(): Promise<void> {
    if (this.peekBuffered()) return;
    this.nextCost = 0;
    for (;;) {
      const scanner = await this.readerAt();
      if (scanner === null) return;
      const segment = this.readerSegment!;
      scanner.limit = segment.durableBytes;
      const result = await scanner.peek();
      if (result.kind === 'entry') {
        if (result.id >= this.readFrom) {
          this.nextCost = result.payloadBytes + 1;
          return;
        }
        // Acknowledged before this open: step over it (verified like any other).
        const skipped = await scanner.next();
        if (skipped.kind === 'bad') await this.skipDamage(segment, skipped.offset, skipped.reason);
        continue;
      }
      if (result.kind === 'end') {
        if (!this.writerDoneWith(segment)) return;
        await this.leaveReaderSegment();
        continue;
      }
      await this.skipDamage(segment, result.offset, result.reason);
    }
  }

  /** peek() when the next entry's header is already in the reader's buffer: true when nextCost is set. */
  peekBuffered(): boolean {
    const scanner = this.scanner;
    if (scanner === null || this.readerSegment!.released) return false;
    scanner.limit = this.readerSegment!.durableBytes;
    const result = scanner.peekBuffered();
    if (result === null || result.kind !== 'entry' || result.id < this.readFrom) return false;
    this.nextCost = result.payloadBytes + 1;
    return true;
  }

  /** Read the entry peek() found (null when it fails verification: counted, and the next peek() goes past it). */
  async take(): Promise<BufferEntry | null> {
    const buffered = this.takeBuffered();
    if (buffered !== undefined) return buffered;
    const scanner = await this.readerAt();
    if (scanner === null) return null;
    const segment = this.readerSegment!;
    const result = await scanner.next();
    this.nextCost = 0;
    if (result.kind === 'bad') {
      await this.skipDamage(segment, result.offset, result.reason);
      return null;
    }
    return result.kind === 'entry' ? this.handOut(result.entry, result.recordsBefore) : null;
  }

  /** take() when the whole entry is in the reader's buffer and verifies; undefined when it needs take(). */
  takeBuffered(): BufferEntry | undefined {
    if (this.scanner === null || this.readerSegment!.released) return undefined;
    const result = this.scanner.nextBuffered();
    if (result === null || result.kind !== 'entry') return undefined;
    this.nextCost = 0;
    return this.handOut(result.entry, result.recordsBefore);
  }

  private handOut(entry: ScannedEntry, recordsBefore: number): BufferEntry {
    if (entry.id > this.expectedId) this.reportLoss(entry.id, recordsBefore);
    this.expectedId = entry.id + 1;
    this.expectedRecordsBefore = recordsBefore + entry.records;
    this.readFrom = entry.id + 1;
    this.lastReadId = entry.id;
    return { tenant: this.tenant, id: entry.id, payload: entry.payload, records: entry.records };
  }

  /** The scanner of the segment holding the next unread entry, opening it when needed; null when there is none yet. */
  private async readerAt(): Promise<SegmentScanner | null> {
    if (this.readerSegment !== null && this.readerSegment.released) await this.leaveReaderSegment();
    if (this.scanner !== null) return this.scanner;
    let segment = this.readerSegment;
    if (segment === null) {
      segment = this.segments.find((s) => s.firstId > this.readerPassed && !s.released && s.lastId >= this.readFrom && s.durableBytes > 0) ?? null;
      if (segment === null) return null;
      this.readerOffset = 0;
      this.readerNextId = segment.firstId;
    }
    this.readerHandle = await open(segment.file, 'r');
    this.readerSegment = segment;
    this.scanner = new SegmentScanner(this.readerHandle, segment.firstId, segment.durableBytes, this.ctx.config.readBufferBytes, this.readerOffset, this.readerNextId);
    return this.scanner;
  }

  /** Close the reader's file, keeping its place: the next read reopens it there. */
  async suspendReader(): Promise<void> {
    if (this.scanner !== null) {
      this.readerOffset = this.scanner.offset;
      this.readerNextId = this.scanner.nextId;
    }
    this.scanner = null;
    const handle = this.readerHandle;
    this.readerHandle = null;
    await handle?.close().catch(() => undefined);
  }

  private async leaveReaderSegment(): Promise<void> {
    if (this.readerSegment !== null) this.readerPassed = this.readerSegment.firstId;
    this.readerSegment = null;
    this.scanner = null;
    this.readerOffset = 0;
    const handle = this.readerHandle;
    this.readerHandle = null;
    await handle?.close();
  }

  /**
   * No more entries will ever land in this segment. A round that moves on to
   * a new segment has written to the old one before its fsync; until the
   * round ends, those bytes are not durable, so the reader must stay.
   */
  private writerDoneWith(segment: Segment): boolean {
    if (this.readOnly) return true;
    return segment !== this.appendTo && this.segments[this.segments.length - 1] !== segment && segment.durableBytes === segment.bytes;
  }

  /** Damage below the durable size: nothing after it in this segment is trusted; appends move to a new segment. */
  private async skipDamage(segment: Segment, offset: number, reason: string): Promise<void> {
    segment.sealed = true;
    const bytes = Math.max(0, segment.durableBytes - offset);
    this.ctx.discardedCorrupt.inc(bytes);
    this.ctx.telemetry.emit('bufferCorrupt', { buffer: this.ctx.name, tenant: this.tenant, segment: path.basename(segment.file), offset, reason, bytes });
    if (segment === this.appendTo) this.sealedByReader = true;
    await this.leaveReaderSegment();
  }

  /** Entries between the last good one and this one were lost: count them (their records are known from the cumulative count). */
  private reportLoss(id: number, recordsBefore: number): void {
    const entries = id - this.expectedId;
    const records = this.expectedRecordsBefore === null ? null : Math.max(0, recordsBefore - this.expectedRecordsBefore);
    if (records !== null) this.ctx.droppedCorrupt.inc(records);
    this.ctx.telemetry.emit('bufferEntriesLost', { buffer: this.ctx.name, tenant: this.tenant, from: this.expectedId, to: id - 1, entries, records });
  }

  // ── acknowledging ────────────────────────────────────────────────────

  /** Take out every segment, oldest first, that is not appended to and is fully acknowledged: the owner removes them. */
  takeAcknowledged(): Segment[] {
    const released: Segment[] = [];
    while (this.segments.length > 0) {
      const oldest = this.segments[0]!;
      if (oldest === this.appendTo || oldest.lastId > this.acknowledged) break;
      this.segments.shift();
      oldest.released = true;
      released.push(oldest);
    }
    return released;
  }

  async closeHandles(): Promise<void> {
    await this.leaveReaderSegment().catch(() => undefined);
    await this.closeAppendSegment().catch(() => undefined);
  }

  // ── recovery ─────────────────────────────────────────────────────────

  /**
   * Rebuild the chain from its folder. Only the newest segment can hold a
   * torn entry (a segment is fsynced before the next one starts), so only it
   * is verified now, and cut at the first entry that does not verify; older
   * segments are verified entry by entry as they are read.
   */
  async recover(fromCheckpoint: number): Promise<void> {
    let names: string[] = [];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.dirExists = false;
    }
    const found: { firstId: number; file: string }[] = [];
    for (const name of names) {
      const firstId = parseSegmentName(name);
      if (firstId !== null) found.push({ firstId, file: path.join(this.dir, name) });
    }
    found.sort((a, b) => a.firstId - b.firstId);
    for (let i = 0; i < found.length; i++) {
      const { firstId, file } = found[i]!;
      const { size } = await stat(file);
      const next = found[i + 1];
      // Ids run on across segments, so an older segment ends just before the next one starts.
      const lastId = next === undefined ? firstId - 1 : next.firstId - 1;
      this.segments.push({ firstId, file, bytes: size, durableBytes: size, lastId, sealed: next !== undefined, released: false });
    }

    while (this.segments.length > 0 && !(await this.recoverNewest())) { /* it was removed: verify the one before */ }

    const oldest = this.segments[0];
    this.acknowledged = Math.max(fromCheckpoint, oldest !== undefined ? oldest.firstId - 1 : 0);
    const newest = this.segments[this.segments.length - 1];
    this.nextId = Math.max(newest !== undefined ? newest.lastId + 1 : 1, this.acknowledged + 1);
    if (newest !== undefined && (this.readOnly || newest.lastId + 1 !== this.nextId)) {
      newest.sealed = true; // read only, or the next id would not run on inside it: appends start a new segment
      await this.closeAppendSegment();
    }
    this.readFrom = this.acknowledged + 1;
    this.expectedId = this.readFrom;
    this.lastReadId = this.acknowledged;
    this.resetPlan();
  }

  /**
   * Verify the newest segment from its start and truncate it at the first
   * entry that does not verify. Returns false when the segment held nothing
   * usable and was removed (or, with a damaged header, set aside).
   */
  private async recoverNewest(): Promise<boolean> {
    const segment = this.segments[this.segments.length - 1]!;
    const handle = await open(segment.file, 'r+');
    let keep = false;
    try {
      const scanner = new SegmentScanner(handle, segment.firstId, segment.bytes, this.ctx.config.readBufferBytes);
      let lastEntry: { id: number; recordsBefore: number; records: number } | null = null;
      for (;;) {
        const result = await scanner.next();
        if (result.kind === 'entry') {
          lastEntry = { id: result.entry.id, recordsBefore: result.recordsBefore, records: result.entry.records };
          continue;
        }
        if (result.kind === 'bad') {
          if (result.offset === 0) return await this.discardNewest(segment, result.reason);
          const bytes = segment.bytes - result.offset;
          await handle.truncate(result.offset);
          await handle.datasync();
          this.ctx.discardedTornTail.inc(bytes);
          this.ctx.telemetry.emit('bufferTornTail', { buffer: this.ctx.name, tenant: this.tenant, segment: path.basename(segment.file), offset: result.offset, bytes, reason: result.reason });
          segment.bytes = segment.durableBytes = result.offset;
        }
        break;
      }
      segment.lastId = lastEntry !== null ? lastEntry.id : segment.firstId - 1;
      this.recordsTotal = lastEntry !== null ? lastEntry.recordsBefore + lastEntry.records : scanner.recordsBefore ?? 0;
      segment.sealed = false;
      this.appendTo = segment;
      this.appendHandle = handle;
      keep = true;
      return true;
    } finally {
      if (!keep) await handle.close();
    }
  }

  /**
   * The newest segment's header is unusable. Shorter than a header: a crash
   * while it was being created, and it holds no entry: removed. Otherwise it
   * is not ours or is damaged: renamed to `*.damaged` for inspection.
   */
  private async discardNewest(segment: Segment, reason: string): Promise<false> {
    this.segments.pop();
    if (segment.bytes < SEGMENT_HEADER_BYTES) {
      await unlink(segment.file);
      this.ctx.discardedTornTail.inc(segment.bytes);
      this.ctx.telemetry.emit('bufferTornTail', { buffer: this.ctx.name, tenant: this.tenant, segment: path.basename(segment.file), offset: 0, bytes: segment.bytes, reason });
    } else {
      await rename(segment.file, `${segment.file}.damaged`);
      this.ctx.discardedCorrupt.inc(segment.bytes);
      this.ctx.telemetry.emit('bufferCorrupt', { buffer: this.ctx.name, tenant: this.tenant, segment: path.basename(segment.file), offset: 0, reason, bytes: segment.bytes });
    }
    await syncDirectory(this.dir);
    const previous = this.segments[this.segments.length - 1];
    if (previous !== undefined) previous.sealed = false;
    return false;
  }
}

/** Frame a segment write: the segment header when it creates one, then each entry's header and payload. */
function frame(write: SegmentWrite): Buffer[] {
  const out: Buffer[] = [];
  let chunk = Buffer.allocUnsafeSlow(STAGING_BYTES);
  let start = 0;
  let used = 0;
  if (write.segment !== null && write.segment.bytes === 0) {
    encodeSegmentHeader({ firstId: write.firstId, recordsBefore: write.recordsBefore }).copy(chunk, 0);
    used = SEGMENT_HEADER_BYTES;
  }
  for (const entry of write.entries) {
    const payload = entry.append.payload;
    if (used + ENTRY_HEADER_BYTES > chunk.length) {
      if (used > start) out.push(chunk.subarray(start, used));
      chunk = Buffer.allocUnsafeSlow(STAGING_BYTES);
      start = used = 0;
    }
    encodeEntryHeader(chunk, used, { payloadBytes: payload.length, id: entry.id, recordsBefore: entry.recordsBefore, records: entry.append.records }, payload);
    used += ENTRY_HEADER_BYTES;
    if (payload.length < COPY_BELOW_BYTES && used + payload.length <= chunk.length) {
      payload.copy(chunk, used);
      used += payload.length;
    } else {
      out.push(chunk.subarray(start, used), payload);
      start = used;
    }
  }
  if (used > start) out.push(chunk.subarray(start, used));
  return out;
}

/** pwritev() until every byte is down: a regular file may take a short write (near ENOSPC). */
async function writeFully(handle: FileHandle, buffers: Buffer[], bytes: number, position: number): Promise<void> {
  let written = (await handle.writev(buffers, position)).bytesWritten;
  while (written < bytes) {
    const rest = Buffer.concat(buffers).subarray(written);
    written += (await handle.write(rest, 0, rest.length, position + written)).bytesWritten;
  }
}
