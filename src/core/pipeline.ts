/**
 * Routing from sources to sinks, and the backpressure signal back.
 *
 * Each tenant's route (its list of sinks) is resolved once at start, so
 * submitting a batch is a loop over a short array. A source whose submit()
 * returned false pauses and registers with whenDrained(); it is resumed once
 * no sink is congested any more.
 */
import type { Sink } from './component.js';
import type { AckToken } from './ack.js';
import type { LogRecord } from './record.js';
import type { Tenant, TenantDirectory } from './identity.js';
import type { Telemetry } from '../ops/telemetry.js';
import { Enricher, type HostMetadataSource } from './enrich.js';

export interface Route {
  sink: Sink;
  /** Tenant ids, or `*` for all. */
  tenants: readonly string[];
}

export class Pipeline {
  private readonly waiting = new Set<() => void>();
  private readonly sinks: Sink[];
  private metadata: HostMetadataSource | null = null;

  constructor(
    readonly directory: TenantDirectory,
    routes: readonly Route[],
    private readonly telemetry: Telemetry,
  ) {
    this.sinks = routes.map((r) => r.sink);
    for (const tenant of directory.tenants.values()) {
      for (const route of routes) {
        if (route.tenants.includes('*') || route.tenants.includes(tenant.id)) tenant.sinks.push(route.sink);
      }
    }
    for (const sink of this.sinks) sink.onDrain(() => this.resumeIfClear());
  }

  /** Enrich records with host metadata from now on (set before sources start; lanes opened later use it). */
  useMetadata(metadata: HostMetadataSource | null): void {
    this.metadata = metadata;
  }

  /** A new ordered way in for one session (or one connectionless source). */
  openLane(sourceName: string): Lane {
    return new Lane(this, this.metadata === null ? null : new Enricher(this.metadata, sourceName), sourceName);
  }

  /**
   * Hand one tenant's batch to every sink of its route. The batch array must
   * not be reused by the caller. Returns false when the caller should pause.
   */
  submit(source: string, tenant: Tenant, records: LogRecord[], ack: AckToken | null): boolean {
    const sinks = tenant.sinks;
    if (sinks.length === 0) {
      this.telemetry.emit('recordsDropped', { source, reason: 'no_route', tenant: tenant.id }, records.length);
      ack?.seal();
      return true;
    }
    let clear = true;
    for (let i = 0; i < sinks.length; i++) {
      ack?.retain();
      if (!sinks[i]!.write(tenant.id, records, ack)) clear = false;
    }
    ack?.seal();
    return clear;
  }

  /** True when some sink is above its high-water mark. */
  congested(): boolean {
    for (const sink of this.sinks) if (sink.congested()) return true;
    return false;
  }

  /** Run `resume` once no sink is congested (at once if none is). */
  whenDrained(resume: () => void): void {
    if (!this.congested()) resume();
    else this.waiting.add(resume);
  }

  /** Forget a waiter (its session closed while paused). */
  cancelWait(resume: () => void): void {
    this.waiting.delete(resume);
  }

  private resumeIfClear(): void {
    if (this.waiting.size === 0 || this.congested()) return;
    const resumes = [...this.waiting];
    this.waiting.clear();
    for (const resume of resumes) resume();
  }
}

interface QueuedBatch {
  tenant: Tenant;
  records: LogRecord[];
  ack: AckToken | null;
}

/** Records a lane holds behind a pending enrichment before it asks its source to slow down. */
const LANE_QUEUE_LIMIT = 10_000;

/**
 * One session's (or one UDP source's) way into the pipeline: enrich, then
 * route, in the order the batches arrived. While a batch waits for a host
 * lookup, the batches behind it queue here, so records of one connection are
 * never reordered; other lanes are not held up.
 */
export class Lane {
  private readonly queue: QueuedBatch[] = [];
  private queuedRecords = 0;
  private busy = false;
  private waiter: (() => void) | null = null;

  constructor(private readonly pipeline: Pipeline, private readonly enricher: Enricher | null, private readonly sourceName: string) {}

  /** Enrich and route one tenant's batch. Returns false when the caller should pause (see whenReady). */
  submit(tenant: Tenant, records: LogRecord[], ack: AckToken | null): boolean {
    if (this.busy) {
      this.queue.push({ tenant, records, ack });
      this.queuedRecords += records.length;
      return this.queuedRecords < LANE_QUEUE_LIMIT;
    }
    const pending = this.enricher?.enrich(records) ?? null;
    if (pending === null) return this.pipeline.submit(this.sourceName, tenant, records, ack);
    this.busy = true;
    void pending.then(() => this.drain(tenant, records, ack));
    return true;
  }

  /** Run `resume` once this lane is not holding batches and no sink is congested. */
  whenReady(resume: () => void): void {
    if (this.busy) this.waiter = resume;
    else this.pipeline.whenDrained(resume);
  }

  /** The session is gone: forget its waiter (queued batches still go through). */
  close(): void {
    if (this.waiter) this.pipeline.cancelWait(this.waiter);
    this.waiter = null;
  }

  /** Route the enriched batch, then the queued ones, pausing again at the next lookup. */
  private drain(tenant: Tenant, records: LogRecord[], ack: AckToken | null): void {
    this.pipeline.submit(this.sourceName, tenant, records, ack);
    while (this.queue.length > 0) {
      const next = this.queue.shift()!;
      this.queuedRecords -= next.records.length;
      const pending = this.enricher!.enrich(next.records);
      if (pending !== null) {
        void pending.then(() => this.drain(next.tenant, next.records, next.ack));
        return;
      }
      this.pipeline.submit(this.sourceName, next.tenant, next.records, next.ack);
    }
    this.busy = false;
    const waiter = this.waiter;
    this.waiter = null;
    if (waiter) this.pipeline.whenDrained(waiter);
  }
}
