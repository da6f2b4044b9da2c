/**
 * The bounds every stream listener (syslog TCP and TLS, RELP) puts on its
 * connections: at accept the memory governor's refusals (past the hard mark,
 * past the fd capacity) and the caps per listener and per tenant; and one sweep a
 * second (not a timer per connection) that closes sessions idle past
 * idle_timeout or holding an incomplete frame past frame_timeout (slowloris).
 */
import type net from 'node:net';
import type { Tenant } from '../core/identity.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import type { MemoryGovernor } from '../core/memory.js';
import type { TenantLimiter } from '../core/limits.js';

export interface ConnectionBounds {
  /** Connections this listener holds at once; past it new ones are refused (counted). 0: no cap. */
  maxConnections: number;
  /** A connection that sends nothing for this long is closed (counted). 0: never. */
  idleTimeoutMs: number;
  /** A frame begun and not completed within this long closes its connection (slowloris). 0: never. */
  frameTimeoutMs: number;
}

export const DEFAULT_CONNECTION_BOUNDS: Readonly<ConnectionBounds> = Object.freeze({ maxConnections: 50_000, idleTimeoutMs: 0, frameTimeoutMs: 30_000 });

/** What the sweep reads and does on a session. */
export interface GuardedSession {
  /** When data last arrived (epoch ms). */
  lastDataAt: number;
  /** Since when a frame has been incomplete (epoch ms; 0: none is). */
  partialSince: number;
  /** Not reading by the node's own choice (a rate limit, a congested sink, the memory governor). */
  readonly pausedByNode: boolean;
  /** Close the connection, counted under `reason`. */
  expel(reason: string): void;
}

const SWEEP_INTERVAL_MS = 1000;

export class ConnectionGuard {
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    private readonly source: string,
    private readonly bounds: ConnectionBounds,
    private readonly telemetry: Telemetry,
    private readonly memory: MemoryGovernor,
    /** The listener's cap, held like a tenant's: its part of max_connections in a worker of several. */
    private readonly cap: TenantLimiter,
  ) {}

  /**
   * Whether a new connection fits the listener's and its tenant's caps; a
   * refusal is counted and logged. The caller counts the tenant's connection.
   */
  admit(open: number, tenant: Tenant | null, peer: string): boolean {
    const refusal = this.memory.refuseConnection();
    if (refusal !== null) {
      this.telemetry.emit('connectionRefused', { source: this.source, reason: refusal, peer });
      return false;
    }
    if (!this.cap.admitConnection(open)) {
      this.telemetry.emit('connectionRefused', { source: this.source, reason: 'connection_limit', peer });
      return false;
    }
    if (tenant !== null && !tenant.limiter.admitConnection(tenant.connections)) {
      this.telemetry.emit('connectionRefused', { source: this.source, reason: 'tenant_connection_limit', peer, tenant: tenant.id });
      return false;
    }
    return true;
  }

  /**
   * Bind `server` with a deep accept queue (it absorbs reconnect storms of
   * thousands of agents; capped by net.core.somaxconn), report its later
   * errors, start sweeping `sessions`, and log where it listens.
   */
  async listen(server: net.Server, host: string, port: number, sessions: Iterable<GuardedSession>): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, backlog: 4096 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.telemetry.emit('sourceError', { source: this.source, error: err.message }));
    this.start(sessions);
    const bound = server.address() as net.AddressInfo;
    this.telemetry.emit('listening', { source: this.source, address: bound.address, port: bound.port });
  }

  /** Sweep `sessions` once a second while either timeout is configured. */
  private start(sessions: Iterable<GuardedSession>): void {
    const { idleTimeoutMs, frameTimeoutMs } = this.bounds;
    if (this.sweeper !== null || (idleTimeoutMs <= 0 && frameTimeoutMs <= 0)) return;
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const session of sessions) {
        if (session.pausedByNode) {
          // The node stopped reading it, not the peer sending: its clocks start again once it reads.
          session.lastDataAt = now;
          if (session.partialSince > 0) session.partialSince = now;
          continue;
        }
        if (frameTimeoutMs > 0 && session.partialSince > 0 && now - session.partialSince > frameTimeoutMs) session.expel('frame_timeout');
        else if (idleTimeoutMs > 0 && now - session.lastDataAt > idleTimeoutMs) session.expel('idle_timeout');
      }
    }, SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  stop(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
  }
}
