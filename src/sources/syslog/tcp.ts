/**
 * Syslog over a byte stream: plain TCP (RFC 6587) or TLS (RFC 5425). One
 * session per connection: its identity (certificate, network) is resolved
 * once when the connection opens (for TLS, once its handshake is through:
 * tls-handshakes.ts bounds what handshakes cost); every frame is a record,
 * batched and paused by the session batcher (../session-batcher.ts), so a
 * congested pipeline pauses the socket (TCP backpressure reaches the sender)
 * until the sinks drain.
 */
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Source, ComponentHealth } from '../../core/component.js';
import type { Pipeline } from '../../core/pipeline.js';
import { normalizeAddress, SessionIdentity, type PeerCertificate } from '../../core/identity.js';
import { settlesBefore } from '../../core/clock.js';
import type { SyslogTcpSourceConfig, SyslogTlsSourceConfig } from './config.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { SyslogFramer } from './framing.js';
import { ConnectionGuard } from '../connection-guard.js';
import { SessionBatcher, streamCounters, type StreamContext } from '../session-batcher.js';
import { TlsHandshakes } from './tls-handshakes.js';

/** How long a stopping source keeps reading from open connections before closing them. */
const STOP_GRACE_MS = 1000;
const KEEPALIVE_MS = 60_000;

interface SyslogStreamContext extends StreamContext {
  onClose(session: SyslogStreamSession): void;
}

/** One connection: every frame is a record; nothing is acknowledged (TCP backpressure is the only signal). */
class SyslogStreamSession extends SessionBatcher<SyslogStreamContext> {
  protected readonly frames: SyslogFramer;
  /** No record of this connection can name a tenant: it is closed after the read. */
  private unauthenticated = false;

  constructor(context: SyslogStreamContext, socket: net.Socket, identity: SessionIdentity) {
    super(context, socket, identity);
    this.frames = new SyslogFramer(context.maxFrameBytes, this.onFrame);
  }

  /** Half-close: the peer sees end of stream; what it already sent is still read. */
  end(): void {
    this.socket.end();
  }

  private readonly onFrame = (buf: Buffer, start: number, end: number): void => {
    const rec = this.decode(buf, start, end);
    const tenant = this.attribute(rec);
    if (tenant === null) {
      // Nothing on this connection can name a tenant: stop reading it.
      if (this.identity.tenant === null && this.identity.refusal === 'no_credentials') this.unauthenticated = true;
      return;
    }
    if (this.startsRun(tenant)) this.openRun(tenant, null);
    this.addToRun(rec);
  };

  protected afterRead(ok: boolean): boolean {
    if (!ok) {
      this.flush();
      this.reject();
      return false;
    }
    if (this.unauthenticated) {
      this.flush();
      this.socket.destroy();
      return false;
    }
    return true;
  }

  onEnd(): void {
    const ok = this.frames.finish();
    this.flush();
    if (!ok) this.reject();
  }

  /** A framing error: records before the bad frame were delivered; the connection goes. */
  private reject(): void {
    this.context.telemetry.emit('frameRejected', {
      source: this.context.sourceName, reason: this.frames.error ?? 'unknown', tenant: this.identity.tenant?.id,
      peer: this.peer, bytes: this.frames.errorBytes,
    });
    this.socket.destroy();
  }

  protected released(): void {
    this.context.onClose(this);
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
  private readonly sessions = new Set<SyslogStreamSession>();
  /** Every socket the listener accepted and that is still open: over TLS, those still in their handshake belong to no session. */
  private readonly accepted = new Set<net.Socket>();
  private readonly context: SyslogStreamContext;
  private tls: TlsSettings | null = null;
  /** TLS only: the connections accepted and not yet through their handshake. */
  private handshakes: TlsHandshakes | null = null;
  private allClosed: (() => void) | null = null;
  private readonly guard: ConnectionGuard;

  constructor(
    private readonly config: SyslogTcpSourceConfig | SyslogTlsSourceConfig,
    private readonly protocol: 'tcp' | 'tls',
    private readonly pipeline: Pipeline,
    private readonly telemetry: Telemetry,
  ) {
    this.name = protocol === 'tls' ? 'syslog_tls' : 'syslog_tcp';
    this.context = {
      sourceName: this.name,
      protocol,
      pipeline,
      telemetry,
      counters: streamCounters(telemetry, this.name),
      maxFrameBytes: config.maxFrameBytes,
      onClose: this.onSessionClose,
    };
    this.guard = new ConnectionGuard(this.name, config, telemetry, pipeline.memory, pipeline.listenerCap(this.name, config.maxConnections, () => this.sessions.size));
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
      const tlsConfig = this.config as SyslogTlsSourceConfig;
      const handshakes = new TlsHandshakes(this.tls.options, tlsConfig, this.name, this.telemetry, this.onConnection);
      this.handshakes = handshakes;
      this.telemetry.watchHandshakes(this.name, () => handshakes.counts());
      server = net.createServer({ noDelay: true }, this.onAccepted);
    } else {
      server = net.createServer({ noDelay: true }, this.onConnection);
    }
    server.on('connection', (socket: net.Socket) => {
      this.accepted.add(socket);
      socket.once('close', () => this.accepted.delete(socket));
    });
    this.server = server;
    await this.guard.listen(server, this.config.address, this.config.port, this.sessions);
  }

  async stop(deadline: number): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    this.guard.stop();
    this.handshakes?.stop();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.sessions.size > 0) {
      for (const session of this.sessions) session.end();
      const drained = new Promise<void>((resolve) => { this.allClosed = resolve; });
      await settlesBefore(drained, Math.min(deadline, Date.now() + STOP_GRACE_MS));
      for (const session of this.sessions) session.destroy();
    }
    // Closing the listener waits for every socket it accepted. One still in a TLS handshake has sent no record:
    // waiting for it would hold the drain until the handshake timeout, past the shutdown deadline.
    for (const socket of this.accepted) socket.destroy();
    await closed;
  }

  destroy(): void {
    this.guard.stop();
    this.handshakes?.stop();
    this.server?.close();
    this.server = null;
    for (const session of this.sessions) session.destroy();
  }

  health(): ComponentHealth {
    return this.server?.listening ? { healthy: true } : { healthy: false, detail: 'not listening' };
  }

  /** TLS: a connection accepted, before its handshake: the listener's caps (its handshakes count), then the lazy handshake. */
  private readonly onAccepted = (socket: net.Socket): void => {
    const handshakes = this.handshakes!;
    if (!this.guard.admit(this.sessions.size + handshakes.size, null, normalizeAddress(socket.remoteAddress ?? ''))) {
      socket.destroy();
      return;
    }
    handshakes.accept(socket);
  };

  private readonly onConnection = (socket: net.Socket): void => {
    if (this.server === null) {
      // Through its handshake after the listener stopped.
      socket.destroy();
      return;
    }
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
    this.sessions.add(new SyslogStreamSession(this.context, socket, identity));
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

  private readonly onSessionClose = (session: SyslogStreamSession): void => {
    this.sessions.delete(session);
    const tenant = session.connectionTenant;
    if (tenant !== null) tenant.connections--;
    this.telemetry.connections.dec({ source: this.name });
    if (this.sessions.size === 0 && this.allClosed) {
      this.allClosed();
      this.allClosed = null;
    }
  };
}
