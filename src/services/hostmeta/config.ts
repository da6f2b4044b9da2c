/**
 * Settings of the host metadata service and of the collector's client for it,
 * resolved (durations in ms, sizes in bytes). The YAML wiring maps onto these
 * types; every field has a default below, so both run with no configuration.
 */
import type { ScopedToken } from '../../core/access-tokens.js';
import type { BackoffPolicy } from '../../core/backoff.js';

export interface HostmetaServiceConfig {
  /** Address the HTTP API listens on. */
  address: string;
  /** Port of the HTTP API; 0 picks a free one. */
  port: number;
  /** Folder of the SQLite database `hostmeta.sqlite` (not used with PostgreSQL). */
  dataDir: string;
  /** PostgreSQL connection URL; null keeps the embedded SQLite store. */
  postgresUrl: string | null;
  /** PostgreSQL schema holding the tables; created when missing. */
  postgresSchema: string;
  /** Connections the PostgreSQL pool may open. */
  postgresPoolSize: number;
  /** Largest document: a PUT or PATCH body, and the document a PATCH produces. Over it: 413. */
  maxDocumentBytes: number;
}

export const DEFAULT_HOSTMETA_SERVICE_CONFIG: Readonly<HostmetaServiceConfig> = Object.freeze({
  address: '127.0.0.1',
  port: 8090,
  dataDir: './data',
  postgresUrl: null,
  postgresSchema: 'sluice_hostmeta',
  postgresPoolSize: 10,
  maxDocumentBytes: 64 * 1024,
});

/**
 * Who may call the service, and which tenants it keeps hosts for. Besides
 * these tokens the service accepts its own client credential, kept in
 * `<dataDir>/hostmeta-token` ({@link HOSTMETA_TOKEN_FILE}).
 */
export interface HostmetaAccess {
  /** Tenants whose hosts the service keeps; a request naming any other is answered 404 and stores nothing. */
  tenants: readonly string[];
  /** The node's admin tokens: whole node (every tenant) or one tenant each. None: the generated `<dataDir>/admin-token`. */
  tokens: readonly ScopedToken[];
}

/** The file under the service's data dir holding the collectors' credential (generated at first start, mode 0600). */
export const HOSTMETA_TOKEN_FILE = 'hostmeta-token';

export interface HostmetaClientConfig {
  /** Base URL of the service, e.g. `http://127.0.0.1:8090`. */
  url: string;
  /** Bearer token sent with every request (the service's `hostmeta-token`); null sends none. */
  token: string | null;
  /** Keep-alive connections the pool may open to the service. */
  connections: number;
  /** An idle connection is closed after this long (or the server's shorter keep-alive hint). */
  keepAliveTimeoutMs: number;
  connectTimeoutMs: number;
  /** Longest wait for a response's headers. */
  headersTimeoutMs: number;
  /** Longest silence while a response's body is arriving. */
  bodyTimeoutMs: number;
  /** A response body larger than this is refused. */
  maxResponseBytes: number;
  /** Retries of a GET after a network error, a timeout or a 5xx. Writes are never retried. */
  getRetries: number;
  retryBackoff: BackoffPolicy;
  /** How long a document read from the service is used without asking again. */
  cacheTtlMs: number;
  /** How long "no document" (404) is believed; shorter, so new registrations show up soon. */
  cacheNegativeTtlMs: number;
  /** Hosts the cache keeps; the least recently used is evicted past this. */
  cacheMaxEntries: number;
  /** After a failed lookup of a host, its last known value is served without asking again for this long. */
  retryAfterErrorMs: number;
  /** Default bound on how long `HostMetadataCache.get` waits for the service. */
  lookupTimeoutMs: number;
  /** Hosts one lookup batch (a get-or-create request) names at most; the service takes up to 1,000. */
  lookupBatchHosts: number;
  /** Lookup batches outstanding at once; more wait their turn, tenants in turn (each caller still bounded by its timeout). */
  lookupBatchesInFlight: number;
  /** A client whose every request has failed for this long is restarted by the node's supervisor (a new pool). 0: never. */
  restartAfterMs: number;
  /** `last_seen` of a host is refreshed at most once per this interval. */
  touchIntervalMs: number;
  /** `last_seen` refreshes outstanding at once; past this, touches are dropped and counted (registrations go with lookups). */
  maxTouchesInFlight: number;
  /** `last_seen` refreshes started per second at most (the rest wait for the host's next message). */
  touchesPerSecond: number;
}

export const DEFAULT_HOSTMETA_CLIENT_CONFIG: Readonly<HostmetaClientConfig> = Object.freeze({
  url: 'http://127.0.0.1:8090',
  token: null,
  connections: 16,
  keepAliveTimeoutMs: 4_000,
  connectTimeoutMs: 2_000,
  headersTimeoutMs: 5_000,
  bodyTimeoutMs: 5_000,
  maxResponseBytes: 1024 * 1024,
  getRetries: 2,
  retryBackoff: Object.freeze({ initialMs: 50, maxMs: 1_000 }),
  cacheTtlMs: 5 * 60_000,
  cacheNegativeTtlMs: 30_000,
  cacheMaxEntries: 50_000,
  retryAfterErrorMs: 5_000,
  lookupTimeoutMs: 250,
  lookupBatchHosts: 500,
  lookupBatchesInFlight: 4,
  touchIntervalMs: 60_000,
  restartAfterMs: 30_000,
  maxTouchesInFlight: 256,
  touchesPerSecond: 1000,
});
