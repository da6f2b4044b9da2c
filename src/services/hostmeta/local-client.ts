/**
 * The metadata client for a node that runs the service itself: the same
 * calls as HostmetaClient, answered by the store directly. Going through HTTP
 * on loopback cost both ends of every request on the one event loop; with
 * 10,000 hosts appearing at once that was seconds of CPU (measured with
 * `sluice loadgen`). A remote service is still reached over HTTP.
 */
import type { BatchAnswer, BatchItem, HostmetaStore } from './store.js';
import type { HostMetadataPatch } from './schema.js';
import { HostmetaRequestError, type HostWrite } from './request-error.js';

/** What the cache needs of a client (HostmetaClient and LocalHostmetaClient). */
export interface HostmetaCalls {
  /** Get-or-create many hosts of one tenant; answers in the order of `items`. */
  getOrCreateMany(tenant: string, items: readonly BatchItem[]): Promise<BatchAnswer[]>;
  patch(tenant: string, key: string, fields: HostMetadataPatch): Promise<HostWrite>;
  close(): Promise<void>;
}

export class LocalHostmetaClient implements HostmetaCalls {
  constructor(private readonly store: HostmetaStore, private readonly maxDocumentBytes: number) {}

  getOrCreateMany(tenant: string, items: readonly BatchItem[]): Promise<BatchAnswer[]> {
    return this.store.getOrCreateMany(tenant, items, Date.now(), this.maxDocumentBytes);
  }

  async patch(tenant: string, key: string, fields: HostMetadataPatch): Promise<HostWrite> {
    const result = await this.store.merge(tenant, key, fields, Date.now(), this.maxDocumentBytes);
    if (result === 'too_large') throw new HostmetaRequestError('status', 'the merged document would be too large', 413);
    return { tenant, key };
  }

  /** The store belongs to the service, which closes it. */
  async close(): Promise<void> {}
}
