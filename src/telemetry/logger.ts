/**
 * The node's logger: pino, one JSON object per line. Where the lines go is
 * the caller's choice — standard error by default; ops/log-output.ts hands in
 * its syslog output, a destination that may lose lines and counts them (a
 * LossyLogDestination), which Telemetry reports as
 * sluice_log_dropped_lines_total. So this floor knows no output but stderr.
 */
import pino, { type DestinationStream, type Logger } from 'pino';

/** pino's levels; `silent` logs nothing. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** Why a log line was not sent: `queue_full` (receiver away or slow), `send_error` (the socket refused or lost it). */
export type LogDropReason = 'queue_full' | 'send_error';

/** A destination that drops lines rather than wait, and counts them. */
export interface LossyLogDestination extends DestinationStream {
  /** Lines dropped since start, by reason. */
  readonly dropped: Readonly<Record<LogDropReason, number>>;
}

const lossyDestinations = new WeakMap<Logger, LossyLogDestination>();

/**
 * A logger writing to `destination`, by default standard error, synchronously:
 * the node logs events, never records, so volume is small and a crash must not
 * lose the line that explains it.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream | LossyLogDestination): Logger {
  const logger = pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, destination ?? pino.destination({ fd: 2, sync: true }));
  if (destination !== undefined && 'dropped' in destination) lossyDestinations.set(logger, destination);
  return logger;
}

/** The lines `logger`'s destination dropped, by reason; undefined when it never drops (stderr). */
export function logDropsOf(logger: Logger): Readonly<Record<LogDropReason, number>> | undefined {
  return lossyDestinations.get(logger)?.dropped;
}
