/**
 * The one sender chain every delivery sink runs on (after the OpenTelemetry
 * Collector's exporterhelper: queue → retry → send):
 *
 *   write() ─► encode ─► EncodedQueue ─► send loop ─► transport.send(batch)
 *     │  false above high water            │   ok: release → acks commit
 *     │  refused above queue_max           │   PermanentError: drop, count, acks fail
 *     └─ onDrain below half high water     └── other error: backoff with jitter, same batch again
 *
 * One send is in flight at a time, up to batch_size bytes of whole frames;
 * whatever queued meanwhile goes in the next one, so batches grow with load.
 * A batch waits at most batch_delay for more records. Shutdown: stop() stops
 * taking records, sends what is queued (retrying) until the deadline, then
 * gives up on the rest (their acks fail); destroy() gives up at once.
 */
import type { ComponentHealth, Sink } from '../../core/component.js';
import type { AckToken } from '../../core/ack.js';
import type { LogRecord } from '../../core/record.js';
import { backoffDelay, type BackoffPolicy } from '../../core/backoff.js';
import { timerDelay } from '../../core/clock.js';
import { EncodedQueue } from '../encoded-queue.js';
import type { SinkStats } from './stats.js';
import { DeliveryBatch, PermanentError, type DeliveryEncoder, type DeliveryTransport, type DropReason } from './transport.js';

export interface DeliveryConfig {
  /** Most encoded bytes one send carries; a batch this full is sent without waiting for batchDelayMs. */
  batchBytes: number;
  /** Longest a record waits for its batch to fill before it is sent. */
  batchDelayMs: number;
  /** Queued bytes at or above which write() returns false (sources slow down); onDrain fires once below half of it. */
  queueHighWaterBytes: number;
  /** Queued bytes at or above which write() refuses the batch (dropped, reason `queue_full`, ack failed). */
  queueMaxBytes: number;
  /** First delay before retrying a failed send; doubles per failure, with jitter, up to retryMaxMs. */
  retryInitialMs: number;
  retryMaxMs: number;
}

export const DEFAULT_DELIVERY: DeliveryConfig = {
  batchBytes: 64 * 1024,
  batchDelayMs: 10,
  queueHighWaterBytes: 8 * 1024 * 1024,
  queueMaxBytes: 16 * 1024 * 1024,
  retryInitialMs: 100,
  retryMaxMs: 30_000,
};

/** Problems with a delivery config, as sentences; empty when it is usable. */
export function checkDeliveryConfig(config: DeliveryConfig): string[] {
  const problems: string[] = [];
  if (!(config.batchBytes > 0)) problems.push('batch size must be above 0');
  if (!(config.batchDelayMs >= 0)) problems.push('batch delay must be 0 or more');
  if (!(config.queueHighWaterBytes > 0)) problems.push('queue high water must be above 0');
  if (!(config.queueMaxBytes >= config.queueHighWaterBytes)) problems.push('queue max must be at least the queue high water');
  if (!(config.retryInitialMs > 0 && config.retryMaxMs >= config.retryInitialMs)) problems.push('retry delays must be above 0, initial <= max');
  return problems;
}

type State = 'new' | 'running' | 'stopping' | 'stopped';

export class DeliverySink implements Sink {
  readonly name: string;
  private readonly queue: EncodedQueue;
  private readonly batch = new DeliveryBatch();
  private readonly retryPolicy: BackoffPolicy;
  private state: State = 'new';
  private destroyed = false;
  private stopping: Promise<void> | null = null;
  private isCongested = false;
  private readonly drainListeners: (() => void)[] = [];
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
    this.queue = new EncodedQueue(config.batchBytes);
    this.retryPolicy = { initialMs: config.retryInitialMs, maxMs: config.retryMaxMs };
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    await this.transport.open();
    if (this.state !== 'new') return; // stopped or destroyed while opening
    this.state = 'running';
    if (!this.queue.empty) this.kick();
  }

  write(tenant: string, records: readonly LogRecord[], ack: AckToken | null): boolean {
    if (this.state === 'stopping' || this.state === 'stopped') {
      this.refuse('stopped', records.length, ack);
      return true; // nothing a source can wait for
    }
    if (records.length === 0) {
      ack?.commit();
      return !this.isCongested;
    }
    const queue = this.queue;
    if (queue.bytes >= this.config.queueMaxBytes) {
      this.refuse('queue_full', records.length, ack);
      return false;
    }
    const encoder = this.encoder;
    for (let i = 0; i < records.length; i++) queue.append(encoder.encode(tenant, records[i]!));
    queue.mark(records.length, ack);
    this.stats.queued.set(queue.bytes);

    if (this.state === 'running' && !this.looping) {
      if (queue.bytes >= this.config.batchBytes) this.kick();
      else if (this.flushTimer === null) this.flushTimer = setTimeout(this.flush, timerDelay(this.config.batchDelayMs));
    }
    if (queue.bytes >= this.config.queueHighWaterBytes) this.isCongested = true;
    return !this.isCongested;
  }

  queuedBytes(): number {
    return this.queue.bytes;
  }

  congested(): boolean {
    return this.isCongested;
  }

  onDrain(listener: () => void): void {
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
    this.stats.drop('shutdown', this.queue.failAll());
    this.stats.queued.set(0);
    this.resolveIdle();
    // Nobody should stay paused waiting for a sink that is gone.
    if (this.isCongested) this.drained();
  }

  health(): ComponentHealth {
    const connection = this.transport.describe();
    const suffix = connection === null ? '' : `; ${connection}`;
    if (this.destroyed) return { healthy: false, detail: 'stopped' };
    if (this.lastError !== null) return { healthy: false, detail: `retrying: ${this.lastError}${suffix}` };
    if (this.isCongested) return { healthy: true, detail: `congested: ${this.queue.bytes} bytes queued${suffix}` };
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
    const drained = await beforeDeadline(this.idle(), deadline);
    if (!drained || this.destroyed) {
      const left = this.queue.bytes;
      this.destroy();
      if (left > 0) throw new Error(`sink ${this.name}: ${left} bytes not delivered by the deadline`);
      return;
    }
    await beforeDeadline(this.transport.close(deadline), deadline);
    this.destroyed = true;
    this.state = 'stopped';
    this.transport.destroy();
  }

  private readonly flush = (): void => {
    this.flushTimer = null;
    this.kick();
  };

  private kick(): void {
    if (this.looping || this.destroyed || this.queue.empty) return;
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    this.looping = true;
    void this.sendLoop();
  }

  /** Send until the queue is empty. Never rejects: every failure is classified here. */
  private async sendLoop(): Promise<void> {
    const batch = this.batch;
    let attempt = 0;
    while (!this.queue.empty && !this.destroyed) {
      batch.reset(this.queue.take(this.config.batchBytes));
      let failure: unknown = null;
      try {
        await this.transport.send(batch);
      } catch (err) {
        failure = err;
      }
      if (this.destroyed) break;
      // Before anything is released, while chunk indexes still match the queue.
      for (let i = 0; i < batch.droppedAt.length; i += 2) this.queue.failRecord(batch.droppedAt[i]!, batch.droppedAt[i + 1]!);
      if (failure === null) {
        this.settle(batch.chunks.length, batch.unplacedDrops);
        this.lastError = null;
        attempt = 0;
        continue;
      }
      // Chunks the transport finished before failing are done; only the rest goes again.
      if (batch.deliveredChunks > 0) this.settle(batch.deliveredChunks, batch.unplacedDrops);
      const message = failure instanceof Error ? failure.message : String(failure);
      if (failure instanceof PermanentError) {
        const records = this.queue.release(batch.chunks.length - batch.deliveredChunks, true);
        this.stats.drop(failure.reason, records, message);
        this.afterRelease();
        continue;
      }
      const delay = backoffDelay(attempt++, this.retryPolicy);
      this.lastError = message;
      this.stats.sendFailed(message, attempt, delay);
      await this.waitBeforeRetry(delay);
    }
    this.looping = false;
    if (this.queue.empty || this.destroyed) this.resolveIdle();
  }

  /** The first `chunks` of the batch are done: release them and settle their acks. */
  private settle(chunks: number, failed: boolean): void {
    let bytes = 0;
    for (let i = 0; i < chunks; i++) bytes += this.batch.chunks[i]!.length;
    const records = this.queue.release(chunks, failed);
    // Records complete when their write()'s last chunk is released, possibly a
    // later send than the one that dropped some of them: carry drops over.
    this.uncountedDrops += this.batch.droppedRecords;
    const dropped = Math.min(records, this.uncountedDrops);
    this.uncountedDrops -= dropped;
    this.stats.written.inc(records - dropped);
    this.stats.writtenBytes.inc(bytes);
    this.afterRelease();
  }

  private afterRelease(): void {
    this.stats.queued.set(this.queue.bytes);
    if (this.isCongested && this.queue.bytes <= this.config.queueHighWaterBytes / 2) this.drained();
  }

  private drained(): void {
    this.isCongested = false;
    for (const listener of this.drainListeners) listener();
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
    if ((!this.looping && this.queue.empty) || this.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private resolveIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** Whether `work` settled before `deadline` (epoch ms); a rejection counts as settled. */
async function beforeDeadline(work: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), timerDelay(deadline - Date.now())); });
  try {
    return await Promise.race([work.then(() => true, () => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}
