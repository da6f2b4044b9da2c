/**
 * The cache between ingestion and the host metadata service, so that an
 * unreachable or slow service never stalls ingestion:
 *
 * - `peek()` answers synchronously from memory; when the value is missing or
 *   expired it starts a lookup in the background.
 * - `get()` waits at most `timeoutMs` for a lookup and never rejects: on
 *   error or timeout it serves the last known value (stale), or says why it
 *   has none (`timeout`, `unavailable`).
 * - Lookups are gathered into batches: the misses of one event-loop turn go
 *   out together, up to `lookupBatchHosts` hosts of one tenant per request
 *   (the service's get-or-create batch), at most `lookupBatchesInFlight`
 *   requests at once; tenants with misses waiting take batches in turn, so a
 *   tenant bringing thousands of new hosts at once delays another tenant's
 *   lookup by one batch, not by its whole burst.
 * - Concurrent misses of one host share one lookup (single flight); after a
 *   failed lookup the host is not asked for again for `retryAfterErrorMs`.
 * - Documents are kept for `cacheTtlMs`, "no document" (404) for the shorter
 *   `cacheNegativeTtlMs`; at most `cacheMaxEntries` hosts, least recently used evicted.
 * - `touch()` registers a host the first time it is seen — its lookup carries
 *   the registration, created when the service has no document and merged
 *   into the one it has otherwise, so a new (or, after a restart, known) host
 *   costs no request of its own and its first records get the document — and
 *   refreshes its `last_seen` at most once per `touchIntervalMs`,
 *   fire-and-forget, with a bound on how many refreshes are in flight and
 *   start per second (past them: dropped and counted).
 */
import type { Counter, Gauge } from 'prom-client';
import type { MetaMissing } from '../../core/enrich.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { HostmetaRequestError } from './request-error.js';
import type { HostmetaCalls } from './local-client.js';
import { TokenBucket } from '../../core/token-bucket.js';
import type { HostmetaClientConfig } from './config.js';

/** What the cache reads of the client's settings (not where the service is: that is the client's). */
export type CacheSettings = Omit<HostmetaClientConfig, 'url' | 'token'>;
import { isHostKey, isTenantId } from './keys.js';
import type { HostMetadata } from './schema.js';
import { mergeDocument, type BatchAnswer } from './store.js';
import { DeficitRoundRobin, DrrFlow } from '../../core/fair.js';

/** One tenant's hosts waiting to be looked up, oldest first. */
class TenantLookups extends DrrFlow {
  readonly waiting: Entry[] = [];
  constructor(readonly tenant: string) {
    super();
  }
}

/** A tenant with hosts waiting takes one batch per turn. */
const waitingBatch = (flow: TenantLookups): number => (flow.waiting.length > 0 ? 1 : 0);

/** How a `get()` was answered (the `result` label of the lookups counter). */
export type CacheLookupResult = 'hit' | 'negative_hit' | 'miss' | 'stale' | 'unavailable' | 'timeout';

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
  /** The lookup queued or in flight, shared by every waiter (single flight). */
  lookup: Promise<LookupResult> | null;
  /** Settles `lookup` (set while it is queued or in flight). */
  settle: ((result: LookupResult) => void) | null;
  /**
   * What the latest touch saw, while the host's registration is still to be
   * sent: the next batch creates the document from it when the service has none.
   */
  sighting: HostMetadata | null;
  /** Bumped by every write this cache makes, so a lookup answered before the write cannot overwrite it. */
  version: number;
  /** No touch sends anything before this (epoch ms). */
  nextTouchAt: number;
  /** When it was last put at the end of the cache's order (a count of such moves, see find). */
  position: number;
}

/** A host as one batch sends it: the sighting it registers (if any), and the entry's version when it was sent. */
interface SentLookup {
  entry: Entry;
  sighting: HostMetadata | null;
  version: number;
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
function sightingFields(hostname: string, sourceAddress: string, protocol: string, iso: string): HostMetadata {
  return { hostname, last_seen: iso, source_address: sourceAddress, protocol };
}

export interface HostMetadataCacheOptions {
  /** Clock (epoch ms); tests pass their own to step through TTLs. */
  now?: () => number;
}

export class HostMetadataCache {
  /**
   * By tenant, then key: found without joining the two into one string per
   * record (that join and its hashing were the read path's costliest call
   * under W5, docs/benchmarks.md).
   */
  private readonly byTenant = new Map<string, Map<string, Entry>>();
  /**
   * Every entry, least recently used first: the first is evicted. A hit
   * moves its entry to the end only when it is in the older half (see find),
   * so the hosts in use are not moved on every record.
   */
  private readonly order = new Set<Entry>();
  /** Moves to the end of `order` so far (an entry's `position` is this count when it was moved). */
  private position = 0;
  /** Hosts waiting for a batch, per tenant; tenants take batches in turn. */
  private readonly waitingByTenant = new Map<string, TenantLookups>();
  private readonly batchRound = new DeficitRoundRobin<TenantLookups>(1, waitingBatch);
  private batchesInFlight = 0;
  /** A send of the waiting lookups is scheduled for the end of this turn. */
  private sendScheduled = false;
  private readonly touches = new Set<Promise<void>>();
  private readonly now: () => number;
  private readonly results: Record<CacheLookupResult, Counter.Internal>;
  private readonly size: Gauge<never>;
  private closing: Promise<void> | null = null;
  private readonly touchBudget: TokenBucket;
  private readonly sendWaiting = (): void => {
    this.sendScheduled = false;
    this.sendBatches();
  };

  /** The cache owns `client` and closes it on close(). */
  constructor(private client: HostmetaCalls, private readonly config: CacheSettings,
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
      timeout: lookups.labels('timeout'),
    };
    this.size = telemetry.hostmetaCacheEntries;
  }

  /**
   * What is known now, without waiting: the document (fresh or stale), null
   * when the service has none, undefined when nothing is known yet. A missing
   * or expired value is looked up in the background.
   */
  peek(tenant: string, key: string): HostMetadata | null | undefined {
    const entry = this.find(tenant, key);
    if (entry === undefined) {
      if (!this.closing && isTenantId(tenant) && isHostKey(key)) void this.lookup(this.create(tenant, key), this.now());
      return undefined;
    }
    return this.current(entry, this.now());
  }

  /**
   * A message from this host arrived: touch(), then what peek() would return,
   * in one lookup of the host's entry (the enricher's call, once per run of a
   * host's records). The sighting comes as its fields: an object per record
   * would be garbage but for the one in a touch interval that is sent.
   */
  sighted(tenant: string, key: string, hostname: string, sourceAddress: string, protocol: string): HostMetadata | null | undefined {
    let entry = this.find(tenant, key);
    if (entry === undefined) {
      if (this.closing || !isTenantId(tenant) || !isHostKey(key)) return undefined;
      entry = this.create(tenant, key);
    }
    const now = this.now();
    this.touchEntry(entry, hostname, sourceAddress, protocol, now);
    return this.current(entry, now);
  }

  /** What is known of the entry now; a missing or expired value is looked up in the background. */
  private current(entry: Entry, now: number): HostMetadata | null | undefined {
    if (entry.value === undefined || now >= entry.freshUntil) void this.lookup(entry, now);
    return entry.value;
  }

  /**
   * The document, null when the service has none, or — when it cannot say in
   * time and nothing was known before — why: `timeout` (no answer within
   * `timeoutMs`, default `lookupTimeoutMs`) or `unavailable` (the lookup
   * failed, or none may start: backing off after a failure, closing, invalid
   * ids). Never rejects.
   */
  async get(tenant: string, key: string, options: { timeoutMs?: number } = {}): Promise<HostMetadata | null | MetaMissing> {
    if (!isTenantId(tenant) || !isHostKey(key)) {
      this.results.unavailable.inc();
      return 'unavailable';
    }
    const entry = this.find(tenant, key) ?? this.create(tenant, key);
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
    const missing = result === undefined && pending !== null ? 'timeout' : 'unavailable';
    this.results[missing].inc();
    return missing;
  }

  /**
   * Record that a message from this host arrived. The first time, the host's
   * lookup carries its registration: created when the service has none, else
   * merged into the document it has (the collector's fields only: `first_seen`
   * and operators' fields stay). Afterwards its `last_seen` is refreshed at
   * most once per `touchIntervalMs`. Never waits; cheap when there is nothing to send.
   */
  touch(tenant: string, key: string, sighting: HostSighting): void {
    if (this.closing || !isTenantId(tenant) || !isHostKey(key)) return;
    this.touchEntry(this.find(tenant, key) ?? this.create(tenant, key), sighting.hostname, sighting.sourceAddress, sighting.protocol, this.now());
  }

  private touchEntry(entry: Entry, hostname: string, sourceAddress: string, protocol: string, now: number): void {
    if (this.closing || now < entry.nextTouchAt) return;
    const iso = new Date(now).toISOString();
    if (!entry.value) {
      // Not known to be registered: register it with the lookup (one batch for every new host of the turn).
      entry.nextTouchAt = now + this.config.touchIntervalMs;
      entry.sighting = sightingFields(hostname, sourceAddress, protocol, iso);
      entry.retryAt = 0;
      void this.lookup(entry, now);
      return;
    }
    this.refreshLater(entry, sightingFields(hostname, sourceAddress, protocol, iso), now);
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
    return this.order.size;
  }

  /** Stop touching, let the touches in flight finish, close the client. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // Lookups still waiting for a batch are not sent: their callers go on without.
      for (const flow of this.waitingByTenant.values()) {
        for (const entry of flow.waiting.splice(0)) this.settle(entry, { ok: false });
        this.batchRound.remove(flow);
      }
      await this.whenTouchesSettled();
      await this.client.close();
    })();
    return this.closing;
  }

  /**
   * The host's entry, undefined when the cache holds none. A used entry more
   * than half the cache's size of moves behind the end is moved to the end:
   * the order stays least recently used first to within half the cache, at a
   * move per entry per half-cache of new hosts instead of one per record.
   */
  private find(tenant: string, key: string): Entry | undefined {
    const entry = this.byTenant.get(tenant)?.get(key);
    if (entry !== undefined && this.position - entry.position > this.config.cacheMaxEntries / 2) {
      this.order.delete(entry);
      this.order.add(entry);
      entry.position = ++this.position;
    }
    return entry;
  }

  /** A new entry for a host the cache holds none of (the ids are valid: the caller checked); the least recently used goes if the cache is full. */
  private create(tenant: string, key: string): Entry {
    const entry: Entry = {
      tenant, key, value: undefined, freshUntil: 0, retryAt: 0, lookup: null, settle: null, sighting: null, version: 0, nextTouchAt: 0,
      position: ++this.position,
    };
    let hosts = this.byTenant.get(tenant);
    if (hosts === undefined) this.byTenant.set(tenant, hosts = new Map());
    hosts.set(key, entry);
    this.order.add(entry);
    if (this.order.size > this.config.cacheMaxEntries) {
      const oldest = this.order.values().next();
      if (!oldest.done) this.evict(oldest.value);
    }
    this.size.set(this.order.size);
    return entry;
  }

  private evict(entry: Entry): void {
    this.order.delete(entry);
    const hosts = this.byTenant.get(entry.tenant);
    hosts?.delete(entry.key);
    if (hosts?.size === 0) this.byTenant.delete(entry.tenant);
  }

  /**
   * The lookup queued or in flight for this host, or a new one, or null when
   * none may start (closing, or backing off after an error). A new one waits
   * for the end of the turn and a batch (each caller still bounded by its own
   * timeout). Never rejects.
   */
  private lookup(entry: Entry, now: number): Promise<LookupResult> | null {
    if (entry.lookup) return entry.lookup;
    if (this.closing || now < entry.retryAt) return null;
    entry.lookup = new Promise((resolve) => {
      entry.settle = resolve;
    });
    let flow = this.waitingByTenant.get(entry.tenant);
    if (flow === undefined) {
      flow = new TenantLookups(entry.tenant);
      this.waitingByTenant.set(entry.tenant, flow);
    }
    flow.waiting.push(entry);
    this.batchRound.activate(flow);
    if (!this.sendScheduled) {
      this.sendScheduled = true;
      setImmediate(this.sendWaiting);
    }
    return entry.lookup;
  }

  private settle(entry: Entry, result: LookupResult): void {
    const settle = entry.settle;
    entry.settle = null;
    entry.lookup = null;
    settle?.(result);
  }

  /** Send batches of waiting lookups while there is room: one tenant per batch, tenants in turn. */
  private sendBatches(): void {
    while (this.batchesInFlight < this.config.lookupBatchesInFlight && !this.closing) {
      const flow = this.batchRound.pick();
      if (flow === null) return;
      const taken = flow.waiting.splice(0, this.config.lookupBatchHosts);
      this.batchRound.served(flow, 1);
      if (flow.waiting.length === 0) this.waitingByTenant.delete(flow.tenant);
      this.batchesInFlight++;
      const sent = taken.map((entry): SentLookup => {
        const sighting = entry.sighting;
        entry.sighting = null;
        return { entry, sighting, version: entry.version };
      });
      void this.sendBatch(flow.tenant, sent).finally(() => {
        this.batchesInFlight--;
        this.sendBatches();
      });
    }
  }

  private async sendBatch(tenant: string, sent: readonly SentLookup[]): Promise<void> {
    let answers: BatchAnswer[];
    try {
      // A registration creates the document, or merges the sighting into the one there is (registered by another node, an
      // operator, an earlier run): one request either way, which matters when a restarted node sees thousands of known hosts at once.
      answers = await this.client.getOrCreateMany(tenant, sent.map(({ entry, sighting }) =>
        (sighting === null ? { key: entry.key } : { key: entry.key, create: { ...sighting, first_seen: sighting.last_seen }, update: sighting })));
    } catch (err) {
      const now = this.now();
      for (const { entry, sighting } of sent) {
        entry.retryAt = now + this.config.retryAfterErrorMs;
        // The registration goes again with the host's next message after the pause.
        if (sighting !== null) entry.nextTouchAt = now + this.config.retryAfterErrorMs;
        this.settle(entry, { ok: false });
      }
      const reason = err instanceof HostmetaRequestError ? err.reason : 'error';
      if (reason !== 'closed') {
        this.telemetry.emit('hostmetaLookupFailed', { reason, tenant, hosts: sent.length, error: (err as Error).message });
      }
      return;
    }
    const now = this.now();
    for (let i = 0; i < sent.length; i++) {
      const { entry, version } = sent[i]!;
      const { metadata } = answers[i]!;
      // A write this cache made meanwhile is newer than what the service said before it;
      // but an answer is better than nothing when the write left no value here.
      if (entry.version === version || entry.value === undefined) {
        entry.value = deepFreeze(metadata);
        entry.freshUntil = now + (metadata === null ? this.config.cacheNegativeTtlMs : this.config.cacheTtlMs);
        entry.retryAt = 0;
      }
      this.settle(entry, { ok: true, value: entry.value ?? null });
      if (entry.sighting !== null && metadata === null) {
        // A touch came while a lookup without registration was in flight: register now.
        void this.lookup(entry, now);
      }
    }
  }

  /** Refresh the host's document with `fields` (a PATCH), fire-and-forget, within the in-flight and rate bounds. */
  private refreshLater(entry: Entry, fields: HostMetadata, now: number): void {
    if (this.touches.size >= this.config.maxTouchesInFlight) {
      // nextTouchAt is left alone: the host's next message tries again.
      this.telemetry.hostmetaTouchesDropped.inc();
      this.telemetry.emit('hostmetaTouchesDropped', { reason: 'in_flight', in_flight: this.touches.size });
      return;
    }
    // Refreshes are bookkeeping: when thousands of hosts appear at once they
    // must not take the time ingestion needs. Spread them; the next message retries.
    if (!this.touchBudget.tryTake(1, now)) {
      this.telemetry.hostmetaTouchesDropped.inc();
      this.telemetry.emit('hostmetaTouchesDropped', { reason: 'rate', per_second: this.config.touchesPerSecond });
      return;
    }
    entry.nextTouchAt = now + this.config.touchIntervalMs;
    const work = this.sendRefresh(entry, fields).then((outcome) => {
      if (outcome === 'retry_soon') entry.nextTouchAt = this.now() + this.config.retryAfterErrorMs;
    });
    this.touches.add(work);
    void work.finally(() => this.touches.delete(work));
  }

  private async sendRefresh(entry: Entry, fields: HostMetadata): Promise<TouchOutcome> {
    const { tenant, key } = entry;
    try {
      await this.client.patch(tenant, key, fields);
      entry.version++;
      if (entry.value) entry.value = deepFreeze(mergeDocument(entry.value, fields));
      return 'done';
    } catch (err) {
      const reason = err instanceof HostmetaRequestError ? err.reason : 'error';
      if (reason !== 'closed') this.telemetry.emit('hostmetaTouchFailed', { reason, tenant, key, error: (err as Error).message });
      return err instanceof HostmetaRequestError && err.transient ? 'retry_soon' : 'retry_later';
    }
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
