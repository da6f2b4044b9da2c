/**
 * A sink's disk buffer: batches appended to segment files, made durable with
 * one fsync per group of appends, read back in order, and deleted a segment
 * at a time once the sink has acknowledged them. Format and guarantees:
 * docs/disk-buffer.md.
 *
 *   append ─► pending ─(every syncIntervalMs, or syncBytes)─► writev + fdatasync ─► resolved
 *                                                                   │
 *   ┌ 0000000000000001.seg ┐ ┌ 0000000000000413.seg ┐ ┌ …0977.seg (newest, appended to) ┐
 *   └───── acknowledged ───┘ └──── read ───┬─────────┘ └──────────── unread ─────────────┘
 *     deleted once fully acknowledged      reader position (in memory; the checkpoint file
 *                                          records acknowledgements across restarts)
 *
 * One writer (this object) and one reader (read()/batches()) per directory;
 * a lock file keeps a second process out.
 */
import { mkdir, open, readdir, rename, stat, truncate, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Counter, Gauge } from 'prom-client';
import { timerDelay } from '../../core/clock.js';
import type { Telemetry } from '../../ops/telemetry.js';
import { readCheckpoint, removeCheckpointLeftovers, syncDirectory, writeCheckpoint } from './checkpoint.js';
import { diskBufferConfigProblems, maxPayloadBytes, type DiskBufferConfig } from './config.js';
import {
  ENTRY_HEADER_BYTES, SEGMENT_HEADER_BYTES, encodeEntryHeader, encodeSegmentHeader, parseSegmentName, segmentName,
} from './format.js';
import { DirectoryLock } from './lock.js';
import { SegmentScanner, type BufferEntry } from './segment-scanner.js';

export type { BufferEntry } from './segment-scanner.js';

export type DropReason = 'full' | 'timeout' | 'too_large';

export type AppendResult =
  /** Durable: on disk and fsynced. */
  | { written: true; id: number }
  /** Refused: nothing was written; its records are counted in sluice_buffer_dropped_records_total. */
  | { written: false; reason: DropReason };

export interface AppendOptions {
  /** Abandon waiting for space (whenFull: block): append() rejects with the signal's reason. */
  signal?: AbortSignal;
}

export class DiskBufferClosedError extends Error {
  constructor(name: string) {
    super(`disk buffer ${name} is closed`);
    this.name = 'DiskBufferClosedError';
  }
}

/** Headers and small payloads are copied into chunks of this size, so a batch of small entries is one large write. */
const STAGING_BYTES = 256 * 1024;
/** Payloads at least this large are written from the caller's buffer rather than copied. */
const COPY_BELOW_BYTES = 16 * 1024;
const DEFAULT_READ_BYTES = 1024 * 1024;
const MAX_RECORDS_PER_ENTRY = 0xffff_ffff;
const MAINTENANCE_RETRY_MS = 1000;

interface Segment {
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

interface PendingAppend {
  readonly payload: Buffer;
  readonly records: number;
  /** Bytes reserved for it: its entry, plus a segment header if it is planned to open a segment. */
  cost: number;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (err: Error) => void;
}

interface BlockedAppend {
  readonly payload: Buffer;
  readonly records: number;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

/** An entry being written: a pending append with its id assigned. */
interface FramedEntry {
  readonly append: PendingAppend;
  readonly id: number;
  readonly recordsBefore: number;
}

/** The entries of one write round that go into one segment. */
interface SegmentWrite {
  /** null: this round creates the segment. */
  segment: Segment | null;
  readonly firstId: number;
  readonly recordsBefore: number;
  readonly entries: FramedEntry[];
  /** Bytes this round adds to the segment (its header included when it creates it). */
  bytes: number;
}

export class DiskBuffer {
  private readonly segments: Segment[] = [];
  /** The segment appends go to (always the newest), and its handle. */
  private active: Segment | null = null;
  private activeHandle: FileHandle | null = null;

  private nextId = 1;
  /** Records in every entry ever assigned an id (the next entry's recordsBefore). */
  private recordsTotal = 0;
  private acknowledged = 0;
  private checkpointed = 0;
  private lastCheckpointAt = 0;

  /** Bytes of segment files on disk (released ones included until unlinked), as of the last completed write round. */
  private bytesHeld = 0;
  /** Part of bytesHeld in released segments waiting to be unlinked. */
  private bytesRemoving = 0;
  /** The last removal failed: drop_newest appends stop waiting for one. */
  private removalFailing = false;
  /** Bytes promised to appends not yet written (and to the round in progress). */
  private bytesReserved = 0;
  /** Planned size of the segment the next admitted append goes to; null: it opens a new segment. */
  private plannedTail: number | null = null;

  private pending: PendingAppend[] = [];
  private pendingBytes = 0;
  private oldestPendingAt = 0;
  private readonly blocked: BlockedAppend[] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  /** Completed write rounds; readers waiting for data watch it change. */
  private flushes = 0;
  private readonly flushWatchers = new Set<() => void>();

  // The reader: position in memory, from the first unacknowledged entry after open.
  private readerSegment: Segment | null = null;
  private readerHandle: FileHandle | null = null;
  private scanner: SegmentScanner | null = null;
  /** Segments at or before this firstId have been read through. */
  private readerPassed = 0;
  /** Entries below this id are not handed out again (acknowledged before open). */
  private readFrom = 1;
  private lastReadId = 0;
  /** What the next entry read should carry; a larger id means entries were lost to damage. */
  private expectedId = 1;
  private expectedRecordsBefore: number | null = null;
  /** The read in progress: close() lets it finish before closing the reader's file. */
  private reading: Promise<BufferEntry[]> | null = null;

  private readonly releasedSegments: Segment[] = [];
  private maintenanceTimer: NodeJS.Timeout | null = null;
  private maintenanceDueAt = Number.POSITIVE_INFINITY;
  private maintenance: Promise<void> | null = null;
  private maintenanceAgain = false;
  /** After failed housekeeping, the next attempt waits until then (a failing disk should not be hammered). */
  private maintenanceRetryAt = 0;

  /** Set when a failed write could not be undone: nothing more can safely be appended. */
  private failure: Error | null = null;
  private closing: Promise<void> | null = null;
  private closed = false;

  private readonly droppedFull: Counter.Internal;
  private readonly droppedTimeout: Counter.Internal;
  private readonly droppedTooLarge: Counter.Internal;
  private readonly droppedCorrupt: Counter.Internal;
  private readonly discardedCorrupt: Counter.Internal;
  private readonly discardedTornTail: Counter.Internal;
  private readonly syncs: Counter.Internal;
  private readonly bytesGauge: Gauge.Internal<'buffer'>;
  private readonly entriesGauge: Gauge.Internal<'buffer'>;
  private readonly maxPayload: number;

  private constructor(
    readonly dir: string,
    readonly config: DiskBufferConfig,
    private readonly telemetry: Telemetry,
    readonly name: string,
    private readonly lock: DirectoryLock,
  ) {
    const labels = { buffer: name };
    this.droppedFull = telemetry.bufferDroppedRecords.labels({ ...labels, reason: 'full' });
    this.droppedTimeout = telemetry.bufferDroppedRecords.labels({ ...labels, reason: 'timeout' });
    this.droppedTooLarge = telemetry.bufferDroppedRecords.labels({ ...labels, reason: 'too_large' });
    this.droppedCorrupt = telemetry.bufferDroppedRecords.labels({ ...labels, reason: 'corrupt' });
    this.discardedCorrupt = telemetry.bufferDiscardedBytes.labels({ ...labels, reason: 'corrupt' });
    this.discardedTornTail = telemetry.bufferDiscardedBytes.labels({ ...labels, reason: 'torn_tail' });
    this.syncs = telemetry.bufferSyncs.labels(labels);
    this.bytesGauge = telemetry.bufferBytes.labels(labels);
    this.entriesGauge = telemetry.bufferEntries.labels(labels);
    this.maxPayload = Math.min(maxPayloadBytes(config), config.maxBytes - SEGMENT_HEADER_BYTES - ENTRY_HEADER_BYTES);
  }

  /**
   * Open (or create) the buffer in `dir`: take its lock, verify the newest
   * segment and truncate a torn tail, and position the reader at the first
   * entry not acknowledged. `name` labels metrics and log lines.
   */
  static async open(dir: string, config: DiskBufferConfig, telemetry: Telemetry, name = path.basename(dir)): Promise<DiskBuffer> {
    const problems = diskBufferConfigProblems(config);
    if (problems.length > 0) throw new Error(`disk buffer ${name}: ${problems.join('; ')}`);
    await mkdir(dir, { recursive: true });
    const lock = await DirectoryLock.acquire(dir);
    const buffer = new DiskBuffer(dir, config, telemetry, name, lock);
    try {
      if (lock.tookOverFromPid !== null) telemetry.emit('bufferStaleLock', { buffer: name, dir, pid: lock.tookOverFromPid });
      await buffer.recover();
    } catch (err) {
      await buffer.closeHandles();
      await lock.release();
      throw err;
    }
    return buffer;
  }

  // ── writing ──────────────────────────────────────────────────────────

  /**
   * Append one entry: `payload` (the sink's encoded records, opaque here)
   * holding `records` records. Resolves once the entry is fsynced, or as
   * refused when it cannot be taken (see AppendResult). Entries are stored
   * in the order append() was called. The payload is written from the
   * caller's buffer: it must not change until the promise settles.
   */
  append(payload: Buffer, records: number, options: AppendOptions = {}): Promise<AppendResult> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.closing !== null) return Promise.reject(new DiskBufferClosedError(this.name));
    if (!Number.isSafeInteger(records) || records < 0 || records > MAX_RECORDS_PER_ENTRY) {
      return Promise.reject(new RangeError(`records must be an integer in [0, 2^32) (got ${records})`));
    }
    if (payload.length > this.maxPayload) return Promise.resolve(this.refuse('too_large', records));
    // Appends are taken in call order: while any waits, the next waits behind it.
    if (this.blocked.length === 0) {
      const room = this.room(payload.length);
      if (room === 'fits') return this.admit(payload, records);
      if (room === 'full' && this.config.whenFull === 'drop_newest') return Promise.resolve(this.refuse('full', records));
    }
    return this.waitForSpace(payload, records, options.signal);
  }

  /**
   * Whether an entry fits now, fits once the segments being removed are
   * gone (moments away), or does not fit. Files count until they are
   * unlinked, so the directory never holds more than maxBytes.
   */
  private room(payloadBytes: number): 'fits' | 'after_removal' | 'full' {
    const limit = this.config.maxBytes;
    if (this.bytesHeld + this.bytesReserved + this.plannedCost(payloadBytes) <= limit) return 'fits';
    this.retireAcknowledgedActive();
    const cost = this.plannedCost(payloadBytes);
    if (this.bytesHeld + this.bytesReserved + cost <= limit) return 'fits';
    if (this.bytesRemoving > 0 && this.bytesHeld - this.bytesRemoving + this.bytesReserved + cost <= limit) return 'after_removal';
    return 'full';
  }

  /** Take the append into the next write round (room() said it fits). */
  private admit(payload: Buffer, records: number): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => {
      this.enqueue({ payload, records, cost: this.plannedCost(payload.length), resolve, reject });
    });
  }

  private enqueue(append: PendingAppend): void {
    this.advancePlan(append.payload.length);
    this.bytesReserved += append.cost;
    if (this.pending.length === 0) this.oldestPendingAt = Date.now();
    this.pending.push(append);
    this.pendingBytes += ENTRY_HEADER_BYTES + append.payload.length;
    this.updateGauges();
    this.scheduleFlush();
  }

  /** What an entry with this payload would cost if admitted now (the same rule the write round applies). */
  private plannedCost(payloadBytes: number): number {
    const size = ENTRY_HEADER_BYTES + payloadBytes;
    return this.opensSegment(this.plannedTail, size) ? size + SEGMENT_HEADER_BYTES : size;
  }

  private advancePlan(payloadBytes: number): void {
    const size = ENTRY_HEADER_BYTES + payloadBytes;
    this.plannedTail = (this.opensSegment(this.plannedTail, size) ? SEGMENT_HEADER_BYTES : this.plannedTail!) + size;
  }

  /** An entry starts a new segment when there is none to append to, or when it would push a non-empty one past segmentBytes. */
  private opensSegment(tail: number | null, entryBytes: number): boolean {
    return tail === null || (tail > SEGMENT_HEADER_BYTES && tail + entryBytes > this.config.segmentBytes);
  }

  /** Redo the plan from the actual state, after a round did not go as planned (a failure, a sealed segment). */
  private replan(): void {
    this.plannedTail = this.active !== null && !this.active.sealed ? this.active.bytes : null;
    this.bytesReserved = 0;
    for (const append of this.pending) {
      append.cost = this.plannedCost(append.payload.length);
      this.advancePlan(append.payload.length);
      this.bytesReserved += append.cost;
    }
  }

  /**
   * When everything in the newest segment is acknowledged and no write is
   * under way, stop appending to it so it can be deleted: otherwise a full
   * buffer whose reader has caught up could never free its last segment.
   */
  private retireAcknowledgedActive(): void {
    const active = this.active;
    if (active === null || this.pending.length > 0 || this.flushing !== null) return;
    if (active.lastId < active.firstId || active.lastId > this.acknowledged) return;
    active.sealed = true;
    this.active = null;
    const handle = this.activeHandle;
    this.activeHandle = null;
    void handle?.close().catch(() => undefined);
    this.plannedTail = null;
    this.releaseAcknowledged();
  }

  private waitForSpace(payload: Buffer, records: number, signal: AbortSignal | undefined): Promise<AppendResult> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    return new Promise<AppendResult>((resolve, reject) => {
      const onAbort = (): void => {
        if (this.removeBlocked(waiter)) reject(signal!.reason as Error);
      };
      const timer = setTimeout(() => {
        if (this.removeBlocked(waiter)) resolve(this.refuse('timeout', records));
      }, timerDelay(this.config.blockTimeoutMs));
      const waiter: BlockedAppend = { payload, records, resolve, reject, timer, signal, onAbort };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.blocked.push(waiter);
    });
  }

  private removeBlocked(waiter: BlockedAppend): boolean {
    const index = this.blocked.indexOf(waiter);
    if (index < 0) return false;
    this.blocked.splice(index, 1);
    clearTimeout(waiter.timer);
    waiter.signal?.removeEventListener('abort', waiter.onAbort);
    // The one in front left: those behind it may fit now.
    if (index === 0) this.admitBlocked();
    return true;
  }

  /**
   * Admit waiting appends in arrival order while they fit. With drop_newest
   * only the wait for a removal in progress is allowed: past that, refused.
   */
  private admitBlocked(): void {
    while (this.blocked.length > 0 && this.closing === null) {
      const waiter = this.blocked[0]!;
      const room = this.room(waiter.payload.length);
      const dropNow = this.config.whenFull === 'drop_newest' && (room === 'full' || this.removalFailing);
      if (room !== 'fits' && !dropNow) return;
      this.blocked.shift();
      clearTimeout(waiter.timer);
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      if (room === 'fits') this.admit(waiter.payload, waiter.records).then(waiter.resolve, waiter.reject);
      else waiter.resolve(this.refuse('full', waiter.records));
    }
  }

  private refuse(reason: DropReason, records: number): AppendResult {
    const counter = reason === 'full' ? this.droppedFull : reason === 'timeout' ? this.droppedTimeout : this.droppedTooLarge;
    counter.inc(records);
    this.telemetry.emit('bufferDropped', { buffer: this.name, reason, records });
    return { written: false, reason };
  }

  private scheduleFlush(): void {
    if (this.flushing !== null || this.pending.length === 0) return; // the round in progress starts the next when it ends
    const waited = Date.now() - this.oldestPendingAt;
    if (this.pendingBytes >= this.config.syncBytes || waited >= this.config.syncIntervalMs || this.closing !== null) {
      this.startFlush();
    } else if (this.flushTimer === null) {
      this.flushTimer = setTimeout(this.startFlush, this.config.syncIntervalMs - waited);
    }
  }

  private readonly startFlush = (): void => {
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.flushing !== null || this.pending.length === 0) return;
    this.flushing = this.flush().catch((err: Error) => {
      // flush() settles its appends itself; this is a bug's last line of defence, not a path.
      this.telemetry.emit('bufferWriteFailed', { buffer: this.name, error: err.message });
    }).finally(() => {
      this.flushing = null;
      // Appends that arrived during the round have waited a round already: group commit, start the next one now.
      if (this.pending.length > 0) this.startFlush();
      this.admitBlocked();
    });
  };

  /**
   * One write round: every pending append, framed, written with as few
   * writev() calls as there are segments touched, then one fdatasync. A
   * segment is fsynced before the next one is started, so only the newest
   * segment can ever end in a torn entry.
   */
  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    const idBefore = this.nextId;
    const recordsBefore = this.recordsTotal;
    let reserved = 0;
    for (const append of batch) reserved += append.cost;

    if (this.active?.sealed) await this.closeActive().catch(() => undefined);
    const writes = this.planWrites(batch);
    const previousActive = this.active;
    const created: Segment[] = [];
    try {
      // After a failed round the newest segment is kept but its handle was closed.
      if (this.active !== null && this.activeHandle === null) this.activeHandle = await open(this.active.file, 'r+');
      for (const write of writes) {
        if (write.segment === null) {
          if (this.activeHandle !== null) await this.activeHandle.datasync();
          await this.closeActive();
          write.segment = await this.createSegment(write.firstId);
          created.push(write.segment);
        }
        const segment = write.segment;
        const buffers = frame(write);
        await writeFully(this.activeHandle!, buffers, write.bytes, segment.bytes);
        segment.bytes += write.bytes;
        segment.lastId = write.firstId + write.entries.length - 1;
      }
      await this.activeHandle?.datasync();
      if (created.length > 0) await syncDirectory(this.dir);
    } catch (err) {
      await this.undoRound(writes, created, previousActive, err as Error, idBefore, recordsBefore);
      this.bytesReserved -= reserved;
      this.replan();
      for (const append of batch) append.reject(err as Error);
      this.updateGauges();
      return;
    }

    this.syncs.inc();
    this.bytesReserved -= reserved;
    for (const write of writes) {
      const segment = write.segment!;
      this.bytesHeld += write.bytes;
      segment.durableBytes = segment.bytes;
    }
    this.releaseAcknowledged(); // a segment this round moved on from may be fully acknowledged already
    this.replan(); // appends admitted during the round were planned on the round's plan; re-check against what happened
    this.flushes++;
    this.notifyFlushWatchers();
    this.updateGauges();
    for (const write of writes) for (const entry of write.entries) entry.append.resolve({ written: true, id: entry.id });
  }

  /** Assign ids and segments to a batch, by the same rule admission planned with. */
  private planWrites(batch: PendingAppend[]): SegmentWrite[] {
    const writes: SegmentWrite[] = [];
    let tail = this.active !== null ? this.active.bytes : null;
    let current: SegmentWrite | null = null;
    for (const append of batch) {
      const size = ENTRY_HEADER_BYTES + append.payload.length;
      if (this.opensSegment(tail, size)) {
        current = { segment: null, firstId: this.nextId, recordsBefore: this.recordsTotal, entries: [], bytes: SEGMENT_HEADER_BYTES };
        writes.push(current);
        tail = SEGMENT_HEADER_BYTES;
      } else if (current === null) {
        current = { segment: this.active, firstId: this.nextId, recordsBefore: this.recordsTotal, entries: [], bytes: 0 };
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
    const file = path.join(this.dir, segmentName(firstId));
    const handle = await open(file, 'wx');
    const segment: Segment = { firstId, file, bytes: 0, durableBytes: 0, lastId: firstId - 1, sealed: false, released: false };
    this.segments.push(segment);
    this.active = segment;
    this.activeHandle = handle;
    return segment;
  }

  private async closeActive(): Promise<void> {
    const handle = this.activeHandle;
    this.activeHandle = null;
    this.active = null;
    await handle?.close();
  }

  /**
   * A round failed part-way (ENOSPC, EIO): take back what it wrote, so no
   * entry of a rejected append survives and ids stay consecutive. If that
   * fails too, the buffer stops taking appends (its tail is unknown).
   */
  private async undoRound(writes: SegmentWrite[], created: Segment[], previousActive: Segment | null, err: Error, idBefore: number, recordsBefore: number): Promise<void> {
    this.telemetry.emit('bufferWriteFailed', { buffer: this.name, error: err.message });
    this.nextId = idBefore;
    this.recordsTotal = recordsBefore;
    try {
      await this.closeActive().catch(() => undefined);
      for (const segment of created) {
        this.segments.splice(this.segments.indexOf(segment), 1);
        await unlink(segment.file).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'ENOENT') throw e; });
      }
      if (previousActive !== null) {
        const touched = writes.find((w) => w.segment === previousActive);
        if (touched !== undefined) {
          await truncate(previousActive.file, previousActive.durableBytes);
          previousActive.bytes = previousActive.durableBytes;
          previousActive.lastId = touched.firstId - 1;
        }
        // Back to where the round started: the next round appends to it again (its handle is reopened then).
        this.active = previousActive;
      }
    } catch (undoErr) {
      this.failure = new Error(`disk buffer ${this.name}: a write failed (${err.message}) and could not be undone (${(undoErr as Error).message}); reopen the buffer`);
      for (const append of this.pending.splice(0)) append.reject(this.failure);
      for (const waiter of this.blocked.splice(0)) {
        clearTimeout(waiter.timer);
        waiter.reject(this.failure);
      }
    }
  }

  // ── reading ──────────────────────────────────────────────────────────

  /**
   * The next entries in order, up to `maxBytes` of payload (always at least
   * one when any is ready, however large); empty when none is. Only durable
   * entries are read. One read at a time.
   */
  async read(maxBytes = DEFAULT_READ_BYTES): Promise<BufferEntry[]> {
    if (this.closed) throw new DiskBufferClosedError(this.name);
    if (this.reading !== null) throw new Error(`disk buffer ${this.name}: read() called while another read is in progress`);
    const reading = this.readEntries(maxBytes);
    this.reading = reading;
    try {
      return await reading;
    } finally {
      this.reading = null;
    }
  }

  private async readEntries(maxBytes: number): Promise<BufferEntry[]> {
    const out: BufferEntry[] = [];
    let bytes = 0;
    while (out.length === 0 || bytes < maxBytes) {
      const scanner = await this.readerAt();
      if (scanner === null) break;
      const segment = this.readerSegment!;
      scanner.limit = segment.durableBytes;
      const result = await scanner.next(out.length === 0 ? Number.POSITIVE_INFINITY : maxBytes - bytes);
      if (result.kind === 'over_budget') break;
      if (result.kind === 'end') {
        if (!this.writerDoneWith(segment)) break;
        await this.leaveReaderSegment();
        continue;
      }
      if (result.kind === 'bad') {
        this.reportDamage(segment, result.offset, result.reason);
        await this.leaveReaderSegment();
        continue;
      }
      const { entry, recordsBefore } = result;
      if (entry.id < this.readFrom) continue; // acknowledged before this open
      if (entry.id > this.expectedId) this.reportLoss(entry.id, recordsBefore);
      this.expectedId = entry.id + 1;
      this.expectedRecordsBefore = recordsBefore + entry.records;
      this.readFrom = entry.id + 1;
      this.lastReadId = entry.id;
      out.push(entry);
      bytes += entry.payload.length;
    }
    return out;
  }

  /** The scanner of the segment holding the next unread entry, opening it when needed; null when there is none yet. */
  private async readerAt(): Promise<SegmentScanner | null> {
    if (this.readerSegment !== null && this.readerSegment.released) await this.leaveReaderSegment();
    if (this.scanner !== null) return this.scanner;
    const segment = this.segments.find((s) => s.firstId > this.readerPassed && !s.released && s.lastId >= this.readFrom && s.durableBytes > 0);
    if (segment === undefined) return null;
    this.readerHandle = await open(segment.file, 'r');
    this.readerSegment = segment;
    this.scanner = new SegmentScanner(this.readerHandle, segment.firstId, segment.durableBytes, this.config.readBufferBytes);
    return this.scanner;
  }

  private async leaveReaderSegment(): Promise<void> {
    if (this.readerSegment !== null) this.readerPassed = this.readerSegment.firstId;
    this.readerSegment = null;
    this.scanner = null;
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
    return segment !== this.active && this.segments[this.segments.length - 1] !== segment && segment.durableBytes === segment.bytes;
  }

  /** Damage below the durable size: nothing after it in this segment is trusted; appends move to a new segment. */
  private reportDamage(segment: Segment, offset: number, reason: string): void {
    segment.sealed = true;
    const bytes = Math.max(0, segment.durableBytes - offset);
    this.discardedCorrupt.inc(bytes);
    this.telemetry.emit('bufferCorrupt', { buffer: this.name, segment: path.basename(segment.file), offset, reason, bytes });
    if (segment === this.active && this.flushing === null) this.replan();
  }

  /** Entries between the last good one and this one were lost: count them (their records are known from the cumulative count). */
  private reportLoss(id: number, recordsBefore: number): void {
    const entries = id - this.expectedId;
    const records = this.expectedRecordsBefore === null ? null : Math.max(0, recordsBefore - this.expectedRecordsBefore);
    if (records !== null) this.droppedCorrupt.inc(records);
    this.telemetry.emit('bufferEntriesLost', { buffer: this.name, from: this.expectedId, to: id - 1, entries, records });
  }

  /** Batches of entries as they become durable; ends when the buffer closes or `signal` aborts. */
  async *batches(maxBytes = DEFAULT_READ_BYTES, signal?: AbortSignal): AsyncGenerator<BufferEntry[]> {
    for (;;) {
      if (this.closing !== null || signal?.aborted) return;
      const seen = this.flushes;
      const batch = await this.read(maxBytes);
      if (batch.length > 0) {
        yield batch;
        continue;
      }
      if (!(await this.flushedSince(seen, signal))) return;
    }
  }

  /** Entries one at a time, in order; see batches(). */
  async *entries(signal?: AbortSignal): AsyncGenerator<BufferEntry> {
    for await (const batch of this.batches(DEFAULT_READ_BYTES, signal)) yield* batch;
  }

  [Symbol.asyncIterator](): AsyncGenerator<BufferEntry> {
    return this.entries();
  }

  /** Resolves true once a write round completes after `seen`, false if the buffer closes or `signal` aborts first. */
  private flushedSince(seen: number, signal?: AbortSignal): Promise<boolean> {
    if (this.flushes !== seen) return Promise.resolve(true);
    if (signal?.aborted || this.closing !== null) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const watcher = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(this.closing === null);
      };
      const onAbort = (): void => {
        this.flushWatchers.delete(watcher);
        resolve(false);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.flushWatchers.add(watcher);
    });
  }

  private notifyFlushWatchers(): void {
    const watchers = [...this.flushWatchers];
    this.flushWatchers.clear();
    for (const watcher of watchers) watcher();
  }

  // ── acknowledging ────────────────────────────────────────────────────

  /**
   * The sink has delivered every entry up to and including `id`. Fully
   * acknowledged segments are deleted; progress is saved to the checkpoint
   * within checkpointIntervalMs. Acknowledging less than before does nothing.
   */
  acknowledge(id: number): void {
    if (this.closed) throw new DiskBufferClosedError(this.name);
    if (!Number.isSafeInteger(id)) throw new RangeError(`entry id must be an integer (got ${id})`);
    if (id <= this.acknowledged) return;
    if (id > this.lastReadId) throw new RangeError(`disk buffer ${this.name}: cannot acknowledge entry ${id}, only entries up to ${this.lastReadId} have been read`);
    this.acknowledged = id;
    this.releaseAcknowledged();
    this.updateGauges();
    this.scheduleMaintenance();
    if (this.blocked.length > 0) this.admitBlocked();
  }

  /** Release every segment, oldest first, that is not appended to and is fully acknowledged. */
  private releaseAcknowledged(): void {
    let released = false;
    while (this.segments.length > 0) {
      const oldest = this.segments[0]!;
      if (oldest === this.active || oldest.lastId > this.acknowledged) break;
      this.segments.shift();
      oldest.released = true;
      this.bytesRemoving += oldest.bytes;
      this.releasedSegments.push(oldest);
      released = true;
    }
    if (released) this.scheduleMaintenance();
  }

  /** Remove released segments at once; save the checkpoint at most every checkpointIntervalMs. */
  private scheduleMaintenance(): void {
    if (this.closing !== null) return; // close() does the last round itself
    if (this.maintenance !== null) {
      this.maintenanceAgain = true;
      return;
    }
    let delay = Number.POSITIVE_INFINITY;
    if (this.releasedSegments.length > 0) delay = 0;
    else if (this.acknowledged > this.checkpointed) delay = Math.max(0, this.lastCheckpointAt + this.config.checkpointIntervalMs - Date.now());
    if (delay === Number.POSITIVE_INFINITY) return;
    delay = Math.max(delay, this.maintenanceRetryAt - Date.now());
    const dueAt = Date.now() + delay;
    if (this.maintenanceTimer !== null && this.maintenanceDueAt <= dueAt) return;
    if (this.maintenanceTimer !== null) clearTimeout(this.maintenanceTimer);
    this.maintenanceDueAt = dueAt;
    this.maintenanceTimer = setTimeout(() => {
      this.maintenanceTimer = null;
      this.maintenanceDueAt = Number.POSITIVE_INFINITY;
      this.runMaintenance(false);
    }, delay);
    // Background housekeeping must not keep the process alive; close() does the last round.
    this.maintenanceTimer.unref();
  }

  private runMaintenance(force: boolean): void {
    if (this.maintenance !== null) {
      this.maintenanceAgain = true;
      return;
    }
    this.maintenance = this.maintain(force)
      .then(() => { this.maintenanceRetryAt = 0; })
      .catch((err: Error) => {
        this.maintenanceRetryAt = Date.now() + MAINTENANCE_RETRY_MS;
        this.telemetry.emit('bufferMaintenanceFailed', { buffer: this.name, error: err.message });
      })
      .finally(() => {
        this.maintenance = null;
        const again = this.maintenanceAgain;
        this.maintenanceAgain = false;
        if (again || this.releasedSegments.length > 0) this.scheduleMaintenance();
      });
  }

  private async maintain(force: boolean): Promise<void> {
    let removed = false;
    while (this.releasedSegments.length > 0) {
      const segment = this.releasedSegments[0]!;
      try {
        await unlink(segment.file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          this.removalFailing = true;
          this.admitBlocked();
          throw err;
        }
      }
      this.releasedSegments.shift();
      this.bytesHeld -= segment.bytes;
      this.bytesRemoving -= segment.bytes;
      this.removalFailing = false;
      removed = true;
      this.updateGauges();
      this.admitBlocked();
    }
    const due = force || Date.now() - this.lastCheckpointAt >= this.config.checkpointIntervalMs;
    if (this.acknowledged > this.checkpointed && due) {
      const acknowledged = this.acknowledged;
      this.lastCheckpointAt = Date.now();
      await writeCheckpoint(this.dir, acknowledged); // also makes the removals durable
      this.checkpointed = acknowledged;
    } else if (removed) {
      await syncDirectory(this.dir);
    }
    if (this.acknowledged > this.checkpointed) this.maintenanceAgain = true;
  }

  // ── lifecycle ────────────────────────────────────────────────────────

  /**
   * Write what is pending, save the checkpoint, release the directory.
   * Appends still waiting for space are rejected. Safe to call twice.
   */
  close(): Promise<void> {
    if (this.closing === null) this.closing = this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    const closedError = new DiskBufferClosedError(this.name);
    for (const waiter of this.blocked.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.reject(closedError);
    }
    this.notifyFlushWatchers();
    try {
      while (this.flushing !== null || this.pending.length > 0) {
        this.startFlush();
        await this.flushing;
      }
      if (this.maintenanceTimer !== null) clearTimeout(this.maintenanceTimer);
      this.maintenanceTimer = null;
      await this.maintenance;
      await this.maintain(true).catch((err: Error) => this.telemetry.emit('bufferMaintenanceFailed', { buffer: this.name, error: err.message }));
    } finally {
      await this.reading?.catch(() => undefined);
      this.closed = true;
      await this.closeHandles();
      await this.lock.release();
    }
  }

  private async closeHandles(): Promise<void> {
    await this.leaveReaderSegment().catch(() => undefined);
    await this.closeActive().catch(() => undefined);
  }

  /** Entries appended and not yet acknowledged (including those being written). */
  get entriesHeld(): number {
    return this.nextId - 1 - this.acknowledged + this.pending.length;
  }

  /** Bytes of segment files held, including what is being written. */
  get bytesOnDisk(): number {
    return this.bytesHeld + this.bytesReserved;
  }

  private updateGauges(): void {
    this.bytesGauge.set(this.bytesHeld + this.bytesReserved);
    this.entriesGauge.set(Math.max(0, this.entriesHeld));
  }

  // ── recovery ─────────────────────────────────────────────────────────

  /**
   * Rebuild the state from the directory. Only the newest segment can hold
   * a torn entry (a segment is fsynced before the next one starts), so only
   * it is verified now, and cut at the first entry that does not verify;
   * older segments are verified entry by entry as they are read.
   */
  private async recover(): Promise<void> {
    await removeCheckpointLeftovers(this.dir);
    const checkpoint = await readCheckpoint(this.dir);
    if (checkpoint.kind === 'unreadable') this.telemetry.emit('bufferCheckpointUnreadable', { buffer: this.name, error: checkpoint.error });
    const fromCheckpoint = checkpoint.kind === 'found' ? checkpoint.acknowledged : 0;

    const found: { firstId: number; file: string }[] = [];
    for (const name of await readdir(this.dir)) {
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
      this.bytesHeld += size;
    }

    while (this.segments.length > 0 && !(await this.recoverNewest())) { /* it was removed: verify the one before */ }

    const oldest = this.segments[0];
    this.acknowledged = Math.max(fromCheckpoint, oldest !== undefined ? oldest.firstId - 1 : 0);
    this.checkpointed = fromCheckpoint;
    const newest = this.segments[this.segments.length - 1];
    this.nextId = Math.max(newest !== undefined ? newest.lastId + 1 : 1, this.acknowledged + 1);
    if (newest !== undefined && newest.lastId + 1 !== this.nextId) {
      newest.sealed = true; // the next id would not run on inside it: appends start a new segment
      await this.closeActive();
    }
    this.readFrom = this.acknowledged + 1;
    this.expectedId = this.readFrom;
    this.lastReadId = this.acknowledged;
    this.releaseAcknowledged();
    this.replan();
    this.updateGauges();
    this.telemetry.emit('bufferOpened', {
      buffer: this.name, dir: this.dir, segments: this.segments.length, entries: this.entriesHeld, bytes: this.bytesHeld, replayFrom: this.readFrom,
    });
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
      const scanner = new SegmentScanner(handle, segment.firstId, segment.bytes, this.config.readBufferBytes);
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
          this.discardedTornTail.inc(bytes);
          this.telemetry.emit('bufferTornTail', { buffer: this.name, segment: path.basename(segment.file), offset: result.offset, bytes, reason: result.reason });
          this.bytesHeld -= bytes;
          segment.bytes = segment.durableBytes = result.offset;
        }
        break;
      }
      segment.lastId = lastEntry !== null ? lastEntry.id : segment.firstId - 1;
      this.recordsTotal = lastEntry !== null ? lastEntry.recordsBefore + lastEntry.records : scanner.recordsBefore ?? 0;
      segment.sealed = false;
      this.active = segment;
      this.activeHandle = handle;
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
    this.bytesHeld -= segment.bytes;
    if (segment.bytes < SEGMENT_HEADER_BYTES) {
      await unlink(segment.file);
      this.discardedTornTail.inc(segment.bytes);
      this.telemetry.emit('bufferTornTail', { buffer: this.name, segment: path.basename(segment.file), offset: 0, bytes: segment.bytes, reason });
    } else {
      await rename(segment.file, `${segment.file}.damaged`);
      this.discardedCorrupt.inc(segment.bytes);
      this.telemetry.emit('bufferCorrupt', { buffer: this.name, segment: path.basename(segment.file), offset: 0, reason, bytes: segment.bytes });
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
