/**
 * The cache between ingestion and the host metadata service, so that an
 * unreachable or slow service never stalls ingestion:
 *
 * - `peek()` answers synchronously from memory; when the value is missing or
 *   expired it starts a lookup in the background.
 * - `get()` waits at most `timeoutMs` for a lookup and never rejects: on
 *   error or timeout it serves the last known value (stale), or null.
 * - Concurrent misses of one host share one request (single flight); after a
 *   failed lookup the host is not asked for again for `retryAfterErrorMs`.
 * - Documents are kept for `cacheTtlMs`, "no document" (404) for the shorter
 *   `cacheNegativeTtlMs`; at most `cacheMaxEntries` hosts, least recently used evicted.
 * - `touch()` registers a host the first time it is seen and refreshes its
 *   `last_seen` at most once per `touchIntervalMs`, fire-and-forget, with a
 *   bound on how many are in flight (past it: dropped and counted).
 * - Lookups past `maxLookupsInFlight` wait in per-tenant queues served in
 *   turn, one lookup per tenant per round: a tenant bringing thousands of new
 *   hosts at once delays another tenant's lookup by one round, not by its
 *   whole burst.
 */
import type { Counter, Gauge } from 'prom-client';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { HostmetaRequestError } from './request-error.js';
import type { HostmetaCalls } from './local-client.js';
import { TokenBucket } from '../../core/token-bucket.js';
import type { HostmetaClientConfig } from './config.js';
import { isHostKey, isTenantId, type HostMetadata } from './schema.js';
import { mergeDocument } from './store.js';
import { DeficitRoundRobin, DrrFlow } from '../../core/fair.js';

/** One tenant's lookups waiting for a slot, oldest first. */
class LookupWaiters extends DrrFlow {
  readonly waiting: (() => void)[] = [];
}

const waitingLookups = (flow: LookupWaiters): number => (flow.waiting.length > 0 ? 1 : 0);

/** How a `get()` was answered (the `result` label of the lookups counter). */
export type CacheLookupResult = 'hit' | 'negative_hit' | 'miss' | 'stale' | 'unavailable';

/** What a collector knows about a host when it sees a message from it. */
export interface HostSighting {
  hostname: string;
  sourceAddress: string;
  /** The source that received it, e.g. `syslog_tcp`. */
  protocol: string;
}

type LookupResult = { ok: true; value: HostMetadata | null } | { ok: false };

interface Entry {
  readonly tenant: string;
  readonly key: string;
  /** undefined: nothing known; null: the service has no document. */
  value: HostMetadata | null | undefined;
  /** Epoch ms until which `value` is used without asking. */
  freshUntil: number;
  /** After a failed lookup: no new lookup before this (epoch ms). */
  retryAt: number;
  /** The lookup in flight, shared by every waiter (single flight). */
  lookup: Promise<LookupResult> | null;
  /** Bumped by every write this cache makes, so a lookup answered before the write cannot overwrite it. */
  version: number;
  /** No touch sends anything before this (epoch ms). */
  nextTouchAt: number;
}

type TouchOutcome = 'done' | 'retry_soon' | 'retry_later';

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

/** The fields a collector owns and refreshes; `first_seen` is set once, at registration. */
function sightingFields(sighting: HostSighting, iso: string): HostMetadata {
  return { hostname: sighting.hostname, last_seen: iso, source_address: sighting.sourceAddress, protocol: sighting.protocol };
}

export interface HostMetadataCacheOptions {
  /** Clock (epoch ms); tests pass their own to step through TTLs. */
  now?: () => number;
}

export class HostMetadataCache {
  /** Map order is recency order: a used entry is moved to the end, the first is evicted. */
  private readonly entries = new Map<string, Entry>();
  private lookupsInFlight = 0;
  /** Lookups waiting for a slot, per tenant, served in turn (a quantum of one lookup). */
  private readonly lookupWaiters = new Map<string, LookupWaiters>();
  private readonly lookupRound = new DeficitRoundRobin<LookupWaiters>(1, waitingLookups);
  private readonly touches = new Set<Promise<void>>();
  private readonly now: () => number;
  private readonly results: Record<CacheLookupResult, Counter.Internal>;
  private readonly size: Gauge<never>;
  private closing: Promise<void> | null = null;
  private readonly touchBudget: TokenBucket;

  /** The cache owns `client` and closes it on close(). */
  constructor(private client: HostmetaCalls, private readonly config: HostmetaClientConfig,
    private readonly telemetry: Telemetry, options: HostMetadataCacheOptions = {}) {
    this.now = options.now ?? Date.now;
    this.touchBudget = new TokenBucket(config.touchesPerSecond, config.touchesPerSecond, this.now());
    const lookups = telemetry.hostmetaCacheLookups;
    this.results = {
      hit: lookups.labels('hit'),
      negative_hit: lookups.labels('negative_hit'),
      miss: lookups.labels('miss'),
      stale: lookups.labels('stale'),
      unavailable: lookups.labels('unavailable'),
    };
    this.size = telemetry.hostmetaCacheEntries;
  }

  /**
   * What is known now, without waiting: the document (fresh or stale), null
   * when the service has none, undefined when nothing is known yet. A missing
   * or expired value is looked up in the background.
   */
  peek(tenant: string, key: string): HostMetadata | null | undefined {
    const entry = this.entries.get(`${tenant}/${key}`);
    if (entry === undefined) {
      if (!this.closing && isTenantId(tenant) && isHostKey(key)) void this.lookup(this.entry(tenant, key), this.now());
      return undefined;
    }
    this.markUsed(entry);
    const now = this.now();
    if (entry.value === undefined || now >= entry.freshUntil) void this.lookup(entry, now);
    return entry.value;
  }

  /**
   * The document, or null when there is none or the service cannot say in
   * time. Waits at most `timeoutMs` (default `lookupTimeoutMs`); never rejects.
   */
  async get(tenant: string, key: string, options: { timeoutMs?: number } = {}): Promise<HostMetadata | null> {
    if (!isTenantId(tenant) || !isHostKey(key)) {
      this.results.unavailable.inc();
      return null;
    }
    const entry = this.entry(tenant, key);
    const now = this.now();
    if (entry.value !== undefined && now < entry.freshUntil) {
      this.results[entry.value === null ? 'negative_hit' : 'hit'].inc();
      return entry.value;
    }
    const pending = this.lookup(entry, now);
    const result = pending && await within(pending, options.timeoutMs ?? this.config.lookupTimeoutMs);
    if (result && result.ok) {
      this.results.miss.inc();
      return result.value;
    }
    if (entry.value !== undefined) {
      this.results.stale.inc();
      return entry.value;
    }
    this.results.unavailable.inc();
    return null;
  }

  /**
   * Record that a message from this host arrived. The first time, the host is
   * registered (created only if absent, so an existing document is never
   * replaced); afterwards its `last_seen` is refreshed at most once per
   * `touchIntervalMs`. Never waits; cheap when there is nothing to send.
   */
  touch(tenant: string, key: string, sighting: HostSighting): void {
    if (this.closing || !isTenantId(tenant) || !isHostKey(key)) return;
    const now = this.now();
    const entry = this.entry(tenant, key);
    if (now < entry.nextTouchAt) return;
    if (this.touches.size >= this.config.maxTouchesInFlight) {
      // nextTouchAt is left alone: the host's next message tries again.
      this.telemetry.hostmetaTouchesDropped.inc();
      this.telemetry.emit('hostmetaTouchesDropped', { reason: 'in_flight', in_flight: this.touches.size });
      return;
    }
    // Registrations are bookkeeping: when thousands of hosts appear at once they
    // must not take the time ingestion needs. Spread them; the next message retries.
    if (!this.touchBudget.tryTake(1, now)) {
      this.telemetry.hostmetaTouchesDropped.inc();
      this.telemetry.emit('hostmetaTouchesDropped', { reason: 'rate', per_second: this.config.touchesPerSecond });
      return;
    }
    entry.nextTouchAt = now + this.config.touchIntervalMs;
    const work = this.sendTouch(entry, sighting, new Date(now).toISOString()).then((outcome) => {
      if (outcome === 'retry_soon') entry.nextTouchAt = this.now() + this.config.retryAfterErrorMs;
    });
    this.touches.add(work);
    void work.finally(() => this.touches.delete(work));
  }

  /** Resolves once the touches in flight now have finished (each either sent or failed). */
  async whenTouchesSettled(): Promise<void> {
    await Promise.allSettled([...this.touches]);
  }

  /** Ask `next` from now on (a restarted client); the old one finishes what it has in flight, then closes. */
  replaceClient(next: HostmetaCalls): void {
    const old = this.client;
    this.client = next;
    void old.close();
  }

  /** Hosts held. */
  entryCount(): number {
    return this.entries.size;
  }

  /** Stop touching, let the touches in flight finish, close the client. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.whenTouchesSettled();
      await this.client.close();
    })();
    return this.closing;
  }

  private entry(tenant: string, key: string): Entry {
    const id = `${tenant}/${key}`;
    const found = this.entries.get(id);
    if (found) {
      this.markUsed(found);
      return found;
    }
    const entry: Entry = { tenant, key, value: undefined, freshUntil: 0, retryAt: 0, lookup: null, version: 0, nextTouchAt: 0 };
    this.entries.set(id, entry);
    if (this.entries.size > this.config.cacheMaxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.size.set(this.entries.size);
    return entry;
  }

  private markUsed(entry: Entry): void {
    const id = `${entry.tenant}/${entry.key}`;
    this.entries.delete(id);
    this.entries.set(id, entry);
  }

  /**
   * The lookup in flight for this host, or a new one, or null when none may
   * start (closing, or backing off after an error). Past maxLookupsInFlight a
   * new lookup waits its turn rather than failing: a burst of new hosts is
   * answered in order, each caller still bounded by its own timeout. Never rejects.
   */
  private lookup(entry: Entry, now: number): Promise<LookupResult> | null {
    if (entry.lookup) return entry.lookup;
    if (this.closing || now < entry.retryAt) return null;
    const lookup = this.whenLookupSlotFree(entry.tenant).then(() => this.fetch(entry)).finally(() => {
      entry.lookup = null;
    });
    entry.lookup = lookup;
    return lookup;
  }

  private whenLookupSlotFree(tenant: string): Promise<void> {
    if (this.lookupsInFlight < this.config.maxLookupsInFlight) {
      this.lookupsInFlight++;
      return Promise.resolve();
    }
    let flow = this.lookupWaiters.get(tenant);
    if (flow === undefined) {
      flow = new LookupWaiters();
      this.lookupWaiters.set(tenant, flow);
    }
    const waiters = flow;
    return new Promise((resolve) => {
      waiters.waiting.push(resolve);
      this.lookupRound.activate(waiters);
    });
  }

  private releaseLookupSlot(): void {
    const flow = this.lookupRound.pick();
    if (flow === null) {
      this.lookupsInFlight--;
      return;
    }
    const next = flow.waiting.shift()!;
    this.lookupRound.served(flow, 1);
    next(); // the slot passes straight to the next waiter
  }

  private async fetch(entry: Entry): Promise<LookupResult> {
    if (this.closing) {
      this.releaseLookupSlot();
      return { ok: false };
    }
    const versionAtStart = entry.version;
    try {
      const found = await this.client.get(entry.tenant, entry.key);
      // A write this cache made meanwhile is newer than what the service said before it;
      // but an answer is better than nothing when the write left no value here.
      if (entry.version === versionAtStart || entry.value === undefined) {
        entry.value = deepFreeze(found.metadata);
        entry.freshUntil = this.now() + (found.metadata === null ? this.config.cacheNegativeTtlMs : this.config.cacheTtlMs);
        entry.retryAt = 0;
      }
      return { ok: true, value: entry.value ?? null };
    } catch (err) {
      entry.retryAt = this.now() + this.config.retryAfterErrorMs;
      const reason = err instanceof HostmetaRequestError ? err.reason : 'error';
      if (reason !== 'closed') {
        this.telemetry.emit('hostmetaLookupFailed', { reason, tenant: entry.tenant, key: entry.key, error: (err as Error).message });
      }
      return { ok: false };
    } finally {
      this.releaseLookupSlot();
    }
  }

  private async sendTouch(entry: Entry, sighting: HostSighting, iso: string): Promise<TouchOutcome> {
    const { tenant, key } = entry;
    try {
      if (entry.value) {
        await this.refresh(entry, sightingFields(sighting, iso));
        return 'done';
      }
      const registration: HostMetadata = {
        hostname: sighting.hostname, first_seen: iso, last_seen: iso,
        source_address: sighting.sourceAddress, protocol: sighting.protocol,
      };
      const { created } = await this.client.create(tenant, key, registration);
      if (created) {
        entry.version++;
        entry.value = deepFreeze(registration);
        entry.freshUntil = this.now() + this.config.cacheTtlMs;
        entry.retryAt = 0;
        return 'done';
      }
      // Registered already (by another node, or an operator): refresh it, and read the real document on next use.
      await this.refresh(entry, sightingFields(sighting, iso));
      entry.freshUntil = 0;
      if (entry.value === null) entry.value = undefined;
      return 'done';
    } catch (err) {
      const reason = err instanceof HostmetaRequestError ? err.reason : 'error';
      if (reason !== 'closed') this.telemetry.emit('hostmetaTouchFailed', { reason, tenant, key, error: (err as Error).message });
      return err instanceof HostmetaRequestError && err.transient ? 'retry_soon' : 'retry_later';
    }
  }

  private async refresh(entry: Entry, fields: HostMetadata): Promise<void> {
    await this.client.patch(entry.tenant, entry.key, fields);
    entry.version++;
    if (entry.value) entry.value = deepFreeze(mergeDocument(entry.value, fields));
  }
}


/** `pending`'s result, or undefined once `timeoutMs` has passed. */
function within<T>(pending: Promise<T>, timeoutMs: number): Promise<T | undefined> {
  if (timeoutMs <= 0) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs, undefined);
    void pending.then((result) => {
      clearTimeout(timer);
      resolve(result);
    });
  });
}
