/**
 * A sink behind a disk buffer: what sources hand over is appended to the
 * buffer and acknowledged once the buffer has fsync'd it; a pump reads the
 * buffer and feeds the sink, and an entry leaves the buffer only once the
 * sink has committed it. A sink that is down for a while (or a node that is
 * killed meanwhile) then loses nothing that was acknowledged, and the other
 * sinks of the route never wait for it.
 *
 * Entries hold the records as NDJSON lines (encodeRecord), decoded again for
 * the sink: one encoding for every kind of sink, at the cost of encoding
 * twice on this path.
 *
 * Fairness: appends waiting for their fsync are counted per tenant, and past
 * the high-water mark only tenants over their share are slowed. On disk each
 * tenant has its own chain, replayed by deficit round-robin: a tenant's
 * backlog delays another tenant's replay by at most one turn per round. When
 * the sink asks a tenant to slow down, the buffer holds that tenant's chain
 * until the sink drains it, and the pump goes on with the others.
 */
import type { ComponentHealth, Sink } from '../../core/component.js';
import { AckStatus, AckToken } from '../../core/ack.js';
import type { LogRecord } from '../../core/record.js';
import { settlesBefore } from '../../core/clock.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { decodeRecord, encodeRecord } from '../../core/ndjson.js';
import { DiskBuffer, type BufferEntry } from './disk-buffer.js';
import { FairShares } from '../../core/fair.js';
import { BYTES_PER_TURN, nextTurn } from '../../core/turns.js';
import type { DiskBufferConfig } from './config.js';

/** Entries handed to the sink and not yet committed, at most. */
const DELIVERY_WINDOW = 64;
/** Bytes of appends not yet durable above which sources are asked to slow down. */
const APPEND_HIGH_WATER = 8 * 1024 * 1024;

interface InFlight {
  entry: BufferEntry;
  status: AckStatus | null;
}

export class BufferedSink implements Sink {
  readonly acknowledges = true;
  readonly name: string;
  private buffer: DiskBuffer | null = null;
  private readonly appending: FairShares;
  private readonly drainListeners: ((tenant: string | null) => void)[] = [];
  private readonly appends = new Set<Promise<void>>();
  private pump: Promise<void> | null = null;
  private readonly stopReading = new AbortController();
  private readonly window: InFlight[] = [];
  private windowFreed: (() => void) | null = null;
  private stopping = false;
  private innerDrained: (() => void) | null = null;
  /** The tenant the pump waits on the sink for. */
  private innerWaitingFor: string | null = null;
  /** Tenants the sink asked to slow down, held in the buffer until it drains them. */
  private readonly held = new Set<string>();

  constructor(
    private readonly inner: Sink,
    private readonly dir: string,
    private readonly config: DiskBufferConfig,
    private readonly telemetry: Telemetry,
  ) {
    this.name = inner.name;
    this.appending = new FairShares(APPEND_HIGH_WATER, (tenant) => {
      for (const listener of this.drainListeners) listener(tenant);
    });
    inner.onDrain((tenant) => {
      if (tenant === null) this.held.clear();
      else this.held.delete(tenant);
      this.buffer?.release(tenant);
      if (tenant !== null && tenant !== this.innerWaitingFor) return;
      const resume = this.innerDrained;
      this.innerDrained = null;
      resume?.();
    });
  }

  async start(): Promise<void> {
    await this.inner.start();
    this.buffer = await DiskBuffer.open(this.dir, this.config, this.telemetry, this.name);
    this.pump = this.run(this.buffer);
  }

  write(tenant: string, records: readonly LogRecord[], ack: AckToken | null): boolean {
    const buffer = this.buffer;
    if (buffer === null || this.stopping) {
      ack?.fail();
      return false;
    }
    let text = '';
    for (let i = 0; i < records.length; i++) text += encodeRecord(records[i]!);
    const payload = Buffer.from(text, 'utf8');
    const share = this.appending.share(tenant);
    const clear = this.appending.add(share, payload.length);
    const append = buffer.append(tenant, payload, records.length).then(
      (result) => {
        if (result.written) ack?.commit();
        else ack?.drop(); // counted by the buffer, by reason
      },
      () => ack?.fail(),
    ).finally(() => {
      this.appends.delete(append);
      this.appending.remove(share, payload.length);
    });
    this.appends.add(append);
    return clear;
  }

  queuedBytes(): number {
    return this.appending.total + this.inner.queuedBytes();
  }

  congested(tenant?: string): boolean {
    return tenant === undefined ? this.appending.anyPaused : this.appending.congested(tenant);
  }

  onDrain(listener: (tenant: string | null) => void): void {
    this.drainListeners.push(listener);
  }

  /** Appends finish; the pump stops reading; what the sink holds is flushed; the rest stays on disk for the next start. */
  async stop(deadline: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await Promise.all([...this.appends]);
    this.stopReading.abort();
    this.windowFreed?.();
    this.innerDrained?.();
    if (this.pump !== null) await settlesBefore(this.pump, deadline);
    try {
      await this.inner.stop(deadline);
    } finally {
      this.acknowledgeSettled();
      await this.buffer?.close();
    }
  }

  destroy(): void {
    this.stopping = true;
    this.stopReading.abort();
    this.inner.destroy();
    void this.buffer?.close().catch(() => undefined);
  }

  health(): ComponentHealth {
    return this.inner.health();
  }

  /**
   * Read entries (fair across tenants, in order within each) and hand them to the sink, at most DELIVERY_WINDOW
   * uncommitted at a time, and at most BYTES_PER_TURN per event-loop turn (a
   * replay of a deep buffer must not hold the loop).
   */
  private async run(buffer: DiskBuffer): Promise<void> {
    let thisTurn = 0;
    try {
      for await (const entries of buffer.batches(undefined, this.stopReading.signal)) {
        for (const entry of entries) {
          if (thisTurn >= BYTES_PER_TURN) {
            await nextTurn();
            thisTurn = 0;
          }
          thisTurn += entry.payload.length;
          while (this.window.length >= DELIVERY_WINDOW && !this.stopReading.signal.aborted) {
            await new Promise<void>((resolve) => { this.windowFreed = resolve; });
          }
          // Read in the same batch before its tenant was held: it waits for the drain rather than overfill the sink.
          if (entry.tenant !== null && this.held.has(entry.tenant)) await this.waitForDrain(entry.tenant);
          if (this.stopReading.signal.aborted) return;
          await this.deliver(entry);
        }
      }
    } catch (err) {
      if (!this.stopReading.signal.aborted) this.telemetry.emit('sourceError', { source: `buffer:${this.name}`, error: (err as Error).message });
    }
  }

  private async deliver(entry: BufferEntry): Promise<void> {
    const lines = entry.payload.toString('utf8').split('\n');
    const records: LogRecord[] = [];
    for (const line of lines) if (line !== '') records.push(decodeRecord(line));
    const slot: InFlight = { entry, status: null };
    this.window.push(slot);
    const ack = new AckToken((status) => {
      slot.status = status;
      this.acknowledgeSettled();
    });
    // An entry written before the buffer kept tenants apart (tenant null) carries its tenant in its records.
    const tenant = entry.tenant ?? records[0]?.tenant ?? '';
    // A sink that does not acknowledge has taken the entry once write() returns.
    if (this.inner.acknowledges) ack.retain();
    const clear = this.inner.write(tenant, records, this.inner.acknowledges ? ack : null);
    ack.seal();
    if (clear || !this.inner.congested(tenant)) return;
    if (entry.tenant !== null) {
      // Only this tenant waits for the sink to drain it: the pump goes on with the others.
      this.held.add(entry.tenant);
      this.buffer!.hold(entry.tenant);
      return;
    }
    // An entry of the one-log version: its tenant has no chain to hold, so the pump waits.
    await this.waitForDrain(tenant);
  }

  private async waitForDrain(tenant: string): Promise<void> {
    this.innerWaitingFor = tenant;
    await new Promise<void>((resolve) => { this.innerDrained = resolve; });
    this.innerWaitingFor = null;
  }

  /**
   * Remove settled entries from the front of the window and acknowledge them
   * in the buffer (acknowledging the last also acknowledges those read before it). An entry the sink failed while stopping stops the
   * acknowledgements there, so it and what follows replay on the next start;
   * one it failed otherwise was refused for good (counted by the sink).
   */
  private acknowledgeSettled(): void {
    let last: BufferEntry | null = null;
    while (this.window.length > 0) {
      const head = this.window[0]!;
      if (head.status === null || (head.status === AckStatus.Failed && this.stopping)) break;
      last = head.entry;
      this.window.shift();
    }
    if (last !== null && this.buffer !== null) this.buffer.acknowledge(last);
    const freed = this.windowFreed;
    this.windowFreed = null;
    freed?.();
  }
}
