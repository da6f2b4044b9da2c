/**
 * The admin server (default 127.0.0.1:8080): the dashboard and its assets,
 * `/metrics`, `/healthz`, `/readyz`, and the admin API under `/api`.
 *
 * It talks to the node only through NodeControl, so the same server runs in
 * a single process (LocalControl) or in the primary of many workers.
 *
 * Access (docs/admin.md): a bearer token from `admin.tokens` (or the token
 * generated into `<data_dir>/admin-token`) opens everything; a token scoped
 * to a tenant sees and changes that tenant only; without a token, callers on
 * loopback may read (dashboard data, metrics, lists) but not tail or change.
 * Before any of that, a request must name the server in its Host header
 * (DNS rebinding) and a change must come from no other site (Origin).
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { AccessTokens, adminTokens } from '../../core/access-tokens.js';
import type { TenantLimits } from '../../core/limits.js';
import { normalizeAddress } from '../../core/identity.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import type { SluiceConfig } from '../config/types.js';
import type { NodeControl, TailFilter } from '../control.js';
import { buildOverview, filterExposition, withRates, type LiveOverview, type Overview, type SinkBounds } from './overview.js';
import { TailSlots, TailStream } from './tails.js';

export interface RunningAdminServer {
  address: string;
  port: number;
  /** Where the generated whole-node token is, when none was configured. */
  tokenFile: string | null;
  /** A reload was accepted: its admin tokens, loopback reads and sink bounds apply from now on (address and port stay). */
  reconfigure(config: SluiceConfig): void;
  close(): Promise<void>;
}

/** Who is asking: the whole node (`tenant` null) or one tenant; `readOnly` for tokenless loopback callers. */
interface Principal {
  tenant: string | null;
  readOnly: boolean;
}

type Access = 'read' | 'tail' | 'write' | 'node';

/** The live views' refresh period. */
export const STREAM_INTERVAL_MS = 1000;
/** Sessions per sort key in a live overview. */
const SESSION_LIMIT = 100;

const DASHBOARD_DIR = fileURLToPath(new URL('../../../../dashboard/', import.meta.url));

function isLoopback(address: string | undefined): boolean {
  const a = normalizeAddress(address ?? '');
  return a === '::1' || a.startsWith('127.');
}

/** The host part of a Host header (`name`, `name:port`, `[v6]:port`), lowercased, without a trailing dot. */
function hostOfHeader(host: string): string {
  let name = host.trim().toLowerCase();
  if (name.startsWith('[')) name = name.slice(1, name.indexOf(']') < 0 ? undefined : name.indexOf(']'));
  else if (name.indexOf(':') === name.lastIndexOf(':')) name = name.replace(/:\d*$/, '');
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/**
 * The names a Host header may give: the listen address, loopback, `admin.hosts`,
 * and when listening on every address, each of the machine's. An address
 * literal cannot be rebound by DNS; a name only when the operator listed it.
 */
function answeredHosts(config: SluiceConfig): Set<string> {
  const names = new Set(['localhost', '127.0.0.1', '::1', normalizeAddress(config.admin.address).toLowerCase(), ...config.admin.hosts]);
  if (config.admin.address === '0.0.0.0' || config.admin.address === '::') {
    for (const addresses of Object.values(os.networkInterfaces())) for (const a of addresses ?? []) names.add(a.address.toLowerCase());
  }
  return names;
}

/** Whether a Host header's host part names this server: one of `hosts`, or any loopback address literal. */
function answersTo(hosts: ReadonlySet<string>, name: string): boolean {
  return hosts.has(name) || (isIP(name) !== 0 && isLoopback(name));
}

/** Methods that change something: refused when a browser says another site sent them. */
const CHANGES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Health probes answer whatever name a balancer uses: they reveal nothing but up and ready. */
const ANY_HOST_ROUTES = new Set(['/healthz', '/readyz']);

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Live overviews, sampled at most once per interval per scope, with rates against the previous sample. */
class OverviewSampler {
  private readonly last = new Map<string, { overview: Overview; live: LiveOverview }>();
  private readonly pending = new Map<string, Promise<LiveOverview>>();

  constructor(private readonly control: NodeControl, public bounds: readonly SinkBounds[]) {}

  get(scope: string | null): Promise<LiveOverview> {
    const key = scope ?? '';
    const last = this.last.get(key);
    if (last !== undefined && Date.now() - last.overview.time < STREAM_INTERVAL_MS * 0.9) return Promise.resolve(last.live);
    let pending = this.pending.get(key);
    if (pending === undefined) {
      pending = this.sample(scope, last?.overview ?? null).finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    return pending;
  }

  private async sample(scope: string | null, before: Overview | null): Promise<LiveOverview> {
    const [metrics, sessions, components] = await Promise.all([this.control.metricsJson(), this.control.sessions(), this.control.components()]);
    const overview = buildOverview(metrics, sessions, components, this.bounds, scope);
    const live = withRates(overview, before, SESSION_LIMIT);
    this.last.set(scope ?? '', { overview, live });
    return live;
  }
}

function parseLimits(body: unknown, current: TenantLimits): TenantLimits {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'expected a JSON object');
  const b = body as Record<string, unknown>;
  const allowed = ['messages_per_second', 'bytes_per_second', 'burst_ms', 'max_connections'];
  for (const key of Object.keys(b)) if (!allowed.includes(key)) throw new HttpError(400, `unknown key ${key} (allowed: ${allowed.join(', ')})`);
  const number = (key: string, fallback: number, min: number): number => {
    const v = b[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new HttpError(400, `${key}: expected a number >= ${min}`);
    return v;
  };
  return {
    messagesPerSecond: number('messages_per_second', current.messagesPerSecond, 0),
    bytesPerSecond: number('bytes_per_second', current.bytesPerSecond, 0),
    burstMs: number('burst_ms', current.burstMs, 1),
    maxConnections: Math.floor(number('max_connections', current.maxConnections, 0)),
  };
}

function limitsJson(limits: TenantLimits): Record<string, number> {
  return {
    messages_per_second: limits.messagesPerSecond, bytes_per_second: limits.bytesPerSecond,
    burst_ms: limits.burstMs, max_connections: limits.maxConnections,
  };
}

export async function startAdminServer(config: SluiceConfig, control: NodeControl, telemetry: Telemetry): Promise<RunningAdminServer> {
  const emit = telemetry.emit.bind(telemetry);
  const { tokens: configured, generatedFile: tokenFile, created } = adminTokens(config.admin.tokens, config.dataDir);
  if (created) emit('adminTokenCreated', { file: tokenFile });
  let tokens = new AccessTokens(configured);
  let openLoopbackReads = config.admin.openLoopbackReads;
  const sinkBounds = (c: SluiceConfig): SinkBounds[] => c.sinks.map((s) => ({
    name: s.name, queueHighWaterBytes: s.queueHighWaterBytes, bufferMaxBytes: s.diskBuffer?.maxBytes ?? null,
  }));
  const sampler = new OverviewSampler(control, sinkBounds(config));
  const uplotDir = path.dirname(createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js'));
  const assets: Record<string, { file: string; type: string }> = {
    'uPlot.iife.min.js': { file: path.join(uplotDir, 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
    'uPlot.min.css': { file: path.join(uplotDir, 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
    'dashboard.js': { file: path.join(DASHBOARD_DIR, 'dashboard.js'), type: 'text/javascript; charset=utf-8' },
    'dashboard.css': { file: path.join(DASHBOARD_DIR, 'dashboard.css'), type: 'text/css; charset=utf-8' },
  };
  const slots = new TailSlots(config.admin.tailSlots, config.admin.tenantTailShare);
  const hosts = answeredHosts(config);
  let lastDenied = 0;

  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });

  /** Log a refusal at most every 10 s (a flood of them must not flood the log). */
  const logDenied = (req: FastifyRequest, status: number, reason: string): void => {
    if (Date.now() - lastDenied > 10_000) {
      lastDenied = Date.now();
      emit('adminRequestDenied', { route: req.routeOptions.url ?? req.url.split('?')[0], status, reason, peer: req.socket.remoteAddress });
    }
  };

  // DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 sends `Host: evil.example`.
  // Cross-site changes: a page elsewhere posting to this server carries its own Origin.
  app.addHook('onRequest', async (req, reply) => {
    const host = req.headers.host;
    if (host !== undefined && !ANY_HOST_ROUTES.has(req.url.split('?')[0]!) && !answersTo(hosts, hostOfHeader(host))) {
      telemetry.adminRefused.inc({ reason: 'host' });
      logDenied(req, 421, 'host');
      return reply.code(421).send({ error: `this server does not answer to ${JSON.stringify(host)} (admin.hosts)` });
    }
    if (CHANGES.has(req.method) && crossSite(req)) {
      telemetry.adminRefused.inc({ reason: 'origin' });
      logDenied(req, 403, 'origin');
      return reply.code(403).send({ error: 'a change from another site is refused' });
    }
    return undefined;
  });

  /** The caller, if allowed `access`; otherwise an HttpError (401 no or unknown token, 400 two of them, 403 out of scope). */
  const authorize = (req: FastifyRequest, access: Access): Principal => {
    const bearer = tokens.identify(req.raw.headersDistinct.authorization);
    let principal: Principal | null = null;
    if (bearer.ok) {
      principal = { tenant: bearer.tenant, readOnly: false };
    } else if (bearer.reason === 'missing' && access === 'read' && openLoopbackReads && isLoopback(req.socket.remoteAddress)) {
      principal = { tenant: null, readOnly: true };
    }
    const deny = (status: number, message: string): HttpError => {
      logDenied(req, status, 'token');
      return new HttpError(status, message);
    };
    if (principal === null) {
      const reason = bearer.ok ? 'missing' : bearer.reason;
      if (reason === 'ambiguous') throw deny(400, 'more than one Authorization header: ambiguous credentials');
      throw deny(401, reason === 'missing' ? 'a bearer token is required' : 'unknown token');
    }
    if (access === 'node' && principal.tenant !== null) throw deny(403, 'this token is scoped to one tenant');
    return principal;
  };

  /** A tenant-scoped caller may only touch its own tenant. */
  const requireTenant = (principal: Principal, tenant: string | null): void => {
    if (principal.tenant !== null && principal.tenant !== tenant) throw new HttpError(403, `this token is scoped to tenant ${principal.tenant}`);
  };

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const status = err instanceof HttpError ? err.status : (err.statusCode ?? 500);
    if (status === 401) reply.header('www-authenticate', 'Bearer realm="sluice"');
    void reply.code(status).send({ error: err.message });
  });

  app.get('/', async (_req, reply) => {
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache');
    return reply.send(await readFile(path.join(DASHBOARD_DIR, 'index.html')));
  });

  app.get<{ Params: { name: string } }>('/assets/:name', async (req, reply) => {
    const asset = assets[req.params.name];
    if (asset === undefined) throw new HttpError(404, 'no such asset');
    reply.type(asset.type).header('cache-control', 'no-cache');
    return reply.send(await readFile(asset.file));
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const readiness = await control.readiness();
    return reply.code(readiness.ready ? 200 : 503).send(readiness);
  });

  app.get('/metrics', async (req, reply) => {
    const principal = authorize(req, 'read');
    const { contentType, text } = await control.metrics();
    reply.type(contentType);
    return reply.send(principal.tenant === null ? text : filterExposition(text, principal.tenant));
  });

  app.get('/api/whoami', async (req) => {
    const principal = authorize(req, 'read');
    return { tenant: principal.tenant, readOnly: principal.readOnly };
  });

  app.get('/api/overview', async (req) => sampler.get(authorize(req, 'read').tenant));

  /** Server-sent events: a live overview every second. */
  app.get('/api/stream', (req, reply) => {
    const principal = authorize(req, 'read');
    openEventStream(req, reply);
    let closed = false;
    const send = async (): Promise<void> => {
      try {
        const overview = await sampler.get(principal.tenant);
        if (!closed) reply.raw.write(`event: overview\ndata: ${JSON.stringify(overview)}\n\n`);
      } catch (err) {
        if (!closed) reply.raw.write(`event: error\ndata: ${JSON.stringify({ error: (err as Error).message })}\n\n`);
      }
    };
    void send();
    const timer = setInterval(() => void send(), STREAM_INTERVAL_MS);
    req.raw.on('close', () => {
      closed = true;
      clearInterval(timer);
    });
  });

  app.get<{ Querystring: { sort?: string; limit?: string; tenant?: string } }>('/api/sessions', async (req) => {
    const principal = authorize(req, 'read');
    let sessions = await control.sessions();
    const tenant = principal.tenant ?? req.query.tenant;
    if (tenant !== undefined) sessions = sessions.filter((s) => s.tenant === tenant);
    const sort = req.query.sort ?? 'bytes';
    const keys: Record<string, (s: (typeof sessions)[number]) => number> = {
      bytes: (s) => s.bytes, records: (s) => s.records, queued: (s) => s.queuedBytes, errors: (s) => s.errors, age: (s) => -s.openedAt,
    };
    const key = keys[sort];
    if (key === undefined) throw new HttpError(400, `sort: one of ${Object.keys(keys).join(', ')}`);
    sessions.sort((a, b) => key(b) - key(a));
    const limit = req.query.limit === undefined ? 1000 : Number(req.query.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new HttpError(400, 'limit: a positive integer');
    return { total: sessions.length, sessions: sessions.slice(0, limit) };
  });

  app.get<{ Params: { id: string } }>('/api/sessions/:id', async (req) => {
    const principal = authorize(req, 'read');
    const session = (await control.sessions()).find((s) => s.id === req.params.id);
    // Out of scope reads as absent: a scoped caller learns nothing of other tenants' sessions.
    if (session === undefined || (principal.tenant !== null && session.tenant !== principal.tenant)) throw new HttpError(404, 'no such session');
    return session;
  });

  app.delete<{ Params: { id: string } }>('/api/sessions/:id', async (req, reply) => {
    const principal = authorize(req, 'write');
    const session = (await control.sessions()).find((s) => s.id === req.params.id);
    if (session === undefined || (principal.tenant !== null && session.tenant !== principal.tenant)) throw new HttpError(404, 'no such session');
    if (!(await control.disconnect(session.id))) throw new HttpError(404, 'no such session');
    return reply.code(202).send({ disconnected: session.id });
  });

  /** Load shedding: ask up to `count` agents to reconnect (see NodeControl.shedSessions). */
  app.post<{ Body: { count?: unknown } | null }>('/api/sessions/shed', async (req) => {
    authorize(req, 'node');
    const count = req.body?.count;
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1) throw new HttpError(400, 'count: a positive integer');
    return { requested: count, asked: await control.shedSessions(count) };
  });

  app.get('/api/tenants', async (req) => {
    const principal = authorize(req, 'read');
    // The running node's tenants and limits (after a reload, the new ones), not those of the file read at start.
    return Object.entries(await control.tenantLimits()).filter(([id]) => principal.tenant === null || id === principal.tenant)
      .map(([id, l]) => ({ id, limits: limitsJson(l) }));
  });

  app.put<{ Params: { id: string } }>('/api/tenants/:id/limits', async (req) => {
    const principal = authorize(req, 'write');
    requireTenant(principal, req.params.id);
    const current = (await control.tenantLimits())[req.params.id];
    if (current === undefined) throw new HttpError(404, `no tenant ${req.params.id}`);
    const next = parseLimits(req.body, current);
    try {
      await control.setTenantLimits(req.params.id, next);
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
    return { id: req.params.id, limits: limitsJson(next) };
  });

  /** This node's view of the cluster; 404 when it runs alone. Fleet-wide, so not for tenant-scoped tokens. */
  app.get('/api/cluster', async (req) => {
    const principal = authorize(req, 'read');
    if (principal.tenant !== null) throw new HttpError(403, 'this token is scoped to one tenant');
    const status = await control.cluster();
    if (status === null) throw new HttpError(404, 'this node runs alone (no cluster.nats in its configuration)');
    return status;
  });

  app.get('/api/components', async (req) => {
    authorize(req, 'node');
    return control.components();
  });

  app.post<{ Params: { name: string; action: string } }>('/api/components/:name/:action', async (req) => {
    authorize(req, 'node');
    const { name, action } = req.params;
    if (action !== 'stop' && action !== 'start' && action !== 'restart') throw new HttpError(400, 'action: stop, start or restart');
    try {
      await control.controlComponent(name, action);
    } catch (err) {
      throw new HttpError(/^no component/.test((err as Error).message) ? 404 : 409, (err as Error).message);
    }
    return { name, action, done: true };
  });

  app.post('/api/heap-snapshot', async (req) => {
    authorize(req, 'node');
    return { files: await control.heapSnapshot(path.resolve(config.dataDir, 'heap-snapshots')) };
  });

  /** Server-sent events: one `data:` line per record (NDJSON as the file sink writes it). */
  app.get<{ Querystring: { tenant?: string; host?: string; session?: string } }>('/api/tail', async (req, reply) => {
    const principal = authorize(req, 'tail');
    if (principal.readOnly) throw new HttpError(401, 'a bearer token is required to tail records');
    // A scoped caller's tail is always limited to its tenant.
    const tenant = req.query.tenant ?? principal.tenant ?? undefined;
    requireTenant(principal, tenant ?? null);
    if (tenant !== undefined && !Object.hasOwn(await control.tenantLimits(), tenant)) throw new HttpError(404, `no tenant ${tenant} in this node's configuration`);
    const release = slots.take(principal.tenant);
    if (typeof release === 'string') {
      telemetry.adminRefused.inc({ reason: release });
      throw new HttpError(429, release === 'tail_slots'
        ? `every tail slot is taken (admin.tail_slots: ${slots.slots})`
        : `tenant ${principal.tenant} holds its share of tail slots (${slots.perTenant}, admin.tenant_tail_share)`);
    }
    const filter: TailFilter = {};
    if (tenant !== undefined) filter.tenant = tenant;
    if (req.query.host !== undefined) filter.host = req.query.host;
    if (req.query.session !== undefined) filter.session = req.query.session;
    telemetry.adminTails.set(slots.inUse);
    openEventStream(req, reply);
    const stream = new TailStream(reply.raw, telemetry);
    let stop: (() => void) | null = null;
    let closed = false;
    req.raw.on('close', () => {
      closed = true;
      release();
      telemetry.adminTails.set(slots.inUse);
      stream.close();
      stop?.();
    });
    try {
      stop = await control.tail(filter, stream);
    } catch (err) {
      // The stream is open already: the failure can only be told inside it.
      reply.raw.end(`event: error\ndata: ${JSON.stringify({ error: (err as Error).message })}\n\n`);
      return;
    }
    if (closed) stop();
  });

  await app.listen({ host: config.admin.address, port: config.admin.port });
  const bound = app.server.address();
  const address = bound !== null && typeof bound === 'object' ? bound : { address: config.admin.address, port: config.admin.port };
  emit('adminListening', {
    address: address.address, port: address.port, url: `http://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}/`,
    ...(tokenFile === null ? {} : { token_file: tokenFile }),
  });
  return {
    address: address.address,
    port: address.port,
    tokenFile,
    reconfigure: (next) => {
      tokens = new AccessTokens(adminTokens(next.admin.tokens, next.dataDir).tokens);
      openLoopbackReads = next.admin.openLoopbackReads;
      sampler.bounds = sinkBounds(next);
    },
    close: async () => {
      app.server.closeAllConnections();
      // Silent: the node's own last line ("node stopped") stays the last line of the run.
      await app.close();
    },
  };
}

/** A browser's word that another site sent this request: an Origin not naming this server, or Sec-Fetch-Site. */
function crossSite(req: FastifyRequest): boolean {
  if (req.headers['sec-fetch-site'] === 'cross-site') return true;
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    const from = new URL(origin);
    // Through URL both sides: `http://h` and `Host: h:80` are the same origin.
    return from.host !== new URL(`${from.protocol}//${req.headers.host ?? ''}`).host;
  } catch {
    return true; // `null` (a sandboxed page, a file) or garbage
  }
}

function openEventStream(req: FastifyRequest, reply: FastifyReply): void {
  reply.hijack();
  reply.raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  reply.raw.write(': stream open\n\n');
  req.socket.setNoDelay(true);
}
