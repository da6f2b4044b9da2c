/** The schemas of the host metadata service and of its client, their configs in config.ts. */
import { Type } from '@sinclair/typebox';
import { address, duration, port, section, size } from '../../core/config-schema.js';
import { DEFAULT_HOSTMETA_CLIENT_CONFIG, DEFAULT_HOSTMETA_SERVICE_CONFIG } from './config.js';

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
