/**
 * How one simulated agent reaches the node. Each protocol is one
 * implementation of {@link Transport}; the agents, schedules and statistics
 * do not know which one they drive. UDP, TCP and RELP are here; TLS and HTTP
 * would be further implementations. RELP acknowledges (HTTP would too), so it
 * sets `acknowledged` and calls `listener.acknowledged`, and latency becomes
 * send → ack instead of send → visible in the file sink.
 */
import type { Protocol } from './options.js';

/** How errors are reported: by the phase they hurt. */
export type ErrorKind = 'connect' | 'reset' | 'other';
export const ERROR_KINDS: readonly ErrorKind[] = ['connect', 'reset', 'other'];

/** The code for a connection the peer closed (no errno for that). */
export const PEER_CLOSED = 'PEER_CLOSED';
/** The code for a connection attempt that outlived --connect-timeout. */
export const CONNECT_TIMEOUT = 'CONNECT_TIMEOUT';

/** How long a gracefully closed stream connection (TCP, RELP) may wait for the peer before it is destroyed. */
export const STREAM_CLOSE_GRACE_MS = 5000;
/** The code for a RELP session the server ended with `serverclose`: the peer closing, so a reset. */
export const RELP_SERVERCLOSE = 'RELP_SERVERCLOSE';

const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', PEER_CLOSED, RELP_SERVERCLOSE]);

/**
 * Before a connection is established every failure is a connect error; a
 * refused datagram (ICMP port unreachable, reported on a later send) is one too.
 */
export function classifyError(code: string, established: boolean): ErrorKind {
  if (!established || code === 'ECONNREFUSED') return 'connect';
  return RESET_CODES.has(code) ? 'reset' : 'other';
}

export interface OutgoingMessage {
  /** The syslog message, ASCII (so its length is its size in bytes). */
  text: string;
  /** Monotonic µs when it was built; an acknowledging transport hands it back with the ack. */
  sendMicros: number;
}

/**
 * What a connection tells its agent. Never called synchronously from
 * `open`, and never after the agent called `destroy`. After `close`, only
 * `acknowledged`: a graceful close still delivers what was sent, and its acks
 * are still that agent's latency (`connected` and `failed` would disturb the
 * agent's next connection, so they stop).
 */
export interface ConnectionListener {
  /** Established, `micros` after `open` was called. */
  connected(micros: number): void;
  /** Something failed; `fatal` means the connection is gone and the agent must open another. */
  failed(kind: ErrorKind, code: string, fatal: boolean): void;
  /** The peer confirmed the message sent at `sendMicros` (acknowledging protocols only). */
  acknowledged(sendMicros: number): void;
}

export interface AgentConnection {
  /** Bytes accepted by `send` that the kernel has not taken yet: a flooding agent waits while this is high. */
  readonly pendingBytes: number;
  /** Messages accepted by `send` and not yet acknowledged (always 0 for a transport that does not acknowledge). */
  readonly unacknowledged: number;
  /** Sends messages due at the same moment; accepted while still connecting (sent once connected). */
  send(batch: readonly OutgoingMessage[]): void;
  /** Graceful: what was sent still reaches the peer. */
  close(): void;
  /** Now, discarding anything unsent. */
  destroy(): void;
}

export interface Transport {
  readonly protocol: Protocol;
  /** Whether the peer acknowledges messages (latency is then send → ack). */
  readonly acknowledged: boolean;
  open(localAddress: string, listener: ConnectionListener): AgentConnection;
}

export interface TransportTarget {
  host: string;
  port: number;
  connectTimeoutMs: number;
}
