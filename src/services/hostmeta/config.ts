/**
 * Settings of the host metadata service and of the collector's client for it,
 * resolved (durations in ms, sizes in bytes). The YAML wiring maps onto these
 * types; every field has a default below, so both run with no configuration.
 */
import { Type } from '@sinclair/typebox';
import type { ScopedToken } from '../../core/access-tokens.js';
import type { BackoffPolicy } from '../../core/backoff.js';
import { address, duration, port, section, size } from '../../core/config-schema.js';

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

const service = DEFAULT_HOSTMETA_SERVICE_CONFIG;
const client = DEFAULT_HOSTMETA_CLIENT_CONFIG;

/** `hostmeta.service` in the YAML configuration. */
export const HostmetaServiceSchema = section(
  {
    enabled: Type.Boolean({ description: 'Run the host metadata service inside this node.', default: true }),
    address: address('Address the host metadata HTTP API binds to.', service.address),
    port: port('Port of the host metadata HTTP API; 0 picks a free port.', service.port),
    postgres_url: Type.Union([Type.String({ minLength: 1, pattern: '^postgres(ql)?://' }), Type.Null()], {
      description: 'PostgreSQL URL (`postgres://user@host:5432/db`) to keep host metadata in, shared by every node; `null` keeps it in SQLite at `<data_dir>/hostmeta.sqlite`.',
      default: service.postgresUrl,
      'x-type': 'URL or null',
      'x-expected': 'a postgres:// URL, or null',
    }),
    postgres_schema: Type.String({
      description: 'PostgreSQL schema for the tables; created when missing.',
      default: service.postgresSchema,
      pattern: '^[a-z_][a-z0-9_]{0,62}$',
      'x-expected': 'a lowercase SQL identifier such as sluice_hostmeta',
    }),
    postgres_pool_size: Type.Integer({ description: 'Connections the PostgreSQL pool may open.', default: service.postgresPoolSize, minimum: 1, maximum: 1000 }),
    max_document: size(service.maxDocumentBytes, 'Largest metadata document a PUT or PATCH may produce; larger: HTTP 413.'),
  },
  'The host metadata service (`GET/PUT/PATCH/DELETE /host_metadata/<tenant>/<host key>`, see hostmeta.md).',
);

/** `hostmeta.client` in the YAML configuration. */
export const HostmetaClientSchema = section(
  {
    enabled: Type.Boolean({ description: 'Enrich records with their host\'s metadata and register hosts as they are seen.', default: true }),
    // Not the constant's URL: null means the service this node runs, wherever it listens.
    url: Type.Union([Type.String({ minLength: 1, pattern: '^https?://' }), Type.Null()], {
      description: 'Base URL of the host metadata service; `null` uses the one this node runs.',
      default: null,
      'x-type': 'URL or null',
      'x-expected': 'an http:// URL, or null',
    }),
    token_file: Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
      description: 'File holding the token the client sends to a service at `url` (a copy of that service\'s `<data_dir>/hostmeta-token`); `null`: `<data_dir>/hostmeta-token`, which this node\'s own service writes. Read at start; a remote service without a readable token file stops the start.',
      default: null,
      'x-type': 'path or null',
      'x-expected': 'a file path, or null',
    }),
    connections: Type.Integer({ description: 'Keep-alive connections to the service.', default: client.connections, minimum: 1, maximum: 1024 }),
    cache_ttl: duration(client.cacheTtlMs, 'How long a host\'s metadata is used before it is asked for again.'),
    negative_cache_ttl: duration(client.cacheNegativeTtlMs, 'How long "this host has no metadata" is believed.'),
    cache_max_entries: Type.Integer({ description: 'Hosts kept in the cache (least recently used evicted).', default: client.cacheMaxEntries, minimum: 1 }),
    lookup_timeout: duration(client.lookupTimeoutMs, 'Longest a batch with a host never seen before waits for its metadata; then it goes on without, each record marked `meta_missing: timeout` (record.md).'),
    touch_interval: duration(client.touchIntervalMs, 'A host\'s `last_seen` is refreshed at most this often.'),
    restart_after: duration(client.restartAfterMs, 'A remote client whose every request has failed for this long is restarted by the supervisor with backoff (new connections, the address resolved again); lookups meanwhile are answered from the cache or go on without metadata. 0: never.'),
  },
  "The node's client of the host metadata service, with its cache.",
);
