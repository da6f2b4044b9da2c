/**
 * One load generator run, from the main process: the probe starts first (so
 * nothing is missed), workers connect their agents, everyone starts sending
 * at the same instant, workers stop on their own after --duration, the probe
 * waits up to --settle for stragglers, and the numbers are put together.
 */
import { monotonicMicros } from './clock.js';
import { WorkerFleet } from './fleet.js';
import { mergeEncoded, mergeHistograms, microsToMs, newHistogram, type Histogram } from './histogram.js';
import type { ErrorCounts, LoopDelay, WorkerPlan, WorkerReport } from './ipc.js';
import { tenantId, tenantOf, workerSlice } from './layout.js';
import { LoopDelayMonitor } from './loop-delay.js';
import { newRunId } from './message.js';
import type { LoadgenOptions } from './options.js';
import { LogProbe, type ProbeStats } from './probe.js';
import { DeliveryTracker } from './tracker.js';
import { createTransport } from './transport-registry.js';

/** Workers get the start signal this far ahead, so all of them begin at the same instant. */
const GO_DELAY_MICROS = 100_000;
/** Time for worker processes to start, beyond the connect timeout. */
const STARTUP_GRACE_MS = 10_000;
/** Time for workers to report after --duration (they drain send buffers for up to 3 s). */
const STOP_GRACE_MS = 10_000;
const WORKER_EXIT_GRACE_MS = 3000;
const SETTLE_POLL_MS = 10;
const PROGRESS_INTERVAL_MS = 1000;

export interface RunIo {
  /** Progress lines (one per second unless --quiet). */
  log?: (line: string) => void;
  /** Aborting ends sending now and skips the settle period; what was measured is still reported. */
  signal?: AbortSignal;
}

export interface TenantResult {
  /** The node tenant its records landed in (`default` with a zero-config node), else t<index>. */
  tenant: string;
  /** Every node tenant folder its records were found in. */
  nodeTenants: string[];
  sent: number;
  delivered: number;
  lost: number;
  duplicates: number;
  latency: Histogram;
}

export interface TimelineEntry {
  /** Seconds since sending started. */
  t: number;
  sent: number;
  delivered: number;
  p99Ms: number;
}

export interface LoadgenResult {
  options: LoadgenOptions;
  runId: string;
  startedAt: string;
  /** False when no agent could connect (or, over UDP, every datagram was refused). */
  reached: boolean;
  unreachableReason: string | null;
  /** The run was cut short (SIGINT): no settle period, so late records count as lost. */
  interrupted: boolean;
  /** How long agents sent, in seconds (--duration unless interrupted). */
  sendingSec: number;
  sent: number;
  delivered: number;
  lost: number;
  duplicates: number;
  throttled: number;
  notConnected: number;
  /** Connections established, reconnections included. */
  connects: number;
  /** Connections open once every agent had tried to connect, and attempts that failed. */
  initiallyOpen: number;
  initiallyFailed: number;
  errors: ErrorCounts;
  errorCodes: Record<string, number>;
  /** Send → visible in the file sink (UDP, TCP), or send → ack for acknowledging transports. */
  latencyMeasures: 'visible' | 'ack';
  latency: Histogram;
  /** Every tenant but t0 (the flooding one under `--pattern flood`); null with one tenant. */
  othersLatency: Histogram | null;
  /** The same two, of the messages sent from --steady-after on (empty when none was). */
  steadyLatency: Histogram;
  othersSteadyLatency: Histogram | null;
  connect: Histogram;
  perTenant: TenantResult[];
  timeline: TimelineEntry[];
  throughputPerSec: number;
  probe: ProbeStats;
  /** The generator's own event-loop delay: the probe's process, and the worst worker. */
  generatorDelay: { main: LoopDelay; workers: LoopDelay };
}

export function workerPlans(options: LoadgenOptions, runId: string): WorkerPlan[] {
  const plans: WorkerPlan[] = [];
  for (let w = 0; w < options.workers; w++) {
    const slice = workerSlice(w, options.workers, options.agents);
    plans.push({
      workerIndex: w,
      workers: options.workers,
      runId,
      firstAgent: slice.first,
      agentCount: slice.count,
      tenants: options.tenants,
      protocol: options.protocol,
      host: options.target.host,
      port: options.target.port,
      pattern: options.pattern,
      ratePerSec: options.ratePerSec,
      burstIntervalMs: options.burstIntervalMs,
      burstSize: options.burstSize,
      floodRatePerSec: options.floodRatePerSec,
      reconnectIntervalMs: options.reconnectIntervalMs,
      durationMs: options.durationMs,
      steadyAfterMs: options.steadyAfterMs,
      messageBytes: options.messageBytes,
      connectTimeoutMs: options.connectTimeoutMs,
      connectConcurrency: options.connectConcurrency,
    });
  }
  return plans;
}

export async function runLoadgen(options: LoadgenOptions, io: RunIo = {}): Promise<LoadgenResult> {
  const log = io.log ?? ((): void => undefined);
  const runId = newRunId();
  const startedAt = new Date().toISOString();
  const tracker = new DeliveryTracker(options.agents, options.tenants, options.steadyAfterMs);
  // The zero-config node's tenant, and those of the configuration --print-node-config gives.
  const expectedFolders = ['default', ...Array.from({ length: options.tenants }, (_, t) => tenantId(t))];
  const probe = new LogProbe(options.logsDir, runId, tracker, expectedFolders);
  probe.start();
  const plans = workerPlans(options, runId);
  const fleet = new WorkerFleet(plans);
  let progressTimer: NodeJS.Timeout | undefined;
  const mainDelay = new LoopDelayMonitor();
  const stopSending = (): void => fleet.broadcast({ type: 'stop' });
  try {
    const connected = await fleet.collect('connected', options.connectTimeoutMs + STARTUP_GRACE_MS, io.signal);
    const initiallyOpen = connected.reduce((sum, c) => sum + c.open, 0);
    const initiallyFailed = connected.reduce((sum, c) => sum + c.failed, 0);
    if (initiallyOpen === 0 && initiallyFailed > 0) {
      const code = connected.find((c) => c.firstErrorCode !== null)?.firstErrorCode ?? 'unknown error';
      const reason = `no agent could connect to ${options.target.url} (${initiallyFailed} attempts; first error: ${code})`;
      return unreachable(options, runId, startedAt, reason, initiallyFailed);
    }

    const goMicros = monotonicMicros() + GO_DELAY_MICROS + options.warmupMs * 1000;
    tracker.begin(goMicros);
    fleet.broadcast({ type: 'go', goMicros });
    mainDelay.start();
    if (!options.quiet) {
      // Lines at whole seconds since the start of sending.
      progressTimer = setTimeout(() => {
        progressTimer = setInterval(() => log(progressLine(fleet, tracker, goMicros)), PROGRESS_INTERVAL_MS);
      }, (goMicros - monotonicMicros()) / 1000);
    }
    let abortedAtMicros: number | null = null;
    const onAbort = (): void => {
      abortedAtMicros = monotonicMicros();
      stopSending();
    };
    io.signal?.addEventListener('abort', onAbort, { once: true });
    if (io.signal?.aborted) onAbort();
    const stopped = await fleet.collect('stopped', (goMicros - monotonicMicros()) / 1000 + options.durationMs + STOP_GRACE_MS);
    io.signal?.removeEventListener('abort', onAbort);
    const reports = stopped.map((s) => s.report);
    const sent = reports.reduce((sum, r) => sum + r.sentPerAgent.reduce((a, b) => a + b, 0), 0);

    // Settle: wait for stragglers, ending early once every message sent was seen.
    const settleUntil = Date.now() + (abortedAtMicros !== null ? 0 : options.settleMs);
    while (tracker.delivered < sent && Date.now() < settleUntil && !io.signal?.aborted) {
      await new Promise((resolve) => setTimeout(resolve, SETTLE_POLL_MS));
    }
    const interrupted = io.signal?.aborted === true;
    clearInterval(progressTimer);
    probe.stop();
    const generatorDelay = { main: mainDelay.stop(), workers: worstDelay(reports.map((r) => r.eventLoopDelay)) };
    const sendingMicros = abortedAtMicros !== null
      ? Math.max(0, Math.min(abortedAtMicros - goMicros, options.durationMs * 1000))
      : options.durationMs * 1000;
    return assemble(options, runId, startedAt, plans, reports, tracker, probe.stats, {
      goMicros, sendingMicros, interrupted, initiallyOpen, initiallyFailed, generatorDelay,
    });
  } finally {
    clearInterval(progressTimer);
    mainDelay.stop();
    probe.stop();
    await fleet.close(WORKER_EXIT_GRACE_MS);
  }
}

function worstDelay(delays: readonly LoopDelay[]): LoopDelay {
  return {
    p99Ms: Math.max(0, ...delays.map((d) => d.p99Ms)),
    maxMs: Math.max(0, ...delays.map((d) => d.maxMs)),
  };
}

function progressLine(fleet: WorkerFleet, tracker: DeliveryTracker, goMicros: number): string {
  const progress = fleet.progress();
  const sent = progress.reduce((sum, p) => sum + p.sent, 0);
  const open = progress.reduce((sum, p) => sum + p.open, 0);
  const errors = progress.reduce((sum, p) => sum + p.errors, 0);
  const second = Math.round((monotonicMicros() - goMicros) / 1e6);
  const lastSecond = tracker.perSecond().latency[second - 1];
  const p99 = lastSecond !== undefined && lastSecond.totalCount > 0 ? `${microsToMs(lastSecond.getValueAtPercentile(99))} ms` : '-';
  return `[${String(second).padStart(4)}s] sent ${sent}  delivered ${tracker.delivered}  p99 (last second) ${p99}  connections ${open}  errors ${errors}`;
}

function unreachable(options: LoadgenOptions, runId: string, startedAt: string, reason: string, failed: number): LoadgenResult {
  return {
    options, runId, startedAt, reached: false, unreachableReason: reason, interrupted: false, sendingSec: 0,
    sent: 0, delivered: 0, lost: 0, duplicates: 0, throttled: 0, notConnected: 0, connects: 0,
    initiallyOpen: 0, initiallyFailed: failed, errors: { connect: failed, reset: 0, other: 0 }, errorCodes: {},
    latencyMeasures: 'visible', latency: newHistogram(), othersLatency: null,
    steadyLatency: newHistogram(), othersSteadyLatency: null, connect: newHistogram(),
    perTenant: [], timeline: [], throughputPerSec: 0,
    probe: { markers: 0, bytesRead: 0, rotations: 0, truncatedBytes: 0 },
    generatorDelay: { main: { p99Ms: 0, maxMs: 0 }, workers: { p99Ms: 0, maxMs: 0 } },
  };
}

interface RunTimes {
  goMicros: number;
  sendingMicros: number;
  interrupted: boolean;
  initiallyOpen: number;
  initiallyFailed: number;
  generatorDelay: LoadgenResult['generatorDelay'];
}

function assemble(
  options: LoadgenOptions, runId: string, startedAt: string, plans: readonly WorkerPlan[], reports: readonly WorkerReport[],
  tracker: DeliveryTracker, probe: ProbeStats, times: RunTimes,
): LoadgenResult {
  const errors: ErrorCounts = { connect: 0, reset: 0, other: 0 };
  const errorCodes: Record<string, number> = {};
  const sentByTenant = new Array<number>(options.tenants).fill(0);
  const lostByTenant = new Array<number>(options.tenants).fill(0);
  let throttled = 0;
  let notConnected = 0;
  let connects = 0;
  reports.forEach((report, w) => {
    const first = plans[w]!.firstAgent;
    report.sentPerAgent.forEach((agentSent, i) => {
      const agent = first + i;
      const tenant = tenantOf(agent, options.tenants);
      sentByTenant[tenant]! += agentSent;
      lostByTenant[tenant]! += agentSent - tracker.seenBelow(agent, agentSent);
    });
    for (const kind of Object.keys(errors) as (keyof ErrorCounts)[]) errors[kind] += report.errors[kind];
    for (const [code, count] of Object.entries(report.errorCodes)) errorCodes[code] = (errorCodes[code] ?? 0) + count;
    throttled += report.throttled;
    notConnected += report.notConnected;
    connects += report.connects;
  });

  const acknowledged = createTransport(options.protocol, { ...options.target, connectTimeoutMs: options.connectTimeoutMs }).acknowledged;
  const latencyByTenant = acknowledged
    ? Array.from({ length: options.tenants }, (_, t) => mergeEncoded(reports.map((r) => r.ackHistograms[t]!)))
    : tracker.latency.byTenant;
  const mergeSteadyAcks = (part: 'firstTenant' | 'otherTenants'): Histogram => mergeEncoded(reports.map((r) => r.steadyAckHistograms[part]));
  const [steadyFirstTenant, steadyOtherTenants] = acknowledged
    ? [mergeSteadyAcks('firstTenant'), mergeSteadyAcks('otherTenants')]
    : [tracker.latency.steadyFirstTenant, tracker.latency.steadyOtherTenants];
  const folders = tracker.foldersByTenant.map((byFolder) => [...byFolder.keys()].sort());
  const folderUsers = new Map<string, number>();
  for (const list of folders) for (const folder of list) folderUsers.set(folder, (folderUsers.get(folder) ?? 0) + 1);
  // Named after the node tenant it landed in when that one is its own; else by index.
  const name = (t: number): string => {
    const only = folders[t]!.length === 1 ? folders[t]![0]! : null;
    return only !== null && folderUsers.get(only) === 1 ? only : tenantId(t);
  };
  const perTenant: TenantResult[] = latencyByTenant.map((latency, t) => ({
    tenant: name(t),
    nodeTenants: folders[t]!,
    sent: sentByTenant[t]!,
    delivered: tracker.deliveredByTenant[t]!,
    lost: lostByTenant[t]!,
    duplicates: tracker.duplicatesByTenant[t]!,
    latency,
  }));

  const sent = sentByTenant.reduce((a, b) => a + b, 0);
  const sentPerSecond: number[] = [];
  for (const report of reports) {
    report.sentPerSecond.forEach((count, second) => { sentPerSecond[second] = (sentPerSecond[second] ?? 0) + count; });
  }
  const perSecond = tracker.perSecond();
  const seconds = Math.max(sentPerSecond.length, perSecond.delivered.length);
  const timeline: TimelineEntry[] = [];
  for (let t = 0; t < seconds; t++) {
    const histogram = perSecond.latency[t];
    timeline.push({
      t,
      sent: sentPerSecond[t] ?? 0,
      delivered: perSecond.delivered[t] ?? 0,
      p99Ms: histogram !== undefined && histogram.totalCount > 0 ? microsToMs(histogram.getValueAtPercentile(99)) : 0,
    });
  }

  const deliveringMicros = tracker.lastVisibleMicros > 0 ? tracker.lastVisibleMicros - times.goMicros : 0;
  const windowSec = Math.max(times.sendingMicros, deliveringMicros) / 1e6;
  const delivered = tracker.delivered;
  const refusedOnly = options.protocol === 'udp' && sent > 0 && delivered === 0 && (errorCodes.ECONNREFUSED ?? 0) > 0;
  return {
    options,
    runId,
    startedAt,
    reached: !refusedOnly,
    unreachableReason: refusedOnly ? `every datagram to ${options.target.url} was refused (ECONNREFUSED)` : null,
    interrupted: times.interrupted,
    sendingSec: Math.round(times.sendingMicros / 1e3) / 1e3,
    sent,
    delivered,
    lost: lostByTenant.reduce((a, b) => a + b, 0),
    duplicates: tracker.duplicates,
    throttled,
    notConnected,
    connects,
    initiallyOpen: times.initiallyOpen,
    initiallyFailed: times.initiallyFailed,
    errors,
    errorCodes,
    latencyMeasures: acknowledged ? 'ack' : 'visible',
    latency: mergeHistograms(latencyByTenant),
    othersLatency: latencyByTenant.length > 1 ? mergeHistograms(latencyByTenant.slice(1)) : null,
    steadyLatency: mergeHistograms([steadyFirstTenant, steadyOtherTenants]),
    othersSteadyLatency: latencyByTenant.length > 1 ? steadyOtherTenants : null,
    connect: mergeEncoded(reports.map((r) => r.connectHistogram)),
    perTenant,
    timeline,
    throughputPerSec: windowSec > 0 ? Math.round((delivered / windowSec) * 10) / 10 : 0,
    probe,
    generatorDelay: times.generatorDelay,
  };
}
