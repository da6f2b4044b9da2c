/**
 * Messages between the main process and its agent workers (JSON over the
 * `fork` IPC channel). The sequence: start → connected → go → progress… →
 * stopped (on its own at the end of --duration, or after stop) → close.
 */
import type { Pattern, Protocol } from './options.js';
import type { ErrorKind } from './transport.js';

/** Everything a worker needs to run its slice of agents. */
export interface WorkerPlan {
  workerIndex: number;
  workers: number;
  runId: string;
  /** This worker's agents: firstAgent … firstAgent + agentCount − 1. */
  firstAgent: number;
  agentCount: number;
  tenants: number;
  protocol: Protocol;
  host: string;
  port: number;
  pattern: Pattern;
  ratePerSec: number;
  burstIntervalMs: number;
  burstSize: number;
  floodRatePerSec: number;
  reconnectIntervalMs: number;
  durationMs: number;
  /** Acks of messages sent this long after the start of sending or later are the steady part's too. */
  steadyAfterMs: number;
  messageBytes: number;
  connectTimeoutMs: number;
  connectConcurrency: number;
}

export type ErrorCounts = Record<ErrorKind, number>;

/** What a worker measured, sent once when it stopped sending. */
export interface WorkerReport {
  /** Messages handed to the transport, per agent of the slice (index = agent − firstAgent). */
  sentPerAgent: number[];
  /** Messages sent in each second since go. */
  sentPerSecond: number[];
  /** Flood messages not sent because the connection's send buffer was full. */
  throttled: number;
  /** Messages not sent because the agent had no connection at the time. */
  notConnected: number;
  /** Connections established (initial ones and reopened ones). */
  connects: number;
  errors: ErrorCounts;
  /** Errors by code (ECONNREFUSED, ECONNRESET, CONNECT_TIMEOUT, PEER_CLOSED, …). */
  errorCodes: Record<string, number>;
  /** Connect times (µs), HdrHistogram compressed encoding. */
  connectHistogram: string;
  /** Send → ack (µs) per tenant, for acknowledging transports; empty histograms otherwise. */
  ackHistograms: string[];
  /** Send → ack (µs) of the messages sent from --steady-after on: tenant t0's, and every other tenant's. */
  steadyAckHistograms: { firstTenant: string; otherTenants: string };
  /** The worker's own event-loop delay while sending: a late loop means late sends. */
  eventLoopDelay: LoopDelay;
}

/** Event-loop delay of a load generator process, in ms. */
export interface LoopDelay {
  p99Ms: number;
  maxMs: number;
}

export type ToWorker =
  | { type: 'start'; plan: WorkerPlan }
  | { type: 'go'; goMicros: number }
  | { type: 'stop' }
  | { type: 'close' };

export type FromWorker =
  | { type: 'connected'; open: number; failed: number; firstErrorCode: string | null }
  | { type: 'progress'; sent: number; open: number; errors: number }
  | { type: 'stopped'; report: WorkerReport };
