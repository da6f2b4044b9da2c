/**
 * Syslog over TCP (RFC 6587). One session per connection: the tenant is
 * resolved once when the connection opens, records are built per chunk and
 * submitted as one batch, and a congested pipeline pauses the socket (TCP
 * backpressure reaches the sender) until the sinks drain.
 */
import net from 'node:net';
import type { Counter } from 'prom-client';
import type { Source, ComponentHealth } from '../../core/component.js';
import type { Pipeline } from '../../core/pipeline.js';
import { HostKeyCache, normalizeAddress, type Tenant } from '../../core/identity.js';
import { SourceInfo, type LogRecord } from '../../core/record.js';
import { isoTime } from '../../core/clock.js';
import type { SyslogTcpSourceConfig } from '../../ops/config/types.js';
import type { Telemetry } from '../../ops/telemetry.js';
import { SyslogFramer } from './framing.js';
import { decodeSyslogFrame } from './decode.js';

const SOURCE = 'syslog_tcp';
/** How long a stopping source keeps reading from open connections before closing them. */
const STOP_GRACE_MS = 1000;

/** Counter children resolved once per source, so sessions increment without label lookups. */
interface SessionCounters {
  records: Counter.Internal;
  bytes: Counter.Internal;
  parseErrors: Counter.Internal;
  invalidUtf8: Counter.Internal;
}

class TcpSession {
  private readonly framer: SyslogFramer;
  private readonly hostKeys: HostKeyCache;
  private readonly source: SourceInfo;
  private batch: LogRecord[] = [];
  private received = '';
  private nowMs = 0;
  private parseErrors = 0;
  private invalidUtf8 = 0;

  constructor(
    private readonly socket: net.Socket,
    private readonly tenant: Tenant,
    private readonly pipeline: Pipeline,
    private readonly telemetry: Telemetry,
    private readonly counters: SessionCounters,
    maxFrame: number,
    private readonly onClose: (session: TcpSession) => void,
  ) {
    this.source = new SourceInfo('tcp', normalizeAddress(socket.remoteAddress ?? ''), socket.remotePort ?? 0);
    this.hostKeys = new HostKeyCache(tenant.id);
    this.framer = new SyslogFramer(maxFrame, this.onFrame);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onSocketClose);
  }

  /** Half-close: the peer sees end of stream; what it already sent is still read. */
  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private readonly onFrame = (buf: Buffer, start: number, end: number): void => {
    const rec = decodeSyslogFrame(buf, start, end, this.tenant.id, this.hostKeys, this.source, this.received, this.nowMs);
    if (rec.parseError) this.parseErrors++;
    if (rec.invalidUtf8) this.invalidUtf8++;
    this.batch.push(rec);
  };

  private readonly onData = (chunk: Buffer): void => {
    this.nowMs = Date.now();
    this.received = isoTime(this.nowMs);
    const ok = this.framer.push(chunk);
    this.flush(chunk.length);
    if (!ok) this.reject();
  };

  private readonly onEnd = (): void => {
    const ok = this.framer.finish();
    this.flush(0);
    if (!ok) this.reject();
  };

  private flush(bytes: number): void {
    this.counters.bytes.inc(bytes);
    if (this.parseErrors > 0) {
      this.counters.parseErrors.inc(this.parseErrors);
      this.parseErrors = 0;
    }
    if (this.invalidUtf8 > 0) {
      this.counters.invalidUtf8.inc(this.invalidUtf8);
      this.invalidUtf8 = 0;
    }
    const batch = this.batch;
    if (batch.length === 0) return;
    this.batch = [];
    this.counters.records.inc(batch.length);
    if (!this.pipeline.submit(SOURCE, this.tenant, batch, null)) {
      this.socket.pause();
      this.pipeline.whenDrained(this.resume);
    }
  }

  private readonly resume = (): void => {
    this.socket.resume();
  };

  /** A framing error: records before the bad frame were delivered; the connection goes. */
  private reject(): void {
    this.telemetry.emit('frameRejected', {
      source: SOURCE, reason: this.framer.error ?? 'unknown', tenant: this.tenant.id,
      peer: `${this.source.address}:${this.source.port}`, bytes: this.framer.errorBytes,
    });
    this.socket.destroy();
  }

  private readonly onError = (err: NodeJS.ErrnoException): void => {
    this.telemetry.emit('socketError', { source: SOURCE, peer: `${this.source.address}:${this.source.port}`, error: err.code ?? err.message });
  };

  private readonly onSocketClose = (): void => {
    this.pipeline.cancelWait(this.resume);
    this.onClose(this);
  };
}

export class SyslogTcpSource implements Source {
  readonly name = SOURCE;
  private server: net.Server | null = null;
  private readonly sessions = new Set<TcpSession>();
  private readonly counters: SessionCounters;
  private allClosed: (() => void) | null = null;

  constructor(
    private readonly config: SyslogTcpSourceConfig,
    private readonly pipeline: Pipeline,
    private readonly telemetry: Telemetry,
  ) {
    this.counters = {
      records: telemetry.recordsReceived.labels({ source: SOURCE }),
      bytes: telemetry.bytesReceived.labels({ source: SOURCE }),
      parseErrors: telemetry.parseErrors.labels({ source: SOURCE }),
      invalidUtf8: telemetry.invalidUtf8.labels({ source: SOURCE }),
    };
  }

  /** The bound address (the configured port may be 0). */
  address(): net.AddressInfo | null {
    const address = this.server?.address();
    return address && typeof address === 'object' ? address : null;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = net.createServer({ noDelay: true }, this.onConnection);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.config.address, port: this.config.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.telemetry.emit('sourceError', { source: SOURCE, error: err.message }));
    const bound = this.address();
    this.telemetry.emit('listening', { source: SOURCE, address: bound?.address, port: bound?.port });
  }

  async stop(deadline: number): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.sessions.size > 0) {
      for (const session of this.sessions) session.end();
      const drained = new Promise<void>((resolve) => { this.allClosed = resolve; });
      const grace = Math.max(0, Math.min(STOP_GRACE_MS, deadline - Date.now()));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([drained, new Promise<void>((resolve) => { timer = setTimeout(resolve, grace); })]);
      clearTimeout(timer);
      for (const session of this.sessions) session.destroy();
    }
    await closed;
  }

  destroy(): void {
    this.server?.close();
    this.server = null;
    for (const session of this.sessions) session.destroy();
  }

  health(): ComponentHealth {
    return this.server?.listening ? { healthy: true } : { healthy: false, detail: 'not listening' };
  }

  private readonly onConnection = (socket: net.Socket): void => {
    const peer = socket.remoteAddress ?? '';
    const tenant = this.pipeline.directory.byAddress(peer);
    if (tenant === null) {
      this.telemetry.emit('connectionRefused', { source: SOURCE, reason: 'no_tenant', peer: normalizeAddress(peer) });
      socket.destroy();
      return;
    }
    const session = new TcpSession(socket, tenant, this.pipeline, this.telemetry, this.counters,
      this.config.maxFrameBytes, this.onSessionClose);
    this.sessions.add(session);
    this.telemetry.connections.inc({ source: SOURCE });
  };

  private readonly onSessionClose = (session: TcpSession): void => {
    this.sessions.delete(session);
    this.telemetry.connections.dec({ source: SOURCE });
    if (this.sessions.size === 0 && this.allClosed) {
      this.allClosed();
      this.allClosed = null;
    }
  };
}
