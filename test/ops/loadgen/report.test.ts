/**
 * The reports of the steady part (--steady-after): report.json's fields, the
 * summary's row under the latency row, the HTML's. Results are put together
 * from synthetic deliveries: no node, no clock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeHistograms, newHistogram, summarizeMs } from '../../../src/ops/loadgen/histogram.js';
import { renderHtml } from '../../../src/ops/loadgen/html.js';
import { parseLoadgenOptions, type RawLoadgenOptions } from '../../../src/ops/loadgen/options.js';
import { formatSummary } from '../../../src/ops/loadgen/report.js';
import { toReportJson } from '../../../src/ops/loadgen/report-json.js';
import type { LoadgenResult } from '../../../src/ops/loadgen/run.js';
import { DeliveryTracker } from '../../../src/ops/loadgen/tracker.js';

const GO_MICROS = 1_000_000;

/** A completed run whose latencies are the tracker's: one delivery per `[agent, sent µs after the start, latency µs]`. */
function resultOf(raw: RawLoadgenOptions, deliveries: [number, number, number][]): LoadgenResult {
  const options = parseLoadgenOptions({ quiet: true, duration: '20s', ...raw }, { cores: 2, descriptorLimit: null });
  const tracker = new DeliveryTracker(options.agents, options.tenants, options.steadyAfterMs);
  tracker.begin(GO_MICROS);
  const seqs = new Array<number>(options.agents).fill(0);
  for (const [agent, sentAfter, latency] of deliveries) {
    const sendMicros = GO_MICROS + sentAfter;
    tracker.record(agent, seqs[agent]!++, sendMicros, sendMicros + latency, 'default');
  }
  const { byTenant, steadyFirstTenant, steadyOtherTenants } = tracker.latency;
  const multiTenant = options.tenants > 1;
  return {
    options, runId: 'feedc0de', startedAt: '2026-12-08T12:00:00.000Z', reached: true, unreachableReason: null, interrupted: false,
    sendingSec: options.durationMs / 1000, sent: tracker.delivered, delivered: tracker.delivered, lost: 0, duplicates: 0,
    throttled: 0, notConnected: 0, connects: options.agents, initiallyOpen: options.agents, initiallyFailed: 0,
    errors: { connect: 0, reset: 0, other: 0 }, errorCodes: {}, latencyMeasures: 'visible',
    latency: mergeHistograms(byTenant),
    othersLatency: multiTenant ? mergeHistograms(byTenant.slice(1)) : null,
    steadyLatency: mergeHistograms([steadyFirstTenant, steadyOtherTenants]),
    othersSteadyLatency: multiTenant ? steadyOtherTenants : null,
    connect: newHistogram(),
    perTenant: byTenant.map((latency, t) => ({
      tenant: `t${t}`, nodeTenants: ['default'], sent: tracker.deliveredByTenant[t]!, delivered: tracker.deliveredByTenant[t]!,
      lost: 0, duplicates: 0, latency,
    })),
    timeline: [], throughputPerSec: 0,
    probe: { markers: 0, bytesRead: 0, rotations: 0, truncatedBytes: 0 },
    generatorDelay: { main: { p99Ms: 0, maxMs: 0 }, workers: { p99Ms: 0, maxMs: 0 } },
  };
}

/** The summary's lines from the latency row on, up to the connect row. */
function latencyLines(result: LoadgenResult): string[] {
  const lines = formatSummary(result).split('\n');
  return lines.slice(lines.findIndex((l) => l.startsWith('latency ms')), lines.findIndex((l) => l.startsWith('connect ms')));
}

test('report: the steady part (sent from 10 s on) apart from the whole run, in report.json, the summary and the HTML', () => {
  // Agents 0 and 1: tenants t0 and t1. The cold start slower than the steady part; latencies a histogram holds exactly.
  const result = resultOf({ agents: '2', tenants: '2' }, [
    [0, 0, 2000], [1, 9_999_999, 1900], [0, 10_000_000, 500], [1, 15_000_000, 1000], [0, 19_000_000, 500],
  ]);
  const report = toReportJson(result);
  const keys = Object.keys(report);
  assert.deepEqual(keys.slice(keys.indexOf('latencyMs'), keys.indexOf('connectMs')),
    ['latencyMs', 'othersLatencyMs', 'steadyAfterSec', 'steadyLatencyMs', 'othersSteadyLatencyMs'], 'added after the existing fields');
  assert.equal(report.steadyAfterSec, 10);
  assert.equal(report.latencyMs.count, 5);
  assert.equal(report.latencyMs.max, 2);
  assert.deepEqual(report.steadyLatencyMs, { p50: 0.5, p90: 1, p99: 1, p999: 1, max: 1, count: 3 });
  assert.deepEqual(report.othersSteadyLatencyMs, { p50: 1, p90: 1, p99: 1, p999: 1, max: 1, count: 1 }, 't1 alone');

  assert.deepEqual(latencyLines(result), [
    'latency ms                1          2          2          2          2          5',
    '  from 10 s             0.5          1          1          1          1          3',
    '  t0                    0.5          2          2          2          2          3',
    '  t1                      1        1.9        1.9        1.9        1.9          2',
  ]);
  const html = renderHtml(result, report);
  assert.match(html, /<tr><td>from 10 s \(ms\)<\/td><td>0\.5<\/td>(<td>1<\/td>){4}<td>3<\/td><\/tr>/);
});

test('report: a run shorter than --steady-after has no steady part: null in report.json, dashes in the summary', () => {
  const result = resultOf({ agents: '2', tenants: '2', duration: '5s' }, [[0, 1_000_000, 3000], [1, 4_000_000, 3000]]);
  const report = toReportJson(result);
  assert.equal(report.steadyAfterSec, 10);
  assert.equal(report.steadyLatencyMs, null);
  assert.equal(report.othersSteadyLatencyMs, null);
  assert.equal(latencyLines(result)[1], '  from 10 s               -          -          -          -          -          0');
  assert.match(renderHtml(result, report), /<tr><td>from 10 s \(ms\)<\/td>(<td>–<\/td>){5}<td>0<\/td><\/tr>/);
});

test('report: --steady-after 0 is the whole run: the same figures in report.json, no second row', () => {
  const result = resultOf({ agents: '1', steadyAfter: '0' }, [[0, 0, 2000], [0, 12_000_000, 500]]);
  const report = toReportJson(result);
  assert.equal(report.steadyAfterSec, 0);
  assert.deepEqual(report.steadyLatencyMs, report.latencyMs);
  assert.deepEqual(report.steadyLatencyMs, summarizeMs(result.latency));
  assert.ok(!('othersSteadyLatencyMs' in report), 'one tenant: no others');
  assert.equal(latencyLines(result).length, 1, 'the latency row alone');
  assert.doesNotMatch(renderHtml(result, report), /from 0 s/);
});
