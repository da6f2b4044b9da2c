/**
 * W5 drives `sluice loadgen` (src/ops/loadgen): many agents at a steady rate,
 * latency measured from the client side: over TCP by following the node's
 * sink files (send → visible), over RELP by its answers (send → ack).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { LatencySummaryMs } from '../src/ops/loadgen/histogram.js';
import { SLUICE_CLI } from './peers.js';
import { HOST } from './ports.js';
import type { ProcessGroup } from './processes.js';

export interface LoadgenOptions {
  /** The agents' protocol (default tcp); RELP's latency is send → acknowledgement. */
  protocol?: 'tcp' | 'relp';
  /** The server's listener for that protocol. */
  port: number;
  agents: number;
  /** Messages per second per agent. */
  rate: number;
  durationSeconds: number;
  reportDir: string;
  /** The node's data_dir: loadgen's probe follows the sink files under it. */
  dataDir: string;
  /** Where the probe follows `<tenant>/current.ndjson` instead (a peer's output); default: dataDir/logs. */
  logsDir?: string;
  /** Default 1 and `steady`; W6 floods with tenant t0 (`flood`, at `floodRate` per agent). */
  tenants?: number;
  pattern?: 'steady' | 'flood';
  floodRate?: number;
  /** Latency is also reported for the messages sent this long after the start or later (default: loadgen's, 10 s). */
  steadyAfterSeconds?: number;
}

/** The part of loadgen's report.json the benchmark reads. */
export interface LoadgenReport {
  sent: number;
  delivered: number;
  lost: number;
  errors: { connect: number; reset: number; other: number };
  throughputPerSec: number;
  latencyMs: LatencySummaryMs;
  /** Every tenant but t0. */
  othersLatencyMs?: LatencySummaryMs;
  /** loadgen's --steady-after; absent from a loadgen older than it. */
  steadyAfterSec?: number;
  /** The messages sent from steadyAfterSec on; null when none was. */
  steadyLatencyMs?: LatencySummaryMs | null;
  perTenant?: { tenant: string; sent: number; delivered: number; lost: number }[];
  generatorDelayMs?: { workers: { p99: number; max: number }; probe: { p99: number; max: number } };
}

export function loadgenArguments(o: LoadgenOptions): string[] {
  return [
    SLUICE_CLI, 'loadgen',
    '--target', `${o.protocol ?? 'tcp'}://${HOST}:${o.port}`,
    '--agents', String(o.agents),
    '--rate', String(o.rate),
    '--duration', `${o.durationSeconds}s`,
    '--pattern', o.pattern ?? 'steady',
    '--tenants', String(o.tenants ?? 1),
    ...(o.floodRate === undefined ? [] : ['--flood-rate', String(o.floodRate)]),
    ...(o.steadyAfterSeconds === undefined ? [] : ['--steady-after', `${o.steadyAfterSeconds}s`]),
    '--report-dir', o.reportDir,
    '--data-dir', o.dataDir,
    ...(o.logsDir === undefined ? [] : ['--logs-dir', o.logsDir]),
    '--quiet',
  ];
}

function isReport(value: unknown): value is LoadgenReport {
  const r = value as LoadgenReport;
  return typeof r === 'object' && r !== null && typeof r.sent === 'number' && typeof r.delivered === 'number'
    && typeof r.lost === 'number' && typeof r.errors === 'object' && typeof r.latencyMs === 'object'
    && ['p50', 'p90', 'p99', 'max'].every((k) => typeof (r.latencyMs as unknown as Record<string, unknown>)[k] === 'number');
}

export async function runLoadgen(options: LoadgenOptions, group: ProcessGroup): Promise<LoadgenReport> {
  const proc = group.spawnWithFileLimit('loadgen', process.execPath, loadgenArguments(options));
  // Room for ramp-up, the drain and the report after the steady phase.
  const limitMs = (options.durationSeconds + 120) * 1000;
  const timer = setTimeout(() => void proc.stop(5000), limitMs);
  const status = await proc.exited;
  clearTimeout(timer);
  const file = path.join(options.reportDir, 'report.json');
  let report: unknown;
  try {
    report = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`loadgen left no readable ${file} (exit ${JSON.stringify(status)}): ${(err as Error).message}; `
      + `${proc.stderrTail().slice(-1500)}`, { cause: err });
  }
  if (!isReport(report)) throw new Error(`unexpected report.json shape: ${JSON.stringify(report).slice(0, 500)}`);
  return report;
}
