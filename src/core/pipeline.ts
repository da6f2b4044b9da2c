/**
 * Routing from sources to sinks, and the backpressure signal back.
 *
 * Each tenant's route (its list of sinks) is resolved once at start, so
 * submitting a batch is a loop over a short array. A source whose submit()
 * returned false pauses and registers with whenDrained(tenant); it is
 * resumed once no sink of that tenant's route asks that tenant to slow down.
 * Sinks slow only the tenants over their share of the queue (core/fair.ts),
 * so a tenant flooding a slow sink pauses its own sessions, not everybody's.
 */
import type { Counter, Histogram } from 'prom-client';
import type { Sink } from './component.js';
import type { AckToken } from './ack.js';
import type { LogRecord } from './record.js';
import type { Tenant, TenantDirectory } from './identity.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import { Enricher, type HostMetadataSource, type MetaMissing } from './enrich.js';
import { SessionRegistry } from './sessions.js';
import { TurnShares } from './turn-shares.js';
import { EndOfTurn, RECORDS_PER_TURN } from './turns.js';
import { MemoryGovernor } from './memory.js';
import { TenantLimiter, UNLIMITED } from './limits.js';

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
  /** Paused sessions by tenant id, each resumed once its tenant may go on. */
  private readonly waiting = new Map<string, Set<() => void>>();
  private readonly sinks: Sink[];
  private metadata: HostMetadataSource | null = null;
  private readonly busyLanes = new Set<Lane>();
  private readonly enrichers = new Map<string, Enricher>();
  /** Records without their host's metadata, by `tenant reason` (made on first use: rare). */
  private readonly metaMissingByTenant = new Map<string, Counter.Internal>();
  private readonly countMetaMissing = (tenant: string, reason: MetaMissing): void => {
    const id = `${tenant} ${reason}`;
    let counter = this.metaMissingByTenant.get(id);
    if (counter === undefined) {
      counter = this.telemetry.tenantMetaMissingRecords.labels({ tenant: this.telemetry.tenantLabel(tenant), reason });
      this.metaMissingByTenant.set(id, counter);
    }
    counter.inc();
  };
  /** Every open stream session of this node (or worker). */
  readonly sessions: SessionRegistry;
  /**
   * Each listener's connection cap (its max_connections), held like a
   * tenant's: a worker of several holds a part of it (see TenantLimiter).
   */
  readonly listenerCaps = new Map<string, { limiter: TenantLimiter; open: () => number }>();
  /** The node's memory budget: sources read `memory.state` on accept and per request. */
  readonly memory: MemoryGovernor;
  /** The end of the current event-loop turn, shared by every session of the node's sources (one Immediate per turn). */
  readonly turnEnd = new EndOfTurn();
  /** Each tenant's share of a turn's reads (see core/turn-shares.ts). */
  readonly turnShares: TurnShares;

  constructor(
    readonly directory: TenantDirectory,
    routes: readonly Route[],
    private readonly telemetry: Telemetry,
    sessionIdPrefix = '',
  ) {
    this.sessions = new SessionRegistry(sessionIdPrefix);
    this.memory = new MemoryGovernor(this.sessions, telemetry);
    this.turnShares = new TurnShares(this.turnEnd, telemetry);
    this.sinks = routes.map((r) => r.sink);
    this.memory.account('lanes', () => this.laneHeldBytes());
    this.memory.account('sinks', () => {
      let bytes = 0;
      for (const sink of this.sinks) bytes += sink.queuedBytes();
      return bytes;
    });
    for (const tenant of directory.tenants.values()) {
      for (const route of routes) {
        if (route.tenants.includes('*') || route.tenants.includes(tenant.id)) tenant.sinks.push(route.sink);
      }
    }
    for (const sink of this.sinks) sink.onDrain((tenant) => this.resumeIfClear(tenant));
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
    return new Lane(this, this.enricherFor(sourceName), sourceName, chargeLimits);
  }

  /** One enricher per source, shared by its lanes (it keeps no per-lane state): an idle session costs less. */
  private enricherFor(sourceName: string): Enricher | null {
    const metadata = this.metadata;
    if (metadata === null) return null;
    let enricher = this.enrichers.get(sourceName);
    if (enricher === undefined || enricher.metadata !== metadata) {
      enricher = new Enricher(metadata, sourceName, this.countMetaMissing);
      this.enrichers.set(sourceName, enricher);
    }
    return enricher;
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
    const bytes = recordBytes(records);
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

  /** Bytes of records lanes hold (throttled, or queued behind a host lookup). */
  laneHeldBytes(): number {
    let bytes = 0;
    for (const lane of this.busyLanes) bytes += lane.heldBytes;
    return bytes;
  }

  /** The connection cap of listener `name` (0: none), whose open connections `open` counts. */
  listenerCap(name: string, cap: number, open: () => number): TenantLimiter {
    const limiter = new TenantLimiter({ ...UNLIMITED, maxConnections: cap });
    this.listenerCaps.set(name, { limiter, open });
    return limiter;
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

  /**
   * With a tenant: whether a sink of its route asks it to slow down. Without:
   * whether any sink asks any tenant to.
   */
  congested(tenant?: Tenant): boolean {
    if (tenant === undefined) {
      for (const sink of this.sinks) if (sink.congested()) return true;
      return false;
    }
    const sinks = tenant.sinks;
    for (let i = 0; i < sinks.length; i++) if (sinks[i]!.congested(tenant.id)) return true;
    return false;
  }

  /** Run `resume` once no sink asks `tenant` to slow down (at once if none does). */
  whenDrained(resume: () => void, tenant: Tenant): void {
    if (!this.congested(tenant)) {
      resume();
      return;
    }
    let waiters = this.waiting.get(tenant.id);
    if (waiters === undefined) {
      waiters = new Set();
      this.waiting.set(tenant.id, waiters);
    }
    waiters.add(resume);
  }

  /** Forget a waiter (its session closed while paused). */
  cancelWait(resume: () => void, tenant: Tenant): void {
    const waiters = this.waiting.get(tenant.id);
    waiters?.delete(resume);
    if (waiters?.size === 0) this.waiting.delete(tenant.id);
  }

  /** A sink let `tenant` (null: every tenant) go on: resume its sessions unless another sink still holds it. */
  private resumeIfClear(tenantId: string | null): void {
    if (this.waiting.size === 0) return;
    if (tenantId !== null) {
      this.resumeTenant(tenantId);
      return;
    }
    for (const id of [...this.waiting.keys()]) this.resumeTenant(id);
  }

  private resumeTenant(tenantId: string): void {
    const waiters = this.waiting.get(tenantId);
    const tenant = this.directory.tenants.get(tenantId);
    if (waiters === undefined || tenant === undefined || this.congested(tenant)) return;
    this.waiting.delete(tenantId);
    for (const resume of waiters) resume();
  }
}

interface QueuedBatch {
  tenant: Tenant;
  records: LogRecord[];
  ack: AckToken | null;
  /** The rest of a batch whose first records went on alone: its ack is shared out in parts (AckToken.part). */
  split: boolean;
}

function endThrottle(lane: Lane): void {
  lane.throttleEnded();
}

function recordBytes(records: readonly LogRecord[]): number {
  let bytes = 0;
  for (let i = 0; i < records.length; i++) bytes += records[i]!.size;
  return bytes;
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
  /** Record bytes this lane holds: queued batches and the batch held by a rate limit (for the memory governor). */
  heldBytes = 0;
  /** Waiting for a throttle timer or a lookup; batches queue meanwhile. */
  private busy = false;
  private throttled = false;
  private throttleTimer: NodeJS.Timeout | null = null;
  private heldBatch: QueuedBatch | null = null;
  private waiter: (() => void) | null = null;
  /** The tenant a waiter registered with the pipeline waits for. */
  private waiterTenant: Tenant | null = null;
  /** The tenant of the last batch routed: the one a paused source waits for. */
  private lastTenant: Tenant | null = null;
  private idleWaiters: (() => void)[] = [];
  private expedited = false;
  /** Looking at the buckets again for a batch already counted as throttled. */
  private rechecking = false;
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
      this.queue.push({ tenant, records, ack, split: false });
      this.queuedRecords += records.length;
      this.heldBytes += recordBytes(records);
      return !this.throttled && this.queuedRecords < LANE_QUEUE_LIMIT;
    }
    const clear = this.process({ tenant, records, ack, split: false });
    return this.busy ? !this.throttled : clear;
  }

  /** Holding a batch for its tenant's rate limit: why the last submit() returned false, if it did. */
  get rateLimited(): boolean {
    return this.throttled;
  }

  /** Run `resume` once this lane holds nothing and no sink asks its tenant to slow down. */
  whenReady(resume: () => void): void {
    if (this.busy) this.waiter = resume;
    else this.waitForSinks(resume);
  }

  /** The session is gone: forget its waiter. Held batches still go through. */
  close(): void {
    if (this.waiterTenant !== null) this.pipeline.cancelWait(this.sinksReady, this.waiterTenant);
    this.waiter = null;
    this.waiterTenant = null;
  }

  private waitForSinks(resume: () => void): void {
    const tenant = this.lastTenant;
    if (tenant === null) {
      resume();
      return;
    }
    this.waiter = resume;
    this.waiterTenant = tenant;
    this.pipeline.whenDrained(this.sinksReady, tenant);
  }

  private readonly sinksReady = (): void => {
    const resume = this.waiter;
    this.waiter = null;
    this.waiterTenant = null;
    resume?.();
  };

  /** Shutting down: stop honouring rate limits, route what is held, resolve once nothing is. */
  expedite(): Promise<void> {
    this.expedited = true;
    if (!this.busy) return Promise.resolve();
    const idle = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    if (this.throttleTimer !== null) {
      clearTimeout(this.throttleTimer);
      this.throttleEnded();
    }
    return idle;
  }

  /**
   * Charge the tenant's limit and route what it covers. Records the buckets
   * do not cover yet wait at the head of the lane and go on as the tokens come
   * (a slice at a time), so a limited tenant's records flow at its rate, not
   * in bursts after long pauses.
   */
  private process(batch: QueuedBatch): boolean {
    const { tenant, records, ack } = batch;
    const limiter = tenant.limiter;
    if (this.chargeLimits && !limiter.unlimited && !this.expedited) {
      const now = Date.now();
      const passed = limiter.takeLeading(records, now);
      if (passed === 0) {
        if (!this.rechecking) this.pipeline.countThrottle(this.sourceName, tenant.id);
        this.setBusy();
        this.throttled = true;
        this.heldBatch = batch;
        this.heldBytes += recordBytes(records);
        this.throttleTimer = setTimeout(endThrottle, limiter.wait(records, now), this);
        return false;
      }
      if (passed < records.length) {
        const rest = records.slice(passed);
        this.queue.unshift({ tenant, records: rest, ack, split: true });
        this.queuedRecords += rest.length;
        this.heldBytes += recordBytes(rest);
        this.setBusy();
        // The rest waits for tokens: the source pauses now (not once the rest is looked at, after the part's lookup).
        this.throttled = true;
        this.enrichAndRoute(tenant, records.slice(0, passed), ack === null ? null : ack.part());
        return false;
      }
    }
    if (!batch.split || ack === null) return this.enrichAndRoute(tenant, records, ack);
    const last = ack.part();
    ack.seal();
    return this.enrichAndRoute(tenant, records, last);
  }

  /** A held batch looks at its tenant's buckets again (called by endThrottle, a shared function: no closure per lane). */
  throttleEnded(): void {
    const held = this.heldBatch!;
    this.heldBytes -= recordBytes(held.records);
    this.throttleTimer = null;
    this.throttled = false;
    this.heldBatch = null;
    this.rechecking = true;
    this.process(held);
    this.rechecking = false;
  }

  private enrichAndRoute(tenant: Tenant, records: LogRecord[], ack: AckToken | null): boolean {
    this.lastTenant = tenant;
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

  /**
   * After a wait: process queued batches until one must wait again, then
   * release the source. At most RECORDS_PER_TURN records per event-loop turn:
   * the rest goes on in the next turn (the lane stays busy meanwhile, so
   * nothing overtakes them).
   */
  private continue(): void {
    // Never called while a throttle timer runs: a rest left at the head for tokens is looked at again here.
    this.throttled = false;
    this.busy = false;
    let budget = RECORDS_PER_TURN;
    while (this.queue.length > 0 && !this.busy) {
      if (budget <= 0) {
        this.busy = true;
        setImmediate(this.continueNextTurn);
        return;
      }
      const next = this.queue.shift()!;
      budget -= next.records.length;
      this.queuedRecords -= next.records.length;
      this.heldBytes -= recordBytes(next.records);
      this.process(next);
    }
    if (this.busy) return;
    this.pipeline.laneIdle(this);
    for (const resolve of this.idleWaiters.splice(0)) resolve();
    const waiter = this.waiter;
    this.waiter = null;
    if (waiter) this.waitForSinks(waiter);
  }

  private readonly continueNextTurn = (): void => {
    this.continue();
  };

  private setBusy(): void {
    if (!this.busy) {
      this.busy = true;
      this.pipeline.laneBusy(this);
    }
  }
}
