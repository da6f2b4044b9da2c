/**
 * The RELP source (rsyslog's acknowledged protocol, librelp doc/relp.html):
 * a listener whose sessions answer each `syslog` transaction `200 OK` only
 * once every acknowledging sink has committed the record. The at-least-once
 * path for real agents: what is not answered is resent by the agent.
 */
import net from 'node:net';
import { settlesBefore } from '../../core/clock.js';
import type { ComponentHealth, Source } from '../../core/component.js';
import type { Pipeline } from '../../core/pipeline.js';
import { normalizeAddress, SessionIdentity } from '../../core/identity.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { RelpSession, type RelpSessionContext } from './session.js';
import { ConnectionGuard } from '../connection-guard.js';
import { streamCounters } from '../session-batcher.js';
import type { RelpSourceConfig } from './config.js';

/**
 * After every reply and the serverclose hint are sent, how long stop() waits
 * for agents to close their side. An idle librelp client only reads when it
 * next sends, so it may never see the hint in time; closing loses nothing then.
 */
const PEER_CLOSE_GRACE_MS = 250;
const KEEPALIVE_MS = 60_000;

export class RelpSource implements Source {
  readonly name = 'relp';
  private server: net.Server | null = null;
  private readonly openSessions = new Set<RelpSession>();
  private readonly context: RelpSessionContext;
  private readonly guard: ConnectionGuard;

  constructor(private readonly config: RelpSourceConfig, private readonly pipeline: Pipeline, private readonly telemetry: Telemetry) {
    this.context = {
      sourceName: this.name,
      protocol: 'relp',
      pipeline,
      telemetry,
      counters: streamCounters(telemetry, this.name),
      maxFrameBytes: config.maxFrameBytes,
      window: Math.max(1, config.window),
      onClose: this.onSessionClose,
    };
    this.guard = new ConnectionGuard(this.name, config, telemetry, pipeline.memory, pipeline.listenerCap(this.name, config.maxConnections, () => this.openSessions.size));
  }

  /** The bound address (the configured port may be 0). */
  address(): net.AddressInfo | null {
    const address = this.server?.address();
    return address && typeof address === 'object' ? address : null;
  }

  /** Open sessions. */
  sessions(): IterableIterator<RelpSession> {
    return this.openSessions.values();
  }

  *reconnectable(): Iterable<RelpSession> {
    for (const session of this.openSessions) if (session.canReconnect) yield session;
  }

  async start(): Promise<void> {
    if (this.server) return;
    // Half-open: a client that ends its side still gets the responses to what it sent.
    const server = net.createServer({ noDelay: true, allowHalfOpen: true }, this.onConnection);
    this.server = server;
    await this.guard.listen(server, this.config.address, this.config.port, this.openSessions);
  }

  /**
   * Stop accepting; ask every session to close (each answers what it read,
   * then sends `serverclose` and ends its side); wait, bounded, for that and
   * briefly for the agents to close theirs; destroy what is left.
   */
  async stop(deadline: number): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    this.guard.stop();
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    const sessions = [...this.openSessions];
    if (sessions.length > 0) {
      this.telemetry.emit('relpSessionsClosing', { source: this.name, sessions: sessions.length });
      const ended = Promise.all(sessions.map((session) => session.serverClose(true)));
      await settlesBefore(ended, Math.min(deadline, Date.now() + this.config.drainTimeoutMs));
      // Once answered, nothing is lost by closing: the wait is only for agents that read promptly.
      await settlesBefore(Promise.all(sessions.map((session) => session.closed)), Math.min(deadline, Date.now() + PEER_CLOSE_GRACE_MS));
      const unfinished = [...this.openSessions].filter((session) => !session.isEnded);
      if (unfinished.length > 0) {
        let unanswered = 0;
        for (const session of unfinished) unanswered += session.unanswered;
        this.telemetry.emit('relpDrainIncomplete', { source: this.name, sessions: unfinished.length, unanswered });
      }
      for (const session of this.openSessions) session.destroy();
      await Promise.all(sessions.map((session) => session.closed));
    }
    await serverClosed;
  }

  destroy(): void {
    this.guard.stop();
    this.server?.close();
    this.server = null;
    for (const session of this.openSessions) session.destroy();
  }

  health(): ComponentHealth {
    return this.server?.listening ? { healthy: true } : { healthy: false, detail: 'not listening' };
  }

  private readonly onConnection = (socket: net.Socket): void => {
    const directory = this.pipeline.directory;
    const peer = normalizeAddress(socket.remoteAddress ?? '');
    const identity = new SessionIdentity(directory, directory.byAddress(peer), null);
    if (!identity.canAuthenticate) {
      this.telemetry.emit('connectionRefused', { source: this.name, reason: 'no_tenant', peer });
      socket.destroy();
      return;
    }
    const tenant = identity.tenant;
    if (!this.guard.admit(this.openSessions.size, tenant, peer)) {
      socket.destroy();
      return;
    }
    // Dead peers (a host that vanished) are found by the kernel instead of holding the session forever.
    socket.setKeepAlive(true, KEEPALIVE_MS);
    if (tenant !== null) tenant.connections++;
    this.openSessions.add(new RelpSession(this.context, socket, identity));
    this.telemetry.connections.inc({ source: this.name });
  };

  private readonly onSessionClose = (session: RelpSession): void => {
    if (!this.openSessions.delete(session)) return;
    this.telemetry.connections.dec({ source: this.name });
    const tenant = session.connectionTenant;
    if (tenant !== null) tenant.connections--;
  };
}
