/**
 * The one lifecycle every source and sink follows (after the OpenTelemetry
 * Collector's component contract): start() returns once the component is
 * serving; stop() drains within a deadline; destroy() forces. stop() and
 * destroy() are safe before start() and safe to call twice.
 */
import type { LogRecord } from './record.js';
import type { AckToken } from './ack.js';

export interface ComponentHealth {
  healthy: boolean;
  detail?: string;
}

export interface Component {
  readonly name: string;
  start(): Promise<void>;
  /** Drain: stop taking new work, finish what was taken, by `deadline` (epoch ms). */
  stop(deadline: number): Promise<void>;
  /** Release everything now, dropping what is in flight. */
  destroy(): void;
  health(): ComponentHealth;
}

export interface Source extends Component {
  /**
   * The connections this source can ask to reconnect without losing anything
   * (load shedding: the balancer then spreads their agents), not yet asked.
   * Absent where the protocol has no graceful way: closing a plain syslog
   * connection over TCP or TLS loses what its agent had in flight.
   */
  reconnectable?(): Iterable<Reconnectable>;
}

/** One agent connection that can be asked to reconnect (see Source.reconnectable). */
export interface Reconnectable {
  /** `relp` or `http`: the label of `sluice_sessions_shed_total`. */
  readonly protocol: string;
  /** Epoch ms the connection opened. */
  readonly openedAt: number;
  /**
   * Ask the agent, once, to reconnect: what it sent is still answered (RELP
   * answers every transaction read, then `serverclose`; HTTP answers the next
   * response with `Connection: close`).
   */
  askToReconnect(): void;
}

export interface Sink extends Component {
  /** Whether this sink's commit counts towards end-to-end acknowledgement. */
  readonly acknowledges: boolean;
  /**
   * Take a batch of records of one tenant. The sink owns reading them but must
   * not modify them: the same records go to every sink of the route. Calls
   * `ack.commit()` once the batch is durable by this sink's definition, or
   * `ack.fail()`. Returns false when this tenant should slow down: the sink
   * is above its high-water mark and the tenant holds more than its share of
   * it (see FairShares in core/fair.ts); callers then wait for `onDrain`.
   */
  write(tenant: string, records: readonly LogRecord[], ack: AckToken | null): boolean;
  /** Bytes accepted and not yet committed. */
  queuedBytes(): number;
  /**
   * With a tenant: whether that tenant is to slow down (what write() last
   * told it, or would tell it now). Without: whether any tenant is.
   */
  congested(tenant?: string): boolean;
  /**
   * Called when a tenant told to slow down may go on again: with its id, or
   * with null when every tenant may.
   */
  onDrain(listener: (tenant: string | null) => void): void;
}
