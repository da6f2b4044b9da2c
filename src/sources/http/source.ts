/**
 * HTTP ingestion: OTLP/HTTP logs (`POST /v1/logs`, protobuf or JSON) and a
 * newline-delimited endpoint (`POST /v1/ingest`). A request is answered 200
 * only once every acknowledging sink has committed its records; 400 says what
 * is wrong with a body, 413 that it is too large, 429 that the tenant is over
 * its rate (Retry-After), 503 that the node is under pressure or a sink
 * failed (Retry-After). The tenant comes from the bearer token, else from the
 * peer's network.
 */
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import http from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Counter } from 'prom-client';
import type { ComponentHealth, Source } from '../../core/component.js';
import type { Pipeline } from '../../core/pipeline.js';
import { AckStatus, AckToken } from '../../core/ack.js';
import { normalizeAddress, SessionIdentity, type Tenant } from '../../core/identity.js';
import { SourceInfo, type LogRecord } from '../../core/record.js';
import { isoTime } from '../../core/clock.js';
import type { Telemetry } from '../../ops/telemetry.js';
import { decodeOtlpProtobuf, otlpToRecords, OtlpError, type OtlpLogsRequest } from './otlp.js';
import { ndjsonToRecords, NdjsonError } from './ndjson.js';
import { ProtobufError } from './protobuf.js';

const SOURCE = 'http';
const gunzipAsync = promisify(gunzip);

export interface HttpSourceConfig {
  enabled: boolean;
  address: string;
  port: number;
  /** Largest request body, also after gunzip; larger: 413. */
  maxBodyBytes: number;
  /** Longest a request waits for its records to be committed before it is answered 503. */
  ackTimeoutMs: number;
  /** Connections held at once; past it new ones are closed at accept (counted). 0: no cap. */
  maxConnections: number;
  /** Longest a client may take to send a whole request, headers and body (slowloris). */
  requestTimeoutMs: number;
}

export const DEFAULT_HTTP_SOURCE_CONFIG: Readonly<HttpSourceConfig> = Object.freeze({
  enabled: true, address: '127.0.0.1', port: 4318, maxBodyBytes: 4 * 1024 * 1024, ackTimeoutMs: 30_000,
  maxConnections: 50_000, requestTimeoutMs: 30_000,
});

/** A request the source refuses: status, reason, optional Retry-After seconds. */
class Refusal extends Error {
  constructor(readonly status: number, message: string, readonly retryAfterSeconds?: number) {
    super(message);
  }
}

type BodyKind = 'otlp' | 'ndjson';

export class HttpSource implements Source {
  readonly name = SOURCE;
  private app: FastifyInstance | null = null;
  private stopping = false;
  private readonly records: Counter.Internal;
  private readonly bytes: Counter.Internal;

  constructor(private readonly config: HttpSourceConfig, private readonly pipeline: Pipeline, private readonly telemetry: Telemetry) {
    this.records = telemetry.recordsReceived.labels({ source: SOURCE });
    this.bytes = telemetry.bytesReceived.labels({ source: SOURCE });
  }

  /** The server, so operations routes (metrics, dashboard) can share the port. */
  get server(): FastifyInstance | null {
    return this.app;
  }

  address(): { address: string; port: number } | null {
    const bound = this.app?.server.address();
    return bound && typeof bound === 'object' ? { address: bound.address, port: bound.port } : null;
  }

  async start(): Promise<void> {
    if (this.app) return;
    this.stopping = false;
    const app = Fastify({
      bodyLimit: this.config.maxBodyBytes,
      logger: false,
      // requestTimeout bounds the whole request's arrival (headers and body), not the wait for the ack;
      // Node checks it every connectionsCheckingInterval (30 s by default: too coarse for slowloris).
      serverFactory: (handler) => http.createServer({
        requestTimeout: this.config.requestTimeoutMs,
        headersTimeout: this.config.requestTimeoutMs,
        connectionsCheckingInterval: Math.min(1000, Math.max(100, this.config.requestTimeoutMs / 4)),
      }, handler),
    });
    if (this.config.maxConnections > 0) app.server.maxConnections = this.config.maxConnections;
    app.server.on('drop', (data?: { remoteAddress?: string }) => {
      this.telemetry.emit('connectionRefused', { source: SOURCE, reason: 'connection_limit', peer: data?.remoteAddress });
    });
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    app.addHook('onRequest', async (_req, reply) => {
      // While draining, tell keep-alive clients to reconnect (to another worker or node).
      if (this.stopping) reply.header('connection', 'close');
    });
    app.post('/v1/logs', (req, reply) => this.ingest(req, reply, 'otlp'));
    app.post('/v1/ingest', (req, reply) => this.ingest(req, reply, 'ndjson'));
    app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
      const status = err.statusCode ?? 500;
      void reply.status(status).send({ error: status === 413 ? 'body too large' : err.message });
    });
    this.app = app;
    await app.listen({ host: this.config.address, port: this.config.port });
    const bound = this.address();
    this.telemetry.emit('listening', { source: SOURCE, address: bound?.address, port: bound?.port });
  }

  async stop(deadline: number): Promise<void> {
    const app = this.app;
    if (!app) return;
    this.stopping = true;
    this.app = null;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([app.close(), new Promise<void>((resolve) => { timer = setTimeout(resolve, Math.max(0, deadline - Date.now())); })]);
    clearTimeout(timer);
    app.server.closeAllConnections();
  }

  destroy(): void {
    this.app?.server.closeAllConnections();
    void this.app?.close();
    this.app = null;
  }

  health(): ComponentHealth {
    return this.app ? { healthy: true } : { healthy: false, detail: 'not listening' };
  }

  private async ingest(req: FastifyRequest, reply: FastifyReply, kind: BodyKind): Promise<unknown> {
    try {
      const tenant = this.tenantOf(req);
      if (this.pipeline.congested()) throw new Refusal(503, 'the node is under pressure', 1);
      const body = await this.bodyOf(req);
      this.bytes.inc(body.length);
      const source = new SourceInfo('http', normalizeAddress(req.socket.remoteAddress ?? ''), req.socket.remotePort ?? 0);
      const received = isoTime(Date.now());
      const protobuf = kind === 'otlp' && (req.headers['content-type'] ?? '').startsWith('application/x-protobuf');
      const records = this.decode(kind, body, protobuf, source, received);
      if (records.length > 0) await this.commit(tenant, records, source.address, body.length);
      return this.ok(reply, kind, protobuf);
    } catch (err) {
      if (err instanceof Refusal) {
        if (err.retryAfterSeconds !== undefined) void reply.header('retry-after', String(err.retryAfterSeconds));
        this.telemetry.httpRefusals.inc({ status: String(err.status) });
        return reply.status(err.status).send({ error: err.message });
      }
      throw err;
    }
  }

  private tenantOf(req: FastifyRequest): Tenant {
    const directory = this.pipeline.directory;
    const auth = req.headers.authorization;
    if (auth !== undefined) {
      const match = /^Bearer ([\x21-\x7e]+)$/.exec(auth);
      const tenant = match ? directory.byToken(match[1]!) : null;
      if (tenant === null) {
        this.telemetry.emit('connectionRefused', { source: SOURCE, reason: 'bad_token', peer: normalizeAddress(req.socket.remoteAddress ?? '') });
        throw new Refusal(401, 'unknown bearer token');
      }
      return tenant;
    }
    const tenant = directory.byAddress(req.socket.remoteAddress ?? '');
    if (tenant === null) {
      this.telemetry.emit('connectionRefused', { source: SOURCE, reason: 'no_credentials', peer: normalizeAddress(req.socket.remoteAddress ?? '') });
      throw new Refusal(401, 'a bearer token is required from this network');
    }
    return tenant;
  }

  private async bodyOf(req: FastifyRequest): Promise<Buffer> {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
    if (encoding === 'identity') return raw;
    if (encoding !== 'gzip') throw new Refusal(415, `content-encoding ${encoding} is not supported (use gzip or none)`);
    try {
      return await gunzipAsync(raw, { maxOutputLength: this.config.maxBodyBytes });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
        throw new Refusal(413, `body larger than ${this.config.maxBodyBytes} bytes once decompressed`);
      }
      throw new Refusal(400, `bad gzip body: ${(err as Error).message}`);
    }
  }

  private decode(kind: BodyKind, body: Buffer, protobuf: boolean, source: SourceInfo, received: string): LogRecord[] {
    try {
      if (kind === 'ndjson') return ndjsonToRecords(body.toString('utf8'), source, received);
      const request = protobuf ? decodeOtlpProtobuf(body) : (JSON.parse(body.toString('utf8')) as OtlpLogsRequest);
      return otlpToRecords(request, source, received);
    } catch (err) {
      if (err instanceof OtlpError || err instanceof NdjsonError || err instanceof ProtobufError || err instanceof SyntaxError) {
        throw new Refusal(400, `bad body: ${err.message}`);
      }
      throw err;
    }
  }

  /** Attribute, charge the tenant's limit, and wait until every acknowledging sink has committed. */
  private async commit(tenant: Tenant, records: LogRecord[], peer: string, bytes: number): Promise<void> {
    const wait = tenant.limiter.unlimited ? 0 : tenant.limiter.tryCharge(records.length, bytes, Date.now());
    if (wait > 0) throw new Refusal(429, `tenant ${tenant.id} is over its rate limit`, Math.ceil(wait / 1000));
    const identity = new SessionIdentity(this.pipeline.directory, tenant, null);
    for (const rec of records) identity.attribute(rec, peer);
    this.records.inc(records.length);
    const status = await new Promise<AckStatus | 'timeout'>((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), this.config.ackTimeoutMs);
      const ack = new AckToken((s) => {
        clearTimeout(timer);
        resolve(s);
      });
      this.pipeline.openLane(SOURCE, false).submit(tenant, records, ack);
    });
    if (status === AckStatus.Committed) return;
    if (status === AckStatus.Dropped) throw new Refusal(422, `no sink takes records of tenant ${tenant.id}`);
    throw new Refusal(503, status === 'timeout' ? 'records not committed in time' : 'a sink failed to commit the records', 1);
  }

  private ok(reply: FastifyReply, kind: BodyKind, protobuf: boolean): unknown {
    // An empty ExportLogsServiceResponse: full success.
    if (kind === 'otlp' && protobuf) return reply.type('application/x-protobuf').send(Buffer.alloc(0));
    return reply.type('application/json').send(kind === 'otlp' ? {} : { ok: true });
  }
}
