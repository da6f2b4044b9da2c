/**
 * The benchmark's workloads, each measured against one server at a time with
 * a fresh server process (so peak memory belongs to that workload alone); memory is RSS and
 * PSS summed over the server's processes, idle, connected, peak (sampled) and at the end:
 *
 *   W1  TCP, RFC 5424 octet-counted, 256-byte messages, 4 connections; one JSON line per record
 *   W2  the same, written raw
 *   W3  UDP, 256-byte messages as fast as the client goes; OS-default and 4 MiB receive buffers
 *   W4  10,000 idle TCP connections held while 4 connections send
 *   W5  10,000 agents at 2 messages/s for 60 s; client-side latency (sluice loadgen; sluice and rsyslog)
 *       over the whole run and of the messages sent from 10 s on: over TCP send → visible in the
 *       output file; "W5 relp" the same agents over RELP, send → ack
 *   W6  isolation: 50 tenants steady (and a 51st, t0, at their rate), then the same with t0 also
 *       flooding as fast as the node reads it (a lean client, flood-client.ts); the steady tenants'
 *       client-side latency with and without the flood, hosts warmed up before both (sluice only)
 *   W7  a storm: 10,000 new hosts connect at once, one message each: until each is registered
 *       and its record written with its metadata; then the node restarts and the same 10,000,
 *       now known, connect at once again (sluice only; see storm.ts)
 *
 * For sluice, every run also reports the node's event-loop delay while it was busy (from
 * its node-stopped line; see src/telemetry/event-loop.ts).
 */
import { closeSync, existsSync, openSync, readdirSync, readSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { IdleConnections } from './idle-connections.js';
import { runLoadgen, type LoadgenReport } from './loadgen.js';
import type { LatencySummaryMs } from '../src/ops/loadgen/histogram.js';
import { runLoggen } from './loggen.js';
import { checkRecords, waitForDelivery } from './output.js';
import { loadgenAvailable, ROOT, type Peers } from './peers.js';
import { freePort, HOST, udpReceiveBuffer } from './ports.js';
import { udpSocketCounters } from '../src/sources/syslog/udp-kernel.js';
import { cpuSeconds, machineBusySeconds, MemorySampler, treeMemory, type TreeMemory } from './proc-stats.js';
import type { ProcessGroup } from './processes.js';
import { startServer, type OutputFormat, type RunningServer, type ServerName } from './servers.js';
import { runStorm, type StormPhase } from './storm.js';
import { NoiseFloorProbe, type NoiseFloor } from './noise-floor.js';

export const WORKLOAD_NAMES = ['W1', 'W2', 'W3', 'W4', 'W5', 'W6', 'W7'] as const;
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
  /** W6: steady tenants (the flooding one comes on top), agents per tenant, their rate, how long. */
  isolationTenants: number;
  isolationAgentsPerTenant: number;
  isolationRatePerAgent: number;
  isolationSeconds: number;
  /** W7: hosts connecting at once. */
  stormHosts: number;
}

export const FULL_SIZES: Sizes = {
  tcpMessages: 2_000_000,
  udpMessages: 1_000_000,
  idleConnections: 10_000,
  idleRunMessages: 1_000_000,
  latencyAgents: 10_000,
  latencyRatePerAgent: 2,
  latencySeconds: 60,
  isolationTenants: 50,
  isolationAgentsPerTenant: 10,
  isolationRatePerAgent: 10,
  isolationSeconds: 30,
  stormHosts: 10_000,
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
  isolationTenants: 5,
  isolationAgentsPerTenant: 2,
  isolationRatePerAgent: 10,
  isolationSeconds: 3,
  stormHosts: 300,
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
  /** W5 relp: loadgen's agents speak RELP to the server's RELP listener, and latency is send → acknowledgement. */
  relp?: boolean;
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
    // loadgen's probe follows JSON lines with the message as `msg`: rsyslog writes them (bench/servers.ts).
    case 'W5': return [
      { workload, label: 'W5', output: 'json', udpReceiveBuffer: null, servers: ['sluice', 'rsyslog'] },
      { workload, label: W5_RELP, output: 'json', udpReceiveBuffer: null, servers: ['sluice', 'rsyslog'], relp: true },
    ];
    // The steady run first: the flood's target is relative to it.
    case 'W6': return [
      { workload, label: ISOLATION_STEADY, output: 'json', udpReceiveBuffer: null, servers: ['sluice'] },
      { workload, label: ISOLATION_FLOOD, output: 'json', udpReceiveBuffer: null, servers: ['sluice'] },
    ];
    // Host registration is sluice's own: the peers keep no host metadata.
    case 'W7': return [{ workload, label: 'W7', output: 'json', udpReceiveBuffer: null, servers: ['sluice'] }];
  }
}

export const W5_RELP = 'W5 relp';
/** Issue 16's cut between the cold start (10,000 agents connecting and first heard of) and the steady part. */
export const W5_STEADY_AFTER_SECONDS = 10;
export const ISOLATION_STEADY = 'W6 steady';
export const ISOLATION_FLOOD = 'W6 flood';

/** sluice's event-loop delay over a run, from its node-stopped line (SLU0005I). */
export interface EventLoopNumbers {
  /** Seconds in which the node used at least a quarter of a core. */
  busySeconds: number;
  /** Worst one-second p99 among those seconds: an upper bound of their overall p99. */
  p99WorstMs: number;
  p99MedianMs: number;
  maxMs: number;
}

/** The event-loop numbers on the last node-stopped line of sluice's stderr, if any. */
export function eventLoopFromLog(stderr: string): EventLoopNumbers | undefined {
  const lines = stderr.split('\n').filter((l) => l.includes('"SLU0005I"'));
  const last = lines.at(-1);
  if (last === undefined) return undefined;
  try {
    const fields = JSON.parse(last) as Record<string, unknown>;
    const busy = fields.busy_seconds;
    if (typeof busy !== 'number') return undefined;
    return {
      busySeconds: busy,
      p99WorstMs: Number(fields.event_loop_delay_p99_worst_ms),
      p99MedianMs: Number(fields.event_loop_delay_p99_median_ms),
      maxMs: Number(fields.event_loop_delay_max_ms),
    };
  } catch {
    return undefined;
  }
}

/**
 * W6's sinks: the steady tenants' files where loadgen's probe follows them
 * (data_dir/logs), tenant t0's in a folder of its own. The node writes the
 * flood all the same, but the probe, which runs on the same two cores, does
 * not have to read it: its own delay would otherwise show as the steady
 * tenants' latency.
 */
function isolationSinks(tenants: number): (dataDir: string) => Record<string, unknown> {
  const steady = Array.from({ length: tenants - 1 }, (_, i) => `t${i + 1}`);
  return (dataDir) => ({
    files: { type: 'file', tenants: steady },
    first_tenant_files: { type: 'file', tenants: ['t0'], path: path.join(dataDir, 'logs-t0') },
  });
}

/** W6's node: tenant tN owns the network loadgen binds tenant N's agents to. */
function isolationTenants(count: number): Record<string, unknown> {
  const tenants: Record<string, unknown> = {};
  for (let t = 0; t < count; t++) tenants[`t${t}`] = { networks: [`127.0.${t + 1}.0/24`] };
  return tenants;
}

export interface IsolationNumbers {
  /** The steady tenants' losses in the warm-up run. */
  warmupLost: number;
  /** loadgen's worst event-loop delay (its agent workers or its probe) during the measured window. */
  generatorDelayP99Ms?: number;
  generatorDelayMaxMs?: number;
  /** Flood variant: what the flood client wrote, what the node wrote of it, and the client's CPU (% of one core). */
  floodSentPerSec?: number;
  floodDeliveredPerSec?: number;
  floodClientCpuPercent?: number;
}

export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

function latencyOf(l: LatencySummaryMs): Latency {
  return { p50: l.p50, p90: l.p90, p99: l.p99, p999: l.p999, max: l.max };
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
  /**
   * Memory summed over the server's processes (RSS, and PSS, which counts pages the processes
   * share once): idle before the workload, with its agents connected (W4: the idle connections
   * held; W5: halfway through the run), the highest of samples every 250 ms, and at the end.
   */
  idleRssBytes?: number;
  idlePssBytes?: number;
  connectedRssBytes?: number;
  connectedPssBytes?: number;
  peakRssBytes?: number;
  peakPssBytes?: number;
  endRssBytes?: number;
  endPssBytes?: number;
  idleConnectionsHeld?: number;
  idleConnectionsOpenAtEnd?: number;
  /** W3: the receive buffer the kernel gave the UDP socket (twice what was asked). */
  udpReceiveBufferBytes?: number | null;
  /** W3: datagrams the kernel dropped for the server's socket during the run (its `drops` in /proc/net/udp); the rest of `lost` was lost inside the server. */
  udpKernelDropped?: number;
  /**
   * CPU used during the run by processes the benchmark did not start (another
   * build, another test), as a percentage of the whole machine: a noisy run shows here.
   */
  otherCpuPercent?: number;
  /** W5; W6: the steady tenants' latency (every tenant but t0). */
  latencyMs?: Latency;
  /** What latencyMs spans: from send until the record is in the output file, or until the server acknowledged it (W5 relp). */
  latencyTo?: 'visible' | 'ack';
  /** W5: the latency of the messages sent from W5_STEADY_AFTER_SECONDS on; absent when the run was shorter. */
  steadyLatencyMs?: Latency;
  /** sluice: its event-loop delay while busy. */
  eventLoop?: EventLoopNumbers;
  /** sluice: the event-loop delay of an idle Node.js process during the same run (the machine's share). */
  noiseFloor?: NoiseFloor;
  errors?: { connect: number; reset: number; other: number };
  agents?: number;
  /** W6: the warm-up's losses, the load generator's own delay, the flooding tenant's rates. */
  isolation?: IsolationNumbers;
  /** W7: the storm of new hosts, and the storm of the same hosts after a restart. */
  storm?: { cold: StormPhase; restart: StormPhase };
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
  if (!['W5', 'W6', 'W7'].includes(variant.workload) && !ctx.peers.loggen) return { ...base, skipped: 'loggen not installed' };
  const usesLoadgen = variant.workload === 'W5' || variant.workload === 'W6';
  if (usesLoadgen && !loadgenAvailable()) return { ...base, skipped: 'loadgen not available' };
  const dir = ctx.group.tempDir(`sluice-bench-${server}-`);
  try {
    const port = await freePort();
    const maxConnections = variant.workload === 'W4' ? ctx.sizes.idleConnections + 100 : variant.workload === 'W7' ? ctx.sizes.stormHosts + 100 : 100;
    const isolation = variant.workload === 'W6';
    const tenants = ctx.sizes.isolationTenants + 1;
    const settings = {
      tcpPort: port, udpPort: port, output: variant.output, udpReceiveBuffer: variant.udpReceiveBuffer,
      ...(variant.relp === true ? { relpPort: await freePort() } : {}),
      maxConnections: isolation ? tenants * ctx.sizes.isolationAgentsPerTenant + 100 : maxConnections, sluiceWorkers: ctx.sluiceWorkers ?? null,
      ...(isolation ? { sluiceTenants: isolationTenants(tenants), sluiceSinks: isolationSinks(tenants) } : {}),
    };
    let running = await startServer(server, dir, settings, ctx.group, ctx.peers);
    /** W7: stop the node and start it again on the same data. */
    const restart = async (): Promise<RunningServer> => {
      await running.stop();
      running = await startServer(server, dir, settings, ctx.group, ctx.peers);
      return running;
    };
    let result: Partial<Measurement>;
    const noise = server === 'sluice' ? NoiseFloorProbe.start(ctx.group) : null;
    // Let the server finish starting (a node's workers, its first allocations) before its idle memory is read.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // Where memory at rest is judged (W4, W5), read it at rest: a node gives back what its start-up grew
    // once its processes have been idle a few seconds (src/core/idle-trim.ts).
    // (Not in --quick runs: they judge correctness, not memory.)
    if ((variant.workload === 'W4' || variant.workload === 'W5') && ctx.sizes !== QUICK_SIZES) await memoryAtRest(running.pid);
    const memory = new MemorySampler(running.pid);
    const idle = memory.sample();
    try {
      result = variant.workload === 'W5' ? await measureLatency(variant, running, dir, ctx, memory)
        : isolation ? await measureIsolation(variant, running, dir, ctx)
          : variant.workload === 'W7' ? await measureStorm(running, restart, ctx)
            : await measureThroughput(variant, running, ctx, memory);
      if (running.process.status !== null) throw new Error(`${server} exited during the run: ${running.process.stderrTail().slice(-1500)}`);
      const end = memory.sample();
      const peak = memory.stop();
      // W7 restarts its node, and the sampler follows the first one only: its memory is not W7's question.
      if (variant.workload !== 'W7') {
        Object.assign(result, {
          idleRssBytes: idle.rssBytes, idlePssBytes: idle.pssBytes, endRssBytes: end.rssBytes, endPssBytes: end.pssBytes,
          peakRssBytes: peak.rssBytes, peakPssBytes: peak.pssBytes,
        });
      }
    } finally {
      memory.stop();
      await running.stop();
    }
    const floor = await noise?.stop();
    if (floor !== undefined) result.noiseFloor = floor;
    if (server === 'sluice') {
      const eventLoop = eventLoopFromLog(running.process.stderrTail());
      if (eventLoop !== undefined) result.eventLoop = eventLoop;
    }
    return { ...base, ...result };
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

async function measureThroughput(variant: Variant, server: RunningServer, ctx: RunContext, memory: MemorySampler): Promise<Partial<Measurement>> {
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
      // Let the server settle its per-connection allocations before reading its memory: at rest, as with none
      // (a node's processes give back what the connecting grew once idle; not in --quick runs).
      if (ctx.sizes === QUICK_SIZES) await new Promise((resolve) => setTimeout(resolve, 1000));
      else await memoryAtRest(server.pid);
      const held = memory.sample();
      result.connectedRssBytes = held.rssBytes;
      result.connectedPssBytes = held.pssBytes;
    }
    if (udp) result.udpReceiveBufferBytes = udpReceiveBuffer(server.settings.udpPort);
    const kernelDropsBefore = udp ? udpSocketCounters(HOST, server.settings.udpPort)?.drops : undefined;

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
    const kernelDropsAfter = udp ? udpSocketCounters(HOST, server.settings.udpPort)?.drops : undefined;
    if (kernelDropsBefore !== undefined && kernelDropsAfter !== undefined) result.udpKernelDropped = kernelDropsAfter - kernelDropsBefore;
    result.otherCpuPercent = outside.percent();
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

async function measureLatency(variant: Variant, server: RunningServer, dir: string, ctx: RunContext, memory: MemorySampler): Promise<Partial<Measurement>> {
  const s = ctx.sizes;
  const outside = new OutsideLoad();
  const cpuBefore = cpuSeconds(server.pid);
  let connected: TreeMemory | undefined;
  // Halfway through the steady part (loadgen connects every agent first, within a few seconds).
  const halfway = setTimeout(() => { connected = memory.sample(); }, (s.latencySeconds / 2) * 1000);
  const relpPort = server.settings.relpPort;
  if (variant.relp === true && relpPort === undefined) throw new Error(`${variant.label}: the server was started without a RELP listener`);
  const target = variant.relp === true ? { protocol: 'relp' as const, port: relpPort! } : { port: server.settings.tcpPort };
  const report = await runLoadgen({
    ...target,
    agents: s.latencyAgents,
    rate: s.latencyRatePerAgent,
    durationSeconds: s.latencySeconds,
    steadyAfterSeconds: W5_STEADY_AFTER_SECONDS,
    reportDir: path.join(dir, 'loadgen-report'),
    dataDir: path.join(dir, 'data'),
    // The peers write where loadgen's probe follows them (bench/servers.ts): <logs>/default/current.ndjson.
    ...(server.name === 'sluice' ? {} : { logsDir: path.dirname(server.config.outputDir) }),
  }, ctx.group).finally(() => clearTimeout(halfway));
  const cpu = cpuSeconds(server.pid) - cpuBefore;
  return {
    agents: s.latencyAgents,
    sent: report.sent,
    delivered: report.delivered,
    lost: report.lost,
    lossPercent: report.sent > 0 ? (100 * report.lost) / report.sent : 0,
    errors: report.errors,
    latencyMs: latencyOf(report.latencyMs),
    latencyTo: variant.relp === true ? 'ack' : 'visible',
    ...(report.steadyLatencyMs ? { steadyLatencyMs: latencyOf(report.steadyLatencyMs) } : {}),
    messagesPerSecond: report.throughputPerSec,
    cpuSeconds: cpu,
    otherCpuPercent: outside.percent(),
    cpuSecondsPerMillion: report.delivered > 0 ? (cpu * 1e6) / report.delivered : 0,
    ...(connected === undefined ? {} : { connectedRssBytes: connected.rssBytes, connectedPssBytes: connected.pssBytes }),
  };
}

/** W7: a storm of new hosts, a restart, the same hosts again. */
async function measureStorm(first: RunningServer, restart: () => Promise<RunningServer>, ctx: RunContext): Promise<Partial<Measurement>> {
  const hosts = ctx.sizes.stormHosts;
  const outside = new OutsideLoad();
  const cold = await runStorm(first, hosts, true);
  ctx.log(`  new hosts: ${JSON.stringify(cold)}`);
  const again = await restart();
  const warm = await runStorm(again, hosts, false);
  ctx.log(`  after the restart: ${JSON.stringify(warm)}`);
  return {
    agents: hosts,
    sent: 2 * hosts - cold.failed - warm.failed,
    delivered: cold.written + warm.written,
    lost: 2 * hosts - cold.failed - warm.failed - cold.written - warm.written,
    lossPercent: (100 * (2 * hosts - cold.failed - warm.failed - cold.written - warm.written)) / (2 * hosts),
    otherCpuPercent: outside.percent(),
    storm: { cold, restart: warm },
  };
}

/**
 * W6: loadgen with one tenant more than the steady ones, the same in both
 * variants (every tenant's agents steady); in the flood variant a lean flood
 * client (bench/flood-client.ts) floods from tenant t0's network beside it.
 * Before either, a short loadgen run of the same agents registers every host,
 * so that neither measured window holds the cold start (hosts looked up at
 * once). The latency kept is the steady tenants' (every tenant but t0).
 */
async function measureIsolation(variant: Variant, server: RunningServer, dir: string, ctx: RunContext): Promise<Partial<Measurement>> {
  const s = ctx.sizes;
  const tenants = s.isolationTenants + 1;
  const flood = variant.label === ISOLATION_FLOOD;
  const loadgen = (name: string, durationSeconds: number) => runLoadgen({
    port: server.settings.tcpPort,
    agents: tenants * s.isolationAgentsPerTenant,
    tenants,
    rate: s.isolationRatePerAgent,
    durationSeconds,
    pattern: 'steady',
    reportDir: path.join(dir, name),
    dataDir: path.join(dir, 'data'),
  }, ctx.group);
  const warmup = await loadgen('loadgen-warmup', ISOLATION_WARMUP_SECONDS);
  const flooder = flood ? await startFlooder(server.settings.tcpPort, ctx) : null;
  const floodLinesBefore = countLines(path.join(dir, 'data', 'logs-t0'));
  const outside = new OutsideLoad();
  const cpuBefore = cpuSeconds(server.pid);
  let report: LoadgenReport;
  let floodClient: FloodClientReport | null;
  try {
    report = await loadgen('loadgen-report', s.isolationSeconds);
  } finally {
    floodClient = await flooder?.stop() ?? null;
  }
  const cpu = cpuSeconds(server.pid) - cpuBefore;
  const steady = report.othersLatencyMs;
  if (steady === undefined) throw new Error('loadgen reported no latency for the steady tenants (othersLatencyMs)');
  const others = (report.perTenant ?? []).slice(1);
  const steadySent = others.reduce((a, t) => a + t.sent, 0);
  const steadyLost = others.reduce((a, t) => a + t.lost, 0);
  // t0's files (which loadgen's probe does not follow) hold the flood and what t0's loadgen agents sent;
  // counted once the flood client has stopped.
  const floodDelivered = countLines(path.join(dir, 'data', 'logs-t0')) - floodLinesBefore - (report.perTenant?.[0]?.sent ?? 0);
  const delay = report.generatorDelayMs;
  return {
    agents: tenants * s.isolationAgentsPerTenant,
    // The steady tenants' own numbers: the flood's messages are not what is judged.
    sent: steadySent,
    delivered: others.reduce((a, t) => a + t.delivered, 0),
    lost: steadyLost,
    lossPercent: steadySent > 0 ? (100 * steadyLost) / steadySent : 0,
    errors: report.errors,
    latencyMs: latencyOf(steady),
    latencyTo: 'visible',
    messagesPerSecond: report.throughputPerSec,
    cpuSeconds: cpu,
    otherCpuPercent: outside.percent(),
    cpuSecondsPerMillion: report.delivered > 0 ? (cpu * 1e6) / report.delivered : 0,
    isolation: {
      warmupLost: (warmup.perTenant ?? []).slice(1).reduce((a, t) => a + t.lost, 0),
      ...(delay === undefined ? {} : { generatorDelayP99Ms: Math.max(delay.workers.p99, delay.probe.p99), generatorDelayMaxMs: Math.max(delay.workers.max, delay.probe.max) }),
      ...(floodClient === null ? {} : {
        floodSentPerSec: floodClient.sent / floodClient.seconds,
        floodDeliveredPerSec: floodDelivered / floodClient.seconds,
        floodClientCpuPercent: (100 * floodClient.cpuSeconds) / floodClient.seconds,
      }),
    },
  };
}

/** W6: seconds of steady sending that register every host before the measured run. */
const ISOLATION_WARMUP_SECONDS = 5;
/** W6: the flooding tenant's connections. */
const FLOOD_CONNECTIONS = 10;
const FLOOD_CLIENT = path.join(ROOT, 'dist', 'bench', 'flood-client.js');

interface FloodClientReport {
  sent: number;
  seconds: number;
  cpuSeconds: number;
}

/** The flood client, flooding from tenant t0's network once its connections are open. */
async function startFlooder(port: number, ctx: RunContext): Promise<{ stop(): Promise<FloodClientReport> }> {
  const proc = ctx.group.spawn('flood-client', process.execPath, [FLOOD_CLIENT, '--port', String(port), '--host', HOST,
    '--local-address', '127.0.1.200', '--connections', String(FLOOD_CONNECTIONS)]);
  // Let it connect and fill its connections before the measured window opens.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  if (!proc.running) throw new Error(`flood-client exited: ${JSON.stringify(proc.status)} ${proc.stderrTail().slice(-1000)}`);
  return {
    async stop() {
      await proc.stop();
      const line = proc.stdoutTail().trim().split('\n').at(-1) ?? '';
      try {
        return JSON.parse(line) as FloodClientReport;
      } catch {
        throw new Error(`flood-client left no report: ${line.slice(0, 200)} ${proc.stderrTail().slice(-1000)}`);
      }
    },
  };
}

/** Newlines in every file under `dir`, its subfolders too (0 if it does not exist), read in chunks. */
/**
 * Lines of every file under `dir`. The sink may rotate a file between the
 * listing and its opening (renamed: ENOENT); its lines are then under its new
 * name, which a new listing shows, so the count starts again.
 */
function countLines(dir: string): number {
  for (;;) {
    try {
      return countLinesOnce(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

function countLinesOnce(dir: string): number {
  if (!existsSync(dir)) return 0;
  let lines = 0;
  const buffer = Buffer.allocUnsafe(1 << 20);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      lines += countLinesOnce(path.join(dir, entry.name));
      continue;
    }
    const fd = openSync(path.join(dir, entry.name), 'r');
    try {
      for (let n = readSync(fd, buffer); n > 0; n = readSync(fd, buffer)) {
        for (let i = buffer.indexOf(10); i >= 0 && i < n; i = buffer.indexOf(10, i + 1)) lines++;
      }
    } finally {
      closeSync(fd);
    }
  }
  return lines;
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

/**
 * Waits for the server's memory at rest: at least 25 s (a node's processes
 * check every 5 s whether they are idle, and give back what start-up grew at
 * the second or third check), then until its RSS summed has not fallen by
 * more than 1 MB over 5 s, at most 60 s in all.
 */
async function memoryAtRest(pid: number): Promise<void> {
  const readings: number[] = [];
  for (let second = 0; second < 60; second++) {
    readings.push(treeMemory(pid).rssBytes);
    if (second >= 25 && readings.at(-6)! - readings.at(-1)! < 1e6) return;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
