/**
 * The host metadata HTTP API (fastify) and the function that runs it, alone
 * (`sluice hostmeta`) or inside a node.
 *
 * Every response of a route under /host_metadata/ carries `x-hostmeta-tenant`
 * and `x-hostmeta-key`, echoing the path of the request it answers, so a
 * client can prove a response is its own — the seed's HTTP client once handed
 * one request's 204 to another request.
 *
 * Every route but /healthz needs a bearer token (docs/hostmeta.md, "Access"):
 * the node's admin tokens (whole node, or one tenant each) and the service's
 * own client credential. One hook checks it, with the route's `:tenant`, before
 * the body is read, so a route added later is covered without a line of its own.
 */
import type { Socket } from 'node:net';
import path from 'node:path';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { AccessTokens, adminTokens, readOrCreateToken, sha256Hex } from '../../core/access-tokens.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { HOSTMETA_TOKEN_FILE, type HostmetaAccess, type HostmetaServiceConfig } from './config.js';
import { PostgresHostmetaStore } from './postgres-store.js';
import {
  documentProblem,
  MAX_DOCUMENT_DEPTH,
  nestedDeeperThan,
  patchProblem,
  type HostMetadata,
  type HostMetadataPatch,
} from './schema.js';
import { HOST_KEY_PATTERN, isHostKey, isTenantId, KEY_HEADER, TENANT_HEADER, TENANT_PATTERN } from './keys.js';
import { SQLITE_FILE_NAME, SqliteHostmetaStore } from './sqlite-store.js';
import { documentBytes, type BatchItem, type HostmetaStore } from './store.js';

export const DEFAULT_PAGE_LIMIT = 100;
export const MAX_PAGE_LIMIT = 1000;
export const MERGE_PATCH_CONTENT_TYPE = 'application/merge-patch+json';
/** Hosts one batch (`POST /host_metadata/:tenant`) may name; more is a 413. */
export const MAX_BATCH_HOSTS = 1000;
/** A batch's body may be this large (or one document's limit, when that is larger): a thousand registrations take about 250 KB. */
export const BATCH_BODY_BYTES = 4 * 1024 * 1024;
/** A batch body wraps each document in three levels: the body, `hosts`, the item. */
const BATCH_WRAPPING_DEPTH = 3;

/** The body of every error response. `part` names what was wrong: tenant, key, body, cursor, limit, if-none-match, path. */
export interface ErrorBody {
  error: string;
  part?: string;
  message: string;
}

interface ItemParams { tenant: string; key: string }
interface TenantParams { tenant: string }
interface ListQuery { cursor?: unknown; limit?: unknown }

const CHARSET = /;\s*charset="?([^";\s]+)/i;

/** A tenant's hosts: GET lists them, POST is a batch (get-or-create many). */
const TENANT_ROUTE = '/host_metadata/:tenant';

/** Routes anyone may call: health probes. */
const OPEN_ROUTES = new Set(['/healthz']);

/** Who may call and which tenants exist; the running service replaces both when the node's configuration is reloaded. */
export interface HostmetaCallers {
  tokens: AccessTokens;
  tenants: ReadonlySet<string>;
}

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
  /** Read on every request. */
  callers: HostmetaCallers;
  telemetry: Telemetry;
  /** Clock of `updated_at` (epoch ms). */
  now?: () => number;
}

/** The fastify app, routes registered, not listening: tests add hooks before `listen`. */
export function buildHostmetaApp(store: HostmetaStore, options: HostmetaAppOptions): FastifyInstance {
  const { maxDocumentBytes, callers, telemetry } = options;
  const now = options.now ?? Date.now;

  /** Every 4xx the service gives is one of these: counted by its `error`, so hostile callers show in /metrics. */
  const refuse = (reply: FastifyReply, status: number, body: ErrorBody): FastifyReply => {
    telemetry.hostmetaRefused.labels(body.error).inc();
    return reply.code(status).send(body);
  };

  const app = Fastify({
    logger: false,
    bodyLimit: maxDocumentBytes,
    // Long enough that an over-long tenant reaches the handler and gets a 400 naming it, not a 404.
    routerOptions: { maxParamLength: 1000 },
    // A client that sends headers and then nothing does not hold a connection forever.
    requestTimeout: 30_000,
    // A path that does not even decode (e.g. `%zz`): answered in the same error shape as the rest.
    frameworkErrors: (error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => refuse(reply, 400, badRequest('path', error.message)),
    // What is not even HTTP (a malformed request line, headers past Node's limit) is answered by the server itself: counted too.
    clientErrorHandler: (error: NodeJS.ErrnoException, socket: Socket) => answerClientError(error, socket, telemetry),
  });

  // JSON of bounded nesting: a body nested thousands deep would exhaust the stack when stored (a 500), so it is a 400
  // before it is parsed. And JSON is UTF-8 (RFC 8259): a body said to be in another charset would be misread, so it is a 415.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  const parseBoundedJson = (request: FastifyRequest, body: string, done: (err: Error | null, body?: unknown) => void): void => {
    const charset = CHARSET.exec(request.headers['content-type'] ?? '')?.[1]?.toLowerCase();
    const maxDepth = request.routeOptions.url === TENANT_ROUTE ? MAX_DOCUMENT_DEPTH + BATCH_WRAPPING_DEPTH : MAX_DOCUMENT_DEPTH;
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      done(Object.assign(new Error(`charset ${charset}: JSON is UTF-8`), { statusCode: 415 }));
    } else if (nestedDeeperThan(body, maxDepth)) {
      done(Object.assign(new Error(`the body nests objects or arrays deeper than ${maxDepth} levels`), { statusCode: 400 }));
    } else {
      parseJson(request, body, done);
    }
  };
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parseBoundedJson);
  app.addContentTypeParser(MERGE_PATCH_CONTENT_TYPE, { parseAs: 'string' }, parseBoundedJson);

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500;
    if (status === 413) {
      return refuse(reply, 413, { error: 'too_large', part: 'body', message: `body is over the ${request.routeOptions.bodyLimit ?? maxDocumentBytes}-byte limit` });
    }
    if (status === 415) {
      return refuse(reply, 415, { error: 'unsupported_media_type', part: 'body', message: 'send the body as UTF-8 application/json (a PATCH may also use application/merge-patch+json)' });
    }
    if (status >= 400 && status < 500) {
      const invalidJson = error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || error instanceof SyntaxError;
      return refuse(reply, status, { error: invalidJson ? 'invalid_json' : 'bad_request', part: 'body', message: error.message });
    }
    telemetry.emit('hostmetaStoreFailed', { error: error.message });
    return reply.code(500).send({ error: 'internal', message: 'the request failed; see the service log' });
  });

  /** A refusal for want of a fitting token: logged (throttled) as well as counted. */
  const deny = (request: FastifyRequest, reply: FastifyReply, status: number, body: ErrorBody): FastifyReply => {
    telemetry.emit('hostmetaRequestDenied', { route: request.routeOptions.url ?? null, status, reason: body.error, peer: request.socket.remoteAddress });
    if (status === 401) reply.header('www-authenticate', 'Bearer realm="sluice-hostmeta"');
    return refuse(reply, status, body);
  };

  app.setNotFoundHandler((request, reply) => refuse(reply, 404, { error: 'not_found', message: `no route ${request.method} ${request.url}` }));

  app.get('/healthz', async (_request, reply) => {
    try {
      await store.ping();
      return { status: 'ok', store: store.kind };
    } catch (err) {
      return reply.code(503).send({ status: 'unavailable', store: store.kind, error: (err as Error).message });
    }
  });

  /**
   * Access, for every route (and the not-found answer) but the open ones,
   * before the body is read: the echo headers first, so even a refusal names
   * its request; then who calls (401, or 400 for two Authorization headers),
   * the ids of the path (400), whether the token reaches the path's tenant
   * (403; a route without `:tenant` is for whole-node tokens only),
   * whether that tenant exists (404: nothing is ever stored for another), and
   * that the body is not compressed (415).
   */
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.routeOptions.url !== undefined && OPEN_ROUTES.has(request.routeOptions.url)) return;
    const { tenant, key } = request.params as { tenant?: string; key?: string };
    if (tenant !== undefined) reply.header(TENANT_HEADER, echo(tenant));
    if (key !== undefined) reply.header(KEY_HEADER, echo(key));
    const bearer = callers.tokens.identify(request.raw.headersDistinct.authorization);
    if (!bearer.ok) {
      if (bearer.reason === 'ambiguous') {
        return deny(request, reply, 400, { error: 'ambiguous_credentials', part: 'authorization', message: 'more than one Authorization header: send one' });
      }
      return deny(request, reply, 401, { error: 'unauthorized', part: 'authorization', message: bearer.reason === 'missing' ? 'a bearer token is required' : 'unknown token' });
    }
    if (tenant === undefined) {
      if (bearer.tenant !== null) return deny(request, reply, 403, { error: 'forbidden', message: `this token is scoped to tenant ${bearer.tenant}` });
    } else {
      const problem = tenantProblem(tenant) ?? (key === undefined ? null : keyProblem(key));
      if (problem) return refuse(reply, 400, problem);
      if (bearer.tenant !== null && bearer.tenant !== tenant) {
        return deny(request, reply, 403, { error: 'forbidden', part: 'tenant', message: `this token is scoped to tenant ${bearer.tenant}` });
      }
      if (!callers.tenants.has(tenant)) return refuse(reply, 404, { error: 'unknown_tenant', part: 'tenant', message: `no tenant ${tenant} on this service` });
    }
    // A compressed body would be read as plain JSON: refused rather than misread.
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'identity') {
      return refuse(reply, 415, { error: 'unsupported_media_type', part: 'content-encoding', message: 'bodies are not compressed: send no Content-Encoding' });
    }
  });

  const ITEM = '/host_metadata/:tenant/:key';
  const notFound = (tenant: string, key: string): ErrorBody => ({ error: 'not_found', message: `no metadata for ${tenant}/${key}` });

  app.get<{ Params: ItemParams }>(ITEM, async (request, reply) => {
    const { tenant, key } = request.params;
    const host = await store.get(tenant, key);
    if (!host) return reply.code(404).send(notFound(tenant, key));
    return reply.code(200).send(host.metadata);
  });

  app.put<{ Params: ItemParams }>(ITEM, async (request, reply) => {
    const { tenant, key } = request.params;
    const ifNoneMatch = request.headers['if-none-match'];
    if (ifNoneMatch !== undefined && ifNoneMatch !== '*') {
      return refuse(reply, 400, badRequest('if-none-match', 'only "If-None-Match: *" (create when absent) is supported'));
    }
    const problem = documentProblem(request.body);
    if (problem) return refuse(reply, 400, badRequest('body', problem));
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

  app.patch<{ Params: ItemParams }>(ITEM, async (request, reply) => {
    const { tenant, key } = request.params;
    const problem = patchProblem(request.body);
    if (problem) return refuse(reply, 400, badRequest('body', problem));
    const result = await store.merge(tenant, key, request.body as HostMetadataPatch, now(), maxDocumentBytes);
    if (result === 'too_large') {
      return refuse(reply, 413, { error: 'too_large', part: 'body', message: `the merged document would be over the ${maxDocumentBytes}-byte limit` });
    }
    return reply.code(204).send();
  });

  app.delete<{ Params: ItemParams }>(ITEM, async (request, reply) => {
    const { tenant, key } = request.params;
    if (!(await store.delete(tenant, key))) return reply.code(404).send(notFound(tenant, key));
    return reply.code(204).send();
  });

  app.post<{ Params: TenantParams }>(TENANT_ROUTE, { bodyLimit: Math.max(BATCH_BODY_BYTES, maxDocumentBytes) }, async (request, reply) => {
    const { tenant } = request.params;
    const items = batchItems(request.body, maxDocumentBytes);
    if ('status' in items) return refuse(reply, items.status, items.body);
    const answers = await store.getOrCreateMany(tenant, items, now(), maxDocumentBytes);
    return reply.code(200).send({ hosts: answers });
  });

  app.get<{ Params: TenantParams; Querystring: ListQuery }>(TENANT_ROUTE, async (request, reply) => {
    const { tenant } = request.params;
    const limit = parseLimit(request.query.limit);
    if (limit === null) return refuse(reply, 400, badRequest('limit', `limit must be an integer from 1 to ${MAX_PAGE_LIMIT}`));
    const { cursor } = request.query;
    let afterKey: string | null = null;
    if (cursor !== undefined) {
      afterKey = typeof cursor === 'string' ? decodeCursor(cursor) : null;
      if (afterKey === null) return refuse(reply, 400, badRequest('cursor', 'cursor is not one this service returned'));
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

/**
 * The hosts of a batch body (`{"hosts": [{"key", "create"?, "update"?}]}`),
 * or the refusal: 400 for what is malformed or a key named twice, 413 for
 * more than {@link MAX_BATCH_HOSTS} hosts or a document or merge over the size limit.
 */
function batchItems(body: unknown, maxDocumentBytes: number): BatchItem[] | { status: number; body: ErrorBody } {
  const hosts = (body as { hosts?: unknown } | null)?.hosts;
  if (typeof body !== 'object' || body === null || !Array.isArray(hosts) || hosts.length === 0) {
    return { status: 400, body: badRequest('body', 'the body must be {"hosts": [{"key": "<host key>", "create": {document}}, ...]} with at least one host') };
  }
  if (hosts.length > MAX_BATCH_HOSTS) {
    return { status: 413, body: { error: 'too_large', part: 'body', message: `a batch names at most ${MAX_BATCH_HOSTS} hosts, not ${hosts.length}` } };
  }
  const items: BatchItem[] = [];
  const keys = new Set<string>();
  for (const [index, host] of hosts.entries()) {
    const { key, create, update } = (typeof host === 'object' && host !== null ? host : {}) as { key?: unknown; create?: unknown; update?: unknown };
    if (typeof key !== 'string' || !isHostKey(key)) return { status: 400, body: badRequest('body', `hosts[${index}].key must be 40 lowercase hex characters`) };
    if (keys.has(key)) return { status: 400, body: badRequest('body', `hosts[${index}].key ${key} is named twice`) };
    keys.add(key);
    const item: BatchItem = { key };
    for (const [field, value, problemOf] of [['create', create, documentProblem], ['update', update, patchProblem]] as const) {
      if (value === undefined) continue;
      const problem = problemOf(value);
      if (problem) return { status: 400, body: badRequest('body', `hosts[${index}].${field}: ${problem}`) };
      if (documentBytes(value as HostMetadata) > maxDocumentBytes) {
        return { status: 413, body: { error: 'too_large', part: 'body', message: `hosts[${index}].${field} is over the ${maxDocumentBytes}-byte limit` } };
      }
    }
    if (create !== undefined) item.create = create as HostMetadata;
    if (update !== undefined) item.update = update as HostMetadataPatch;
    items.push(item);
  }
  return items;
}

/**
 * A request that is not even HTTP, or whose headers pass Node's limit, never
 * reaches a route: answered here in the service's error shape, counted, and
 * its connection closed (as Node and fastify do by default).
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Socket, telemetry: Telemetry): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, body] = error.code === 'HPE_HEADER_OVERFLOW'
    ? [431, 'Request Header Fields Too Large', { error: 'too_large', part: 'headers', message: 'the request headers are over the limit' }]
    : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', { error: 'timeout', part: 'http', message: 'the request was not received in time' }]
      : [400, 'Bad Request', { error: 'bad_request', part: 'http', message: 'not a well-formed HTTP request' }];
  telemetry.hostmetaRefused.labels(body.error).inc();
  if (socket.writable) {
    const text = JSON.stringify(body);
    socket.write(`HTTP/1.1 ${status} ${reason}\r\nContent-Length: ${Buffer.byteLength(text)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${text}`);
  }
  socket.destroy();
}

/**
 * Callers of a service: the access tokens (or the generated admin token) and
 * the service's own client credential, generated into its data dir at first
 * start; the tenants that exist.
 */
function callersOf(config: HostmetaServiceConfig, access: HostmetaAccess, telemetry: Telemetry): { callers: HostmetaCallers; tokenFile: string } {
  const admin = adminTokens(access.tokens, config.dataDir);
  if (admin.created) telemetry.emit('adminTokenCreated', { file: admin.generatedFile });
  const tokenFile = path.resolve(config.dataDir, HOSTMETA_TOKEN_FILE);
  const own = readOrCreateToken(tokenFile);
  if (own.created) telemetry.emit('hostmetaTokenCreated', { file: tokenFile });
  const tokens = new AccessTokens([...admin.tokens, { tokenHash: sha256Hex(own.token), tenant: null }]);
  return { callers: { tokens, tenants: new Set(access.tenants) }, tokenFile };
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
  /** `http://<address>:<port>`, for a client of this service. */
  readonly url: string;
  readonly store: HostmetaStore;
  /** The file holding the service's own client credential (a client of this service sends its content as a bearer token). */
  readonly tokenFile: string;
  /** Take new tenants and tokens (a reload): requests from now on are checked against them. */
  setAccess(access: HostmetaAccess): void;
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
export async function startHostmetaService(config: HostmetaServiceConfig, access: HostmetaAccess, telemetry: Telemetry,
  store: HostmetaStore = createHostmetaStore(config, telemetry)): Promise<RunningHostmetaService> {
  let app: FastifyInstance | null = null;
  let callers: HostmetaCallers;
  let tokenFile: string;
  try {
    ({ callers, tokenFile } = callersOf(config, access, telemetry));
    const migration = await store.open();
    if (migration.applied.length > 0) {
      telemetry.emit('hostmetaMigrated', { store: store.kind, applied: migration.applied.join(','), version: migration.version });
    }
    app = buildHostmetaApp(store, { maxDocumentBytes: config.maxDocumentBytes, callers, telemetry });
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
    url: `http://${bound.address.includes(':') ? `[${bound.address}]` : bound.address}:${bound.port}`,
    store,
    tokenFile,
    setAccess(next) {
      const updated = callersOf(config, next, telemetry).callers;
      callers.tokens = updated.tokens;
      callers.tenants = updated.tenants;
    },
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
