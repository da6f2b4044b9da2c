/**
 * Where the node's own log goes: JSON lines on standard error (the default),
 * or RFC 5424 messages to a syslog receiver over UDP or TCP.
 *
 * A syslog message carries the event's code as MSGID and the very JSON line
 * stderr would get as MSG, so one parser reads both outputs:
 *   <PRI>1 TIMESTAMP HOSTNAME APP-NAME PID SLU0003I - {"level":30,"time":…,"code":"SLU0003I",…}
 *
 * Logging never waits and never fails the node: pino hands each line to
 * write(), which queues it for the syslog sink's own transport (UDP or TCP)
 * on the one sender chain (sinks/delivery/chain.ts), bounded by max_queue
 * bytes (what the socket has not yet taken included), and otherwise drops
 * it, counted by reason and reported on stderr at most once per 10 s. A
 * receiver that is down is retried with the one backoff (with jitter);
 * nothing here keeps the process alive.
 *
 * A local socket (/dev/log) is not offered: rsyslog's and journald's are
 * datagram sockets, and Node.js has no Unix datagram sockets (connecting a
 * stream socket to one fails with EPROTOTYPE).
 */
import { hostname } from 'node:os';
import type { DestinationStream, Logger } from 'pino';
import type { LineAppender } from '../core/ndjson.js';
import { DeliverySink } from '../sinks/delivery/chain.js';
import type { DeliveryStats, TenantStats } from '../sinks/delivery/stats.js';
import type { DeliveryEncoder, DeliveryTransport, DropReason } from '../sinks/delivery/transport.js';
import { DEFAULT_SYSLOG_SINK, type SyslogSinkConfig } from '../sinks/syslog/config.js';
import { headerToken, truncateUtf8 } from '../sinks/syslog/encode.js';
import { StreamTransport } from '../sinks/syslog/tcp.js';
import { UdpTransport } from '../sinks/syslog/udp.js';
import { createLogger, type LogDropReason, type LogLevel, type LossyLogDestination } from '../telemetry/logger.js';
import { EVENTS } from '../telemetry/events.js';

/** Where the node's own log goes when `log.output` is `syslog`. */
export interface LogSyslogConfig {
  protocol: 'udp' | 'tcp';
  host: string;
  port: number;
  /** RFC 5424 facility code (0-23). */
  facility: number;
  appName: string;
  /** Messages longer than this many bytes are cut. */
  maxMessageBytes: number;
  /** Bytes held while the receiver is connecting, away or slow; past it lines are dropped and counted. */
  maxQueueBytes: number;
}

export interface LogConfig {
  level: LogLevel;
  output: 'stderr' | 'syslog';
  syslog: LogSyslogConfig;
}

export const DEFAULT_LOG_CONFIG: Readonly<LogConfig> = {
  level: 'info',
  output: 'stderr',
  syslog: { protocol: 'udp', host: '127.0.0.1', port: 514, facility: 3, appName: 'sluice', maxMessageBytes: 8192, maxQueueBytes: 1 << 20 },
};

/** Syslog facilities a node's own log may use. */
export const LOG_FACILITIES = ['user', 'daemon', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'] as const;

/** RFC 5424 facility codes of {@link LOG_FACILITIES}. */
export const FACILITY_CODES: Readonly<Record<(typeof LOG_FACILITIES)[number], number>> = {
  user: 1, daemon: 3, local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};

const NOTICE_INTERVAL_MS = 10_000;
const RETRY_INITIAL_MS = 500;
const RETRY_MAX_MS = 30_000;
const CONNECT_TIMEOUT_MS = 5000;
/** The chain's one tenant: the node itself. */
const LOG_TENANT = 'log';

/** pino's numeric levels as syslog severities (RFC 5424 table 2). */
function severityOf(level: unknown): number {
  if (typeof level !== 'number') return 6;
  if (level >= 60) return 2; // fatal → critical
  if (level >= 50) return 3; // error
  if (level >= 40) return 4; // warning
  if (level >= 30) return 6; // informational
  return 7; // debug, trace
}

const outputs = new WeakMap<Logger, SyslogLogOutput>();

/**
 * The node's logger, writing where `config.output` says. `stderr` is where
 * standard-error lines go (tests pass a stream of their own).
 */
export function createNodeLogger(config: LogConfig, stderrStream?: DestinationStream): Logger {
  const stderr = createLogger(config.level, stderrStream);
  if (config.output === 'stderr') return stderr;
  const output = new SyslogLogOutput(config.syslog, stderr);
  const logger = createLogger(config.level, output);
  outputs.set(logger, output);
  const { code, text } = EVENTS.logToSyslog;
  stderr.info({ code, receiver: output.receiver }, text);
  return logger;
}

/** The syslog output behind `logger`, if it has one. */
export function syslogOutputOf(logger: Logger): SyslogLogOutput | undefined {
  return outputs.get(logger);
}

/**
 * Let the lines already logged reach the socket before the process exits,
 * waiting at most `timeoutMs`. True when nothing was left behind.
 */
export async function flushLogger(logger: Logger, timeoutMs: number): Promise<boolean> {
  return outputs.get(logger)?.drain(timeoutMs) ?? true;
}

/** What the syslog transports' drops mean for log lines. */
const LOG_DROP_REASONS: Readonly<Record<DropReason, LogDropReason>> = {
  queue_full: 'queue_full', stopped: 'queue_full', shutdown: 'queue_full', socket_full: 'queue_full',
  kernel_full: 'send_error', send_error: 'send_error', too_large: 'send_error', rejected: 'send_error',
};

const NO_TENANT_STATS: TenantStats = { delivered() {}, dropped() {}, retrying() {} };

/** A queued line is its octet-counted frame (`LEN SP MSG`), built by SyslogLogOutput. */
const FRAME_ENCODER: DeliveryEncoder<string> = {
  encode(_tenant: string, frames: readonly string[], queue: LineAppender): void {
    for (let i = 0; i < frames.length; i++) queue.append(frames[i]!, false);
  },
};

export class SyslogLogOutput implements LossyLogDestination, DeliveryStats {
  readonly receiver: string;
  readonly sink = 'log';
  /** Lines dropped since start, by reason. */
  readonly dropped: Record<LogDropReason, number> = { queue_full: 0, send_error: 0 };

  /** ` HOSTNAME APP-NAME PROCID ` — the same for every message. */
  private readonly headerMiddle: string;
  private readonly priBase: number;
  private readonly chain: DeliverySink<string>;
  /** The one-line batch handed to the chain, reused. */
  private readonly line: string[] = [''];
  private unreported: Record<LogDropReason, number> = { queue_full: 0, send_error: 0 };
  private lastNotice = 0;
  private noticeTimer: NodeJS.Timeout | null = null;

  constructor(private readonly config: LogSyslogConfig, private readonly stderr: Logger) {
    this.receiver = `${config.protocol}://${config.host}:${config.port}`;
    this.priBase = config.facility * 8;
    this.headerMiddle = ' ' + headerToken(hostname(), 255) + ' ' + headerToken(config.appName, 48) + ' ' + process.pid + ' ';
    // The syslog sink's transports; the queue bound is checked per line in write(), so the chain never refuses.
    const sink: SyslogSinkConfig = {
      ...DEFAULT_SYSLOG_SINK, name: this.sink, protocol: config.protocol, host: config.host, port: config.port,
      maxMessageBytes: config.maxMessageBytes, connectTimeoutMs: CONNECT_TIMEOUT_MS,
      batchDelayMs: 0, queueHighWaterBytes: config.maxQueueBytes, queueMaxBytes: 2 * config.maxQueueBytes,
      retryInitialMs: RETRY_INITIAL_MS, retryMaxMs: RETRY_MAX_MS,
    };
    const transport: DeliveryTransport = config.protocol === 'udp' ? new UdpTransport(sink, this, true) : new StreamTransport(sink, this, true);
    this.chain = new DeliverySink(this.sink, sink, FRAME_ENCODER, transport, this, false, { background: true });
    void this.chain.start();
  }

  /** Called by pino with one JSON line (newline included) per log call. */
  write(line: string): void {
    const message = this.encode(line);
    const bytes = Buffer.byteLength(message);
    const frame = bytes + ' ' + message;
    // The frame's bytes: its message's, the length's digits and a space (all ASCII).
    if (this.chain.queuedBytes() + frame.length - message.length + bytes > this.config.maxQueueBytes) {
      this.drop('queue_full', 1);
      return;
    }
    this.line[0] = frame;
    this.chain.write(LOG_TENANT, this.line, null);
  }

  /** The RFC 5424 message for one pino line. */
  encode(line: string): string {
    const json = line.endsWith('\n') ? line.slice(0, -1) : line;
    let fields: Record<string, unknown> = {};
    try {
      fields = JSON.parse(json) as Record<string, unknown>;
    } catch {
      // Not pino's JSON (cannot happen from createNodeLogger): sent as it is, with the header of an info line.
    }
    const time = typeof fields['time'] === 'string' ? fields['time'] : new Date().toISOString();
    const code = typeof fields['code'] === 'string' ? fields['code'] : null;
    const message = '<' + (this.priBase + severityOf(fields['level'])) + '>1 ' + time + this.headerMiddle + headerToken(code, 32) + ' - ' + json;
    const bytes = Buffer.byteLength(message);
    const max = this.config.maxMessageBytes;
    return bytes <= max ? message : truncateUtf8(message, bytes, max);
  }

  /** Bytes of log waiting to leave this process: queued, or written to a socket that has not taken them yet (at most max_queue). */
  queuedBytes(): number {
    return this.chain.queuedBytes();
  }

  /**
   * Resolves once every line written so far has left this process (or `timeoutMs` passed): true when it did.
   * (Not named flush: pino's logger.flush(cb) would call that with a callback.)
   */
  drain(timeoutMs: number): Promise<boolean> {
    return this.chain.flushed(Date.now() + timeoutMs);
  }

  /** Close the socket and stop retrying; later lines are dropped. */
  close(): void {
    this.chain.destroy();
    if (this.noticeTimer !== null) clearTimeout(this.noticeTimer);
    this.noticeTimer = null;
    this.notice();
  }

  // The chain's and the transports' reports (DeliveryStats): only drops matter here.
  tenant(): TenantStats {
    return NO_TENANT_STATS;
  }

  written(): void {}
  watchQueues(): void {}
  sendFailed(): void {}
  truncated(): void {}
  connected(): void {}
  disconnected(): void {}

  drop(reason: DropReason | LogDropReason, lines: number): void {
    if (lines <= 0) return;
    const counted = LOG_DROP_REASONS[reason];
    this.dropped[counted] += lines;
    this.unreported[counted] += lines;
    if (this.noticeTimer !== null) return;
    const wait = this.lastNotice + NOTICE_INTERVAL_MS - Date.now();
    if (wait <= 0) {
      this.notice();
      return;
    }
    this.noticeTimer = setTimeout(() => {
      this.noticeTimer = null;
      this.notice();
    }, wait).unref();
  }

  /** One stderr line per reason for the drops not reported yet: the syslog receiver may be the thing that is down. */
  private notice(): void {
    const { code, text } = EVENTS.logLinesDropped;
    for (const reason of Object.keys(this.unreported) as LogDropReason[]) {
      const lines = this.unreported[reason];
      if (lines === 0) continue;
      this.stderr.warn({ code, receiver: this.receiver, reason, lines }, text);
      this.unreported[reason] = 0;
      this.lastNotice = Date.now();
    }
  }
}
