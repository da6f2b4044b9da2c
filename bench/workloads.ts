/**
 * The benchmark's workloads, each measured against one server at a time with
 * a fresh server process (so peak RSS belongs to that workload alone):
 *
 *   W1  TCP, RFC 5424 octet-counted, 256-byte messages, 4 connections; one JSON line per record
 *   W2  the same, written raw
 *   W3  UDP, 256-byte messages as fast as the client goes; OS-default and 4 MiB receive buffers
 *   W4  10,000 idle TCP connections held while 4 connections send
 *   W5  10,000 agents at 2 messages/s for 60 s; client-side latency (sluice loadgen, sluice only)
 */
import os from 'node:os';
import path from 'node:path';
import { IdleConnections } from './idle-connections.js';
import { runLoadgen } from './loadgen.js';
import { runLoggen } from './loggen.js';
import { checkRecords, waitForDelivery } from './output.js';
import { loadgenAvailable, type Peers } from './peers.js';
import { freePort, udpReceiveBuffer } from './ports.js';
import { cpuSeconds, machineBusySeconds, memoryBytes } from './proc-stats.js';
import type { ProcessGroup } from './processes.js';
import { startServer, type OutputFormat, type RunningServer, type ServerName } from './servers.js';

export const WORKLOAD_NAMES = ['W1', 'W2', 'W3', 'W4', 'W5'] as const;
export type WorkloadName = typeof WORKLOAD_NAMES[number];

export const MESSAGE_SIZE = 256;
export const ACTIVE_CONNECTIONS = 4;
const FOUR_MIB = 4 * 1024 * 1024;

export interface Sizes {
  /** W1 and W2: messages in all, over ACTIVE_CONNECTIONS connections. */
  tcpMessages: number;
  /** W3: datagrams in all. */
  udpMessages: number;
  /** W4: idle connections held. */
  idleConnections: number;
  /** W4: messages the active connections send in all. */
  idleRunMessages: number;
  /** W5 */
  latencyAgents: number;
  latencyRatePerAgent: number;
  latencySeconds: number;
}

export const FULL_SIZES: Sizes = {
  tcpMessages: 2_000_000,
  udpMessages: 1_000_000,
  idleConnections: 10_000,
  idleRunMessages: 1_000_000,
  latencyAgents: 10_000,
  latencyRatePerAgent: 2,
  latencySeconds: 60,
};

/** `--quick` and the CI smoke: correctness and loss, not speed. */
export const QUICK_SIZES: Sizes = {
  tcpMessages: 20_000,
  udpMessages: 20_000,
  idleConnections: 500,
  idleRunMessages: 20_000,
  latencyAgents: 200,
  latencyRatePerAgent: 2,
  latencySeconds: 3,
};

/** One measured case: a workload, with its variant where it has several (W3's buffers). */
export interface Variant {
  workload: WorkloadName;
  /** Label in the tables, e.g. `W3 4 MiB`. */
  label: string;
  output: OutputFormat;
  /** SO_RCVBUF for the UDP listener; null: the operating system's default. */
  udpReceiveBuffer: number | null;
  /** Which servers can run it. */
  servers: readonly ServerName[];
}

const ALL_SERVERS: readonly ServerName[] = ['sluice', 'rsyslog', 'syslog-ng'];

export function variantsOf(workload: WorkloadName): Variant[] {
  switch (workload) {
    case 'W1': return [{ workload, label: 'W1', output: 'json', udpReceiveBuffer: null, servers: ALL_SERVERS }];
    case 'W2': return [{ workload, label: 'W2', output: 'raw', udpReceiveBuffer: null, servers: ALL_SERVERS }];
    case 'W3': return [
      { workload, label: 'W3 default buffer', output: 'json', udpReceiveBuffer: null, servers: ALL_SERVERS },
      { workload, label: 'W3 4 MiB buffer', output: 'json', udpReceiveBuffer: FOUR_MIB, servers: ALL_SERVERS },
    ];
    case 'W4': return [{ workload, label: 'W4', output: 'json', udpReceiveBuffer: null, servers: ALL_SERVERS }];
    // loadgen's probe follows sluice's sink files: the peers' outputs cannot be followed by it.
    case 'W5': return [{ workload, label: 'W5', output: 'json', udpReceiveBuffer: null, servers: ['sluice'] }];
  }
}

export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface Measurement {
  workload: WorkloadName;
  variant: string;
  server: ServerName;
  /** Set when the run could not be measured; the numbers are then absent or partial. */
  error?: string;
  /** Set when the run was not made (a missing program); not an error. */
  skipped?: string;
  sent?: number;
  delivered?: number;
  lost?: number;
  lossPercent?: number;
  /** Messages written more than once, lines that are not JSON objects, lines without loggen's sequence. */
  duplicates?: number;
  invalidLines?: number;
  unrecognisedLines?: number;
  /** From the first message sent to the last line written. */
  seconds?: number;
  messagesPerSecond?: number;
  cpuSeconds?: number;
  cpuSecondsPerMillion?: number;
  /** VmHWM summed over the server's processes at the end of the run. */
  peakRssBytes?: number;
  /** W4: VmRSS with the idle connections held, before the senders start. */
  heldRssBytes?: number;
  idleConnectionsHeld?: number;
  idleConnectionsOpenAtEnd?: number;
  /** W3: the receive buffer the kernel gave the UDP socket (twice what was asked). */
  udpReceiveBufferBytes?: number | null;
  /**
   * CPU used during the run by processes the benchmark did not start (another
   * build, another test), as a percentage of the whole machine: a noisy run shows here.
   */
  otherCpuPercent?: number;
  /** W5 */
  latencyMs?: Latency;
  errors?: { connect: number; reset: number; other: number };
  agents?: number;
}

export interface RunContext {
  group: ProcessGroup;
  peers: Peers;
  sizes: Sizes;
  /** Check every line after the measurement (JSON validity, duplicates). */
  verify: boolean;
  /** sluice's `workers` (null: its default). */
  sluiceWorkers?: number | null;
  log: (line: string) => void;
}

/** Run one variant against one server, with a fresh server in a fresh folder. */
export async function measure(variant: Variant, server: ServerName, ctx: RunContext): Promise<Measurement> {
  const base = { workload: variant.workload, variant: variant.label, server };
  if (variant.workload !== 'W5' && !ctx.peers.loggen) return { ...base, skipped: 'loggen not installed' };
  if (variant.workload === 'W5' && !loadgenAvailable()) return { ...base, skipped: 'loadgen not available' };
  const dir = ctx.group.tempDir(`sluice-bench-${server}-`);
  try {
    const port = await freePort();
    const maxConnections = variant.workload === 'W4' ? ctx.sizes.idleConnections + 100 : 100;
    const running = await startServer(server, dir, {
      tcpPort: port, udpPort: port, output: variant.output, udpReceiveBuffer: variant.udpReceiveBuffer, maxConnections, sluiceWorkers: ctx.sluiceWorkers ?? null,
    }, ctx.group, ctx.peers);
    try {
      const result = variant.workload === 'W5'
        ? await measureLatency(running, dir, ctx)
        : await measureThroughput(variant, running, ctx);
      if (running.process.status !== null) throw new Error(`${server} exited during the run: ${running.process.stderrTail().slice(-1500)}`);
      return { ...base, ...result };
    } finally {
      await running.stop();
    }
  } catch (err) {
    return { ...base, error: (err as Error).message };
  } finally {
    ctx.group.removeDir(dir);
  }
}

/**
 * CPU the machine spent on anything but this benchmark's own process tree
 * (the harness, the server, the clients it started and reaped), since creation.
 */
export class OutsideLoad {
  private readonly startedAt = Date.now();
  private readonly machine = machineBusySeconds();
  private readonly ours = cpuSeconds(process.pid);

  percent(): number {
    const seconds = (Date.now() - this.startedAt) / 1000;
    const other = (machineBusySeconds() - this.machine) - (cpuSeconds(process.pid) - this.ours);
    return Math.max(0, (100 * other) / (seconds * os.availableParallelism()));
  }
}

async function measureThroughput(variant: Variant, server: RunningServer, ctx: RunContext): Promise<Partial<Measurement>> {
  const loggen = ctx.peers.loggen!;
  const udp = variant.workload === 'W3';
  const total = variant.workload === 'W4' ? ctx.sizes.idleRunMessages : udp ? ctx.sizes.udpMessages : ctx.sizes.tcpMessages;
  const connections = udp ? 1 : ACTIVE_CONNECTIONS;
  const result: Partial<Measurement> = {};

  let idle: IdleConnections | null = null;
  try {
    if (variant.workload === 'W4') {
      const opened = await IdleConnections.open(server.settings.tcpPort, ctx.sizes.idleConnections, ctx.group);
      idle = opened.idle;
      result.idleConnectionsHeld = opened.counts.open;
      if (opened.counts.failed > 0) ctx.log(`  ${opened.counts.failed} idle connections failed: ${JSON.stringify(opened.counts.errors)}`);
      // Let the server settle its per-connection allocations before reading its memory.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      result.heldRssBytes = memoryBytes(server.pid, 'VmRSS');
    }
    if (udp) result.udpReceiveBufferBytes = udpReceiveBuffer(server.settings.udpPort);

    const outside = new OutsideLoad();
    const cpuBefore = cpuSeconds(server.pid);
    const sent = await runLoggen(loggen, {
      transport: udp ? 'udp' : 'tcp',
      port: server.settings.tcpPort,
      size: MESSAGE_SIZE,
      connections,
      messagesPerConnection: Math.ceil(total / connections),
      maxSeconds: 1200,
    }, ctx.group);
    const delivery = await waitForDelivery(server.outputFiles, sent.sent, { quietMs: udp ? 2000 : 5000 });
    const cpuAfter = cpuSeconds(server.pid);
    result.otherCpuPercent = outside.percent();
    result.peakRssBytes = memoryBytes(server.pid, 'VmHWM');
    if (idle) result.idleConnectionsOpenAtEnd = (await idle.status()).open;

    result.sent = sent.sent;
    result.delivered = delivery.lines;
    result.lost = Math.max(0, sent.sent - delivery.lines);
    result.lossPercent = sent.sent > 0 ? (100 * result.lost) / sent.sent : 0;
    result.seconds = Math.max(0.001, (delivery.lastWriteMs - sent.startedAt) / 1000);
    result.messagesPerSecond = delivery.lines / result.seconds;
    result.cpuSeconds = cpuAfter - cpuBefore;
    result.cpuSecondsPerMillion = delivery.lines > 0 ? (result.cpuSeconds * 1e6) / delivery.lines : 0;
  } finally {
    await idle?.close();
  }
  if (ctx.verify) {
    const check = checkRecords(server.outputFiles(), variant.output === 'json' || server.name === 'sluice' ? 'json' : 'raw');
    result.duplicates = check.duplicates;
    result.invalidLines = check.invalidJson;
    result.unrecognisedLines = check.unrecognised;
  }
  return result;
}

async function measureLatency(server: RunningServer, dir: string, ctx: RunContext): Promise<Partial<Measurement>> {
  const s = ctx.sizes;
  const outside = new OutsideLoad();
  const cpuBefore = cpuSeconds(server.pid);
  const report = await runLoadgen({
    tcpPort: server.settings.tcpPort,
    agents: s.latencyAgents,
    rate: s.latencyRatePerAgent,
    durationSeconds: s.latencySeconds,
    reportDir: path.join(dir, 'loadgen-report'),
    dataDir: path.join(dir, 'data'),
  }, ctx.group);
  const cpu = cpuSeconds(server.pid) - cpuBefore;
  const { p50, p90, p99, p999, max } = report.latencyMs;
  return {
    agents: s.latencyAgents,
    sent: report.sent,
    delivered: report.delivered,
    lost: report.lost,
    lossPercent: report.sent > 0 ? (100 * report.lost) / report.sent : 0,
    errors: report.errors,
    latencyMs: { p50, p90, p99, p999, max },
    messagesPerSecond: report.throughputPerSec,
    cpuSeconds: cpu,
    otherCpuPercent: outside.percent(),
    cpuSecondsPerMillion: report.delivered > 0 ? (cpu * 1e6) / report.delivered : 0,
    peakRssBytes: memoryBytes(server.pid, 'VmHWM'),
  };
}

/**
 * Before a full-size measurement: wait (at most `maxWaitMs`) until processes
 * the benchmark did not start use less than `belowPercent` of the machine
 * over a second. Returns the last share seen; the run still records its own.
 */
export async function waitForQuietMachine(maxWaitMs = 60_000, belowPercent = 10): Promise<number> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const outside = new OutsideLoad();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const percent = outside.percent();
    if (percent < belowPercent || Date.now() > deadline) return percent;
  }
}
