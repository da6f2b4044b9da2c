/**
 * HTTP ingestion: OTLP/HTTP logs (`POST /v1/logs`, protobuf or JSON) and a
 * newline-delimited endpoint (`POST /v1/ingest`). A request is answered 200
 * only once every acknowledging sink has committed its records; 400 says what
 * is wrong with a body, 413 that it is too large, 429 that the tenant is over
 * its rate (Retry-After), 503 that the node is under pressure or a sink
 * failed (Retry-After). The tenant comes from the bearer token, else from the
 * peer's network.
 */
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import http, { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Counter } from 'prom-client';
import type { ComponentHealth, Reconnectable, Source } from '../../core/component.js';
import type { Pipeline } from '../../core/pipeline.js';
import type { TenantLimiter } from '../../core/limits.js';
import { AckStatus, AckToken } from '../../core/ack.js';
import { MemoryState } from '../../core/memory.js';
import { normalizeAddress, SessionIdentity, type Tenant } from '../../core/identity.js';
import { SourceInfo, type LogRecord } from '../../core/record.js';
import { isoTime, settlesBefore } from '../../core/clock.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { BadBodyError, decodeBody, type BodyKind } from './decode.js';
import type { HttpSourceConfig } from './config.js';
import { nextTurn, RECORDS_PER_TURN } from '../../core/turns.js';

const SOURCE = 'http';
const gunzipAsync = promisify(gunzip);

/** A request the source refuses: status, reason, optional Retry-After seconds. */
class Refusal extends Error {
  constructor(readonly status: number, message: string, readonly retryAfterSeconds?: number) {
    super(message);
  }
}

/** One open keep-alive connection, as load shedding sees it. */
class HttpConnection implements Reconnectable {
  readonly protocol = 'http';
  readonly openedAt = Date.now();
  /** Its next response carries `Connection: close`, so the client reconnects (through the balancer). */
  closeAsked = false;
  /** Requests not yet answered (the parser's, as it reads them: before any handler runs). */
  readonly unanswered = new Set<IncomingMessage>();
  /** Bytes that are not HTTP followed requests still in flight: those get their answers, then the connection closes. */
  closeAfterAnswers = false;

  /** The peer as it was at accept: a socket destroyed later no longer knows its address. */
  constructor(readonly peer: string, readonly peerPort: number) {}

  /** Requests read whole (body included) and not yet answered: the client waits for their answers. */
  get awaitingAnswers(): boolean {
    for (const req of this.unanswered) if (req.complete) return true;
    return false;
  }

  askToReconnect(): void {
    this.closeAsked = true;
  }
}

/** At stop, how long requests still arriving may take to finish before they are cut. */
const STOP_GRACE_MS = 1000;

/** Under memory pressure (soft), the longest a committed request's 200 is held back, so its client sends less. */
const PRESSURE_ACK_DELAY_MS = 1000;

export class HttpSource implements Source {
  readonly name = SOURCE;
  private app: FastifyInstance | null = null;
  private stopping = false;
  private readonly records: Counter.Internal;
  private readonly bytes: Counter.Internal;
  /** Body bytes of requests being handled (read and not yet answered), for the memory governor. */
  private bodyBytesInFlight = 0;
  private readonly connections = new Map<Socket, HttpConnection>();
  /** max_connections, held like a tenant's cap: a worker of several holds a part of it. */
  private readonly connectionCap: TenantLimiter;

  constructor(private readonly config: HttpSourceConfig, private readonly pipeline: Pipeline, private readonly telemetry: Telemetry) {
    this.connectionCap = pipeline.listenerCap(SOURCE, config.maxConnections, () => this.connections.size);
    this.records = telemetry.recordsReceived.labels({ source: SOURCE });
    this.bytes = telemetry.bytesReceived.labels({ source: SOURCE });
    pipeline.memory.account('http', () => this.bodyBytesInFlight);
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
      clientErrorHandler: this.onClientError,
      // requestTimeout bounds the whole request's arrival (headers and body), not the wait for the ack;
      // Node checks it every connectionsCheckingInterval (30 s by default: too coarse for slowloris).
      serverFactory: (handler) => http.createServer({
        requestTimeout: this.config.requestTimeoutMs,
        headersTimeout: this.config.requestTimeoutMs,
        connectionsCheckingInterval: Math.min(1000, Math.max(100, this.config.requestTimeoutMs / 4)),
      }, handler),
    });
    app.server.on('connection', this.onConnection);
    app.server.on('request', this.onRawRequest);
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    app.addHook('onSend', async (req, reply) => {
      // While draining, or asked to shed the connection, tell the keep-alive client to reconnect (to another worker or node).
      // In onSend, so a request already waiting for its commit when that was decided carries it too.
      const connection = this.connections.get(req.socket);
      if (this.stopping || connection?.closeAsked === true || connection?.closeAfterAnswers === true) void reply.header('connection', 'close');
    });
    app.addHook('onRequest', async (req, reply) => {
      // Past the memory hard mark, refuse ingestion before the body is read (operations routes on this port still answer).
      if (this.pipeline.memory.state === MemoryState.Hard && req.method === 'POST' && req.url.startsWith('/v1/')) {
        this.telemetry.emit('connectionRefused', { source: SOURCE, reason: 'memory', peer: normalizeAddress(req.socket.remoteAddress ?? '') });
        this.telemetry.httpRefusals.inc({ status: '503' });
        return reply.status(503).header('retry-after', '1').send({ error: 'the node is over its memory budget' });
      }
      return undefined;
    });
    app.post('/v1/logs', (req, reply) => this.ingest(req, reply, 'otlp'));
    app.post('/v1/ingest', (req, reply) => this.ingest(req, reply, 'ndjson'));
    app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
      // Fastify's own refusals (413 body too large, 415 …) and our bugs (500) are counted like ours.
      const status = err.statusCode ?? 500;
      this.telemetry.httpRefusals.inc({ status: String(status) });
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
    const closed = app.close();
    // A request still arriving (a slow upload, a slowloris) has been promised nothing: after a grace it is cut
    // (its client sends it again), so it cannot hold the drain until the deadline. Requests read whole get their answers.
    if (!(await settlesBefore(closed, Math.min(deadline, Date.now() + STOP_GRACE_MS)))) {
      for (const [socket, connection] of this.connections) if (!connection.awaitingAnswers) socket.destroy();
      await settlesBefore(closed, deadline);
    }
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

  *reconnectable(): Iterable<HttpConnection> {
    if (this.stopping) return;
    for (const connection of this.connections.values()) if (!connection.closeAsked) yield connection;
  }

  private readonly onConnection = (socket: Socket): void => {
    const peer = normalizeAddress(socket.remoteAddress ?? '');
    // Reset before it was accepted: nothing can be attributed to a peer without an address.
    if (peer === '') {
      socket.destroy();
      return;
    }
    if (!this.connectionCap.admitConnection(this.connections.size)) {
      this.telemetry.emit('connectionRefused', { source: SOURCE, reason: 'connection_limit', peer });
      socket.destroy();
      return;
    }
    this.connections.set(socket, new HttpConnection(peer, socket.remotePort ?? 0));
    socket.once('close', () => this.connections.delete(socket));
  };

  /** Track each request as the parser emits it, so a parse error behind it knows it is waiting for its answer. */
  private readonly onRawRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const connection = this.connections.get(req.socket as Socket);
    if (connection === undefined) return;
    connection.unanswered.add(req);
    res.once('close', () => {
      connection.unanswered.delete(req);
      if (connection.closeAfterAnswers && !connection.awaitingAnswers) req.socket.destroySoon();
    });
  };

  /**
   * Bytes that are not HTTP (or headers too large, or too slow): counted,
   * answered the way Node.js would, and the connection closed.
   */
  private readonly onClientError = (err: NodeJS.ErrnoException, socket: Duplex): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const connection = this.connections.get(socket as Socket);
    if (connection?.closeAfterAnswers === true) return;
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    this.telemetry.httpRefusals.inc({ status: String(status) });
    if (connection !== undefined && connection.awaitingAnswers) {
      // Pipelined after requests still waiting for their commit: a 400 now would be read as their answer
      // (and their records kept). They are answered first, with `Connection: close`; the bytes get none.
      connection.closeAfterAnswers = true;
      socket.pause();
      return;
    }
    if (socket.writable) {
      const body = JSON.stringify({ error: STATUS_CODES[status] });
      socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`);
    }
    socket.destroy();
  };

  private async ingest(req: FastifyRequest, reply: FastifyReply, kind: BodyKind): Promise<unknown> {
    let held = Buffer.isBuffer(req.body) ? req.body.length : 0;
    this.bodyBytesInFlight += held;
    try {
      const connection = this.connections.get(req.socket);
      if (connection === undefined) throw new Refusal(400, 'the connection is gone');
      const tenant = this.tenantOf(req, connection.peer);
      if (this.pipeline.congested(tenant)) throw new Refusal(503, 'the node is under pressure', 1);
      const body = await this.bodyOf(req);
      if (body !== req.body) {
        // Decompressed: both copies are held until the records are committed.
        this.bodyBytesInFlight += body.length;
        held += body.length;
      }
      this.bytes.inc(body.length);
      // A tenant that has read its share of the turn is decoded in a later one (the answer waits).
      const shares = this.pipeline.turnShares;
      const account = shares.account(tenant);
      if (!shares.charge(account, body.length)) await shares.nextShare(account);
      const source = new SourceInfo('http', connection.peer, connection.peerPort);
      const received = isoTime(Date.now());
      const protobuf = kind === 'otlp' && (req.headers['content-type'] ?? '').startsWith('application/x-protobuf');
      const records = this.decode(kind, body, protobuf, source, received);
      if (records.length > 0) await this.commit(tenant, records, source.address, body.length);
      // Committed: the bytes are the sinks' now. Under pressure the answer waits, so the client sends less.
      this.bodyBytesInFlight -= held;
      held = 0;
      if (this.pipeline.memory.state !== MemoryState.Normal) await this.pipeline.memory.whenRelieved(PRESSURE_ACK_DELAY_MS);
      return this.ok(reply, kind, protobuf);
    } catch (err) {
      if (err instanceof Refusal) {
        if (err.retryAfterSeconds !== undefined) void reply.header('retry-after', String(err.retryAfterSeconds));
        this.telemetry.httpRefusals.inc({ status: String(err.status) });
        return reply.status(err.status).send({ error: err.message });
      }
      throw err;
    } finally {
      this.bodyBytesInFlight -= held;
    }
  }

  private tenantOf(req: FastifyRequest, peer: string): Tenant {
    const directory = this.pipeline.directory;
    const auth = req.raw.headersDistinct.authorization;
    if (auth !== undefined && auth.length > 1) {
      // Node joins a repeated Authorization into the first; which one was meant is anyone's guess (syslog refuses two tokens alike).
      this.telemetry.emit('connectionRefused', { source: SOURCE, reason: 'ambiguous_credentials', peer });
      throw new Refusal(400, 'more than one Authorization header: ambiguous credentials');
    }
    if (auth !== undefined) {
      const match = /^Bearer ([\x21-\x7e]+)$/.exec(auth[0]!);
      const tenant = match ? directory.byToken(match[1]!) : null;
      if (tenant === null) {
        this.telemetry.emit('connectionRefused', { source: SOURCE, reason: 'bad_token', peer });
        throw new Refusal(401, 'unknown bearer token');
      }
      return tenant;
    }
    const tenant = directory.byAddress(peer);
    if (tenant === null) {
      this.telemetry.emit('connectionRefused', { source: SOURCE, reason: 'no_credentials', peer });
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
      return decodeBody(kind, body, protobuf, source, received, this.config.maxRecords);
    } catch (err) {
      if (err instanceof BadBodyError) throw new Refusal(err.status, err.status === 413 ? err.message : `bad body: ${err.message}`);
      throw err;
    }
  }

  /**
   * Attribute, charge the tenant's limit, and wait until every acknowledging
   * sink has committed. A large body goes down the pipeline RECORDS_PER_TURN
   * records per event-loop turn, in order (one lane), under one acknowledgement.
   */
  private async commit(tenant: Tenant, records: LogRecord[], peer: string, bytes: number): Promise<void> {
    const wait = tenant.limiter.unlimited ? 0 : tenant.limiter.tryCharge(records.length, bytes, Date.now());
    if (wait > 0) throw new Refusal(429, `tenant ${tenant.id} is over its rate limit`, Math.ceil(wait / 1000));
    const identity = new SessionIdentity(this.pipeline.directory, tenant, null);
    for (const rec of records) identity.attribute(rec, peer);
    this.records.inc(records.length);
    let timer: NodeJS.Timeout | undefined;
    const status = await new Promise<AckStatus | 'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.config.ackTimeoutMs);
      // One share per slice; the request's status is the worst of them, known once the last is sealed.
      const whole = new AckToken((s) => {
        clearTimeout(timer);
        resolve(s);
      });
      void this.submitInSlices(tenant, records, whole);
    });
    clearTimeout(timer);
    if (status === AckStatus.Committed) return;
    if (status === AckStatus.Dropped) throw new Refusal(422, `no sink takes records of tenant ${tenant.id}`);
    throw new Refusal(503, status === 'timeout' ? 'records not committed in time' : 'a sink failed to commit the records', 1);
  }

  private async submitInSlices(tenant: Tenant, records: LogRecord[], whole: AckToken): Promise<void> {
    const lane = this.pipeline.openLane(SOURCE, false);
    for (let from = 0; from < records.length; from += RECORDS_PER_TURN) {
      if (from > 0) await nextTurn();
      const slice = records.length <= RECORDS_PER_TURN ? records : records.slice(from, from + RECORDS_PER_TURN);
      lane.submit(tenant, slice, whole.part());
    }
    whole.seal();
  }

  private ok(reply: FastifyReply, kind: BodyKind, protobuf: boolean): unknown {
    // An empty ExportLogsServiceResponse: full success.
    if (kind === 'otlp' && protobuf) return reply.type('application/x-protobuf').send(Buffer.alloc(0));
    return reply.type('application/json').send(kind === 'otlp' ? {} : { ok: true });
  }
}
