/**
 * Where the node's own log goes: JSON lines on standard error (the default),
 * or RFC 5424 messages to a syslog receiver over UDP or TCP.
 *
 * A syslog message carries the event's code as MSGID and the very JSON line
 * stderr would get as MSG, so one parser reads both outputs:
 *   <PRI>1 TIMESTAMP HOSTNAME APP-NAME PID SLU0003I - {"level":30,"time":…,"code":"SLU0003I",…}
 *
 * Logging never waits and never fails the node: pino hands each line to
 * write(), which sends it or queues it (bounded by max_queue bytes, counting
 * what the socket still holds) and otherwise drops it, counted by reason and
 * reported on stderr at most once per 10 s. A receiver that is down is
 * retried with backoff; nothing here keeps the process alive.
 *
 * A local socket (/dev/log) is not offered: rsyslog's and journald's are
 * datagram sockets, and Node.js has no Unix datagram sockets (connecting a
 * stream socket to one fails with EPROTOTYPE).
 */
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { hostname } from 'node:os';
import type { DestinationStream, Logger } from 'pino';
import { Type } from '@sinclair/typebox';
import { section, size } from '../core/config-schema.js';
import { headerToken, truncateUtf8 } from '../sinks/syslog/encode.js';
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

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const satisfies readonly LogLevel[];

/** Syslog facilities a node's own log may use. */
export const LOG_FACILITIES = ['user', 'daemon', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'] as const;

/** RFC 5424 facility codes of {@link LOG_FACILITIES}. */
export const FACILITY_CODES: Readonly<Record<(typeof LOG_FACILITIES)[number], number>> = {
  user: 1, daemon: 3, local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};

const defaults = DEFAULT_LOG_CONFIG;
const defaultFacility = LOG_FACILITIES.find((f) => FACILITY_CODES[f] === defaults.syslog.facility);

/** `log` in the YAML configuration. */
export const LogSchema = section(
  {
    level: Type.Union(
      LOG_LEVELS.map((level) => Type.Literal(level)),
      {
        description: 'Least severe level the node logs about itself; `silent` turns its own logging off.',
        default: defaults.level,
      },
    ),
    output: Type.Union([Type.Literal('stderr'), Type.Literal('syslog')], {
      description: 'Where the log goes: `stderr` (one JSON object per line, written synchronously) or `syslog` (RFC 5424 messages to the receiver under `syslog`; see docs/logging.md).',
      default: defaults.output,
    }),
    syslog: section(
      {
        protocol: Type.Union([Type.Literal('udp'), Type.Literal('tcp')], {
          description: '`udp` (RFC 5426) or `tcp` (RFC 6587 octet counting). A local socket such as /dev/log cannot be used: Node.js has no Unix datagram sockets; point this at the local syslog daemon\'s UDP or TCP input instead.',
          default: defaults.syslog.protocol,
        }),
        host: Type.String({ description: 'Receiver host name or address.', default: defaults.syslog.host, minLength: 1 }),
        port: Type.Integer({ description: 'Receiver port; 0 means 514.', default: 0, minimum: 0, maximum: 65535 }),
        facility: Type.Union(LOG_FACILITIES.map((f) => Type.Literal(f)), { description: 'Syslog facility of every message.', default: defaultFacility }),
        app_name: Type.String({
          description: 'RFC 5424 APP-NAME of every message.', default: defaults.syslog.appName, pattern: '^[\\x21-\\x7e]{1,48}$',
          'x-expected': '1 to 48 printable ASCII characters without spaces',
        }),
        max_message: size(defaults.syslog.maxMessageBytes, 'Longer messages are cut (on a character boundary). From 480 to 65507 bytes (the largest UDP payload).', {
          min: 480, minText: '480 bytes', max: 65_507, maxText: '65507 bytes',
        }),
        max_queue: size(defaults.syslog.maxQueueBytes, 'Log bytes held while the receiver is connecting, away or slow; past it lines are dropped and counted (`sluice_log_dropped_lines_total`), never waited for. From 64KiB to 64MiB.', {
          min: 65_536, minText: '64KiB', max: 67_108_864, maxText: '64MiB',
        }),
      },
      'The syslog receiver, used when `output` is `syslog`.',
    ),
  },
  "The node's own log (docs/logging.md).",
);

const NOTICE_INTERVAL_MS = 10_000;
const RETRY_INITIAL_MS = 500;
const RETRY_MAX_MS = 30_000;
const CONNECT_TIMEOUT_MS = 5000;

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

export class SyslogLogOutput implements LossyLogDestination {
  readonly receiver: string;
  /** Lines dropped since start, by reason. */
  readonly dropped: Record<LogDropReason, number> = { queue_full: 0, send_error: 0 };

  /** ` HOSTNAME APP-NAME PROCID ` — the same for every message. */
  private readonly headerMiddle: string;
  private readonly priBase: number;
  private readonly transport: LogTransport;
  private unreported: Record<LogDropReason, number> = { queue_full: 0, send_error: 0 };
  private lastNotice = 0;
  private noticeTimer: NodeJS.Timeout | null = null;

  constructor(private readonly config: LogSyslogConfig, private readonly stderr: Logger) {
    this.receiver = `${config.protocol}://${config.host}:${config.port}`;
    this.priBase = config.facility * 8;
    this.headerMiddle = ' ' + headerToken(hostname(), 255) + ' ' + headerToken(config.appName, 48) + ' ' + process.pid + ' ';
    const drop = (reason: LogDropReason, lines: number) => this.drop(reason, lines);
    this.transport = config.protocol === 'udp' ? new UdpLogTransport(config, drop) : new TcpLogTransport(config, drop);
  }

  /** Called by pino with one JSON line (newline included) per log call. */
  write(line: string): void {
    this.transport.send(this.encode(line));
  }

  /** The RFC 5424 message for one pino line. */
  encode(line: string): Buffer {
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
    return Buffer.from(bytes <= max ? message : truncateUtf8(message, bytes, max));
  }

  /** Bytes of log waiting to leave this process: queued here or held by the socket (at most max_queue plus one line). */
  queuedBytes(): number {
    return this.transport.queuedBytes();
  }

  /**
   * Resolves once every line written so far has left this process (or `timeoutMs` passed): true when it did.
   * (Not named flush: pino's logger.flush(cb) would call that with a callback.)
   */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.transport.idle()) {
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return true;
  }

  /** Close the socket and stop retrying; later lines are dropped. */
  close(): void {
    this.transport.close();
    if (this.noticeTimer !== null) clearTimeout(this.noticeTimer);
    this.noticeTimer = null;
    this.notice();
  }

  private drop(reason: LogDropReason, lines: number): void {
    this.dropped[reason] += lines;
    this.unreported[reason] += lines;
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

interface LogTransport {
  send(message: Buffer): void;
  /** Nothing queued here or held by the socket. */
  idle(): boolean;
  queuedBytes(): number;
  close(): void;
}

/**
 * What both transports share: a queue for the lines logged before the socket
 * is ready (bounded with what the socket holds by max_queue), and reconnection
 * with backoff.
 */
abstract class QueueingTransport implements LogTransport {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private retryMs = RETRY_INITIAL_MS;
  private retryTimer: NodeJS.Timeout | null = null;
  protected closed = false;
  protected ready = false;

  constructor(protected readonly config: LogSyslogConfig, protected readonly drop: (reason: LogDropReason, lines: number) => void) {
    queueMicrotask(() => this.open());
  }

  send(message: Buffer): void {
    const size = this.frameSize(message);
    if (this.ready && this.pending.length === 0) {
      if (this.socketBytes() + size <= this.config.maxQueueBytes) this.transmit(message);
      else this.drop('queue_full', 1);
      return;
    }
    if (!this.closed && this.socketBytes() + this.pendingBytes + size <= this.config.maxQueueBytes) {
      this.pending.push(message);
      this.pendingBytes += size;
    } else {
      this.drop('queue_full', 1);
    }
  }

  idle(): boolean {
    return this.pending.length === 0 && this.socketBytes() === 0;
  }

  queuedBytes(): number {
    return this.pendingBytes + this.socketBytes();
  }

  close(): void {
    this.closed = true;
    this.ready = false;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.pending.length > 0) this.drop('queue_full', this.pending.length);
    this.pending = [];
    this.pendingBytes = 0;
    this.destroySocket();
  }

  /** The socket is usable: send what waited for it. */
  protected opened(): void {
    this.ready = true;
    this.retryMs = RETRY_INITIAL_MS;
    const pending = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const message of pending) this.transmit(message);
  }

  /** The socket failed or could not be made: try again later; lines queue meanwhile. */
  protected failed(): void {
    this.ready = false;
    this.destroySocket();
    if (this.closed || this.retryTimer !== null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, this.retryMs).unref();
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
  }

  private open(): void {
    if (this.closed) return;
    this.connect().catch(() => this.failed());
  }

  protected abstract connect(): Promise<void>;
  /** Hand one message to the ready socket; never waits. */
  protected abstract transmit(message: Buffer): void;
  /** Bytes the socket has accepted and not yet handed to the kernel. */
  protected abstract socketBytes(): number;
  protected abstract frameSize(message: Buffer): number;
  protected abstract destroySocket(): void;
}

/** RFC 5426: one message per datagram on a connected socket. */
class UdpLogTransport extends QueueingTransport {
  private socket: dgram.Socket | null = null;
  private outstandingBytes = 0;

  protected async connect(): Promise<void> {
    const { address, family } = await lookup(this.config.host);
    if (this.closed) return;
    const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    socket.unref();
    this.socket = socket;
    socket.on('error', () => {
      if (this.socket === socket) this.failed();
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(this.config.port, address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    if (this.socket === socket) this.opened();
  }

  protected transmit(message: Buffer): void {
    this.outstandingBytes += message.length;
    // An ICMP port unreachable (no receiver) comes back as ECONNREFUSED on a later send.
    this.socket!.send(message, (err) => {
      this.outstandingBytes -= message.length;
      if (err) this.drop('send_error', 1);
    });
  }

  protected socketBytes(): number {
    return this.outstandingBytes;
  }

  protected frameSize(message: Buffer): number {
    return message.length;
  }

  protected destroySocket(): void {
    const socket = this.socket;
    this.socket = null;
    socket?.close();
  }
}

/** RFC 6587 octet counting (`LEN SP MSG`) over one connection, reconnected when it breaks. */
class TcpLogTransport extends QueueingTransport {
  private socket: net.Socket | null = null;

  protected connect(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const socket = net.connect({ host: this.config.host, port: this.config.port, noDelay: true });
      socket.unref();
      this.socket = socket;
      socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy(new Error('connect timeout')));
      socket.once('connect', () => {
        socket.setTimeout(0);
        if (this.socket !== socket) return;
        this.opened();
        resolve();
      });
      socket.on('error', () => undefined); // 'close' follows and does the work
      socket.on('close', () => {
        if (this.socket === socket) this.failed();
        reject(new Error('closed'));
      });
      // The receiver never sends anything; reading keeps a half-closed connection noticed.
      socket.on('data', () => undefined);
      socket.on('end', () => socket.destroy());
    });
  }

  protected transmit(message: Buffer): void {
    // Written lines whose bytes never reach the kernel (the connection broke first) fail their callback: counted.
    this.socket!.write(Buffer.concat([Buffer.from(message.length + ' '), message]), (err) => {
      if (err) this.drop('send_error', 1);
    });
  }

  protected socketBytes(): number {
    return this.socket?.writableLength ?? 0;
  }

  protected frameSize(message: Buffer): number {
    return message.length + 6;
  }

  protected destroySocket(): void {
    const socket = this.socket;
    this.socket = null;
    socket?.destroy();
  }
}
