/**
 * Enrichment: each record gets its host's metadata, and each host is
 * registered (and its last_seen refreshed) with the metadata service.
 *
 * The common case is synchronous: the host is in the cache, so a batch is
 * enriched in one pass with no await. Only a host the cache knows nothing
 * about costs a lookup, bounded in time; the batch (and the batches behind it
 * on the same lane) wait for it, others do not. Lookups never reject: with
 * the service down, records go on with stale metadata, or with none and a
 * `meta_missing` saying why (counted per tenant).
 */
import type { LogRecord } from './record.js';

export type HostMetadata = Readonly<Record<string, unknown>>;

/** Why a record goes on without its host's metadata: no answer in time, or the service failed (or is being backed off from). */
export type MetaMissing = 'timeout' | 'unavailable';

/** Counts records that go on without their host's metadata, by tenant and reason. */
export type MetaMissingCounter = (tenant: string, reason: MetaMissing) => void;

/** What enrichment needs from a metadata cache (HostMetadataCache provides it). */
export interface HostMetadataSource {
  /**
   * A message of the host arrived: register the host, or refresh its last_seen
   * (rate-limited per host inside, fire-and-forget), and return its cached
   * metadata: the document, null when the host has none, undefined when nothing is known yet.
   */
  sighted(tenant: string, key: string, hostname: string, sourceAddress: string, protocol: string): HostMetadata | null | undefined;
  /** Resolves within the timeout and never rejects: the document, null when the host has none, or why it is missing. */
  get(tenant: string, key: string, options: { timeoutMs?: number }): Promise<HostMetadata | null | MetaMissing>;
}

export class Enricher {
  constructor(readonly metadata: HostMetadataSource, private readonly sourceName: string, private readonly countMissing: MetaMissingCounter) {}

  /**
   * Attach metadata to every record. Returns null when done synchronously,
   * else a promise that resolves (never rejects) once the unknown hosts were
   * looked up.
   */
  enrich(records: readonly LogRecord[]): Promise<void> | null {
    let lastHost = '';
    let lastTenant = '';
    let lastMeta: HostMetadata | null | undefined;
    let misses: LogRecord[] | null = null;
    for (let i = 0; i < records.length; i++) {
      const rec = records[i]!;
      // Records of one connection are mostly of one host: look it up once per run.
      if (rec.host !== lastHost || rec.tenant !== lastTenant) {
        lastHost = rec.host;
        lastTenant = rec.tenant;
        const address = rec.source?.address ?? '';
        lastMeta = this.metadata.sighted(rec.tenant, rec.host, rec.hostname ?? address, address, this.sourceName);
      }
      if (lastMeta === undefined) (misses ??= []).push(rec);
      else rec.meta = lastMeta as Record<string, unknown> | null;
    }
    return misses === null ? null : this.lookUp(misses);
  }

  private async lookUp(misses: LogRecord[]): Promise<void> {
    const byHost = new Map<string, Promise<HostMetadata | null | MetaMissing>>();
    for (const rec of misses) {
      const id = `${rec.tenant}/${rec.host}`;
      if (!byHost.has(id)) byHost.set(id, this.metadata.get(rec.tenant, rec.host, {}));
    }
    for (const rec of misses) {
      const found = await byHost.get(`${rec.tenant}/${rec.host}`)!;
      if (typeof found === 'string') {
        rec.metaMissing = found;
        this.countMissing(rec.tenant, found);
      } else {
        rec.meta = found as Record<string, unknown> | null;
      }
    }
  }
}
