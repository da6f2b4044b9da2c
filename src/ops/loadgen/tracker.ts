/**
 * What the probe saw, per agent and per tenant: which sequence numbers
 * arrived (one bit each, so loss and duplicates are exact), send → visible
 * latency per tenant (and of the steady part, from --steady-after on), and
 * per second of the run: deliveries and their p99.
 */
import { newHistogram, recordMicros, RunLatencies, type Histogram } from './histogram.js';
import { tenantOf } from './layout.js';

/** Initial bytes of an agent's bitset (128 sequence numbers); it doubles as needed. */
const INITIAL_BITSET_BYTES = 16;

export interface DeliveryListener {
  /** A record of this run became visible in the node tenant folder `folder`. */
  record(agent: number, seq: number, sendMicros: number, visibleMicros: number, folder: string): void;
}

export class DeliveryTracker implements DeliveryListener {
  readonly latency: RunLatencies;
  readonly deliveredByTenant: number[];
  readonly duplicatesByTenant: number[];
  /** Where each tenant's records landed: node tenant folder → records (duplicates included). */
  readonly foldersByTenant: Map<string, number>[];
  /** Distinct messages seen. */
  delivered = 0;
  duplicates = 0;
  /** Markers of this run naming an agent that does not exist (a format bug if ever non-zero). */
  unknownAgents = 0;
  lastVisibleMicros = 0;
  private readonly seen: (Uint8Array | undefined)[];
  private readonly seenCount: Uint32Array;
  private readonly deliveredPerSecond: number[] = [];
  private readonly latencyPerSecond: Histogram[] = [];
  private goMicros = 0;

  constructor(readonly agents: number, readonly tenants: number, steadyAfterMs: number) {
    this.latency = new RunLatencies(tenants, steadyAfterMs * 1000);
    this.seen = new Array<Uint8Array | undefined>(agents);
    this.seenCount = new Uint32Array(agents);
    this.deliveredByTenant = new Array<number>(tenants).fill(0);
    this.duplicatesByTenant = new Array<number>(tenants).fill(0);
    this.foldersByTenant = Array.from({ length: tenants }, () => new Map<string, number>());
  }

  /** Second 0 of the timeline, and where --steady-after counts from. */
  begin(goMicros: number): void {
    this.goMicros = goMicros;
    this.latency.begin(goMicros);
  }

  record(agent: number, seq: number, sendMicros: number, visibleMicros: number, folder: string): void {
    if (agent >= this.agents) {
      this.unknownAgents++;
      return;
    }
    const tenant = tenantOf(agent, this.tenants);
    const folders = this.foldersByTenant[tenant]!;
    folders.set(folder, (folders.get(folder) ?? 0) + 1);
    let bits = this.seen[agent];
    const byte = seq >>> 3;
    if (bits === undefined || byte >= bits.length) {
      const grown = new Uint8Array(Math.max(INITIAL_BITSET_BYTES, byte + 1, (bits?.length ?? 0) * 2));
      if (bits !== undefined) grown.set(bits);
      this.seen[agent] = bits = grown;
    }
    const mask = 1 << (seq & 7);
    if ((bits[byte]! & mask) !== 0) {
      this.duplicates++;
      this.duplicatesByTenant[tenant]!++;
      return;
    }
    bits[byte]! |= mask;
    this.seenCount[agent]!++;
    this.delivered++;
    this.deliveredByTenant[tenant]!++;
    const latency = visibleMicros - sendMicros;
    this.latency.record(tenant, sendMicros, latency);
    const second = Math.max(0, Math.floor((visibleMicros - this.goMicros) / 1e6));
    while (this.deliveredPerSecond.length <= second) {
      this.deliveredPerSecond.push(0);
      this.latencyPerSecond.push(newHistogram(2));
    }
    this.deliveredPerSecond[second]!++;
    recordMicros(this.latencyPerSecond[second]!, latency);
    if (visibleMicros > this.lastVisibleMicros) this.lastVisibleMicros = visibleMicros;
  }

  /** Distinct sequence numbers below `sent` seen for an agent. */
  seenBelow(agent: number, sent: number): number {
    const bits = this.seen[agent];
    if (bits === undefined) return 0;
    // Every bit of the set lies below `sent`: the running count is the answer.
    if (sent >= bits.length * 8) return this.seenCount[agent]!;
    let count = 0;
    for (let seq = 0; seq < sent; seq++) if ((bits[seq >>> 3]! & (1 << (seq & 7))) !== 0) count++;
    return count;
  }

  seenOf(agent: number): number {
    return this.seenCount[agent] ?? 0;
  }

  perSecond(): { delivered: number[]; latency: Histogram[] } {
    return { delivered: this.deliveredPerSecond, latency: this.latencyPerSecond };
  }
}
