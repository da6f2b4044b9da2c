/**
 * The host metadata HTTP API (fastify) and the function that runs it, alone
 * (`sluice hostmeta`) or inside a node.
 *
 * Every response of a route under /host_metadata/ carries `x-hostmeta-tenant`
 * and `x-hostmeta-key`, echoing the path of the request it answers, so a
 * client can prove a response is its own — the seed's HTTP client once handed
 * one request's 204 to another request.
 */
import path from 'node:path';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Telemetry } from '../../telemetry/telemetry.js';
import type { HostmetaServiceConfig } from './config.js';
import { PostgresHostmetaStore } from './postgres-store.js';
import {
  documentProblem,
  HOST_KEY_PATTERN,
  isHostKey,
  isTenantId,
  KEY_HEADER,
  patchProblem,
  TENANT_HEADER,
  TENANT_PATTERN,
  type HostMetadata,
  type HostMetadataPatch,
} from './schema.js';
import { SQLITE_FILE_NAME, SqliteHostmetaStore } from './sqlite-store.js';
import type { HostmetaStore } from './store.js';

export const DEFAULT_PAGE_LIMIT = 100;
export const MAX_PAGE_LIMIT = 1000;
export const MERGE_PATCH_CONTENT_TYPE = 'application/merge-patch+json';

/** The body of every error response. `part` names what was wrong: tenant, key, body, cursor, limit, if-none-match, path. */
export interface ErrorBody {
  error: string;
  part?: string;
  message: string;
}

interface ItemParams { tenant: string; key: string }
interface TenantParams { tenant: string }
interface ListQuery { cursor?: unknown; limit?: unknown }

/** Header values must be visible ASCII; an invalid id may be anything, so it is echoed percent-encoded (valid ids encode to themselves). */
function echo(value: string): string {
  return encodeURIComponent(value);
}

function badRequest(part: string, message: string): ErrorBody {
  return { error: 'bad_request', part, message };
}

function tenantProblem(tenant: string): ErrorBody | null {
  return isTenantId(tenant) ? null : badRequest('tenant', `tenant ${JSON.stringify(tenant)} must match ${TENANT_PATTERN.source}`);
}

function keyProblem(key: string): ErrorBody | null {
  return isHostKey(key) ? null : badRequest('key', `key ${JSON.stringify(key)} must be 40 lowercase hex characters`);
}

/** A cursor is the last key of the previous page, as base64url: opaque to clients, cheap to check. */
export function encodeCursor(key: string): string {
  return Buffer.from(key, 'hex').toString('base64url');
}

export function decodeCursor(cursor: string): string | null {
  const key = Buffer.from(cursor, 'base64url').toString('hex');
  return HOST_KEY_PATTERN.test(key) && encodeCursor(key) === cursor ? key : null;
}

function parseLimit(raw: unknown): number | null {
  if (raw === undefined) return DEFAULT_PAGE_LIMIT;
  if (typeof raw !== 'string' || !/^\d{1,4}$/.test(raw)) return null;
  const limit = Number(raw);
  return limit >= 1 && limit <= MAX_PAGE_LIMIT ? limit : null;
}

export interface HostmetaAppOptions {
  maxDocumentBytes: number;
  telemetry: Telemetry;
  /** Clock of `updated_at` (epoch ms). */
  now?: () => number;
}

/** The fastify app, routes registered, not listening: tests add hooks before `listen`. */
export function buildHostmetaApp(store: HostmetaStore, options: HostmetaAppOptions): FastifyInstance {
  const { maxDocumentBytes, telemetry } = options;
  const now = options.now ?? Date.now;
  const app = Fastify({
    logger: false,
    bodyLimit: maxDocumentBytes,
    // Long enough that an over-long tenant reaches the handler and gets a 400 naming it, not a 404.
    routerOptions: { maxParamLength: 1000 },
    // A client that sends headers and then nothing does not hold a connection forever.
    requestTimeout: 30_000,
    // A path that does not even decode (e.g. `%zz`): answered in the same error shape as the rest.
    frameworkErrors: (error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => reply.code(400).send(badRequest('path', error.message)),
  });

  app.addContentTypeParser(MERGE_PATCH_CONTENT_TYPE, { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));

  app.setErrorHandler((error: FastifyError, _request, reply) => {
    const status = error.statusCode ?? 500;
    if (status === 413) {
      return reply.code(413).send({ error: 'too_large', part: 'body', message: `body is over the ${maxDocumentBytes}-byte limit` });
    }
    if (status === 415) {
      return reply.code(415).send({ error: 'unsupported_media_type', part: 'body', message: 'send the body as application/json (a PATCH may also use application/merge-patch+json)' });
    }
    if (status >= 400 && status < 500) {
      const invalidJson = error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || error instanceof SyntaxError;
      return reply.code(status).send({ error: invalidJson ? 'invalid_json' : 'bad_request', part: 'body', message: error.message });
    }
    telemetry.emit('hostmetaStoreFailed', { error: error.message });
    return reply.code(500).send({ error: 'internal', message: 'the request failed; see the service log' });
  });

  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url}` }));

  app.get('/healthz', async (_request, reply) => {
    try {
      await store.ping();
      return { status: 'ok', store: store.kind };
    } catch (err) {
      return reply.code(503).send({ status: 'unavailable', store: store.kind, error: (err as Error).message });
    }
  });

  // Runs before the body is read: the echo is on every response, and a bad path is refused before its body costs anything.
  const checkItem = async (request: FastifyRequest<{ Params: ItemParams }>, reply: FastifyReply) => {
    const { tenant, key } = request.params;
    reply.header(TENANT_HEADER, echo(tenant)).header(KEY_HEADER, echo(key));
    const problem = tenantProblem(tenant) ?? keyProblem(key);
    if (problem) return reply.code(400).send(problem);
  };

  const ITEM = '/host_metadata/:tenant/:key';
  const notFound = (tenant: string, key: string): ErrorBody => ({ error: 'not_found', message: `no metadata for ${tenant}/${key}` });

  app.get<{ Params: ItemParams }>(ITEM, { onRequest: checkItem }, async (request, reply) => {
    const { tenant, key } = request.params;
    const host = await store.get(tenant, key);
    if (!host) return reply.code(404).send(notFound(tenant, key));
    return reply.code(200).send(host.metadata);
  });

  app.put<{ Params: ItemParams }>(ITEM, { onRequest: checkItem }, async (request, reply) => {
    const { tenant, key } = request.params;
    const ifNoneMatch = request.headers['if-none-match'];
    if (ifNoneMatch !== undefined && ifNoneMatch !== '*') {
      return reply.code(400).send(badRequest('if-none-match', 'only "If-None-Match: *" (create when absent) is supported'));
    }
    const problem = documentProblem(request.body);
    if (problem) return reply.code(400).send(badRequest('body', problem));
    const metadata = request.body as HostMetadata;
    if (ifNoneMatch === '*') {
      if (!(await store.create(tenant, key, metadata, now()))) {
        return reply.code(412).send({ error: 'exists', message: `metadata for ${tenant}/${key} already exists` });
      }
    } else {
      await store.put(tenant, key, metadata, now());
    }
    return reply.code(204).send();
  });

  app.patch<{ Params: ItemParams }>(ITEM, { onRequest: checkItem }, async (request, reply) => {
    const { tenant, key } = request.params;
    const problem = patchProblem(request.body);
    if (problem) return reply.code(400).send(badRequest('body', problem));
    const result = await store.merge(tenant, key, request.body as HostMetadataPatch, now(), maxDocumentBytes);
    if (result === 'too_large') {
      return reply.code(413).send({ error: 'too_large', part: 'body', message: `the merged document would be over the ${maxDocumentBytes}-byte limit` });
    }
    return reply.code(204).send();
  });

  app.delete<{ Params: ItemParams }>(ITEM, { onRequest: checkItem }, async (request, reply) => {
    const { tenant, key } = request.params;
    if (!(await store.delete(tenant, key))) return reply.code(404).send(notFound(tenant, key));
    return reply.code(204).send();
  });

  app.get<{ Params: TenantParams; Querystring: ListQuery }>('/host_metadata/:tenant', async (request, reply) => {
    const { tenant } = request.params;
    reply.header(TENANT_HEADER, echo(tenant));
    const bad = tenantProblem(tenant);
    if (bad) return reply.code(400).send(bad);
    const limit = parseLimit(request.query.limit);
    if (limit === null) return reply.code(400).send(badRequest('limit', `limit must be an integer from 1 to ${MAX_PAGE_LIMIT}`));
    const { cursor } = request.query;
    let afterKey: string | null = null;
    if (cursor !== undefined) {
      afterKey = typeof cursor === 'string' ? decodeCursor(cursor) : null;
      if (afterKey === null) return reply.code(400).send(badRequest('cursor', 'cursor is not one this service returned'));
    }
    // One extra row says whether another page exists, without a count query.
    const rows = await store.list(tenant, afterKey, limit + 1);
    const hosts = rows.slice(0, limit);
    const last = hosts.at(-1);
    return {
      hosts: hosts.map((h) => ({ key: h.key, metadata: h.metadata, updated_at: new Date(h.updatedAt).toISOString() })),
      next_cursor: rows.length > limit && last ? encodeCursor(last.key) : null,
    };
  });

  return app;
}

/** The store a configuration selects: PostgreSQL when a URL is set, else SQLite under the data folder. */
export function createHostmetaStore(config: HostmetaServiceConfig, telemetry: Telemetry): HostmetaStore {
  if (config.postgresUrl) {
    return new PostgresHostmetaStore({
      url: config.postgresUrl,
      schema: config.postgresSchema,
      poolSize: config.postgresPoolSize,
      onPoolError: (err) => telemetry.emit('hostmetaStoreFailed', { error: err.message }),
    });
  }
  return new SqliteHostmetaStore(path.join(config.dataDir, SQLITE_FILE_NAME));
}

/** Hosts one statement of {@link RunningHostmetaService.pruneUnseen} deletes at most: a few milliseconds, one short transaction. */
export const PRUNE_BATCH = 1000;

export interface RunningHostmetaService {
  readonly address: string;
  readonly port: number;
  readonly store: HostmetaStore;
  /**
   * Delete every host, of any tenant, not seen for `olderThanMs` (its
   * `last_seen`, else its last write), in batches of {@link PRUNE_BATCH} so
   * no transaction is long and requests go on between them; logs the count
   * (SLU0951I) and resolves to it. Stops early, with what it deleted, once
   * the service is closing. Rejects when the store fails.
   */
  pruneUnseen(olderThanMs: number): Promise<number>;
  /** Stop accepting, finish requests in flight, close the store. Safe to call twice. */
  close(): Promise<void>;
}

/** Open the store (migrating it) and listen. Used by `sluice hostmeta` and, in-process, by a node. */
export async function startHostmetaService(config: HostmetaServiceConfig, telemetry: Telemetry,
  store: HostmetaStore = createHostmetaStore(config, telemetry)): Promise<RunningHostmetaService> {
  let app: FastifyInstance | null = null;
  try {
    const migration = await store.open();
    if (migration.applied.length > 0) {
      telemetry.emit('hostmetaMigrated', { store: store.kind, applied: migration.applied.join(','), version: migration.version });
    }
    app = buildHostmetaApp(store, { maxDocumentBytes: config.maxDocumentBytes, telemetry });
    await app.listen({ host: config.address, port: config.port });
  } catch (err) {
    await app?.close();
    await store.close();
    throw err;
  }
  const bound = app.server.address();
  if (bound === null || typeof bound === 'string') throw new Error('hostmeta: the server has no TCP address');
  telemetry.emit('hostmetaListening', { address: bound.address, port: bound.port, store: store.kind });
  const running = app;
  let closing: Promise<void> | null = null;
  return {
    address: bound.address,
    port: bound.port,
    store,
    async pruneUnseen(olderThanMs) {
      if (!(olderThanMs > 0)) throw new Error(`pruneUnseen: olderThanMs must be positive, got ${olderThanMs}`);
      const started = Date.now();
      const cutoff = started - olderThanMs;
      let pruned = 0;
      let batches = 0;
      for (;;) {
        if (closing !== null) break;
        const deleted = await store.pruneUnseen(cutoff, PRUNE_BATCH);
        pruned += deleted;
        batches++;
        if (deleted < PRUNE_BATCH) break;
        // SQLite runs in this thread: let requests in between batches.
        await new Promise((resolve) => setImmediate(resolve));
      }
      telemetry.emit('hostsPruned', {
        store: store.kind, hosts: pruned, unseen_since: new Date(cutoff).toISOString(), batches, duration_ms: Date.now() - started,
      });
      return pruned;
    },
    close() {
      closing ??= (async () => {
        try {
          await running.close();
        } finally {
          await store.close();
        }
        telemetry.emit('hostmetaStopped', { address: bound.address, port: bound.port });
      })();
      return closing;
    },
  };
}
