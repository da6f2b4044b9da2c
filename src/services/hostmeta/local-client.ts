/**
 * The metadata client for a node that runs the service itself: the same
 * calls as HostmetaClient, answered by the store directly. Going through HTTP
 * on loopback cost both ends of every request on the one event loop; with
 * 10,000 hosts appearing at once that was seconds of CPU (measured with
 * `sluice loadgen`). A remote service is still reached over HTTP.
 */
import type { HostmetaStore } from './store.js';
import type { HostMetadata, HostMetadataPatch } from './schema.js';
import { HostmetaRequestError, type HostCreate, type HostLookup, type HostWrite } from './request-error.js';

/** What the cache needs of a client (HostmetaClient and LocalHostmetaClient). */
export interface HostmetaCalls {
  get(tenant: string, key: string): Promise<HostLookup>;
  create(tenant: string, key: string, metadata: HostMetadata): Promise<HostCreate>;
  patch(tenant: string, key: string, fields: HostMetadataPatch): Promise<HostWrite>;
  close(): Promise<void>;
}

export class LocalHostmetaClient implements HostmetaCalls {
  constructor(private readonly store: HostmetaStore, private readonly maxDocumentBytes: number) {}

  async get(tenant: string, key: string): Promise<HostLookup> {
    const found = await this.store.get(tenant, key);
    return { tenant, key, metadata: found === null ? null : found.metadata };
  }

  async create(tenant: string, key: string, metadata: HostMetadata): Promise<HostCreate> {
    return { tenant, key, created: await this.store.create(tenant, key, metadata, Date.now()) };
  }

  async patch(tenant: string, key: string, fields: HostMetadataPatch): Promise<HostWrite> {
    const result = await this.store.merge(tenant, key, fields, Date.now(), this.maxDocumentBytes);
    if (result === 'too_large') throw new HostmetaRequestError('status', 'the merged document would be too large', 413);
    return { tenant, key };
  }

  /** The store belongs to the service, which closes it. */
  async close(): Promise<void> {}
}
