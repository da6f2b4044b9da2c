/**
 * `sluice loadgen` options: defaults, validation (every problem at once, each
 * naming its option), and the derived values (worker count, target address).
 */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { isIPv4 } from 'node:net';
import { parseDuration, parseSize } from '../../core/units.js';
import { openFilesLimit } from '../descriptors.js';

export type Protocol = 'tcp' | 'udp' | 'relp';
export const PROTOCOLS: readonly Protocol[] = ['tcp', 'udp', 'relp'];
/** Where a zero-config node listens for each protocol (its syslog sources share 5514; RELP has 2514). */
export const DEFAULT_PORTS: Readonly<Record<Protocol, number>> = { tcp: 5514, udp: 5514, relp: 2514 };
const DEFAULT_HOST = '127.0.0.1';
export type Pattern = 'steady' | 'burst' | 'flood' | 'reconnect' | 'idle';
export const PATTERNS: readonly Pattern[] = ['steady', 'burst', 'flood', 'reconnect', 'idle'];

/** Agents of one tenant bind to 127.0.<t+1>.0/24, so the third octet caps the tenant count. */
export const MAX_TENANTS = 255;
export const MAX_AGENTS = 100_000;
/** Agents a worker process aims to hold; more workers only when cores allow. */
export const AGENTS_PER_WORKER = 2500;
/** Descriptors a worker keeps for itself besides one per agent (IPC, stdio, libuv). */
const WORKER_SPARE_DESCRIPTORS = 200;
/** The largest datagram a UDP/IPv4 message fits in. */
const MAX_MESSAGE_BYTES = 65_507;
/** Below this the fixed part of the message (header and marker) does not fit. */
const MIN_MESSAGE_BYTES = 128;

export interface Target {
  host: string;
  port: number;
  /** As the user wrote it, normalised to `<protocol>://host:port`. */
  url: string;
}

export interface LoadgenOptions {
  protocol: Protocol;
  target: Target;
  agents: number;
  tenants: number;
  workers: number;
  pattern: Pattern;
  /** Messages per second per agent (steady agents; every agent outside `burst` and `idle`). */
  ratePerSec: number;
  burstIntervalMs: number;
  burstSize: number;
  /** Messages per second per agent of tenant t0 under `flood`. */
  floodRatePerSec: number;
  reconnectIntervalMs: number;
  durationMs: number;
  /** Connections held open, silent, between connecting and sending. */
  warmupMs: number;
  settleMs: number;
  /** Messages sent this long after the start of sending or later are the steady part, reported apart from the cold start (0: every message). */
  steadyAfterMs: number;
  /** Bytes of one syslog message (before TCP or RELP framing). */
  messageBytes: number;
  connectTimeoutMs: number;
  /** Connection attempts one worker keeps in flight while the agents first connect. */
  connectConcurrency: number;
  dataDir: string;
  /** Where the node's file sink writes `<tenant>/current.ndjson`. */
  logsDir: string;
  reportDir: string;
  /** No per-second progress lines. */
  quiet: boolean;
  printNodeConfig: boolean;
}

/** Option values as the command line gives them (strings; flags as booleans). */
export type RawLoadgenOptions = Record<string, string | boolean | undefined>;

export class OptionError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'OptionError';
  }
}

/** What the machine allows; injectable so validation is testable anywhere. */
export interface MachineLimits {
  cores: number;
  /** Open files per process (soft limit), or null when unknown. */
  descriptorLimit: number | null;
}

export function machineLimits(): MachineLimits {
  return { cores: availableParallelism(), descriptorLimit: openFilesLimit() };
}

export function defaultWorkers(agents: number, cores: number): number {
  return Math.max(1, Math.min(Math.ceil(agents / AGENTS_PER_WORKER), cores));
}

/** Reads options one by one, collecting every problem before failing. */
class OptionReader {
  readonly problems: string[] = [];

  constructor(private readonly raw: RawLoadgenOptions) {}

  given(name: string): boolean {
    return this.raw[camel(name)] !== undefined;
  }

  private text(name: string, fallback: string): string {
    const value = this.raw[camel(name)];
    return typeof value === 'string' ? value.trim() : fallback;
  }

  fail(name: string, got: string, expected: string): void {
    this.problems.push(`--${name}: got ${JSON.stringify(got)}; expected ${expected}`);
  }

  flag(name: string): boolean {
    return this.raw[camel(name)] === true;
  }

  string(name: string, fallback: string): string {
    const value = this.text(name, fallback);
    if (value === '') this.fail(name, value, 'a non-empty value');
    return value;
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const value = this.text(name, String(fallback));
    const n = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      this.fail(name, value, `an integer from ${min} to ${max}`);
      return fallback;
    }
    return n;
  }

  /** A positive number up to `max` (fractions allowed: 0.5 msg/s is one message every 2 s). */
  rate(name: string, fallback: number, max: number): number {
    const value = this.text(name, String(fallback));
    const n = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
    if (!(n > 0 && n <= max)) {
      this.fail(name, value, `a number of messages per second above 0 and at most ${max}`);
      return fallback;
    }
    return n;
  }

  duration(name: string, fallback: string, minMs: number, maxMs: number, range: string): number {
    const value = this.text(name, fallback);
    // A bare number means seconds, as in the node's configuration.
    const ms = /^\d+(\.\d+)?$/.test(value) ? parseDuration(Number(value)) : parseDuration(value);
    if (ms === null || ms < minMs || ms > maxMs) {
      this.fail(name, value, `a duration such as 10s, 500ms or 2m, ${range}`);
      return parseDuration(fallback)!;
    }
    return ms;
  }

  size(name: string, fallback: number, min: number, max: number): number {
    const value = this.text(name, String(fallback));
    const bytes = /^\d+$/.test(value) ? parseSize(Number(value)) : parseSize(value);
    if (bytes === null || bytes < min || bytes > max) {
      this.fail(name, value, `a size from ${min} to ${max} bytes, such as 256 or 1KiB`);
      return fallback;
    }
    return bytes;
  }

  choice<T extends string>(name: string, fallback: T, choices: readonly T[]): T {
    const value = this.text(name, fallback);
    if (!(choices as readonly string[]).includes(value)) {
      this.fail(name, value, `one of ${choices.join(', ')}`);
      return fallback;
    }
    return value as T;
  }
}

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * `[tcp://|udp://|relp://]host:port` with a loopback IPv4 host: agents bind to
 * 127.0.<t+1>.x to stand for tenants, and such a socket reaches loopback only.
 * Without --target, the zero-config node's port for the protocol.
 */
function readTarget(reader: OptionReader, protocolGiven: Protocol | null): { protocol: Protocol; target: Target } {
  const defaultProtocol = protocolGiven ?? 'tcp';
  const defaultUrl = `${defaultProtocol}://${DEFAULT_HOST}:${DEFAULT_PORTS[defaultProtocol]}`;
  const value = reader.string('target', defaultUrl);
  const fallback = { protocol: defaultProtocol, target: { host: DEFAULT_HOST, port: DEFAULT_PORTS[defaultProtocol], url: defaultUrl } };
  const m = /^(?:([a-z]+):\/\/)?([^:/]+):(\d{1,5})$/.exec(value);
  if (m === null) {
    reader.fail('target', value, 'tcp://host:port, udp://host:port or relp://host:port, such as tcp://127.0.0.1:5514');
    return fallback;
  }
  const scheme = m[1];
  if (scheme !== undefined && !(PROTOCOLS as readonly string[]).includes(scheme)) {
    reader.fail('target', value, `a URL whose scheme is one of ${PROTOCOLS.join(', ')}`);
    return fallback;
  }
  if (scheme !== undefined && protocolGiven !== null && scheme !== protocolGiven) {
    reader.fail('protocol', protocolGiven, `the protocol of --target (${scheme}), or no --protocol`);
    return fallback;
  }
  const protocol = (scheme as Protocol | undefined) ?? defaultProtocol;
  const host = m[2] === 'localhost' ? '127.0.0.1' : m[2]!;
  if (!isIPv4(host) || !host.startsWith('127.')) {
    reader.fail('target', value, 'a loopback address (127.0.0.0/8): agents bind to 127.0.<tenant+1>.x to stand for tenants');
    return fallback;
  }
  const port = Number(m[3]);
  if (port < 1 || port > 65535) {
    reader.fail('target', value, 'a port from 1 to 65535');
    return fallback;
  }
  return { protocol, target: { host, port, url: `${protocol}://${host}:${port}` } };
}

export function parseLoadgenOptions(raw: RawLoadgenOptions, limits: MachineLimits = machineLimits()): LoadgenOptions {
  const r = new OptionReader(raw);
  const protocolGiven = r.given('protocol') ? r.choice<Protocol>('protocol', 'tcp', PROTOCOLS) : null;
  const { protocol, target } = readTarget(r, protocolGiven);
  const agents = r.integer('agents', 1000, 1, MAX_AGENTS);
  const tenants = r.integer('tenants', 1, 1, MAX_TENANTS);
  const workers = r.given('workers') ? r.integer('workers', 1, 1, 256) : defaultWorkers(agents, limits.cores);
  const pattern = r.choice<Pattern>('pattern', 'steady', PATTERNS);
  const dataDir = r.string('data-dir', './data');
  const options: LoadgenOptions = {
    protocol,
    target,
    agents,
    tenants,
    workers,
    pattern,
    ratePerSec: r.rate('rate', 1, 100_000),
    burstIntervalMs: r.duration('burst-interval', '5s', 10, 3_600_000, 'from 10ms to 1h'),
    burstSize: r.integer('burst-size', 10, 1, 100_000),
    floodRatePerSec: r.rate('flood-rate', 1000, 1_000_000),
    reconnectIntervalMs: r.duration('reconnect-interval', '5s', 100, 3_600_000, 'from 100ms to 1h'),
    durationMs: r.duration('duration', '10s', 100, 86_400_000, 'from 100ms to 24h'),
    warmupMs: r.duration('warmup', '0s', 0, 600_000, 'from 0 to 10m'),
    settleMs: r.duration('settle', '5s', 0, 600_000, 'from 0 to 10m'),
    steadyAfterMs: r.duration('steady-after', '10s', 0, 86_400_000, 'from 0 to 24h'),
    messageBytes: r.size('size', 256, MIN_MESSAGE_BYTES, MAX_MESSAGE_BYTES),
    connectTimeoutMs: r.duration('connect-timeout', '10s', 100, 300_000, 'from 100ms to 5m'),
    connectConcurrency: r.integer('connect-concurrency', 200, 1, 100_000),
    dataDir,
    logsDir: r.given('logs-dir') ? r.string('logs-dir', '') : path.join(dataDir, 'logs'),
    reportDir: r.string('report-dir', './loadgen-report'),
    quiet: r.flag('quiet'),
    printNodeConfig: r.flag('print-node-config'),
  };

  // Checks across options, only when each option was readable on its own.
  if (r.problems.length === 0) {
    if (tenants > agents) r.fail('tenants', String(tenants), `at most --agents (${agents}): every tenant needs an agent`);
    if (workers > agents) r.fail('workers', String(workers), `at most --agents (${agents})`);
    if (pattern === 'flood' && tenants < 2) {
      r.fail('tenants', String(tenants), '2 or more with --pattern flood (t0 floods, the other tenants are the ones watched)');
    }
    if (pattern === 'reconnect' && options.reconnectIntervalMs >= options.durationMs) {
      r.fail('reconnect-interval', String(raw.reconnectInterval ?? '5s'), `shorter than --duration (${options.durationMs} ms)`);
    }
    const perWorker = Math.ceil(agents / workers);
    if (limits.descriptorLimit !== null && perWorker + WORKER_SPARE_DESCRIPTORS > limits.descriptorLimit) {
      const needed = Math.ceil(agents / (limits.descriptorLimit - WORKER_SPARE_DESCRIPTORS));
      r.fail('workers', String(workers),
        `${needed} or more: ${perWorker} agents per worker need as many sockets, and a process may open ${limits.descriptorLimit}`);
    }
  }
  if (r.problems.length > 0) throw new OptionError(r.problems);
  return options;
}
