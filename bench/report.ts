/**
 * From raw measurements to what a reader needs: the median of each number over
 * the repeats, the ratio sluice/peer from the same run, whether each target is
 * met, and the tables (terminal and Markdown).
 */
import type { ServerName } from './servers.js';
import { ISOLATION_FLOOD, ISOLATION_STEADY, W5_STEADY_AFTER_SECONDS, type EventLoopNumbers, type IsolationNumbers, type Latency, type Measurement, type WorkloadName } from './workloads.js';
import type { NoiseFloor } from './noise-floor.js';
import type { StormPhase } from './storm.js';

export function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

type NumericKey = 'sent' | 'delivered' | 'lost' | 'lossPercent' | 'duplicates' | 'invalidLines' | 'unrecognisedLines' | 'seconds'
  | 'messagesPerSecond' | 'cpuSeconds' | 'cpuSecondsPerMillion' | 'idleRssBytes' | 'idlePssBytes' | 'connectedRssBytes'
  | 'connectedPssBytes' | 'peakRssBytes' | 'peakPssBytes' | 'endRssBytes' | 'endPssBytes' | 'idleConnectionsHeld'
  | 'idleConnectionsOpenAtEnd' | 'udpReceiveBufferBytes' | 'udpKernelDropped' | 'agents' | 'otherCpuPercent';

const NUMERIC_KEYS: NumericKey[] = ['sent', 'delivered', 'lost', 'lossPercent', 'duplicates', 'invalidLines', 'unrecognisedLines',
  'seconds', 'messagesPerSecond', 'cpuSeconds', 'cpuSecondsPerMillion', 'idleRssBytes', 'idlePssBytes', 'connectedRssBytes',
  'connectedPssBytes', 'peakRssBytes', 'peakPssBytes', 'endRssBytes', 'endPssBytes', 'idleConnectionsHeld',
  'idleConnectionsOpenAtEnd', 'udpReceiveBufferBytes', 'udpKernelDropped', 'agents', 'otherCpuPercent'];

/** Medians over the repeats of one variant on one server, with the sluice/peer ratios of the same run. */
export interface Summary {
  workload: WorkloadName;
  variant: string;
  server: ServerName;
  repeats: number;
  errors: string[];
  skipped?: string;
  values: Partial<Record<NumericKey, number>>;
  latencyMs?: Latency;
  latencyTo?: 'visible' | 'ack';
  /** W5: of the messages sent from W5_STEADY_AFTER_SECONDS on. */
  steadyLatencyMs?: Latency;
  /** sluice: medians over the repeats. */
  eventLoop?: EventLoopNumbers;
  noiseFloor?: NoiseFloor;
  errorCounts?: { connect: number; reset: number; other: number };
  /** W7: each number the median over the repeats. */
  storm?: StormSummary;
  /** W6: each number the median over the repeats. */
  isolation?: IsolationNumbers;
  /** On a peer's row: sluice's median divided by this server's. */
  sluiceRatio?: { messagesPerSecond?: number; cpuSecondsPerMillion?: number; peakRssBytes?: number };
}

/** W7's numbers (ms, per host, from its message written to its socket), medians over the repeats. */
export interface StormSummary {
  hosts: number;
  coldRegisteredP99?: number;
  coldRegisteredMax?: number;
  coldUnregistered?: number;
  coldWrittenP99?: number;
  coldWrittenMax?: number;
  /** Records (first of each host) without their `meta`, by the phase. */
  coldWithoutMeta: number;
  restartWrittenP99?: number;
  restartWrittenMax?: number;
  restartWithoutMeta: number;
  connectSeconds: number;
}

function summariseStorm(storms: { cold: StormPhase; restart: StormPhase }[]): StormSummary {
  const of = (pick: (s: { cold: StormPhase; restart: StormPhase }) => number | undefined): number | undefined =>
    median(storms.map(pick).filter((v): v is number => v !== undefined));
  return {
    hosts: storms[0]!.cold.hosts,
    coldRegisteredP99: of((s) => s.cold.registeredMs?.p99),
    coldRegisteredMax: of((s) => s.cold.registeredMs?.max),
    coldUnregistered: of((s) => s.cold.unregistered),
    coldWrittenP99: of((s) => s.cold.writtenMs?.p99),
    coldWrittenMax: of((s) => s.cold.writtenMs?.max),
    coldWithoutMeta: of((s) => s.cold.hosts - s.cold.withMeta) ?? 0,
    restartWrittenP99: of((s) => s.restart.writtenMs?.p99),
    restartWrittenMax: of((s) => s.restart.writtenMs?.max),
    restartWithoutMeta: of((s) => s.restart.hosts - s.restart.withMeta) ?? 0,
    connectSeconds: of((s) => Math.max(s.cold.connectSeconds, s.restart.connectSeconds)) ?? 0,
  };
}

/** Each percentile's median over the repeats; undefined without any. */
function medianLatency(latencies: Latency[]): Latency | undefined {
  if (latencies.length === 0) return undefined;
  const of = (key: keyof Latency): number => median(latencies.map((l) => l[key]))!;
  return { p50: of('p50'), p90: of('p90'), p99: of('p99'), p999: of('p999'), max: of('max') };
}

/** Each numeric field's median over the records that have it. */
function medianFields<T extends object>(records: T[]): T {
  const result: Record<string, number> = {};
  for (const key of new Set(records.flatMap((r) => Object.keys(r)))) {
    const m = median(records.map((r) => (r as Record<string, unknown>)[key]).filter((v): v is number => typeof v === 'number'));
    if (m !== undefined) result[key] = m;
  }
  return result as T;
}

export function summarise(measurements: Measurement[]): Summary[] {
  const groups = new Map<string, Measurement[]>();
  for (const m of measurements) {
    const key = `${m.variant}\u0000${m.server}`;
    const list = groups.get(key);
    if (list) list.push(m);
    else groups.set(key, [m]);
  }
  const summaries: Summary[] = [];
  for (const list of groups.values()) {
    const first = list[0]!;
    const ok = list.filter((m) => m.error === undefined && m.skipped === undefined);
    const values: Partial<Record<NumericKey, number>> = {};
    for (const key of NUMERIC_KEYS) {
      const m = median(ok.map((x) => x[key]).filter((v): v is number => typeof v === 'number'));
      if (m !== undefined) values[key] = m;
    }
    const summary: Summary = {
      workload: first.workload, variant: first.variant, server: first.server, repeats: ok.length,
      errors: list.flatMap((m) => (m.error ? [m.error] : [])), values,
    };
    const skipped = list.find((m) => m.skipped)?.skipped;
    if (skipped && ok.length === 0) summary.skipped = skipped;
    const latency = medianLatency(ok.flatMap((m) => (m.latencyMs ? [m.latencyMs] : [])));
    if (latency !== undefined) summary.latencyMs = latency;
    const steadyLatency = medianLatency(ok.flatMap((m) => (m.steadyLatencyMs ? [m.steadyLatencyMs] : [])));
    if (steadyLatency !== undefined) summary.steadyLatencyMs = steadyLatency;
    const latencyTo = ok.find((m) => m.latencyTo !== undefined)?.latencyTo;
    if (latencyTo !== undefined) summary.latencyTo = latencyTo;
    const loops = ok.flatMap((m) => (m.eventLoop ? [m.eventLoop] : []));
    if (loops.length > 0) {
      summary.eventLoop = {
        busySeconds: median(loops.map((l) => l.busySeconds))!, p99WorstMs: median(loops.map((l) => l.p99WorstMs))!,
        p99MedianMs: median(loops.map((l) => l.p99MedianMs))!, maxMs: median(loops.map((l) => l.maxMs))!,
      };
    }
    const storms = ok.flatMap((m) => (m.storm ? [m.storm] : []));
    if (storms.length > 0) summary.storm = summariseStorm(storms);
    const isolations = ok.flatMap((m) => (m.isolation ? [m.isolation] : []));
    if (isolations.length > 0) summary.isolation = medianFields(isolations);
    const floors = ok.flatMap((m) => (m.noiseFloor ? [m.noiseFloor] : []));
    if (floors.length > 0) summary.noiseFloor = { p99Ms: median(floors.map((f) => f.p99Ms))!, maxMs: median(floors.map((f) => f.maxMs))! };
    const errorCounts = ok.flatMap((m) => (m.errors ? [m.errors] : []));
    if (errorCounts.length > 0) {
      summary.errorCounts = {
        connect: Math.max(...errorCounts.map((e) => e.connect)),
        reset: Math.max(...errorCounts.map((e) => e.reset)),
        other: Math.max(...errorCounts.map((e) => e.other)),
      };
    }
    summaries.push(summary);
  }
  for (const s of summaries) {
    if (s.server === 'sluice') continue;
    const sluice = summaries.find((x) => x.variant === s.variant && x.server === 'sluice');
    if (!sluice) continue;
    const ratio = (key: 'messagesPerSecond' | 'cpuSecondsPerMillion' | 'peakRssBytes'): number | undefined => {
      const a = sluice.values[key];
      const b = s.values[key];
      return a !== undefined && b !== undefined && b > 0 ? a / b : undefined;
    };
    s.sluiceRatio = {};
    for (const key of ['messagesPerSecond', 'cpuSecondsPerMillion', 'peakRssBytes'] as const) {
      const r = ratio(key);
      if (r !== undefined) s.sluiceRatio[key] = r;
    }
  }
  return summaries;
}

export interface TargetResult {
  target: string;
  /** null: not measured in this run (a workload or a peer missing). */
  met: boolean | null;
  detail: string;
}

const MB = 1e6;

function find(summaries: Summary[], variant: string, server: ServerName): Summary | undefined {
  return summaries.find((s) => s.variant === variant && s.server === server && s.repeats > 0);
}

/** The label of W5's steady part. */
const W5_STEADY = `W5 from ${W5_STEADY_AFTER_SECONDS} s`;

/** sluice's p99 and max against their limits; rsyslog's of the same span beside them, for comparison. */
function latencyTarget(
  span: string, sluice: Summary | undefined, rsyslog: Summary | undefined, pick: (s: Summary) => Latency | undefined,
  limits: { p99: number; max: number },
): TargetResult {
  const lat = sluice === undefined ? undefined : pick(sluice);
  const peer = rsyslog === undefined ? undefined : pick(rsyslog);
  return {
    target: `${span}: p99 ≤ ${limits.p99} ms, max ≤ ${limits.max} ms`,
    met: lat === undefined ? null : lat.p99 <= limits.p99 && lat.max <= limits.max,
    detail: lat === undefined ? (sluice ? 'no latency' : 'not measured')
      : `p99 ${dec(lat.p99)} ms, max ${dec(lat.max)} ms`
        + (peer === undefined ? '' : `; rsyslog p99 ${dec(peer.p99)} ms, max ${dec(peer.max)} ms`),
  };
}

function fmtRatio(r: number): string {
  return `${r.toFixed(2)}×`;
}

/** Whether each target is met; with `quick` sizes the targets do not apply (met is null), the numbers are still shown. */
export function evaluateTargets(summaries: Summary[], quick = false): TargetResult[] {
  const results = evaluateFullSize(summaries);
  return quick ? results.map((r) => ({ ...r, met: null, detail: `--quick sizes, target not judged: ${r.detail}` })) : results;
}

function evaluateFullSize(summaries: Summary[]): TargetResult[] {
  const results: TargetResult[] = [];
  const w1 = find(summaries, 'W1', 'sluice');
  const w1r = find(summaries, 'W1', 'rsyslog');
  const w1n = find(summaries, 'W1', 'syslog-ng');
  const ratio = (peer: Summary | undefined, key: 'messagesPerSecond' | 'cpuSecondsPerMillion'): number | undefined =>
    w1 && peer ? peer.sluiceRatio?.[key] : undefined;

  const thr = ratio(w1r, 'messagesPerSecond');
  results.push({
    target: 'W1: sluice ≥ 1.0× rsyslog msg/s', met: thr === undefined ? null : thr >= 1.0,
    detail: thr === undefined ? 'not measured' : `${fmtRatio(thr)} (${num(w1!.values.messagesPerSecond)} vs ${num(w1r!.values.messagesPerSecond)} msg/s)`,
  });
  const cpu = ratio(w1r, 'cpuSecondsPerMillion');
  results.push({
    target: 'W1: sluice ≤ 0.8× rsyslog CPU-s per million', met: cpu === undefined ? null : cpu <= 0.8,
    detail: cpu === undefined ? 'not measured' : `${fmtRatio(cpu)} (${dec(w1!.values.cpuSecondsPerMillion)} vs ${dec(w1r!.values.cpuSecondsPerMillion)} s)`,
  });
  const thrNg = ratio(w1n, 'messagesPerSecond');
  results.push({
    target: 'W1: sluice ≥ 1.5× syslog-ng msg/s', met: thrNg === undefined ? null : thrNg >= 1.5,
    detail: thrNg === undefined ? 'not measured' : `${fmtRatio(thrNg)} (${num(w1!.values.messagesPerSecond)} vs ${num(w1n!.values.messagesPerSecond)} msg/s)`,
  });
  // UDP loss: at the OS default receive buffer no more than rsyslog's; with 4 MiB within a point of it. CPU per million delivered beside it.
  for (const [variant, slack] of [['W3 default buffer', 0], ['W3 4 MiB buffer', 1]] as const) {
    const s = find(summaries, variant, 'sluice');
    const r = find(summaries, variant, 'rsyslog');
    const a = s?.values.lossPercent;
    const b = r?.values.lossPercent;
    const cpu = (x: Summary | undefined): string => (x?.values.cpuSecondsPerMillion === undefined ? '–' : dec(x.values.cpuSecondsPerMillion));
    results.push({
      target: `${variant}: sluice loss ≤ rsyslog's${slack > 0 ? ` + ${slack} point` : ''}`, met: a === undefined || b === undefined ? null : a <= b + slack,
      detail: a === undefined || b === undefined ? 'not measured' : `${a.toFixed(2)} % vs ${b.toFixed(2)} %; CPU-s per million delivered ${cpu(s)} vs ${cpu(r)}`,
    });
  }
  // W4's memory figure is the PSS summed over the node's processes with the 10,000 connections held (issue 15: ≤ 200 MB).
  const w4 = find(summaries, 'W4', 'sluice');
  const held = w4?.values.connectedPssBytes;
  const connections = w4?.values.idleConnectionsHeld ?? 0;
  results.push({
    target: 'W4: sluice ≤ 200 MB PSS with 10,000 connections held',
    met: held === undefined || connections < 10_000 ? null : held <= 200 * MB,
    detail: held === undefined ? 'not measured'
      : `PSS ${mb(held)} MB (RSS ${mb(w4!.values.connectedRssBytes)} MB) holding ${connections.toLocaleString('en-US')} idle connections; `
        + `idle before them PSS ${mb(w4!.values.idlePssBytes)} MB`,
  });
  const idle = w4?.values.idlePssBytes;
  results.push({
    target: 'idle node (before W4\'s connections): sluice ≤ 120 MB PSS',
    met: idle === undefined ? null : idle <= 120 * MB,
    detail: idle === undefined ? 'not measured' : `PSS ${mb(idle)} MB, RSS ${mb(w4!.values.idleRssBytes)} MB`,
  });
  if (held !== undefined && idle !== undefined && connections > 0) {
    const perAgent = (held - idle) / connections;
    results.push({
      target: 'W4: ≤ 8 KB per connected agent', met: connections < 10_000 ? null : perAgent <= 8_000,
      detail: `${(perAgent / 1000).toFixed(1)} KB (PSS with them − PSS before, over ${connections.toLocaleString('en-US')})`,
    });
  }
  // Issue 16: the steady part and the whole run (the cold start included) are judged apart.
  const w5 = find(summaries, 'W5', 'sluice');
  const w5r = find(summaries, 'W5', 'rsyslog');
  results.push(latencyTarget(W5_STEADY, w5, w5r, (s) => s.steadyLatencyMs, { p99: 20, max: 100 }));
  results.push(latencyTarget('W5 whole run', w5, w5r, (s) => s.latencyMs, { p99: 100, max: 500 }));
  const w5Peak = w5?.values.peakPssBytes;
  results.push({
    target: 'W5: sluice ≤ 250 MB PSS summed (peak)', met: w5Peak === undefined ? null : w5Peak <= 250 * MB,
    detail: w5Peak === undefined ? 'not measured' : `peak PSS ${mb(w5Peak)} MB, RSS ${mb(w5!.values.peakRssBytes)} MB`
      + (w5r?.values.peakRssBytes === undefined ? '' : `; rsyslog RSS ${mb(w5r.values.peakRssBytes)} MB`),
  });
  const w5Cpu = w5r?.sluiceRatio?.cpuSecondsPerMillion;
  results.push({
    target: 'W5: sluice ≤ 1.5× rsyslog CPU-s per million', met: w5Cpu === undefined ? null : w5Cpu <= 1.5,
    detail: w5Cpu === undefined ? 'not measured' : `${fmtRatio(w5Cpu)} (${dec(w5!.values.cpuSecondsPerMillion)} vs ${dec(w5r!.values.cpuSecondsPerMillion)} s)`,
  });
  const errs = w5?.errorCounts;
  const lost = w5?.values.lost;
  results.push({
    target: 'W5: zero errors and losses', met: errs === undefined || lost === undefined ? null : errs.connect + errs.reset + errs.other === 0 && lost === 0,
    detail: errs === undefined || lost === undefined ? 'not measured'
      : `errors connect ${errs.connect}, reset ${errs.reset}, other ${errs.other}; lost ${lost}`,
  });
  const steadyRun = find(summaries, ISOLATION_STEADY, 'sluice');
  const floodRun = find(summaries, ISOLATION_FLOOD, 'sluice');
  const steady = steadyRun?.latencyMs;
  const flooded = floodRun?.latencyMs;
  const judged = ['p50', 'p90', 'p99'] as const;
  const percentileRatio = (k: keyof Latency): string => `${k} ${fmtRatio(flooded![k] / steady![k])} (${dec(flooded![k])} vs ${dec(steady![k])} ms)`;
  const delay = (run: Summary | undefined): string => (run?.isolation?.generatorDelayP99Ms === undefined ? '–'
    : `p99 ${dec(run.isolation.generatorDelayP99Ms)} / max ${dec(run.isolation.generatorDelayMaxMs)} ms`);
  const floodRates = floodRun?.isolation;
  results.push({
    target: 'W6: steady tenants\' p50, p90 and p99 with a flooding tenant each ≤ 2× without (hosts warmed up in both)',
    met: steady === undefined || flooded === undefined ? null : judged.every((k) => flooded[k] <= 2 * steady[k]),
    detail: steady === undefined || flooded === undefined ? 'not measured'
      : `${[...judged, 'max' as const].map(percentileRatio).join('; ')}; load generator's own event-loop delay ${delay(floodRun)} with the flood, `
        + `${delay(steadyRun)} without; the flooder wrote ${num(floodRates?.floodSentPerSec)} msg/s, the node delivered `
        + `${num(floodRates?.floodDeliveredPerSec)} msg/s of it (flood client CPU ${dec(floodRates?.floodClientCpuPercent, 0)} % of a core)`,
  });
  const steadyLost = floodRun?.values.lost;
  results.push({
    target: 'W6: zero loss for the steady tenants with a flooding tenant',
    met: steadyLost === undefined ? null : steadyLost === 0,
    detail: steadyLost === undefined ? 'not measured'
      : `lost ${num(steadyLost)} of ${num(floodRun!.values.sent)}; without the flood ${num(steadyRun?.values.lost)} of ${num(steadyRun?.values.sent)}`,
  });
  const storm = find(summaries, 'W7', 'sluice')?.storm;
  results.push({
    target: 'W7: 10,000 new hosts at once: each registered within 2 s of its first message, each record with its meta',
    met: storm?.coldRegisteredMax === undefined || storm.hosts < 10_000 ? null
      : storm.coldRegisteredMax <= 2000 && storm.coldUnregistered === 0 && storm.coldWithoutMeta === 0,
    detail: storm === undefined ? 'not measured'
      : `registered p99 ${dec(storm.coldRegisteredP99, 0)} ms, max ${dec(storm.coldRegisteredMax, 0)} ms, ${num(storm.coldUnregistered)} never; `
        + `records without meta ${num(storm.coldWithoutMeta)} of ${num(storm.hosts)}`,
  });
  results.push({
    target: 'W7: restarted, the same 10,000 hosts (known) at once: each record with its meta, written within 2 s',
    met: storm?.restartWrittenMax === undefined || storm.hosts < 10_000 ? null : storm.restartWrittenMax <= 2000 && storm.restartWithoutMeta === 0,
    detail: storm === undefined ? 'not measured'
      : `written p99 ${dec(storm.restartWrittenP99, 0)} ms, max ${dec(storm.restartWrittenMax, 0)} ms; records without meta ${num(storm.restartWithoutMeta)}`,
  });
  const loop = w1?.eventLoop;
  results.push({
    target: 'W1: sluice event-loop delay p99 < 20 ms',
    met: loop === undefined ? null : loop.p99WorstMs < 20,
    detail: loop === undefined ? 'not measured'
      : `worst one-second p99 ${dec(loop.p99WorstMs)} ms over ${loop.busySeconds} busy seconds (median ${dec(loop.p99MedianMs)} ms), max ${dec(loop.maxMs)} ms`
        + (w1!.noiseFloor === undefined ? '' : `; an idle process on the machine meanwhile: p99 ${dec(w1!.noiseFloor.p99Ms)} ms`),
  });
  return results;
}

function num(v: number | undefined): string {
  return v === undefined ? '–' : Math.round(v).toLocaleString('en-US');
}

function dec(v: number | undefined, digits = 2): string {
  return v === undefined ? '–' : v.toFixed(digits);
}

function mb(v: number | undefined): string {
  return v === undefined ? '–' : (v / MB).toFixed(1);
}

function pct(v: number | undefined): string {
  return v === undefined ? '–' : `${v < 0.01 && v > 0 ? v.toExponential(1) : v.toFixed(2)} %`;
}

function ratioCell(r: number | undefined): string {
  return r === undefined ? '' : fmtRatio(r);
}

/** Other processes' share of the machine's CPU above which a run's numbers are flagged as disturbed. */
const BUSY_MACHINE_PERCENT = 5;

function notes(s: Summary): string {
  const parts: string[] = [];
  if (s.skipped) parts.push(`skipped: ${s.skipped}`);
  if (s.errors.length > 0) parts.push(`${s.errors.length} failed run(s): ${s.errors[0]!.slice(0, 160).replace(/\s+/g, ' ')}`);
  if (s.latencyTo !== undefined) parts.push(latencyMeaning(s.latencyTo, s.server));
  const v = s.values;
  if (v.udpReceiveBufferBytes !== undefined) parts.push(`rcvbuf ${(v.udpReceiveBufferBytes / 1024 / 1024).toFixed(2)} MiB`);
  // Where W3's loss happened: in the kernel (the socket's receive buffer was full) or inside the server.
  if (v.udpKernelDropped !== undefined && v.lost !== undefined) {
    parts.push(`lost in the kernel ${num(v.udpKernelDropped)}, in the server ${num(Math.max(0, v.lost - v.udpKernelDropped))}`);
  }
  if (v.idleConnectionsHeld !== undefined) parts.push(`${num(v.idleConnectionsHeld)} idle connections held, ${num(v.idleConnectionsOpenAtEnd)} still open at end`);
  if (v.otherCpuPercent !== undefined && v.otherCpuPercent >= BUSY_MACHINE_PERCENT) {
    parts.push(`busy machine: other processes used ${v.otherCpuPercent.toFixed(0)} % of the CPU`);
  }
  if (v.duplicates) parts.push(`${num(v.duplicates)} duplicates`);
  if (v.invalidLines) parts.push(`${num(v.invalidLines)} invalid JSON lines`);
  if (s.workload === 'W2' && s.server === 'sluice') parts.push('NDJSON (sluice has no raw format)');
  return parts.join('; ');
}

/** What a latency row spans; an acknowledgement means something else to each server. */
function latencyMeaning(to: 'visible' | 'ack', server: ServerName): string {
  if (to === 'visible') return 'latency: send → in the output file';
  const answered = server === 'sluice' ? 'once the file sink committed it' : server === 'rsyslog' ? 'once imrelp queued it, before it is written' : '';
  return `latency: send → RELP ack${answered === '' ? '' : ` (answered ${answered})`}`;
}

export interface Table {
  header: string[];
  rows: string[][];
}

export function throughputTable(summaries: Summary[]): Table {
  const header = ['workload', 'server', 'runs', 'sent', 'delivered', 'loss', 'msg/s', 'CPU s / M msgs', 'peak RSS MB',
    'sluice/this msg/s', 'sluice/this CPU', 'notes'];
  const rows = summaries.filter((s) => s.workload !== 'W5' && s.workload !== 'W6' && s.workload !== 'W7').map((s) => [
    s.variant, s.server, String(s.repeats), num(s.values.sent), num(s.values.delivered), pct(s.values.lossPercent),
    num(s.values.messagesPerSecond), dec(s.values.cpuSecondsPerMillion), mb(s.values.peakRssBytes),
    ratioCell(s.sluiceRatio?.messagesPerSecond), ratioCell(s.sluiceRatio?.cpuSecondsPerMillion), notes(s),
  ]);
  return { header, rows };
}

export function latencyTable(summaries: Summary[]): Table {
  const header = ['workload', 'server', 'runs', 'agents', 'sent', 'delivered', 'lost', 'errors (connect/reset/other)',
    'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'CPU s / M msgs', 'peak RSS MB', 'notes'];
  const percentiles = (l: Latency | undefined): string[] => [dec(l?.p50), dec(l?.p90), dec(l?.p99), dec(l?.max)];
  const rows = summaries.filter((s) => s.workload === 'W5' || s.workload === 'W6').flatMap((s) => [
    [
      s.variant, s.server, String(s.repeats), num(s.values.agents), num(s.values.sent), num(s.values.delivered), num(s.values.lost),
      s.errorCounts ? `${s.errorCounts.connect}/${s.errorCounts.reset}/${s.errorCounts.other}` : '–',
      ...percentiles(s.latencyMs), dec(s.values.cpuSecondsPerMillion), mb(s.values.peakRssBytes), notes(s),
    ],
    // W5's steady part beneath its whole run ('–' when the run was shorter).
    ...(s.workload === 'W5' ? [[
      `${s.variant} from ${W5_STEADY_AFTER_SECONDS} s`, s.server, '', '', '', '', '', '', ...percentiles(s.steadyLatencyMs), '', '',
      `messages sent from ${W5_STEADY_AFTER_SECONDS} s after the start on`,
    ]] : []),
  ]);
  return { header, rows };
}

/** W7: per host, from its message written to its socket (ms). */
export function stormTable(summaries: Summary[]): Table {
  const header = ['storm', 'hosts', 'registered p99 / max ms', 'record written p99 / max ms', 'records without meta', 'connecting took s'];
  const rows = summaries.filter((s) => s.storm !== undefined).flatMap((s) => {
    const t = s.storm!;
    return [
      ['new hosts', num(t.hosts), `${dec(t.coldRegisteredP99, 0)} / ${dec(t.coldRegisteredMax, 0)}`, `${dec(t.coldWrittenP99, 0)} / ${dec(t.coldWrittenMax, 0)}`,
        num(t.coldWithoutMeta), dec(t.connectSeconds, 1)],
      ['after a restart (known hosts)', num(t.hosts), '–', `${dec(t.restartWrittenP99, 0)} / ${dec(t.restartWrittenMax, 0)}`, num(t.restartWithoutMeta), ''],
    ];
  });
  return { header, rows };
}

/** Memory of every server, summed over its processes: RSS beside PSS (shared pages counted once). */
export function memoryTable(summaries: Summary[]): Table {
  const header = ['workload', 'server', 'idle RSS / PSS MB', 'connected RSS / PSS MB', 'peak RSS / PSS MB', 'end RSS / PSS MB'];
  const pair = (rss: number | undefined, pss: number | undefined): string => (rss === undefined ? '–' : `${mb(rss)} / ${mb(pss)}`);
  const rows = summaries.filter((s) => s.values.idleRssBytes !== undefined).map((s) => [
    s.variant, s.server, pair(s.values.idleRssBytes, s.values.idlePssBytes), pair(s.values.connectedRssBytes, s.values.connectedPssBytes),
    pair(s.values.peakRssBytes, s.values.peakPssBytes), pair(s.values.endRssBytes, s.values.endPssBytes),
  ]);
  return { header, rows };
}

/** sluice's event-loop delay in every run (from its node-stopped line). */
export function eventLoopTable(summaries: Summary[]): Table {
  const header = ['workload', 'busy seconds', 'worst 1-s p99 ms', 'median 1-s p99 ms', 'max ms', 'idle process p99 / max ms (the machine)'];
  const rows = summaries.filter((s) => s.server === 'sluice' && s.eventLoop !== undefined).map((s) => [
    s.variant, num(s.eventLoop!.busySeconds), dec(s.eventLoop!.p99WorstMs), dec(s.eventLoop!.p99MedianMs), dec(s.eventLoop!.maxMs),
    s.noiseFloor === undefined ? '–' : `${dec(s.noiseFloor.p99Ms)} / ${dec(s.noiseFloor.maxMs)}`,
  ]);
  return { header, rows };
}

export function targetsTable(targets: TargetResult[]): Table {
  return {
    header: ['target', 'met', 'measured'],
    rows: targets.map((t) => [t.target, t.met === null ? 'n/a' : t.met ? 'yes' : 'NO', t.detail]),
  };
}

export function markdown(table: Table): string {
  const escape = (cell: string): string => cell.replace(/\|/g, '\\|');
  return [
    `| ${table.header.join(' | ')} |`,
    `| ${table.header.map(() => '---').join(' | ')} |`,
    ...table.rows.map((row) => `| ${row.map(escape).join(' | ')} |`),
  ].join('\n');
}

/** Aligned columns for the terminal. */
export function plain(table: Table): string {
  const widths = table.header.map((h, i) => Math.max(h.length, ...table.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(table.header), line(widths.map((w) => '-'.repeat(w))), ...table.rows.map(line)].join('\n');
}
