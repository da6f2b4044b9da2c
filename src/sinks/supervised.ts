/**
 * A sink whose start the node's supervisor retries with backoff (a NATS
 * server not up yet, a data folder not mounted yet) instead of failing the
 * node. Until the sink has started, what is routed to it is held and every
 * tenant is told to slow down, so the sources pause (streams stop reading,
 * HTTP answers 503, datagrams are dropped and counted): the pipeline holds
 * the records, bounded by that backpressure. Once started, the held batches
 * go in, in order, and the tenants may go on.
 *
 * Only the start is supervised: once running, a sink does not end — the
 * delivery sinks reconnect on their own with the same backoff — and
 * restarting one would mean dropping what it holds.
 */
import type { ComponentHealth, Sink } from '../core/component.js';
import type { AckToken } from '../core/ack.js';
import type { LogRecord } from '../core/record.js';
import type { Telemetry } from '../telemetry/telemetry.js';

interface HeldBatch {
  tenant: string;
  records: readonly LogRecord[];
  ack: AckToken | null;
}

export class SupervisedSink implements Sink {
  readonly name: string;
  readonly acknowledges: boolean;
  private running = false;
  private held: HeldBatch[] = [];
  private heldBytes = 0;
  private lastError: string | null = null;
  private readonly drainListeners: ((tenant: string | null) => void)[] = [];

  constructor(private readonly inner: Sink, private readonly telemetry: Telemetry) {
    this.name = inner.name;
    this.acknowledges = inner.acknowledges;
  }

  /** One start attempt (the supervisor calls it again after a failure): on success the held batches go in. */
  async start(): Promise<void> {
    if (this.running) return;
    try {
      await this.inner.start();
    } catch (err) {
      this.lastError = (err as Error).message;
      throw err;
    }
    this.running = true;
    this.lastError = null;
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const batch of held) this.inner.write(batch.tenant, batch.records, batch.ack);
    for (const listener of this.drainListeners) listener(null);
  }

  get started(): boolean {
    return this.running;
  }

  write(tenant: string, records: readonly LogRecord[], ack: AckToken | null): boolean {
    if (this.running) return this.inner.write(tenant, records, ack);
    this.held.push({ tenant, records, ack });
    for (let i = 0; i < records.length; i++) this.heldBytes += records[i]!.size;
    return false;
  }

  async stop(deadline: number): Promise<void> {
    if (this.running) await this.inner.stop(deadline);
    else this.abandonHeld();
  }

  destroy(): void {
    this.inner.destroy();
    this.abandonHeld();
  }

  /** Never started: acknowledged senders are told to send again; the rest is counted as dropped. */
  private abandonHeld(): void {
    let unacknowledged = 0;
    for (const batch of this.held) {
      if (batch.ack !== null) batch.ack.fail();
      else unacknowledged += batch.records.length;
    }
    if (unacknowledged > 0) this.telemetry.sinkDropped.inc({ sink: this.name, reason: 'not_started' }, unacknowledged);
    this.held = [];
    this.heldBytes = 0;
  }

  health(): ComponentHealth {
    if (this.running) return this.inner.health();
    return { healthy: false, detail: this.lastError === null ? 'starting' : `not started (${this.lastError}); retrying with backoff` };
  }

  queuedBytes(): number {
    return this.running ? this.inner.queuedBytes() : this.heldBytes;
  }

  congested(tenant?: string): boolean {
    return this.running ? this.inner.congested(tenant) : true;
  }

  onDrain(listener: (tenant: string | null) => void): void {
    this.drainListeners.push(listener);
    this.inner.onDrain(listener);
  }
}
