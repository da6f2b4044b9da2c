/**
 * Routing from sources to sinks, and the backpressure signal back.
 *
 * Each tenant's route (its list of sinks) is resolved once at start, so
 * submitting a batch is a loop over a short array. A source whose submit()
 * returned false pauses and registers with whenDrained(); it is resumed once
 * no sink is congested any more.
 */
import type { Counter, Histogram } from 'prom-client';
import type { Sink } from './component.js';
import type { AckToken } from './ack.js';
import type { LogRecord } from './record.js';
import type { Tenant, TenantDirectory } from './identity.js';
import type { Telemetry } from '../ops/telemetry.js';
import { Enricher, type HostMetadataSource } from './enrich.js';
import { SessionRegistry } from './sessions.js';

export interface Route {
  sink: Sink;
  /** Tenant ids, or `*` for all. */
  tenants: readonly string[];
}

/** A live tail: sees every routed batch that passes its filter (see Pipeline.tap). */
export interface Tap {
  tenant?: string;
  /** Hostname as sent, or the 40-hex host key. */
  host?: string;
  session?: string;
  onRecords(records: readonly LogRecord[]): void;
}

interface Accepted {
  records: Counter.Internal;
  bytes: Counter.Internal;
}

export class Pipeline {
  private readonly taps = new Set<Tap>();
  /** Accepted-record counters by tenant id (tenants past the series cap share `other`'s). */
  private readonly acceptedByTenant = new Map<string, Accepted>();
  private readonly acceptedBySource = new Map<string, Accepted>();
  private readonly ackLatencyBySource = new Map<string, (seconds: number) => void>();
  private readonly waiting = new Set<() => void>();
  private readonly sinks: Sink[];
  private metadata: HostMetadataSource | null = null;
  private readonly busyLanes = new Set<Lane>();
  /** Every open stream session of this node (or worker). */
  readonly sessions: SessionRegistry;

  constructor(
    readonly directory: TenantDirectory,
    routes: readonly Route[],
    private readonly telemetry: Telemetry,
    sessionIdPrefix = '',
  ) {
    this.sessions = new SessionRegistry(sessionIdPrefix);
    this.sinks = routes.map((r) => r.sink);
    for (const tenant of directory.tenants.values()) {
      for (const route of routes) {
        if (route.tenants.includes('*') || route.tenants.includes(tenant.id)) tenant.sinks.push(route.sink);
      }
    }
    for (const sink of this.sinks) sink.onDrain(() => this.resumeIfClear());
    for (const tenant of directory.tenants.values()) {
      const label = telemetry.tenantLabel(tenant.id);
      this.acceptedByTenant.set(tenant.id, {
        records: telemetry.tenantAcceptedRecords.labels({ tenant: label }),
        bytes: telemetry.tenantAcceptedBytes.labels({ tenant: label }),
      });
    }
  }

  /**
   * Follow routed records (the admin API's live tail). Returns the function
   * that removes the tap. While no tap is open, submit() pays one size check.
   */
  tap(tap: Tap): () => void {
    this.taps.add(tap);
    return () => this.taps.delete(tap);
  }

  private feedTaps(tenant: string, records: readonly LogRecord[], session: string | null): void {
    for (const tap of this.taps) {
      if (tap.tenant !== undefined && tap.tenant !== tenant) continue;
      if (tap.session !== undefined && tap.session !== session) continue;
      if (tap.host === undefined) {
        tap.onRecords(records);
        continue;
      }
      const host = tap.host;
      const matching = records.filter((r) => r.hostname === host || r.host === host);
      if (matching.length > 0) tap.onRecords(matching);
    }
  }

  private acceptedFrom(source: string): Accepted {
    let bySource = this.acceptedBySource.get(source);
    if (bySource === undefined) {
      bySource = { records: this.telemetry.sourceAcceptedRecords.labels({ source }), bytes: this.telemetry.sourceAcceptedBytes.labels({ source }) };
      this.acceptedBySource.set(source, bySource);
    }
    return bySource;
  }

  private ackLatency(source: string): (seconds: number) => void {
    let observe = this.ackLatencyBySource.get(source);
    if (observe === undefined) {
      const histogram: Histogram.Internal<'source'> = this.telemetry.ackLatency.labels({ source });
      observe = (seconds) => histogram.observe(seconds);
      this.ackLatencyBySource.set(source, observe);
    }
    return observe;
  }

  /** Enrich records with host metadata from now on (set before sources start; lanes opened later use it). */
  useMetadata(metadata: HostMetadataSource | null): void {
    this.metadata = metadata;
  }

  /**
   * A new ordered way in for one session (or one connectionless source).
   * `chargeLimits: false` when the source admits records against the tenant's
   * limits itself (datagrams, which can only be dropped, never slowed).
   */
  openLane(sourceName: string, chargeLimits = true): Lane {
    return new Lane(this, this.metadata === null ? null : new Enricher(this.metadata, sourceName), sourceName, chargeLimits);
  }

  /**
   * Hand one tenant's batch to every sink of its route. The batch array must
   * not be reused by the caller. Returns false when the caller should pause.
   */
  submit(source: string, tenant: Tenant, records: LogRecord[], ack: AckToken | null, session: string | null = null): boolean {
    if (this.taps.size !== 0) this.feedTaps(tenant.id, records, session);
    const sinks = tenant.sinks;
    if (sinks.length === 0) {
      this.telemetry.emit('recordsDropped', { source, reason: 'no_route', tenant: tenant.id }, records.length);
      if (ack !== null) {
        ack.retain();
        ack.drop();
        ack.seal();
      }
      return true;
    }
    let bytes = 0;
    for (let i = 0; i < records.length; i++) bytes += records[i]!.size;
    const bySource = this.acceptedFrom(source);
    const byTenant = this.acceptedByTenant.get(tenant.id);
    bySource.records.inc(records.length);
    bySource.bytes.inc(bytes);
    byTenant?.records.inc(records.length);
    byTenant?.bytes.inc(bytes);
    if (ack !== null) ack.onCommitted ??= this.ackLatency(source);
    let clear = true;
    for (let i = 0; i < sinks.length; i++) {
      const sink = sinks[i]!;
      // Only sinks that acknowledge hold the batch's acknowledgement.
      const sinkAck = sink.acknowledges ? ack : null;
      sinkAck?.retain();
      if (!sink.write(tenant.id, records, sinkAck)) clear = false;
    }
    ack?.seal();
    return clear;
  }

  laneBusy(lane: Lane): void {
    this.busyLanes.add(lane);
  }

  laneIdle(lane: Lane): void {
    this.busyLanes.delete(lane);
  }

  /** On shutdown, after the sources stopped: route everything lanes still hold (throttled or awaiting a lookup). */
  async settle(): Promise<void> {
    while (this.busyLanes.size > 0) await Promise.all([...this.busyLanes].map((lane) => lane.expedite()));
  }

  /** A session was paused by its tenant's rate limit. */
  countThrottle(source: string, tenant: string): void {
    this.telemetry.tenantThrottled.inc({ source, tenant });
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

/** Records a lane holds behind a pending host lookup before it asks its source to slow down. */
const LANE_QUEUE_LIMIT = 10_000;

/**
 * One session's (or one UDP source's) way into the pipeline: charge the
 * tenant's rate limit, enrich, route — in the order the batches arrived.
 *
 * A batch over its tenant's limit is held until its tokens are paid back,
 * and the source is asked to pause at once. A batch waiting for a host
 * lookup holds the batches behind it (up to a bound) without pausing the
 * source. Either way records of one connection are never reordered, and
 * other lanes are not held up.
 */
export class Lane {
  private readonly queue: QueuedBatch[] = [];
  private queuedRecords = 0;
  /** Waiting for a throttle timer or a lookup; batches queue meanwhile. */
  private busy = false;
  private throttled = false;
  private throttleTimer: NodeJS.Timeout | null = null;
  private heldBatch: QueuedBatch | null = null;
  private waiter: (() => void) | null = null;
  private idleWaiters: (() => void)[] = [];
  private expedited = false;
  /** The session this lane belongs to (for the live tail's session filter). */
  session: string | null = null;

  constructor(
    private readonly pipeline: Pipeline,
    private readonly enricher: Enricher | null,
    private readonly sourceName: string,
    private readonly chargeLimits: boolean,
  ) {}

  /** Returns false when the caller should pause reading (then see whenReady). */
  submit(tenant: Tenant, records: LogRecord[], ack: AckToken | null): boolean {
    if (this.busy) {
      this.queue.push({ tenant, records, ack });
      this.queuedRecords += records.length;
      return !this.throttled && this.queuedRecords < LANE_QUEUE_LIMIT;
    }
    const clear = this.process(tenant, records, ack);
    return this.busy ? !this.throttled : clear;
  }

  /** Run `resume` once this lane holds nothing and no sink is congested. */
  whenReady(resume: () => void): void {
    if (this.busy) this.waiter = resume;
    else this.pipeline.whenDrained(resume);
  }

  /** The session is gone: forget its waiter. Held batches still go through. */
  close(): void {
    if (this.waiter) this.pipeline.cancelWait(this.waiter);
    this.waiter = null;
  }

  /** Shutting down: stop honouring rate limits, route what is held, resolve once nothing is. */
  expedite(): Promise<void> {
    this.expedited = true;
    if (!this.busy) return Promise.resolve();
    const idle = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    if (this.throttleTimer !== null) {
      clearTimeout(this.throttleTimer);
      this.endThrottle();
    }
    return idle;
  }

  private process(tenant: Tenant, records: LogRecord[], ack: AckToken | null): boolean {
    const limiter = tenant.limiter;
    if (this.chargeLimits && !limiter.unlimited && !this.expedited) {
      let bytes = 0;
      for (let i = 0; i < records.length; i++) bytes += records[i]!.size;
      const wait = limiter.charge(records.length, bytes, Date.now());
      if (wait > 0) {
        this.pipeline.countThrottle(this.sourceName, tenant.id);
        this.setBusy();
        this.throttled = true;
        this.heldBatch = { tenant, records, ack };
        this.throttleTimer = setTimeout(this.endThrottle, wait);
        return false;
      }
    }
    return this.enrichAndRoute(tenant, records, ack);
  }

  private readonly endThrottle = (): void => {
    const held = this.heldBatch!;
    this.throttleTimer = null;
    this.throttled = false;
    this.heldBatch = null;
    this.enrichAndRoute(held.tenant, held.records, held.ack);
  };

  private enrichAndRoute(tenant: Tenant, records: LogRecord[], ack: AckToken | null): boolean {
    const pending = this.enricher?.enrich(records) ?? null;
    if (pending === null) {
      const clear = this.pipeline.submit(this.sourceName, tenant, records, ack, this.session);
      if (this.busy) this.continue();
      return clear;
    }
    this.setBusy();
    void pending.then(() => {
      this.pipeline.submit(this.sourceName, tenant, records, ack, this.session);
      this.continue();
    });
    return true;
  }

  /** After a wait: process queued batches until one must wait again, then release the source. */
  private continue(): void {
    this.busy = false;
    while (this.queue.length > 0 && !this.busy) {
      const next = this.queue.shift()!;
      this.queuedRecords -= next.records.length;
      this.process(next.tenant, next.records, next.ack);
    }
    if (this.busy) return;
    this.pipeline.laneIdle(this);
    for (const resolve of this.idleWaiters.splice(0)) resolve();
    const waiter = this.waiter;
    this.waiter = null;
    if (waiter) this.pipeline.whenDrained(waiter);
  }

  private setBusy(): void {
    if (!this.busy) {
      this.busy = true;
      this.pipeline.laneBusy(this);
    }
  }
}
