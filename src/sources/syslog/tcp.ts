/**
 * Syslog over a byte stream: plain TCP (RFC 6587) or TLS (RFC 5425). One
 * session per connection: its identity (certificate, network) is resolved
 * once when the connection opens, records are built per chunk and submitted
 * in batches, and a congested pipeline pauses the socket (TCP backpressure
 * reaches the sender) until the sinks drain.
 */
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Counter } from 'prom-client';
import type { Source, ComponentHealth } from '../../core/component.js';
import type { Lane, Pipeline } from '../../core/pipeline.js';
import type { SessionControl, SessionEntry } from '../../core/sessions.js';
import { MemoryState, type MemoryGovernor } from '../../core/memory.js';
import { normalizeAddress, SessionIdentity, type PeerCertificate, type Tenant } from '../../core/identity.js';
import { SourceInfo, type LogRecord } from '../../core/record.js';
import { isoTime, settlesBefore } from '../../core/clock.js';
import type { SyslogTcpSourceConfig, SyslogTlsSourceConfig } from './config.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { SyslogFramer } from './framing.js';
import { ConnectionGuard, type GuardedSession } from '../connection-guard.js';
import { decodeSyslogFrame } from './decode.js';

/** How long a stopping source keeps reading from open connections before closing them. */
const STOP_GRACE_MS = 1000;
const KEEPALIVE_MS = 60_000;
/**
 * Bytes one connection may have processed in one event-loop turn before it
 * yields to the others: libuv reads a busy socket up to 32 times 64 KiB per
 * turn, so a flooding connection would otherwise hold the loop for 2 MiB of
 * frames while every other connection waits. Past this it pauses until the
 * turn's immediates run (its next reads come in the next turn): connections
 * are served in turn, at most this much each.
 */
const TURN_BYTES = 64 * 1024;

/** Counter children resolved once per source, so sessions increment without label lookups. */
interface SessionCounters {
  records: Counter.Internal;
  bytes: Counter.Internal;
  parseErrors: Counter.Internal;
  invalidUtf8: Counter.Internal;
}

/** The session a socket belongs to: socket events go to shared functions rather than closures per connection. */
const SESSION = Symbol('session');
type SessionSocket = net.Socket & { [SESSION]: StreamSession };

function sessionData(this: SessionSocket, chunk: Buffer): void {
  this[SESSION].onData(chunk);
}
function sessionEnd(this: SessionSocket): void {
  this[SESSION].onEnd();
}
function sessionError(this: SessionSocket, err: NodeJS.ErrnoException): void {
  this[SESSION].onError(err);
}
function sessionClose(this: SessionSocket): void {
  this[SESSION].onSocketClose();
}
function flushSession(session: StreamSession): void {
  session.flushSoon();
}

class StreamSession implements SessionControl, GuardedSession {
  private readonly framer: SyslogFramer;
  private readonly entry: SessionEntry;
  private readonly source: SourceInfo;
  private readonly peer: string;
  private batch: LogRecord[] = [];
  private batchTenant: Tenant | null = null;
  private received = '';
  private nowMs = 0;
  private parseErrors = 0;
  private invalidUtf8 = 0;
  private unauthenticated = false;
  private readonly lane: Lane;
  private unflushedBytes = 0;
  private flushScheduled = false;
  /** Bytes processed since this connection last yielded (see TURN_BYTES). */
  private turnBytes = 0;
  private yielding = false;
  /** When data last arrived (epoch ms), for the idle timeout. */
  lastDataAt = Date.now();
  /** Since when a frame has been incomplete (0: none is), for the frame timeout. */
  partialSince = 0;

  constructor(
    private readonly sourceName: string,
    private readonly socket: net.Socket,
    private readonly identity: SessionIdentity,
    private readonly pipeline: Pipeline,
    private readonly telemetry: Telemetry,
    private readonly counters: SessionCounters,
    protocol: 'tcp' | 'tls',
    maxFrame: number,
    private readonly onClose: (session: StreamSession) => void,
  ) {
    this.source = new SourceInfo(protocol, normalizeAddress(socket.remoteAddress ?? ''), socket.remotePort ?? 0);
    this.peer = `${this.source.address}:${this.source.port}`;
    this.framer = new SyslogFramer(maxFrame, this.onFrame);
    this.lane = pipeline.openLane(sourceName);
    this.entry = pipeline.sessions.open(sourceName, protocol, this.peer, identity.tenant?.id ?? null, this);
    this.lane.session = this.entry.id;
    (socket as SessionSocket)[SESSION] = this;
    socket.on('data', sessionData);
    socket.on('end', sessionEnd);
    socket.on('error', sessionError);
    socket.on('close', sessionClose);
  }

  /** Half-close: the peer sees end of stream; what it already sent is still read. */
  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Closed by the node for a reason of its own (timeouts): counted, then gone. */
  expel(reason: string): void {
    this.telemetry.emit('connectionClosed', { source: this.sourceName, reason, peer: this.peer, tenant: this.identity.tenant?.id });
    this.socket.destroy();
  }

  get tenant(): Tenant | null {
    return this.identity.tenant;
  }

  /** Not reading by the node's own choice (a rate limit, a congested sink, the memory governor). */
  get pausedByNode(): boolean {
    return this.entry.throttled || this.entry.governed;
  }

  close(reason: string): void {
    this.expel(reason);
  }

  queuedBytes(): number {
    return this.framer.heldBytes + this.unflushedBytes;
  }

  pauseReading(): void {
    this.entry.governed = true;
    this.socket.pause();
  }

  resumeReading(): void {
    this.entry.governed = false;
    if (!this.entry.throttled && !this.yielding) this.socket.resume();
  }

  private readonly onFrame = (buf: Buffer, start: number, end: number): void => {
    const rec = decodeSyslogFrame(buf, start, end, this.source, this.received, this.nowMs);
    if (rec.parseError) this.parseErrors++;
    if (rec.invalidUtf8) this.invalidUtf8++;
    const tenant = this.identity.attribute(rec, this.source.address);
    if (tenant === null) {
      this.telemetry.emit('recordRefused', { source: this.sourceName, reason: this.identity.refusal, peer: this.peer });
      this.entry.errors++;
      // Nothing on this connection can name a tenant: stop reading it.
      if (this.identity.tenant === null && this.identity.refusal === 'no_credentials') this.unauthenticated = true;
      return;
    }
    if (tenant !== this.batchTenant) {
      this.submit();
      this.batchTenant = tenant;
    }
    this.batch.push(rec);
  };

  onData(chunk: Buffer): void {
    // Past the hard mark a session that reads is paused at once, not at the next sample.
    const memory: MemoryGovernor = this.pipeline.memory;
    if (memory.state === MemoryState.Hard) memory.holdNow(this.entry);
    this.nowMs = Date.now();
    this.lastDataAt = this.nowMs;
    this.received = isoTime(this.nowMs);
    const ok = this.framer.push(chunk);
    // A frame left incomplete starts (or keeps) its clock; a complete stream stops it.
    if (this.framer.heldBytes === 0) this.partialSince = 0;
    else if (this.partialSince === 0) this.partialSince = this.nowMs;
    this.unflushedBytes += chunk.length;
    this.turnBytes += chunk.length;
    if (!ok) {
      this.flush();
      this.reject();
    } else if (this.unauthenticated) {
      this.flush();
      this.socket.destroy();
    } else {
      if (!this.flushScheduled) {
        // Reads that arrive in one event-loop turn go down the pipeline as one batch:
        // per-batch costs (counters, lane, enrichment lookup, sink write) are paid once.
        this.flushScheduled = true;
        setImmediate(flushSession, this);
      }
      if (this.turnBytes >= TURN_BYTES && !this.yielding) {
        this.yielding = true;
        this.socket.pause();
      }
    }
  }

  /** Once per turn with data: the batch goes down the pipeline, and a connection that yielded reads again. */
  flushSoon(): void {
    this.flushScheduled = false;
    this.turnBytes = 0;
    this.flush();
    if (this.yielding) {
      this.yielding = false;
      if (!this.entry.throttled && !this.entry.governed) this.socket.resume();
    }
  }

  onEnd(): void {
    const ok = this.framer.finish();
    this.flush();
    if (!ok) this.reject();
  }

  private flush(): void {
    this.counters.bytes.inc(this.unflushedBytes);
    this.entry.bytes += this.unflushedBytes;
    this.unflushedBytes = 0;
    this.entry.errors += this.parseErrors;
    if (this.parseErrors > 0) {
      this.counters.parseErrors.inc(this.parseErrors);
      this.parseErrors = 0;
    }
    if (this.invalidUtf8 > 0) {
      this.counters.invalidUtf8.inc(this.invalidUtf8);
      this.invalidUtf8 = 0;
    }
    this.submit();
  }

  private submit(): void {
    const batch = this.batch;
    const tenant = this.batchTenant;
    if (batch.length === 0 || tenant === null) return;
    this.batch = [];
    this.counters.records.inc(batch.length);
    this.entry.records += batch.length;
    this.entry.tenant = tenant.id;
    this.entry.noteHosts(batch);
    if (!this.lane.submit(tenant, batch, null)) {
      this.entry.throttled = true;
      this.socket.pause();
      this.resume ??= () => {
        this.entry.throttled = false;
        if (!this.entry.governed && !this.yielding) this.socket.resume();
      };
      this.lane.whenReady(this.resume);
    }
  }

  /** Made the first time this session is throttled (most never are). */
  private resume: (() => void) | null = null;

  /** A framing error: records before the bad frame were delivered; the connection goes. */
  private reject(): void {
    this.telemetry.emit('frameRejected', {
      source: this.sourceName, reason: this.framer.error ?? 'unknown', tenant: this.identity.tenant?.id,
      peer: this.peer, bytes: this.framer.errorBytes,
    });
    this.socket.destroy();
  }

  onError(err: NodeJS.ErrnoException): void {
    this.telemetry.emit('socketError', { source: this.sourceName, peer: this.peer, error: err.code ?? err.message });
  }

  onSocketClose(): void {
    this.lane.close();
    this.pipeline.sessions.close(this.entry);
    this.onClose(this);
  }
}

/** What a TLS listener needs beyond a plain one. */
interface TlsSettings {
  options: tls.TlsOptions;
  requireCertificate: boolean;
}

function tlsSettings(config: SyslogTlsSourceConfig): TlsSettings {
  const request = config.clientCertificates !== 'none';
  return {
    options: {
      cert: readFileSync(config.certificateFile!),
      key: readFileSync(config.keyFile!),
      ...(config.clientCaFile !== null ? { ca: readFileSync(config.clientCaFile) } : {}),
      requestCert: request,
      // Verification failures are judged per connection (counted), not by a silent handshake abort.
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    },
    requireCertificate: config.clientCertificates === 'require',
  };
}

/** The certificate a TLS peer presented (null: none), and whether it verified against the configured CA. */
function peerCertificate(socket: tls.TLSSocket): { cert: PeerCertificate; verified: boolean } | null {
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return null;
  const cn = typeof cert.subject?.CN === 'string' ? cert.subject.CN : null;
  const dnsNames = (cert.subjectaltname ?? '').split(', ').filter((n) => n.startsWith('DNS:')).map((n) => n.slice(4));
  return { cert: { cn, dnsNames }, verified: socket.authorized };
}

export class SyslogStreamSource implements Source {
  readonly name: string;
  private server: net.Server | null = null;
  private readonly sessions = new Set<StreamSession>();
  private readonly counters: SessionCounters;
  private tls: TlsSettings | null = null;
  private allClosed: (() => void) | null = null;
  private readonly guard: ConnectionGuard;

  constructor(
    private readonly config: SyslogTcpSourceConfig | SyslogTlsSourceConfig,
    private readonly protocol: 'tcp' | 'tls',
    private readonly pipeline: Pipeline,
    private readonly telemetry: Telemetry,
  ) {
    this.name = protocol === 'tls' ? 'syslog_tls' : 'syslog_tcp';
    const labels = { source: this.name };
    this.counters = {
      records: telemetry.recordsReceived.labels(labels),
      bytes: telemetry.bytesReceived.labels(labels),
      parseErrors: telemetry.parseErrors.labels(labels),
      invalidUtf8: telemetry.invalidUtf8.labels(labels),
    };
    this.guard = new ConnectionGuard(this.name, config, telemetry, pipeline.memory);
  }

  /** The bound address (the configured port may be 0). */
  address(): net.AddressInfo | null {
    const address = this.server?.address();
    return address && typeof address === 'object' ? address : null;
  }

  async start(): Promise<void> {
    if (this.server) return;
    let server: net.Server;
    // Read certificates at start, so a missing file is a start failure with its reason.
    if (this.protocol === 'tls') this.tls = tlsSettings(this.config as SyslogTlsSourceConfig);
    if (this.tls !== null) {
      const tlsServer = tls.createServer(this.tls.options, this.onConnection);
      tlsServer.on('tlsClientError', (err, socket) => {
        this.telemetry.emit('connectionRefused', {
          source: this.name, reason: 'tls_handshake', peer: normalizeAddress(socket.remoteAddress ?? ''), error: err.message,
        });
      });
      server = tlsServer;
    } else {
      server = net.createServer({ noDelay: true }, this.onConnection);
    }
    this.server = server;
    await this.guard.listen(server, this.config.address, this.config.port, this.sessions);
  }

  async stop(deadline: number): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    this.guard.stop();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.sessions.size > 0) {
      for (const session of this.sessions) session.end();
      const drained = new Promise<void>((resolve) => { this.allClosed = resolve; });
      await settlesBefore(drained, Math.min(deadline, Date.now() + STOP_GRACE_MS));
      for (const session of this.sessions) session.destroy();
    }
    await closed;
  }

  destroy(): void {
    this.guard.stop();
    this.server?.close();
    this.server = null;
    for (const session of this.sessions) session.destroy();
  }

  health(): ComponentHealth {
    return this.server?.listening ? { healthy: true } : { healthy: false, detail: 'not listening' };
  }

  private readonly onConnection = (socket: net.Socket): void => {
    const identity = this.identify(socket);
    if (identity === null) {
      socket.destroy();
      return;
    }
    const tenant = identity.tenant;
    if (!this.guard.admit(this.sessions.size, tenant, normalizeAddress(socket.remoteAddress ?? ''))) {
      socket.destroy();
      return;
    }
    // Dead peers (a host that vanished) are found by the kernel instead of holding the session forever.
    socket.setKeepAlive(true, KEEPALIVE_MS);
    if (tenant !== null) tenant.connections++;
    const session = new StreamSession(this.name, socket, identity, this.pipeline, this.telemetry, this.counters,
      this.protocol, this.config.maxFrameBytes, this.onSessionClose);
    this.sessions.add(session);
    this.telemetry.connections.inc({ source: this.name });
  };

  /** The connection's identity, or null (counted) when it can never carry an acceptable record. */
  private identify(socket: net.Socket): SessionIdentity | null {
    const directory = this.pipeline.directory;
    const peer = normalizeAddress(socket.remoteAddress ?? '');
    const refuse = (reason: string): null => {
      this.telemetry.emit('connectionRefused', { source: this.name, reason, peer });
      return null;
    };
    if (this.tls !== null) {
      const presented = peerCertificate(socket as tls.TLSSocket);
      if (presented !== null) {
        if (!presented.verified) return refuse('bad_certificate');
        const owner = directory.byCertificate(presented.cert);
        if (owner === null) return refuse('unknown_certificate');
        return new SessionIdentity(directory, owner.tenant, owner.hostIdentity);
      }
      if (this.tls.requireCertificate) return refuse('no_certificate');
    }
    const identity = new SessionIdentity(directory, directory.byAddress(peer), null);
    return identity.canAuthenticate ? identity : refuse('no_tenant');
  }

  private readonly onSessionClose = (session: StreamSession): void => {
    this.sessions.delete(session);
    const tenant = session.tenant;
    if (tenant !== null) tenant.connections--;
    this.telemetry.connections.dec({ source: this.name });
    if (this.sessions.size === 0 && this.allClosed) {
      this.allClosed();
      this.allClosed = null;
    }
  };
}
