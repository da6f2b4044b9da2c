/**
 * A sink's disk buffer: batches appended, per tenant, to a chain of segment
 * files, made durable with one write round (and one fdatasync per chain it
 * touches) per group of appends, read back fairly across tenants and in
 * order within each, and deleted a segment at a time once the sink has
 * acknowledged them. Format and guarantees: docs/disk-buffer.md.
 *
 *   append(tenant) ─► pending ─(every syncIntervalMs, or syncBytes)─► per chain: writev + fdatasync ─► resolved
 *
 *   tenants/acme/   ┌ …0001.seg ┐ ┌ …0413.seg (newest, appended to) ┐
 *   tenants/globex/ ┌ …0001.seg (newest) ┐                              reader: deficit round-robin over the
 *   (00…01.seg)     entries written before there were chains: read     chains with entries ready, by bytes;
 *                   first, in their order, then removed                each chain's reader keeps its place
 *
 * One writer (this object) and one reader (read()/batches()) per directory;
 * a lock file keeps a second process out.
 */
import { mkdir, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Counter, Gauge } from 'prom-client';
import { timerDelay } from '../../core/clock.js';
import { DeficitRoundRobin } from '../../core/fair.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { readCheckpoint, removeCheckpointLeftovers, syncDirectory, writeCheckpoint } from './checkpoint.js';
import { diskBufferConfigProblems, maxPayloadBytes, type DiskBufferConfig } from './config.js';
import {
  ENTRY_HEADER_BYTES, MAX_TENANT_BYTES, SEGMENT_HEADER_BYTES, TENANTS_DIR, parseSegmentName, parseTenantDirName, tenantDirName,
} from './format.js';
import { DirectoryLock } from './lock.js';
import { SegmentChain, UndoFailedError, type BufferEntry, type ChainContext, type PendingAppend, type Segment, type SegmentWrite } from './segment-chain.js';

export type { BufferEntry } from './segment-chain.js';

export type DropReason = 'full' | 'timeout' | 'too_large';

export type AppendResult =
  /** Durable: on disk and fsynced. `id` is the entry's place in its tenant's chain. */
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

const DEFAULT_READ_BYTES = 1024 * 1024;
const MAX_RECORDS_PER_ENTRY = 0xffff_ffff;
const MAINTENANCE_RETRY_MS = 1000;
/**
 * Bytes a tenant's chain may be read for per turn of the round-robin. Small
 * enough that a steady tenant waits at most this much of a flooding one's
 * backlog per turn; large enough that a turn is one sequential read.
 */
export const REPLAY_QUANTUM_BYTES = 64 * 1024;
/** Chains whose reader keeps its file open (the others reopen it where they stopped). */
const MAX_OPEN_READERS = 32;
/** Chains whose newest segment is open (the others reopen it when next written). */
const MAX_OPEN_WRITERS = 64;
/** Chains a write round writes at once (their fdatasyncs share libuv's thread pool anyway). */
const WRITE_LANES = 16;

interface BlockedAppend {
  readonly chain: SegmentChain;
  readonly payload: Buffer;
  readonly records: number;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

/** An entry handed out by read() and not yet acknowledged: acknowledgements follow this order. */
interface HandedOut {
  readonly chain: SegmentChain;
  readonly id: number;
}

export class DiskBuffer {
  private readonly chains = new Map<string, SegmentChain>();
  /** Entries written before there was a chain per tenant: read first, never appended to; null once gone. */
  private legacy: SegmentChain | null = null;
  /** The legacy chain was here, and is delivered and gone. */
  private legacyDelivered = false;
  private readonly context: ChainContext;
  private readonly tenantsDir: string;

  /** Entries written and not acknowledged, over every chain. */
  private unacknowledgedEntries = 0;
  /** Entries of the write round in progress. */
  private writingEntries = 0;
  /** Acknowledgements made, and how many of them the saved checkpoint includes. */
  private acknowledgements = 0;
  private checkpointedAcknowledgements = 0;
  private lastCheckpointAt = 0;

  /** Bytes of segment files on disk (released ones included until unlinked), as of the last completed write round. */
  private bytesHeld = 0;
  /** Part of bytesHeld in released segments waiting to be unlinked. */
  private bytesRemoving = 0;
  /** The last removal failed: drop_newest appends stop waiting for one. */
  private removalFailing = false;
  /** Bytes promised to appends not yet written (and to the round in progress). */
  private bytesReserved = 0;

  private pending: PendingAppend[] = [];
  private pendingBytes = 0;
  private oldestPendingAt = 0;
  private readonly blocked: BlockedAppend[] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  /** Write rounds completed and tenants released: readers waiting for entries watch it change. */
  private readableChanges = 0;
  private readonly readableWatchers = new Set<() => void>();

  /** Tenant chains with entries ready to read, served in turn by bytes. */
  private readonly round = new DeficitRoundRobin<SegmentChain>(REPLAY_QUANTUM_BYTES, (chain) => (chain.held ? 0 : chain.nextCost));
  /** Chains that may have entries to read that no peek has seen yet (written since, or just opened). */
  private readonly unpeeked = new Set<SegmentChain>();
  /** Read and not acknowledged, in the order handed out (from handedOutStart). */
  private handedOut: HandedOut[] = [];
  private handedOutStart = 0;
  /** Least recently used first. */
  private readonly openReaders = new Set<SegmentChain>();
  private readonly openWriters = new Set<SegmentChain>();
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
    this.syncs = telemetry.bufferSyncs.labels(labels);
    this.bytesGauge = telemetry.bufferBytes.labels(labels);
    this.entriesGauge = telemetry.bufferEntries.labels(labels);
    this.context = {
      name,
      config,
      telemetry,
      droppedCorrupt: telemetry.bufferDroppedRecords.labels({ ...labels, reason: 'corrupt' }),
      discardedCorrupt: telemetry.bufferDiscardedBytes.labels({ ...labels, reason: 'corrupt' }),
      discardedTornTail: telemetry.bufferDiscardedBytes.labels({ ...labels, reason: 'torn_tail' }),
    };
    this.tenantsDir = path.join(dir, TENANTS_DIR);
    this.maxPayload = Math.min(maxPayloadBytes(config), config.maxBytes - SEGMENT_HEADER_BYTES - ENTRY_HEADER_BYTES);
  }

  /**
   * Open (or create) the buffer in `dir`: take its lock, verify the newest
   * segment of every chain and truncate a torn tail, and position each
   * chain's reader at its first entry not acknowledged. `name` labels
   * metrics and log lines.
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
   * Append one entry for `tenant`: `payload` (the sink's encoded records,
   * opaque here) holding `records` records. Resolves once the entry is
   * fsynced, or as refused when it cannot be taken (see AppendResult). A
   * tenant's entries are stored in the order append() was called. The
   * payload is written from the caller's buffer: it must not change until
   * the promise settles.
   */
  append(tenant: string, payload: Buffer, records: number, options: AppendOptions = {}): Promise<AppendResult> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.closing !== null) return Promise.reject(new DiskBufferClosedError(this.name));
    if (!Number.isSafeInteger(records) || records < 0 || records > MAX_RECORDS_PER_ENTRY) {
      return Promise.reject(new RangeError(`records must be an integer in [0, 2^32) (got ${records})`));
    }
    if (typeof tenant !== 'string' || Buffer.byteLength(tenant) > MAX_TENANT_BYTES) {
      return Promise.reject(new RangeError(`tenant must be a string of at most ${MAX_TENANT_BYTES} bytes`));
    }
    if (payload.length > this.maxPayload) return Promise.resolve(this.refuse('too_large', records));
    const chain = this.chainOf(tenant);
    // Appends are taken in call order: while any waits, the next waits behind it.
    if (this.blocked.length === 0) {
      const room = this.room(chain, payload.length);
      if (room === 'fits') return this.admit(chain, payload, records);
      if (room === 'full' && this.config.whenFull === 'drop_newest') return Promise.resolve(this.refuse('full', records));
    }
    return this.waitForSpace(chain, payload, records, options.signal);
  }

  /** The tenant's chain, made on its first append (its folder only with its first segment). */
  private chainOf(tenant: string): SegmentChain {
    let chain = this.chains.get(tenant);
    if (chain === undefined) {
      chain = new SegmentChain(tenant, path.join(this.tenantsDir, tenantDirName(tenant)), this.context, false, false);
      this.chains.set(tenant, chain);
    }
    return chain;
  }

  /**
   * Whether an entry fits now, fits once the segments being removed are
   * gone (moments away), or does not fit. Files count until they are
   * unlinked, so the directory never holds more than maxBytes.
   */
  private room(chain: SegmentChain, payloadBytes: number): 'fits' | 'after_removal' | 'full' {
    const limit = this.config.maxBytes;
    if (this.bytesHeld + this.bytesReserved + chain.plannedCost(payloadBytes) <= limit) return 'fits';
    this.retireAcknowledgedActives();
    const cost = chain.plannedCost(payloadBytes);
    if (this.bytesHeld + this.bytesReserved + cost <= limit) return 'fits';
    if (this.bytesRemoving > 0 && this.bytesHeld - this.bytesRemoving + this.bytesReserved + cost <= limit) return 'after_removal';
    return 'full';
  }

  /** Take the append into the next write round (room() said it fits). */
  private admit(chain: SegmentChain, payload: Buffer, records: number): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => {
      const cost = chain.plannedCost(payload.length);
      chain.advancePlan(payload.length);
      chain.pendingAppends++;
      this.bytesReserved += cost;
      if (this.pending.length === 0) this.oldestPendingAt = Date.now();
      this.pending.push({ chain, payload, records, cost, resolve, reject });
      this.pendingBytes += ENTRY_HEADER_BYTES + payload.length;
      this.updateGauges();
      this.scheduleFlush();
    });
  }

  /** Redo the plan from the actual state of these chains and of those with appends pending, after a round (or a sealed segment). */
  private replan(chains: Iterable<SegmentChain>): void {
    for (const chain of chains) chain.resetPlan();
    for (const append of this.pending) append.chain.resetPlan();
    this.bytesReserved = 0;
    for (const append of this.pending) {
      append.cost = append.chain.plannedCost(append.payload.length);
      append.chain.advancePlan(append.payload.length);
      this.bytesReserved += append.cost;
    }
  }

  /**
   * When no write is under way, retire every newest segment whose entries
   * are all acknowledged (and that nothing is planned into), so its space
   * can come back.
   */
  private retireAcknowledgedActives(): void {
    if (this.flushing !== null) return;
    for (const chain of this.chains.values()) {
      if (!chain.retireIfAcknowledged()) continue;
      this.openWriters.delete(chain);
      this.releaseAcknowledged(chain);
    }
  }

  private waitForSpace(chain: SegmentChain, payload: Buffer, records: number, signal: AbortSignal | undefined): Promise<AppendResult> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    return new Promise<AppendResult>((resolve, reject) => {
      const onAbort = (): void => {
        if (this.removeBlocked(waiter)) reject(signal!.reason as Error);
      };
      const timer = setTimeout(() => {
        if (this.removeBlocked(waiter)) resolve(this.refuse('timeout', records));
      }, timerDelay(this.config.blockTimeoutMs));
      const waiter: BlockedAppend = { chain, payload, records, resolve, reject, timer, signal, onAbort };
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
      const room = this.room(waiter.chain, waiter.payload.length);
      const dropNow = this.config.whenFull === 'drop_newest' && (room === 'full' || this.removalFailing);
      if (room !== 'fits' && !dropNow) return;
      this.blocked.shift();
      clearTimeout(waiter.timer);
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      if (room === 'fits') this.admit(waiter.chain, waiter.payload, waiter.records).then(waiter.resolve, waiter.reject);
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
   * One write round: every pending append, each chain's part written by the
   * chain (one writev() per segment touched, one fdatasync), the chains at
   * once. A chain whose part fails takes it back and its appends reject;
   * the other chains' appends resolve.
   */
  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    let reserved = 0;
    const byChain = new Map<SegmentChain, PendingAppend[]>();
    for (const append of batch) {
      reserved += append.cost;
      append.chain.pendingAppends--;
      let appends = byChain.get(append.chain);
      if (appends === undefined) byChain.set(append.chain, appends = []);
      appends.push(append);
    }
    this.writingEntries = batch.length;
    const chains = [...byChain.keys()];
    const results: PromiseSettledResult<SegmentWrite[]>[] = [];
    let next = 0;
    const writing = new Set<SegmentChain>();
    const lane = async (): Promise<void> => {
      while (next < chains.length) {
        const i = next++;
        const chain = chains[i]!;
        writing.add(chain);
        // Files are closed before more are opened: never more than MAX_OPEN_WRITERS, whatever the tenants in the round.
        if (!chain.hasWriteHandle) await this.closeIdleWriters(MAX_OPEN_WRITERS - 1, writing);
        this.openWriters.delete(chain);
        this.openWriters.add(chain);
        try {
          results[i] = { status: 'fulfilled', value: await chain.write(byChain.get(chain)!) };
        } catch (err) {
          results[i] = { status: 'rejected', reason: err };
        }
        writing.delete(chain);
        if (!chain.hasWriteHandle) this.openWriters.delete(chain);
      }
    };
    await Promise.all(Array.from({ length: Math.min(WRITE_LANES, chains.length) }, lane));
    this.writingEntries = 0;
    this.bytesReserved -= reserved;

    let wrote = false;
    const settle: (() => void)[] = [];
    chains.forEach((chain, i) => {
      const result = results[i]!;
      const appends = byChain.get(chain)!;
      if (result.status === 'rejected') {
        const err = result.reason as Error;
        if (err instanceof UndoFailedError) this.fail(err);
        const cause = err instanceof UndoFailedError ? err.cause as Error : err;
        settle.push(() => { for (const append of appends) append.reject(cause); });
        return;
      }
      wrote = true;
      for (const write of result.value) this.bytesHeld += write.bytes;
      this.unacknowledgedEntries += appends.length;
      this.unpeeked.add(chain);
      this.releaseAcknowledged(chain); // a segment this round moved on from may be fully acknowledged already
      settle.push(() => { for (const write of result.value) for (const entry of write.entries) entry.append.resolve({ written: true, id: entry.id }); });
    });
    this.replan(chains); // appends admitted during the round were planned on the round's plan; re-check against what happened
    if (wrote) {
      this.syncs.inc();
      this.readableChanges++;
      this.notifyReadableWatchers();
    }
    this.updateGauges();
    for (const done of settle) done();
  }

  /** A failed write could not be taken back: refuse everything from now on. */
  private fail(err: Error): void {
    if (this.failure !== null) return;
    this.failure = err;
    for (const append of this.pending.splice(0)) {
      append.chain.pendingAppends--;
      append.reject(err);
    }
    for (const waiter of this.blocked.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.reject(err);
    }
  }

  /** Close the newest segments of the chains written least recently (but not those being written) until at most `keep` are open. */
  private async closeIdleWriters(keep: number, writing: ReadonlySet<SegmentChain>): Promise<void> {
    for (const chain of this.openWriters) {
      if (this.openWriters.size <= keep) return;
      if (writing.has(chain)) continue;
      this.openWriters.delete(chain);
      await chain.closeWriteHandle();
    }
  }

  // ── reading ──────────────────────────────────────────────────────────

  /**
   * The next durable entries, up to `maxBytes` of payload (always at least
   * one when any is ready, however large); empty when none is. Entries
   * written before per-tenant chains come first, in their order; then the
   * tenants' chains are served by deficit round-robin on bytes, each in its
   * own order. One read at a time.
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
    const legacy = this.legacy;
    if (legacy !== null) {
      if (this.unpeeked.delete(legacy)) await this.peekChain(legacy);
      // Its entries are older than any in the tenants' chains: nothing else is read until it is read through.
      while (legacy.nextCost > 0) {
        if (out.length > 0 && legacy.nextCost - 1 > maxBytes - bytes) return out;
        const taken = this.takeFrom(legacy);
        const entry = taken instanceof Promise ? await taken : taken;
        if (entry === null) continue;
        out.push(entry);
        bytes += entry.payload.length;
      }
    }
    for (const chain of this.unpeeked) {
      if (chain.nextCost === 0) await this.peekChain(chain);
      if (chain.nextCost > 0 && !chain.held) this.round.activate(chain); // a held one joins again when released
    }
    this.unpeeked.clear();
    for (;;) {
      // A cost is payload bytes + 1: the next entry fits when its payload fits in what is left of the budget.
      const room = out.length === 0 ? Number.POSITIVE_INFINITY : bytes >= maxBytes ? 0 : maxBytes - bytes + 1;
      const chain = this.round.pick(room);
      if (chain === null) break;
      const cost = chain.nextCost;
      const taken = this.takeFrom(chain);
      const entry = taken instanceof Promise ? await taken : taken;
      this.round.served(chain, entry !== null ? cost : 0);
      if (entry === null) continue;
      out.push(entry);
      bytes += entry.payload.length;
    }
    return out;
  }

  /**
   * Take the chain's next entry (null when it failed verification: counted),
   * and find the one after. Without waiting when both are in the chain's read
   * buffer, as they are for all but one entry per buffer's worth.
   */
  private takeFrom(chain: SegmentChain): BufferEntry | null | Promise<BufferEntry | null> {
    const entry = chain.takeBuffered();
    if (entry !== undefined && chain.peekBuffered()) {
      this.handedOut.push({ chain, id: entry.id });
      return entry;
    }
    return this.takeFromFile(chain, entry);
  }

  private async takeFromFile(chain: SegmentChain, taken: BufferEntry | undefined): Promise<BufferEntry | null> {
    const entry = taken ?? await chain.take();
    if (entry !== null) this.handedOut.push({ chain, id: entry.id });
    await this.peekChain(chain);
    return entry;
  }

  private async peekChain(chain: SegmentChain): Promise<void> {
    await chain.peek();
    if (chain.sealedByReader) {
      chain.sealedByReader = false;
      if (this.flushing === null) this.replan([chain]); // a round in progress re-plans when it ends
    }
    this.openReaders.delete(chain);
    if (chain.hasOpenReader) this.openReaders.add(chain);
    for (const oldest of this.openReaders) {
      if (this.openReaders.size <= MAX_OPEN_READERS) break;
      this.openReaders.delete(oldest);
      await oldest.suspendReader();
    }
  }

  /** Batches of entries as they become durable; ends when the buffer closes or `signal` aborts. */
  async *batches(maxBytes = DEFAULT_READ_BYTES, signal?: AbortSignal): AsyncGenerator<BufferEntry[]> {
    for (;;) {
      if (this.closing !== null || signal?.aborted) return;
      const seen = this.readableChanges;
      const batch = await this.read(maxBytes);
      if (batch.length > 0) {
        yield batch;
        continue;
      }
      if (!(await this.readableSince(seen, signal))) return;
    }
  }

  /** Entries one at a time; see batches(). */
  async *entries(signal?: AbortSignal): AsyncGenerator<BufferEntry> {
    for await (const batch of this.batches(DEFAULT_READ_BYTES, signal)) yield* batch;
  }

  [Symbol.asyncIterator](): AsyncGenerator<BufferEntry> {
    return this.entries();
  }

  /** Resolves true once a write round completes (or a tenant is released) after `seen`, false if the buffer closes or `signal` aborts first. */
  private readableSince(seen: number, signal?: AbortSignal): Promise<boolean> {
    if (this.readableChanges !== seen) return Promise.resolve(true);
    if (signal?.aborted || this.closing !== null) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const watcher = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(this.closing === null);
      };
      const onAbort = (): void => {
        this.readableWatchers.delete(watcher);
        resolve(false);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.readableWatchers.add(watcher);
    });
  }

  private notifyReadableWatchers(): void {
    const watchers = [...this.readableWatchers];
    this.readableWatchers.clear();
    for (const watcher of watchers) watcher();
  }

  /**
   * Hand out no more of `tenant`'s entries until release(): what it is
   * delivered to cannot take more of that tenant now, and the other tenants'
   * replay goes on meanwhile. Its place in its chain is kept.
   */
  hold(tenant: string): void {
    const chain = this.chains.get(tenant);
    if (chain !== undefined) chain.held = true;
  }

  /** Hand out `tenant`'s entries again (null: every held tenant's); a reader waiting in batches() wakes. */
  release(tenant: string | null): void {
    let released = false;
    for (const chain of tenant === null ? this.chains.values() : [this.chains.get(tenant)]) {
      if (chain === undefined || !chain.held) continue;
      chain.held = false;
      this.unpeeked.add(chain);
      released = true;
    }
    if (!released) return;
    this.readableChanges++;
    this.notifyReadableWatchers();
  }

  // ── acknowledging ────────────────────────────────────────────────────

  /**
   * The sink has delivered `entry` and every entry read() handed out before
   * it, whatever their tenants. Fully acknowledged segments are deleted;
   * progress is saved to the checkpoint within checkpointIntervalMs. An
   * entry already acknowledged does nothing.
   */
  acknowledge(entry: Pick<BufferEntry, 'tenant' | 'id'>): void {
    if (this.closed) throw new DiskBufferClosedError(this.name);
    if (!Number.isSafeInteger(entry.id)) throw new RangeError(`entry id must be an integer (got ${entry.id})`);
    if (entry.tenant === null && this.legacyDelivered) return;
    const target = entry.tenant === null ? this.legacy : this.chains.get(entry.tenant);
    if (target === null || target === undefined) throw new RangeError(`disk buffer ${this.name}: no entries of tenant ${String(entry.tenant)} were read`);
    if (entry.id <= target.acknowledged) return;
    if (entry.id > target.lastReadId) throw new RangeError(`disk buffer ${this.name}: cannot acknowledge entry ${entry.id} of tenant ${String(entry.tenant)}, only entries up to ${target.lastReadId} have been read`);
    const touched = new Set<SegmentChain>();
    while (this.handedOutStart < this.handedOut.length) {
      const { chain, id } = this.handedOut[this.handedOutStart]!;
      this.handedOutStart++;
      this.unacknowledgedEntries -= id - chain.acknowledged;
      chain.acknowledged = id;
      touched.add(chain);
      if (chain === target && id >= entry.id) break;
    }
    if (this.handedOutStart >= 1024 && this.handedOutStart * 2 >= this.handedOut.length) {
      this.handedOut = this.handedOut.slice(this.handedOutStart);
      this.handedOutStart = 0;
    }
    this.acknowledgements++;
    for (const chain of touched) this.releaseAcknowledged(chain);
    this.updateGauges();
    this.scheduleMaintenance();
    if (this.blocked.length > 0) this.admitBlocked();
  }

  /** Release the chain's segments, oldest first, that are not appended to and are fully acknowledged. */
  private releaseAcknowledged(chain: SegmentChain): void {
    const released = chain.takeAcknowledged();
    if (released.length === 0) return;
    for (const segment of released) {
      this.bytesRemoving += segment.bytes;
      this.releasedSegments.push(segment);
    }
    this.scheduleMaintenance();
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
    else if (this.acknowledgements > this.checkpointedAcknowledgements) delay = Math.max(0, this.lastCheckpointAt + this.config.checkpointIntervalMs - Date.now());
    if (delay === Number.POSITIVE_INFINITY) return;
    delay = Math.max(delay, this.maintenanceRetryAt - Date.now());
    const dueAt = Date.now() + delay;
    if (this.maintenanceTimer !== null && this.maintenanceDueAt <= dueAt) return;
    if (this.maintenanceTimer !== null) clearTimeout(this.maintenanceTimer);
    this.maintenanceDueAt = dueAt;
    this.maintenanceTimer = setTimeout(() => {
      this.maintenanceTimer = null;
      this.maintenanceDueAt = Number.POSITIVE_INFINITY;
      this.runMaintenance();
    }, delay);
    // Background housekeeping must not keep the process alive; close() does the last round.
    this.maintenanceTimer.unref();
  }

  private runMaintenance(): void {
    if (this.maintenance !== null) {
      this.maintenanceAgain = true;
      return;
    }
    this.maintenance = this.maintain(false)
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
    const removedFrom = new Set<string>();
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
      removedFrom.add(path.dirname(segment.file));
      this.updateGauges();
      this.admitBlocked();
    }
    this.dropLegacyWhenGone();
    const due = force || Date.now() - this.lastCheckpointAt >= this.config.checkpointIntervalMs;
    let checkpointSaved = false;
    if (this.acknowledgements > this.checkpointedAcknowledgements && due) {
      const acknowledgements = this.acknowledgements;
      this.lastCheckpointAt = Date.now();
      await writeCheckpoint(this.dir, this.checkpoint()); // also makes removals at the top durable
      this.checkpointedAcknowledgements = acknowledgements;
      checkpointSaved = true;
    }
    for (const dir of removedFrom) if (!checkpointSaved || dir !== this.dir) await syncDirectory(dir);
    if (this.acknowledgements > this.checkpointedAcknowledgements) this.maintenanceAgain = true;
  }

  /** What the checkpoint records now: each chain's acknowledged id. */
  private checkpoint(): { tenants: Map<string, number>; legacy: number } {
    const tenants = new Map<string, number>();
    for (const [tenant, chain] of this.chains) if (chain.acknowledged > 0) tenants.set(tenant, chain.acknowledged);
    return { tenants, legacy: this.legacy?.acknowledged ?? 0 };
  }

  /** The legacy chain is delivered and its files are gone: the buffer is in the per-tenant format only from now on. */
  private dropLegacyWhenGone(): void {
    const legacy = this.legacy;
    if (legacy === null || legacy.segments.length > 0 || this.releasedSegments.some((s) => path.dirname(s.file) === this.dir)) return;
    this.legacy = null;
    this.legacyDelivered = true;
    this.openReaders.delete(legacy);
    void legacy.closeHandles();
    this.acknowledgements++; // the next checkpoint drops its entry
    this.telemetry.emit('bufferLegacyReplayed', { buffer: this.name, acknowledged: legacy.acknowledged });
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
    this.notifyReadableWatchers();
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
    await this.legacy?.closeHandles();
    for (const chain of this.chains.values()) await chain.closeHandles();
  }

  /** Entries appended and not yet acknowledged (including those being written). */
  get entriesHeld(): number {
    return this.unacknowledgedEntries + this.writingEntries + this.pending.length;
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
   * Rebuild the state from the directory: the legacy chain (segments at the
   * top, from before per-tenant chains) and every tenant's chain under
   * tenants/, each recovered on its own.
   */
  private async recover(): Promise<void> {
    await removeCheckpointLeftovers(this.dir);
    const read = await readCheckpoint(this.dir);
    if (read.kind === 'unreadable') this.telemetry.emit('bufferCheckpointUnreadable', { buffer: this.name, error: read.error });
    const saved = read.kind === 'found' ? read.checkpoint : { tenants: new Map<string, number>(), legacy: 0 };

    if ((await readdir(this.dir)).some((name) => parseSegmentName(name) !== null)) {
      const legacy = new SegmentChain(null, this.dir, this.context, true, true);
      await legacy.recover(saved.legacy);
      if (legacy.segments.length > 0) {
        this.legacy = legacy;
        this.telemetry.emit('bufferLegacyFound', { buffer: this.name, segments: legacy.segments.length, entries: legacy.unacknowledged });
      }
      this.register(legacy);
    }

    const tenantsDirExisted = await mkdir(this.tenantsDir, { recursive: true }) === undefined;
    if (!tenantsDirExisted) await syncDirectory(this.dir);
    for (const name of await readdir(this.tenantsDir)) {
      const tenant = parseTenantDirName(name);
      if (tenant === null) continue;
      const chain = new SegmentChain(tenant, path.join(this.tenantsDir, name), this.context, false, true);
      this.chains.set(tenant, chain);
      await chain.recover(saved.tenants.get(tenant) ?? 0);
      this.register(chain);
      await this.closeIdleWriters(MAX_OPEN_WRITERS, new Set()); // recovery keeps each chain's newest segment open
    }
    // A tenant whose segments are all gone keeps its ids running on.
    for (const [tenant, acknowledged] of saved.tenants) {
      if (this.chains.has(tenant)) continue;
      const chain = this.chainOf(tenant);
      await chain.recover(acknowledged);
      this.register(chain);
    }
    this.replan([]);
    this.updateGauges();
    let segments = this.legacy?.segments.length ?? 0;
    for (const chain of this.chains.values()) segments += chain.segments.length;
    this.telemetry.emit('bufferOpened', {
      buffer: this.name, dir: this.dir, tenants: this.chains.size, segments, entries: this.entriesHeld, bytes: this.bytesHeld,
    });
  }

  /** Count a recovered chain's files and entries, and release what it holds that is acknowledged. */
  private register(chain: SegmentChain): void {
    this.bytesHeld += chain.bytes;
    this.unacknowledgedEntries += chain.unacknowledged;
    if (chain.unacknowledged > 0) this.unpeeked.add(chain);
    if (chain.hasWriteHandle) this.openWriters.add(chain);
    this.releaseAcknowledged(chain);
  }
}
