/**
 * How a call to the metadata service failed, and the shapes of its answers:
 * shared by the HTTP client and the in-process one, without loading undici.
 */
import type { HostMetadata } from './schema.js';

/**
 * Why a call failed: `invalid_id` (refused before sending), `mismatch` (the
 * response named another request), `timeout`, `network`, `status` (a status
 * the operation does not expect), `invalid_body`, `closed` (the client was closed).
 */
export type HostmetaFailure = 'invalid_id' | 'mismatch' | 'timeout' | 'network' | 'status' | 'invalid_body' | 'closed';

export class HostmetaRequestError extends Error {
  constructor(readonly reason: HostmetaFailure, message: string, readonly status: number | null = null) {
    super(message);
    this.name = 'HostmetaRequestError';
  }

  /** Worth trying again later: the service may be back, the request itself was fine. */
  get transient(): boolean {
    return this.reason === 'timeout' || this.reason === 'network' || (this.reason === 'status' && (this.status ?? 0) >= 500);
  }
}

/** `tenant` and `key` are those the response named; they equal the request's, or the call would have failed with `mismatch`. */
export interface HostLookup { tenant: string; key: string; metadata: HostMetadata | null }
export interface HostWrite { tenant: string; key: string }
export interface HostCreate { tenant: string; key: string; created: boolean }
export interface HostDelete { tenant: string; key: string; deleted: boolean }

