/**
 * The pump of one disk buffer: it reads entries (fair across tenants, in
 * order within each), hands them to the sink, and acknowledges them to the
 * buffer once the sink has committed them. A buffered sink runs one for its
 * own buffer and one for each buffer it adopted (buffered-sink.ts), all
 * feeding the same sink.
 *
 * When the sink asks a tenant to slow down, the buffer holds that tenant's
 * chain until the sink drains it, and the pump goes on with the others.
 */
import type { Sink } from '../../core/component.js';
import { AckStatus, AckToken } from '../../core/ack.js';
import type { LogRecord } from '../../core/record.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { decodeRecord } from '../../core/ndjson.js';
import { BYTES_PER_TURN, nextTurn } from '../../core/turns.js';
import type { BufferEntry, DiskBuffer } from './disk-buffer.js';

/** Entries handed to the sink and not yet committed, at most, per buffer. */
const DELIVERY_WINDOW = 64;

interface InFlight {
  entry: BufferEntry;
  status: AckStatus | null;
}

/** What a replay needs of the buffered sink it works for. */
export interface ReplayOwner {
  readonly inner: Sink;
  readonly telemetry: Telemetry;
  /** Stopping: an entry the sink fails now replays on the next start rather than being given up. */
  readonly stopping: boolean;
}

export class BufferReplay {
  readonly pump: Promise<void>;
  private readonly stopReading = new AbortController();
  private readonly window: InFlight[] = [];
  private windowFreed: (() => void) | null = null;
  private innerDrained: (() => void) | null = null;
  /** The tenant the pump waits on the sink for. */
  private innerWaitingFor: string | null = null;
  /** Tenants the sink asked to slow down, held in the buffer until it drains them. */
  private readonly held = new Set<string>();

  /**
   * `onEmpty`: called once, after an acknowledgement leaves the buffer with no
   * entry (for an adopted buffer, which nothing appends to: it is done).
   */
  constructor(readonly buffer: DiskBuffer, private readonly owner: ReplayOwner, private onEmpty: (() => void) | null = null) {
    this.pump = this.run();
  }

  /** Stop handing entries to the sink; what it holds settles on its own. */
  stop(): void {
    this.stopReading.abort();
    this.windowFreed?.();
    this.innerDrained?.();
  }

  /** The sink may take more of `tenant` (null: of every tenant). */
  drained(tenant: string | null): void {
    if (tenant === null) this.held.clear();
    else this.held.delete(tenant);
    this.buffer.release(tenant);
    if (tenant !== null && tenant !== this.innerWaitingFor) return;
    const resume = this.innerDrained;
    this.innerDrained = null;
    resume?.();
  }

  /**
   * Read entries and hand them to the sink, at most DELIVERY_WINDOW
   * uncommitted at a time, and at most BYTES_PER_TURN per event-loop turn (a
   * replay of a deep buffer must not hold the loop).
   */
  private async run(): Promise<void> {
    let thisTurn = 0;
    const { signal } = this.stopReading;
    try {
      for await (const entries of this.buffer.batches(undefined, signal)) {
        for (const entry of entries) {
          if (thisTurn >= BYTES_PER_TURN) {
            await nextTurn();
            thisTurn = 0;
          }
          thisTurn += entry.payload.length;
          while (this.window.length >= DELIVERY_WINDOW && !signal.aborted) {
            await new Promise<void>((resolve) => { this.windowFreed = resolve; });
          }
          // Read in the same batch before its tenant was held: it waits for the drain rather than overfill the sink.
          if (entry.tenant !== null && this.held.has(entry.tenant)) await this.waitForDrain(entry.tenant);
          if (signal.aborted) return;
          await this.deliver(entry);
        }
      }
    } catch (err) {
      if (!signal.aborted) this.owner.telemetry.emit('sourceError', { source: `buffer:${this.buffer.name}`, error: (err as Error).message });
    }
  }

  private async deliver(entry: BufferEntry): Promise<void> {
    const { inner } = this.owner;
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
    if (inner.acknowledges) ack.retain();
    const clear = inner.write(tenant, records, inner.acknowledges ? ack : null);
    ack.seal();
    if (clear || !inner.congested(tenant)) return;
    if (entry.tenant !== null) {
      // Only this tenant waits for the sink to drain it: the pump goes on with the others.
      this.held.add(entry.tenant);
      this.buffer.hold(entry.tenant);
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
   * in the buffer (acknowledging the last also acknowledges those read before
   * it). An entry the sink failed while stopping stops the acknowledgements
   * there, so it and what follows replay on the next start; one it failed
   * otherwise was refused for good (counted by the sink).
   */
  acknowledgeSettled(): void {
    let last: BufferEntry | null = null;
    while (this.window.length > 0) {
      const head = this.window[0]!;
      if (head.status === null || (head.status === AckStatus.Failed && this.owner.stopping)) break;
      last = head.entry;
      this.window.shift();
    }
    if (last !== null && !this.buffer.isClosed) {
      this.buffer.acknowledge(last);
      if (this.onEmpty !== null && this.buffer.entriesHeld === 0) this.emptied();
    }
    const freed = this.windowFreed;
    this.windowFreed = null;
    freed?.();
  }

  private emptied(): void {
    this.stop();
    const onEmpty = this.onEmpty;
    this.onEmpty = null;
    onEmpty?.();
  }
}
