/**
 * The one sender chain every sink runs on — file, syslog, NATS, and the
 * node's own syslog log output (after the OpenTelemetry Collector's
 * exporterhelper: queue → retry → send). A sink is this chain plus an
 * encoder and a transport (transport.ts):
 *
 *   write() ─► encode ─► per-tenant EncodedQueue ─► lane ─► send loop ─► transport.send(batch)
 *     │  false: tenant over its share                         │   ok: release → acks commit
 *     │  refused above queue_max                              │   PermanentError: drop, count, acks fail
 *     └─ onDrain(tenant) once under it again                  └── other error: the lane backs off (jitter), retries
 *
 * A lane sends one batch at a time, up to batch_size bytes of whole frames;
 * whatever queued meanwhile goes in its next one, so batches grow with load.
 * Each tenant has its own queue. Where every tenant's records go one way (a
 * connection: syslog, NATS), one shared lane fills its batches from the
 * tenants' queues by deficit round-robin (a quantum of FAIR_QUANTUM_BYTES per
 * turn), so a tenant with a deep backlog delays another tenant's records by
 * at most one quantum per backlogged tenant, not by its whole backlog; a
 * failed send holds everybody back, as the receiver is down for everybody.
 * Where each tenant's records go their own way (a file per tenant), each
 * tenant has a lane of its own: one write in flight per tenant, so the disk
 * (libuv's thread pool, first come first served) serves backlogged tenants in
 * turn, a batch each, and a tenant whose file fails backs off alone.
 * Records of one tenant keep their order. Past the high-water mark only
 * tenants over their share are slowed (core/fair.ts).
 *
 * A batch waits at most batch_delay for more records. Shutdown: stop() stops
 * taking records, sends what is queued (retrying) until the deadline, then
 * gives up on the rest (their acks fail); destroy() gives up at once.
 *
 * Counted here, alike for every sink: written records and bytes, queued
 * bytes, drops by reason, failed sends; per tenant delivered records and
 * bytes, dropped records, failed sends and the bytes they send again, queued
 * bytes (stats.ts, docs/metrics.md).
 */
import type { ComponentHealth } from '../../core/component.js';
import type { AckToken } from '../../core/ack.js';
import { backoffDelay, type BackoffPolicy } from '../../core/backoff.js';
import { settlesBefore, timerDelay } from '../../core/clock.js';
import { EncodedQueue } from '../encoded-queue.js';
import { DeficitRoundRobin, DrrFlow, FairShares, type TenantShare } from '../../core/fair.js';
import type { DeliveryStats, TenantStats } from './stats.js';
import { checkDeliveryConfig, type DeliveryConfig } from './config.js';
import { DeliveryBatch, PermanentError, type DeliveryEncoder, type DeliveryTransport, type DropReason } from './transport.js';

type State = 'new' | 'running' | 'stopping' | 'stopped';

/** Bytes a tenant may put in a shared lane's batch per round-robin turn; also its queue's chunk size. */
export const FAIR_QUANTUM_BYTES = 16 * 1024;
/**
 * A tenant queue that was empty starts with a chunk this small, doubling while
 * it stays busy: a tenant sending now and then costs no full chunk per write.
 */
const FIRST_CHUNK_BYTES = 1024;
const FIRST_CHUNK_BYTES_OWN_LANE = 4096;
/** How often flushed() looks again whether a transport with its own backlog (UDP) is idle. */
const IDLE_POLL_MS = 5;

export interface DeliveryOptions {
  /** A lane per tenant (each tenant's records go their own way: a file each) instead of one shared lane. */
  lanePerTenant?: boolean;
  /** The chain's timers do not keep the process alive (the node's own log output). */
  background?: boolean;
}

/** One tenant's records waiting in a sink. */
class TenantQueue extends DrrFlow {
  readonly queue: EncodedQueue;
  /** Chunks of this queue in the batch being built or sent. */
  taken = 0;
  /** Chunks of this queue being released (settle), counted before release. */
  releasing = 0;
  releasingBytes = 0;
  /** Bytes of this queue's chunks in a failed send, to be sent again. */
  retryBytes = 0;
  /** Records dropped in chunks already released whose write() had not completed yet (see settle). */
  uncountedDrops = 0;
  /** Its own lane (lanePerTenant), or null: the shared one. */
  lane: Lane | null = null;

  constructor(readonly tenant: string, readonly share: TenantShare, chunkBytes: number, firstChunkBytes: number, readonly stats: TenantStats) {
    super();
    this.queue = new EncodedQueue(chunkBytes, firstChunkBytes);
  }
}

/** Sends one batch at a time, and waits out its own backoff after a failed one. */
class Lane {
  /** The batch in flight: each chunk, its queue, and its index in that queue. */
  readonly chunks: Buffer[] = [];
  readonly owners: TenantQueue[] = [];
  readonly indexes: number[] = [];
  readonly batch = new DeliveryBatch();
  looping = false;
  /** Consecutive failed sends: the backoff's attempt. */
  attempt = 0;
  retryTimer: NodeJS.Timeout | null = null;
  wakeRetry: (() => void) | null = null;

  /** `flow`: the one tenant this lane serves, or null: every tenant, by deficit round-robin. */
  constructor(readonly flow: TenantQueue | null) {}

  readonly endRetryWait = (): void => {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const wake = this.wakeRetry;
    this.wakeRetry = null;
    wake?.();
  };
}

const nextChunkBytes = (flow: TenantQueue): number => flow.queue.chunkBytesAt(flow.taken);

export class DeliverySink<R> {
  readonly name: string;
  readonly acknowledges: boolean;
  private readonly tenants = new Map<string, TenantQueue>();
  /** The shared lane and its round, or null with a lane per tenant. */
  private readonly shared: Lane | null;
  private readonly round: DeficitRoundRobin<TenantQueue> | null;
  private readonly shares: FairShares;
  private readonly chunkBytes: number;
  private readonly firstChunkBytes: number;
  private readonly retryPolicy: BackoffPolicy;
  private readonly background: boolean;
  private state: State = 'new';
  private destroyed = false;
  private stopping: Promise<void> | null = null;
  private readonly drainListeners: ((tenant: string | null) => void)[] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  /** Records dropped where no tenant is known, by sends whose write() had not completed yet (see settle). */
  private uncountedUnplaced = 0;
  /** Lanes sending, and lanes whose last send failed. */
  private lanesLooping = 0;
  private lanesFailing = 0;
  private idleWaiters: (() => void)[] = [];
  private lastError: string | null = null;

  /** `acknowledges`: a commit means the receiver (or its socket, or the disk) has the records. */
  constructor(
    name: string,
    private readonly config: DeliveryConfig,
    private readonly encoder: DeliveryEncoder<R>,
    private readonly transport: DeliveryTransport,
    protected readonly stats: DeliveryStats,
    acknowledges: boolean,
    options: DeliveryOptions = {},
  ) {
    const problems = checkDeliveryConfig(config);
    if (problems.length > 0) throw new Error(`sink ${name}: ${problems.join('; ')}`);
    this.name = name;
    this.acknowledges = acknowledges;
    this.background = options.background === true;
    if (options.lanePerTenant === true) {
      // A tenant's batch is its own chunks: as large as a batch, so a send is one write.
      this.chunkBytes = config.batchBytes;
      this.shared = null;
      this.round = null;
    } else {
      this.chunkBytes = Math.min(config.batchBytes, FAIR_QUANTUM_BYTES);
      this.shared = new Lane(null);
      this.round = new DeficitRoundRobin<TenantQueue>(this.chunkBytes, nextChunkBytes);
    }
    this.firstChunkBytes = Math.min(this.chunkBytes, this.shared === null ? FIRST_CHUNK_BYTES_OWN_LANE : FIRST_CHUNK_BYTES);
    this.shares = new FairShares(config.queueHighWaterBytes, (tenant) => {
      for (const listener of this.drainListeners) listener(tenant);
    });
    this.retryPolicy = { initialMs: config.retryInitialMs, maxMs: config.retryMaxMs };
    stats.watchQueues(this.shares);
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    await this.transport.open();
    if (this.state !== 'new') return; // stopped or destroyed while opening
    this.state = 'running';
    this.kickAll();
  }

  write(tenant: string, items: readonly R[], ack: AckToken | null): boolean {
    if (this.state === 'stopping' || this.state === 'stopped') {
      this.refuse(this.tenantQueue(tenant), 'stopped', items.length, ack);
      return true; // nothing a source can wait for
    }
    if (items.length === 0) {
      ack?.commit();
      return !this.shares.congested(tenant);
    }
    const flow = this.tenantQueue(tenant);
    const shares = this.shares;
    // Past queue_max only a tenant holding its share or more is refused; past twice that, anybody.
    if (shares.total >= this.config.queueMaxBytes && (shares.overShare(flow.share) || shares.total >= 2 * this.config.queueMaxBytes)) {
      this.refuse(flow, 'queue_full', items.length, ack);
      return false;
    }
    const queue = flow.queue;
    const before = queue.bytes;
    this.encoder.encode(tenant, items, queue);
    queue.mark(items.length, ack !== null && this.transport.holdAck !== undefined ? this.transport.holdAck(tenant, ack) : ack);
    const added = queue.bytes - before;
    const clear = shares.add(flow.share, added);
    this.round?.activate(flow);
    const lane = flow.lane ?? this.shared!;
    if (this.state === 'running' && !lane.looping) {
      // A full batch goes now; a partial one once batch_delay is up.
      if ((lane.flow === null ? shares.total : queue.bytes) >= this.config.batchBytes) this.kick(lane);
      else if (this.flushTimer === null) this.flushTimer = this.timer(this.flush, this.config.batchDelayMs);
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

  /**
   * Resolves true once everything written so far has been sent and has left
   * this process (the transport's idle()), false at `deadline` if it has not.
   * Unlike stop(), the chain goes on taking records.
   */
  async flushed(deadline: number): Promise<boolean> {
    if (!(await settlesBefore(this.idle(), deadline))) return false;
    while (this.transport.idle?.() === false) {
      if (Date.now() >= deadline) return false;
      await new Promise<void>((resolve) => this.timer(resolve, IDLE_POLL_MS));
    }
    return true;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.state = 'stopped';
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    this.forEachLane((lane) => lane.endRetryWait());
    this.transport.destroy();
    let records = 0;
    for (const flow of this.tenants.values()) {
      const given = flow.queue.failAll();
      flow.stats.dropped(given);
      records += given;
      this.round?.remove(flow);
    }
    this.stats.drop('shutdown', records);
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
    this.forEachLane((lane) => lane.endRetryWait());
    this.kickAll();
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
    this.kickAll();
  };

  private forEachLane(fn: (lane: Lane) => void): void {
    if (this.shared !== null) fn(this.shared);
    else for (const flow of this.tenants.values()) fn(flow.lane!);
  }

  /** Every lane with something to send sends it. */
  private kickAll(): void {
    if (this.shared !== null) this.kick(this.shared);
    else for (const flow of this.tenants.values()) if (!flow.queue.empty) this.kick(flow.lane!);
  }

  private kick(lane: Lane): void {
    if (lane.looping || this.destroyed || this.shares.total === 0) return;
    if (this.flushTimer !== null && lane.flow === null) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    lane.looping = true;
    this.lanesLooping++;
    void this.sendLoop(lane);
  }

  /** Send until the lane's queues are empty. Never rejects: every failure is classified here. */
  private async sendLoop(lane: Lane): Promise<void> {
    const batch = lane.batch;
    while (!this.destroyed) {
      this.fillBatch(lane);
      if (lane.chunks.length === 0) break;
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
        lane.owners[at]!.queue.failRecord(lane.indexes[at]!, batch.droppedAt[i + 1]!);
      }
      // Chunks the transport delivered are done, even when the send then failed; with no failure, all are.
      this.settle(lane, failure === null);
      if (failure === null) {
        this.endBatch(lane);
        if (lane.attempt > 0) this.recovered(lane);
        continue;
      }
      const message = failure instanceof Error ? failure.message : String(failure);
      if (failure instanceof PermanentError) {
        this.dropRest(lane, failure.reason, message);
        this.endBatch(lane);
        // Settled, if not delivered: nothing of this batch is retried.
        if (lane.attempt > 0) this.recovered(lane);
        continue;
      }
      // Whatever is left of the batch stays at the head of its tenants' queues, in order.
      this.countRetries(lane);
      this.endBatch(lane);
      if (lane.attempt === 0) this.lanesFailing++;
      const delay = backoffDelay(lane.attempt++, this.retryPolicy);
      this.lastError = lane.flow === null ? message : `${lane.flow.tenant}: ${message}`;
      this.stats.sendFailed(message, lane.attempt, delay, lane.flow?.tenant ?? null);
      await this.waitBeforeRetry(lane, delay);
    }
    lane.looping = false;
    this.lanesLooping--;
    if ((this.shares.total === 0 && this.lanesLooping === 0) || this.destroyed) this.resolveIdle();
  }

  private recovered(lane: Lane): void {
    lane.attempt = 0;
    if (--this.lanesFailing === 0) this.lastError = null;
  }

  private tenantQueue(tenant: string): TenantQueue {
    let flow = this.tenants.get(tenant);
    if (flow === undefined) {
      flow = new TenantQueue(tenant, this.shares.share(tenant), this.chunkBytes, this.firstChunkBytes, this.stats.tenant(tenant));
      if (this.shared === null) flow.lane = new Lane(flow);
      this.tenants.set(tenant, flow);
    }
    return flow;
  }

  /**
   * Fill the lane's next batch, up to batch_size (at least one chunk): from
   * its tenant's queue, or from every tenant's in deficit round-robin.
   */
  private fillBatch(lane: Lane): void {
    const chunks = lane.chunks;
    chunks.length = 0;
    lane.owners.length = 0;
    lane.indexes.length = 0;
    const max = this.config.batchBytes;
    let size = 0;
    const own = lane.flow;
    for (;;) {
      let flow: TenantQueue | null;
      if (own === null) {
        flow = this.round!.pick(chunks.length === 0 ? Infinity : max - size);
      } else {
        const next = own.queue.chunkBytesAt(own.taken);
        flow = next > 0 && (chunks.length === 0 || size + next <= max) ? own : null;
      }
      if (flow === null) break;
      const cost = flow.queue.chunkBytesAt(flow.taken);
      chunks.push(flow.queue.chunkAt(flow.taken));
      lane.owners.push(flow);
      lane.indexes.push(flow.taken);
      flow.taken++;
      this.round?.served(flow, cost);
      size += cost;
      if (size >= max) break;
    }
    lane.batch.reset(chunks, own === null ? null : own.tenant);
  }

  /** The batch is settled (or to be retried): its tenants' queues take part in the round again. */
  private endBatch(lane: Lane): void {
    const owners = lane.owners;
    for (let i = 0; i < owners.length; i++) {
      const flow = owners[i]!;
      flow.taken = 0;
      if (!flow.queue.empty) this.round?.activate(flow);
    }
  }

  /**
   * Release the delivered chunks of the lane's batch (with `all`, every
   * chunk) and settle their acks. Each tenant's delivered chunks are the
   * first of its chunks in the batch.
   */
  private settle(lane: Lane, all: boolean): void {
    const batch = lane.batch;
    const owners = lane.owners;
    for (let i = 0; i < owners.length; i++) if (all || batch.isDelivered(i)) this.mark(lane, i);
    if (all) this.uncountedUnplaced += batch.unplacedDrops;
    let written = 0;
    let bytes = 0;
    for (let i = 0; i < owners.length; i++) {
      const flow = owners[i]!;
      if (flow.releasing === 0) continue;
      const flowBytes = flow.releasingBytes;
      const records = this.releaseMarked(flow, batch.failsAcks);
      // Records complete when their write()'s last chunk is released, possibly a
      // later send than the one that dropped some of them: carry drops over.
      const dropped = Math.min(records, flow.uncountedDrops);
      flow.uncountedDrops -= dropped;
      flow.stats.dropped(dropped);
      flow.stats.delivered(records - dropped, flowBytes);
      written += records - dropped;
      bytes += flowBytes;
    }
    const unplaced = Math.min(written, this.uncountedUnplaced);
    this.uncountedUnplaced -= unplaced;
    this.stats.written(written - unplaced, bytes);
  }

  /** A permanent error: every chunk not delivered is given up on, its acks failed. */
  private dropRest(lane: Lane, reason: DropReason, message: string): void {
    const batch = lane.batch;
    const owners = lane.owners;
    for (let i = 0; i < owners.length; i++) if (!batch.isDelivered(i)) this.mark(lane, i);
    let records = 0;
    for (let i = 0; i < owners.length; i++) {
      const flow = owners[i]!;
      if (flow.releasing === 0) continue;
      const given = this.releaseMarked(flow, true);
      flow.stats.dropped(given);
      records += given;
    }
    this.stats.drop(reason, records, message);
  }

  /** Chunk `i` of the lane's batch is to be released with its queue's others. */
  private mark(lane: Lane, i: number): void {
    const flow = lane.owners[i]!;
    flow.releasing++;
    flow.releasingBytes += lane.chunks[i]!.length;
    flow.uncountedDrops += lane.batch.droppedIn[i]!;
  }

  /**
   * Release the chunks marked in `flow`'s queue: a tenant's chunks in a
   * batch are its oldest, in order, and earlier ones were released first, so
   * they are a prefix. Returns records settled.
   */
  private releaseMarked(flow: TenantQueue, failed: boolean): number {
    const records = flow.queue.release(flow.releasing, failed);
    const bytes = flow.releasingBytes;
    flow.releasing = 0;
    flow.releasingBytes = 0;
    // May tell this tenant (or every tenant) to go on.
    this.shares.remove(flow.share, bytes);
    return records;
  }

  /** A send failed: each tenant with chunks in it counts a failed send and the bytes that go again. */
  private countRetries(lane: Lane): void {
    const batch = lane.batch;
    const owners = lane.owners;
    for (let i = 0; i < owners.length; i++) if (!batch.isDelivered(i)) owners[i]!.retryBytes += lane.chunks[i]!.length;
    for (let i = 0; i < owners.length; i++) {
      const flow = owners[i]!;
      if (flow.retryBytes === 0) continue;
      flow.stats.retrying(flow.retryBytes);
      flow.retryBytes = 0;
    }
  }

  private refuse(flow: TenantQueue, reason: DropReason, records: number, ack: AckToken | null): void {
    this.stats.drop(reason, records);
    flow.stats.dropped(records);
    ack?.fail();
  }

  private timer(fn: () => void, ms: number): NodeJS.Timeout {
    const timer = setTimeout(fn, timerDelay(ms));
    if (this.background) timer.unref();
    return timer;
  }

  private waitBeforeRetry(lane: Lane, ms: number): Promise<void> {
    return new Promise((resolve) => {
      lane.wakeRetry = resolve;
      lane.retryTimer = this.timer(lane.endRetryWait, ms);
    });
  }

  /** Resolves once every queue is empty and no send is in flight (or the sink is destroyed). */
  private idle(): Promise<void> {
    if ((this.lanesLooping === 0 && this.shares.total === 0) || this.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private resolveIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
