/** Shared test utilities. */
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import pg from 'pg';
import YAML from 'yaml';
import { withDefaultUser } from '../src/services/hostmeta/postgres-store.js';
import { ACTIVE_FILE_PATTERN, sortRotated } from '../src/sinks/file/sink.js';
import { parseConfig } from '../src/ops/config/load.js';
import { formatProblem } from '../src/ops/config/problems.js';
import type { SluiceConfig } from '../src/ops/config/types.js';
import { SluiceNode } from '../src/ops/node.js';
import { Telemetry } from '../src/telemetry/telemetry.js';
import { AckToken, type AckStatus } from '../src/core/ack.js';
import type { DeliveryEncoder } from '../src/sinks/delivery/transport.js';
import type { Browser } from 'playwright-core';
import type { NatsConnection } from 'nats';
import type { ClusterStatus } from '../src/services/cluster/member.js';
import type { TailSink } from '../src/ops/control.js';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');

export function tempDir(t: { after(fn: () => void): void }, prefix = 'sluice-test-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  t.after(() => removeQuietly(dir));
  return dir;
}

/**
 * Remove a test folder. A node or buffer closed by a later hook may still be
 * writing in it: retry, and never fail a test over cleanup.
 */
export function removeQuietly(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
  } catch (err) {
    process.stderr.write(`could not remove ${dir}: ${(err as Error).message}\n`);
  }
}

/** A telemetry object whose log goes nowhere. */
export function silentTelemetry(): Telemetry {
  return new Telemetry(pino({ level: 'silent' }));
}

/** An acknowledgement for one sink that records how it settled. */
export function ackInto(statuses: AckStatus[]): AckToken {
  const ack = new AckToken((s) => statuses.push(s));
  ack.retain();
  ack.seal();
  return ack;
}

/** What a sink's encoder queues for one item, as a string. */
export function encodedFrame<R>(encoder: DeliveryEncoder<R>, tenant: string, item: R): string {
  let out = '';
  encoder.encode(tenant, [item], { append: (line) => { out += line; } });
  return out;
}

/** Telemetry whose log lines are kept in memory (`codes()`: their event codes, in order). */
export function memoryTelemetry(): { telemetry: Telemetry; lines: Record<string, unknown>[]; codes: () => string[] } {
  const { logger, lines } = memoryLogger();
  return { telemetry: new Telemetry(logger), lines, codes: () => lines.map((l) => String(l.code)) };
}

/** A logger that keeps every line in memory, for asserting on events. */
export function memoryLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A log file's text, or '' when it is gone: a file listed a moment ago may
 * have been renamed since (a rotation, or another worker adopting the files
 * of a slot no longer running); a reader polling sees it under its new name.
 */
export function readLogFile(file: string): string {
  try {
    // A line counts once its newline is written: the writer may be in the middle of the last one.
    const text = readFileSync(file, 'utf8');
    return text.slice(0, text.lastIndexOf('\n') + 1);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/** Every NDJSON record under a tenant folder, in file order (rotated files oldest first, then the active files of every writer). */
export function readTenantRecords(logsDir: string, tenant: string): Record<string, unknown>[] {
  const dir = path.join(logsDir, tenant);
  if (!existsSync(dir)) return [];
  const all = readdirSync(dir);
  // Rotated files of every writer (oldest first), then the active file of each writer (one per worker process).
  const names = [...sortRotated(all), ...all.filter((name) => ACTIVE_FILE_PATTERN.test(name)).sort()];
  const records: Record<string, unknown>[] = [];
  for (const name of names) {
    for (const line of readLogFile(path.join(dir, name)).split('\n')) {
      if (line !== '') records.push(JSON.parse(line) as Record<string, unknown>);
    }
  }
  return records;
}

/**
 * Whether an outside program is installed. Missing: the test skips with the
 * reason, except under CI=true, where a missing program fails the run.
 */
export function requireProgram(name: string, hint: string): string | false {
  return requirePresent(spawnSync('sh', ['-c', `command -v ${name}`]).status === 0, name, hint);
}

/** The same for something found otherwise (e.g. an unpacked program with its modules): skip, or fail under CI=true. */
export function requirePresent(found: boolean, name: string, hint: string): string | false {
  if (found) return false;
  if (process.env.CI === 'true') throw new Error(`${name} is required under CI=true (${hint})`);
  const reason = `${name} not installed (${hint})`;
  process.stderr.write(`skipping: ${reason}\n`);
  return reason;
}

/** The shared PostgreSQL of the tests (each test works in a schema of its own and drops it). */
export const POSTGRES_URL = process.env.SLUICE_TEST_POSTGRES_URL ?? 'postgres://127.0.0.1:5432/test';

/** Whether PostgreSQL answers. Missing: the test skips with the reason, except under CI=true, where it fails. */
export async function requirePostgres(url = POSTGRES_URL): Promise<string | false> {
  const client = new pg.Client({ connectionString: withDefaultUser(url), connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return false;
  } catch (err) {
    const reason = `PostgreSQL not reachable at ${url} (${(err as Error).message}); set SLUICE_TEST_POSTGRES_URL`;
    if (process.env.CI === 'true') throw new Error(`${reason}: required under CI=true`, { cause: err });
    process.stderr.write(`skipping: ${reason}\n`);
    return reason;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * A node config from YAML (the real loader), everything under `dir`, and every
 * listener on port 0 unless the YAML names a port: tests run in parallel and
 * must never fight over a fixed port. The memory governor measures only the
 * queues (`measure: queues`): the process is the test's as much as the node's.
 */
export function testConfig(dir: string, yaml = ''): SluiceConfig {
  const doc = (YAML.parse(yaml) ?? {}) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  doc.data_dir = dir;
  doc.log ??= { level: 'warn' };
  doc.shutdown_timeout ??= '5s';
  doc.sources ??= {};
  for (const source of ['syslog_udp', 'syslog_tcp', 'syslog_tls', 'relp', 'http']) {
    doc.sources[source] ??= {};
    doc.sources[source].port ??= 0;
  }
  doc.hostmeta ??= {};
  doc.hostmeta.service ??= {};
  doc.hostmeta.service.port ??= 0;
  doc.admin ??= {};
  doc.admin.port ??= 0;
  // A node in the test's process: the process's memory is mostly the test's, so only the queues count.
  doc.memory ??= {};
  doc.memory.measure ??= 'queues';
  const { config, problems } = parseConfig(YAML.stringify(doc));
  if (!config) throw new Error(`bad test config: ${problems.map((p) => formatProblem(p)).join('; ')}`);
  return config;
}

/** Start a node in this process; stopped (and its files removed) when the test ends. */
export async function startTestNode(t: { after(fn: () => void | Promise<void>): void }, yaml = '', dir = tempDir(t),
  /** A change no configuration file can make (to see what the node does in a state validation refuses). */
  adjust: (config: SluiceConfig) => SluiceConfig = (config) => config):
Promise<{ node: SluiceNode; logs: string; lines: Record<string, unknown>[]; tcpPort: number; udpPort: number }> {
  const { logger, lines } = memoryLogger();
  const node = new SluiceNode(adjust(testConfig(dir, yaml)), logger);
  await node.start();
  t.after(() => node.stop().then(() => undefined));
  const addresses = node.addresses();
  return { node, logs: path.join(dir, 'logs'), lines, tcpPort: addresses.syslogTcp?.port ?? 0, udpPort: addresses.syslogUdp?.port ?? 0 };
}

/** Open a TCP connection from `localAddress`; resolves when connected. */
export function connect(port: number, localAddress = '127.0.0.1', host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host, localAddress }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Resolves when the peer has closed the socket (or it errored). */
export function closed(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve();
    socket.once('close', () => resolve());
  });
}

/**
 * A free port for a server a test binds later (a receiver that comes up
 * mid-test, a private nats-server, rsyslog's input): below the ephemeral range
 * (32768+), so no outgoing connection or port-0 bind of another test can be
 * given it meanwhile. `udp`: free for a datagram socket.
 */
export async function lateBoundPort(protocol: 'tcp' | 'udp' = 'tcp'): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      if (protocol === 'udp') {
        const socket = dgram.createSocket('udp4');
        socket.once('error', () => { socket.close(); resolve(false); });
        socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
        return;
      }
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/** The JSON lines a child process writes to `stream` (its stderr log), collected as they come; other lines as `{ raw }`. */
export function jsonLines(stream: NodeJS.ReadableStream): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (s: string) => {
    buffered += s;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ raw: line });
      }
    }
  });
  return lines;
}

/**
 * Debian's headless Chromium under playwright-core, or the reason it is
 * missing (the test skips with it; under CI=true a missing one fails).
 */
export async function launchChromium(): Promise<Browser | string> {
  const missing = requireProgram('chromium', 'apt-get install chromium');
  if (missing !== false) return missing;
  let playwright: typeof import('playwright-core');
  try {
    playwright = await import('playwright-core');
  } catch (err) {
    if (process.env.CI === 'true') throw err;
    const reason = 'playwright-core not installed (npm install)';
    process.stderr.write(`skipping: ${reason}\n`);
    return reason;
  }
  // --no-sandbox: tests may run as root, where Chromium's sandbox refuses to start.
  return playwright.chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

/** The shared NATS server the cluster tests use (with buckets of their own). */
export const SHARED_NATS_URL = 'nats://127.0.0.1:4222';

/**
 * A cluster bucket prefix no other test or run uses, and a connection to the
 * shared NATS server; the buckets are deleted and the connection closed when the test ends.
 */
export async function testClusterBuckets(t: { after(fn: () => Promise<void>): void }): Promise<{ bucketPrefix: string; nc: NatsConnection }> {
  const bucketPrefix = `sluicetest_${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
  // Loaded here only: most test files never talk to NATS.
  const { connect } = await import('nats');
  const { destroyClusterBuckets } = await import('../src/services/cluster/buckets.js');
  const nc = await connect({ servers: SHARED_NATS_URL });
  t.after(async () => {
    await destroyClusterBuckets(nc, bucketPrefix);
    await nc.close();
  });
  return { bucketPrefix, nc };
}

/** A node's `GET /api/cluster`, or null while it does not answer (or runs alone). */
export async function fetchClusterStatus(adminUrl: string): Promise<ClusterStatus | null> {
  try {
    const response = await fetch(new URL('api/cluster', adminUrl.endsWith('/') ? adminUrl : `${adminUrl}/`));
    return response.ok ? (await response.json()) as ClusterStatus : null;
  } catch {
    return null;
  }
}

/** A live tail's sink that keeps its lines in `into` (and its drops in `drops.count`). */
export function tailInto(into: string[], drops = { count: 0 }): TailSink {
  return { lines: (lines) => into.push(...lines), dropped: (count) => { drops.count += count; } };
}

/**
 * Watches the event loop for stalls our own code causes: the most CPU time this process used
 * between two ticks of a short timer, in ms. Wall-clock gaps would also count the time a loaded
 * machine kept the process off a core, which is not a stall of ours.
 */
export function watchLoopStalls(intervalMs = 2): { stop(): number } {
  let worstMs = 0;
  let last = process.cpuUsage();
  const ticker = setInterval(() => {
    const used = process.cpuUsage(last);
    worstMs = Math.max(worstMs, (used.user + used.system) / 1000);
    last = process.cpuUsage();
  }, intervalMs);
  return {
    stop: () => {
      clearInterval(ticker);
      return worstMs;
    },
  };
}
