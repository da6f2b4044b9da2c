/** A run's results as `report.json`: a fixed shape (benchmark tooling reads it). */
import { microsToMs, summarizeMs, type Histogram, type LatencySummaryMs } from './histogram.js';
import type { LoadgenResult } from './run.js';

export interface ReportJson {
  protocol: string;
  target: string;
  pattern: string;
  agents: number;
  tenants: number;
  workers: number;
  durationSec: number;
  sent: number;
  delivered: number;
  lost: number;
  duplicates: number;
  errors: { connect: number; reset: number; other: number };
  throughputPerSec: number;
  latencyMs: LatencySummaryMs;
  /** Every tenant but t0 (the flooding one under `--pattern flood`); absent with one tenant. */
  othersLatencyMs?: LatencySummaryMs;
  /** --steady-after, in seconds. */
  steadyAfterSec: number;
  /** The latency of the messages sent from steadyAfterSec on (the steady part, apart from the cold start); null when none was (a shorter run). */
  steadyLatencyMs: LatencySummaryMs | null;
  /** othersLatencyMs of the same messages; absent with one tenant. */
  othersSteadyLatencyMs?: LatencySummaryMs | null;
  connectMs: { p50: number; p99: number; max: number };
  perTenant: { tenant: string; sent: number; delivered: number; lost: number; latencyMs: LatencySummaryMs }[];
  timeline: { t: number; sent: number; delivered: number; p99Ms: number }[];
  /** The generator's own event-loop delay (its worst agent worker, and the probe's process): what of the latency is the client's. */
  generatorDelayMs: { workers: { p99: number; max: number }; probe: { p99: number; max: number } };
}

function summarizeUnlessEmpty(histogram: Histogram): LatencySummaryMs | null {
  return histogram.totalCount === 0 ? null : summarizeMs(histogram);
}

export function toReportJson(result: LoadgenResult): ReportJson {
  const { options } = result;
  const connect = result.connect;
  return {
    protocol: options.protocol,
    target: options.target.url,
    pattern: options.pattern,
    agents: options.agents,
    tenants: options.tenants,
    workers: options.workers,
    durationSec: result.sendingSec,
    sent: result.sent,
    delivered: result.delivered,
    lost: result.lost,
    duplicates: result.duplicates,
    errors: { connect: result.errors.connect, reset: result.errors.reset, other: result.errors.other },
    throughputPerSec: result.throughputPerSec,
    latencyMs: summarizeMs(result.latency),
    ...(result.othersLatency === null ? {} : { othersLatencyMs: summarizeMs(result.othersLatency) }),
    steadyAfterSec: options.steadyAfterMs / 1000,
    steadyLatencyMs: summarizeUnlessEmpty(result.steadyLatency),
    ...(result.othersSteadyLatency === null ? {} : { othersSteadyLatencyMs: summarizeUnlessEmpty(result.othersSteadyLatency) }),
    connectMs: connect.totalCount === 0 ? { p50: 0, p99: 0, max: 0 } : {
      p50: microsToMs(connect.getValueAtPercentile(50)),
      p99: microsToMs(connect.getValueAtPercentile(99)),
      max: microsToMs(connect.maxValue),
    },
    perTenant: result.perTenant.map((t) => ({
      tenant: t.tenant, sent: t.sent, delivered: t.delivered, lost: t.lost, latencyMs: summarizeMs(t.latency),
    })),
    timeline: result.timeline.map((e) => ({ t: e.t, sent: e.sent, delivered: e.delivered, p99Ms: e.p99Ms })),
    generatorDelayMs: {
      workers: { p99: result.generatorDelay.workers.p99Ms, max: result.generatorDelay.workers.maxMs },
      probe: { p99: result.generatorDelay.main.p99Ms, max: result.generatorDelay.main.maxMs },
    },
  };
}
