/**
 * The one sender chain every delivery sink runs on (after the OpenTelemetry
 * Collector's exporterhelper: queue → retry → send):
 *
 *   write() ─► encode ─► per-tenant EncodedQueue ─► DRR ─► send loop ─► transport.send(batch)
 *     │  false: tenant over its share                        │   ok: release → acks commit
 *     │  refused above queue_max                             │   PermanentError: drop, count, acks fail
 *     └─ onDrain(tenant) once under it again                 └── other error: backoff with jitter, retry
 *
 * One send is in flight at a time, up to batch_size bytes of whole frames;
 * whatever queued meanwhile goes in the next one, so batches grow with load.
 * Each tenant has its own queue, and batches are filled from them by deficit
 * round-robin (a quantum of FAIR_QUANTUM_BYTES per turn), so a tenant with a
 * deep backlog delays another tenant's records by at most one quantum per
 * backlogged tenant, not by its whole backlog. Records of one tenant keep
 * their order. Past the high-water mark only tenants over their share are
 * slowed (core/fair.ts).
 * A batch waits at most batch_delay for more records. Shutdown: stop() stops
 * taking records, sends what is queued (retrying) until the deadline, then
 * gives up on the rest (their acks fail); destroy() gives up at once.
 */
import type { ComponentHealth, Sink } from '../../core/component.js';
import type { AckToken } from '../../core/ack.js';
import type { LogRecord } from '../../core/record.js';
import { backoffDelay, type BackoffPolicy } from '../../core/backoff.js';
import { settlesBefore, timerDelay } from '../../core/clock.js';
import { EncodedQueue } from '../encoded-queue.js';
import { DeficitRoundRobin, DrrFlow, FairShares, type TenantShare } from '../../core/fair.js';
import type { SinkStats } from './stats.js';
import { checkDeliveryConfig, type DeliveryConfig } from './config.js';
import { DeliveryBatch, PermanentError, type DeliveryEncoder, type DeliveryTransport, type DropReason } from './transport.js';

type State = 'new' | 'running' | 'stopping' | 'stopped';

/** Bytes a tenant may put in a batch per round-robin turn; also its queue's chunk size. */
export const FAIR_QUANTUM_BYTES = 16 * 1024;
/** A tenant queue that was empty starts with a chunk this small. */
const FIRST_CHUNK_BYTES = 1024;

/** One tenant's records waiting in a delivery sink. */
class TenantQueue extends DrrFlow {
  readonly queue: EncodedQueue;
  /** Chunks of this queue in the batch being built or sent. */
  taken = 0;
  /** Chunks of this queue being released (settle), counted before release. */
  releasing = 0;
  releasingBytes = 0;

  constructor(readonly tenant: string, readonly share: TenantShare, chunkBytes: number) {
    super();
    this.queue = new EncodedQueue(chunkBytes, Math.min(chunkBytes, FIRST_CHUNK_BYTES));
  }
}

const nextChunkBytes = (flow: TenantQueue): number => flow.queue.chunkBytesAt(flow.taken);

export class DeliverySink implements Sink {
  readonly name: string;
  private readonly tenants = new Map<string, TenantQueue>();
  private readonly round: DeficitRoundRobin<TenantQueue>;
  private readonly shares: FairShares;
  /** The batch in flight: each chunk's queue, and its index in that queue. */
  private readonly batchChunks: Buffer[] = [];
  private readonly batchOwners: TenantQueue[] = [];
  private readonly batchIndexes: number[] = [];
  private readonly chunkBytes: number;
  private readonly batch = new DeliveryBatch();
  private readonly retryPolicy: BackoffPolicy;
  private state: State = 'new';
  private destroyed = false;
  private stopping: Promise<void> | null = null;
  private readonly drainListeners: ((tenant: string | null) => void)[] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  /** Records dropped by sends whose write() had not completed yet (see settle). */
  private uncountedDrops = 0;
  private looping = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private wakeRetry: (() => void) | null = null;
  private idleWaiters: (() => void)[] = [];
  private lastError: string | null = null;

  constructor(
    name: string,
    private readonly config: DeliveryConfig,
    private readonly encoder: DeliveryEncoder,
    private readonly transport: DeliveryTransport,
    protected readonly stats: SinkStats,
    /** True when a commit means the receiver (or its socket) has the records. */
    readonly acknowledges: boolean,
  ) {
    const problems = checkDeliveryConfig(config);
    if (problems.length > 0) throw new Error(`sink ${name}: ${problems.join('; ')}`);
    this.name = name;
    this.chunkBytes = Math.min(config.batchBytes, FAIR_QUANTUM_BYTES);
    this.round = new DeficitRoundRobin<TenantQueue>(this.chunkBytes, nextChunkBytes);
    this.shares = new FairShares(config.queueHighWaterBytes, (tenant) => {
      for (const listener of this.drainListeners) listener(tenant);
    });
    this.retryPolicy = { initialMs: config.retryInitialMs, maxMs: config.retryMaxMs };
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    await this.transport.open();
    if (this.state !== 'new') return; // stopped or destroyed while opening
    this.state = 'running';
    if (this.shares.total > 0) this.kick();
  }

  write(tenant: string, records: readonly LogRecord[], ack: AckToken | null): boolean {
    if (this.state === 'stopping' || this.state === 'stopped') {
      this.refuse('stopped', records.length, ack);
      return true; // nothing a source can wait for
    }
    if (records.length === 0) {
      ack?.commit();
      return !this.shares.congested(tenant);
    }
    const flow = this.tenantQueue(tenant);
    const shares = this.shares;
    // Past queue_max only a tenant holding its share or more is refused; past twice that, anybody.
    if (shares.total >= this.config.queueMaxBytes && (shares.overShare(flow.share) || shares.total >= 2 * this.config.queueMaxBytes)) {
      this.refuse('queue_full', records.length, ack);
      return false;
    }
    const queue = flow.queue;
    const before = queue.bytes;
    const encoder = this.encoder;
    for (let i = 0; i < records.length; i++) queue.append(encoder.encode(tenant, records[i]!));
    queue.mark(records.length, ack);
    this.round.activate(flow);
    const clear = shares.add(flow.share, queue.bytes - before);
    this.stats.queued.set(shares.total);

    if (this.state === 'running' && !this.looping) {
      if (shares.total >= this.config.batchBytes) this.kick();
      else if (this.flushTimer === null) this.flushTimer = setTimeout(this.flush, timerDelay(this.config.batchDelayMs));
    }
    return clear;
  }

  queuedBytes(): number {
    return this.shares.total;
  }

  congested(tenant?: string): boolean {
    return tenant === undefined ? this.shares.anyPaused : this.shares.congested(tenant);
  }

  onDrain(listener: (tenant: string | null) => void): void {
    this.drainListeners.push(listener);
  }

  stop(deadline: number): Promise<void> {
    this.stopping ??= this.drain(deadline);
    return this.stopping;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.state = 'stopped';
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    this.endRetryWait();
    this.transport.destroy();
    let records = 0;
    for (const flow of this.tenants.values()) {
      records += flow.queue.failAll();
      this.round.remove(flow);
    }
    this.stats.drop('shutdown', records);
    this.stats.queued.set(0);
    this.resolveIdle();
    // Nobody should stay paused waiting for a sink that is gone.
    this.shares.clear();
  }

  health(): ComponentHealth {
    const connection = this.transport.describe();
    const suffix = connection === null ? '' : `; ${connection}`;
    if (this.destroyed) return { healthy: false, detail: 'stopped' };
    if (this.lastError !== null) return { healthy: false, detail: `retrying: ${this.lastError}${suffix}` };
    if (this.shares.anyPaused) return { healthy: true, detail: `congested: ${this.shares.total} bytes queued${suffix}` };
    return connection === null ? { healthy: true } : { healthy: true, detail: connection };
  }

  private async drain(deadline: number): Promise<void> {
    if (this.state === 'new') {
      // Never started: nothing was sent and nothing can be.
      this.destroy();
      return;
    }
    this.state = 'stopping';
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    // A batch waiting out a long backoff gets one more try now rather than after the deadline.
    this.endRetryWait();
    this.kick();
    const drained = await settlesBefore(this.idle(), deadline);
    if (!drained || this.destroyed) {
      const left = this.shares.total;
      this.destroy();
      if (left > 0) throw new Error(`sink ${this.name}: ${left} bytes not delivered by the deadline`);
      return;
    }
    await settlesBefore(this.transport.close(deadline), deadline);
    this.destroyed = true;
    this.state = 'stopped';
    this.transport.destroy();
  }

  private readonly flush = (): void => {
    this.flushTimer = null;
    this.kick();
  };

  private kick(): void {
    if (this.looping || this.destroyed || this.shares.total === 0) return;
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    this.looping = true;
    void this.sendLoop();
  }

  /** Send until the queue is empty. Never rejects: every failure is classified here. */
  private async sendLoop(): Promise<void> {
    const batch = this.batch;
    let attempt = 0;
    while (this.shares.total > 0 && !this.destroyed) {
      this.fillBatch();
      if (this.batchChunks.length === 0) break;
      let failure: unknown = null;
      try {
        await this.transport.send(batch);
      } catch (err) {
        failure = err;
      }
      if (this.destroyed) break;
      // Before anything is released, while chunk indexes still match the queues.
      for (let i = 0; i < batch.droppedAt.length; i += 2) {
        const at = batch.droppedAt[i]!;
        this.batchOwners[at]!.queue.failRecord(this.batchIndexes[at]!, batch.droppedAt[i + 1]!);
      }
      if (failure === null) {
        this.settle(0, batch.chunks.length, batch.unplacedDrops);
        this.endBatch();
        this.lastError = null;
        attempt = 0;
        continue;
      }
      // Chunks the transport finished before failing are done; only the rest goes again.
      if (batch.deliveredChunks > 0) this.settle(0, batch.deliveredChunks, batch.unplacedDrops);
      const message = failure instanceof Error ? failure.message : String(failure);
      if (failure instanceof PermanentError) {
        const records = this.release(batch.deliveredChunks, batch.chunks.length, true);
        this.stats.drop(failure.reason, records, message);
        this.endBatch();
        continue;
      }
      // Whatever is left of the batch stays at the head of its tenants' queues, in order.
      this.endBatch();
      const delay = backoffDelay(attempt++, this.retryPolicy);
      this.lastError = message;
      this.stats.sendFailed(message, attempt, delay);
      await this.waitBeforeRetry(delay);
    }
    this.looping = false;
    if (this.shares.total === 0 || this.destroyed) this.resolveIdle();
  }

  private tenantQueue(tenant: string): TenantQueue {
    let flow = this.tenants.get(tenant);
    if (flow === undefined) {
      flow = new TenantQueue(tenant, this.shares.share(tenant), this.chunkBytes);
      this.tenants.set(tenant, flow);
    }
    return flow;
  }

  /** Fill the next batch, up to batch_size (at least one chunk), from the tenant queues in deficit round-robin. */
  private fillBatch(): void {
    const chunks = this.batchChunks;
    chunks.length = 0;
    this.batchOwners.length = 0;
    this.batchIndexes.length = 0;
    const max = this.config.batchBytes;
    let size = 0;
    for (;;) {
      const flow = this.round.pick(chunks.length === 0 ? Infinity : max - size);
      if (flow === null) break;
      const cost = flow.queue.chunkBytesAt(flow.taken);
      chunks.push(flow.queue.chunkAt(flow.taken));
      this.batchOwners.push(flow);
      this.batchIndexes.push(flow.taken);
      flow.taken++;
      this.round.served(flow, cost);
      size += cost;
      if (size >= max) break;
    }
    this.batch.reset(chunks);
  }

  /** The batch is settled (or to be retried): its tenants' queues take part in the round again. */
  private endBatch(): void {
    const owners = this.batchOwners;
    for (let i = 0; i < owners.length; i++) {
      const flow = owners[i]!;
      flow.taken = 0;
      if (!flow.queue.empty) this.round.activate(flow);
    }
    this.stats.queued.set(this.shares.total);
  }

  /** Chunks [from, to) of the batch are done: release them and settle their acks. */
  private settle(from: number, to: number, failed: boolean): void {
    let bytes = 0;
    for (let i = from; i < to; i++) bytes += this.batchChunks[i]!.length;
    const records = this.release(from, to, failed);
    // Records complete when their write()'s last chunk is released, possibly a
    // later send than the one that dropped some of them: carry drops over.
    this.uncountedDrops += this.batch.droppedRecords;
    const dropped = Math.min(records, this.uncountedDrops);
    this.uncountedDrops -= dropped;
    this.stats.written.inc(records - dropped);
    this.stats.writtenBytes.inc(bytes);
  }

  /**
   * Release chunks [from, to) of the batch from their queues. Each queue's
   * chunks in a batch are its oldest, in order, and earlier ones were
   * released first, so each releases a prefix. Returns records settled.
   */
  private release(from: number, to: number, failed: boolean): number {
    const owners = this.batchOwners;
    for (let i = from; i < to; i++) {
      const flow = owners[i]!;
      flow.releasing++;
      flow.releasingBytes += this.batchChunks[i]!.length;
    }
    let records = 0;
    for (let i = from; i < to; i++) {
      const flow = owners[i]!;
      if (flow.releasing === 0) continue;
      records += flow.queue.release(flow.releasing, failed);
      const bytes = flow.releasingBytes;
      flow.releasing = 0;
      flow.releasingBytes = 0;
      // May tell this tenant (or every tenant) to go on.
      this.shares.remove(flow.share, bytes);
    }
    return records;
  }

  private refuse(reason: DropReason, records: number, ack: AckToken | null): void {
    this.stats.drop(reason, records);
    ack?.fail();
  }

  private waitBeforeRetry(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wakeRetry = resolve;
      this.retryTimer = setTimeout(this.endRetryWait, ms);
    });
  }

  private readonly endRetryWait = (): void => {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const wake = this.wakeRetry;
    this.wakeRetry = null;
    wake?.();
  };

  /** Resolves once the queue is empty and no send is in flight (or the sink is destroyed). */
  private idle(): Promise<void> {
    if ((!this.looping && this.shares.total === 0) || this.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private resolveIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
