/**
 * The overview's arithmetic: quantiles from histogram buckets, rates between
 * two snapshots, and the tenant filter of the exposition text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildOverview, filterExposition, histogramQuantile, withRates, type MetricJson } from '../../../src/ops/admin/overview.js';
import type { SessionView } from '../../../src/ops/control.js';

test('overview: quantiles interpolate within their bucket, as histogram_quantile does', () => {
  const le = [0.01, 0.1, 1];
  // 50 samples <= 10 ms, 40 more <= 100 ms, 10 more <= 1 s.
  const cumulative = [50, 90, 100];
  assert.equal(histogramQuantile(0.5, le, cumulative, 100), 0.01);
  assert.ok(Math.abs(histogramQuantile(0.7, le, cumulative, 100) - 0.055) < 1e-9);
  assert.ok(Math.abs(histogramQuantile(0.99, le, cumulative, 100) - 0.91) < 1e-9);
  assert.equal(histogramQuantile(0.5, le, [0, 0, 0], 0), 0);
  // Samples past the last finite bucket: the last bound is the best that can be said.
  assert.equal(histogramQuantile(0.99, le, [0, 0, 0], 10), 1);
});

function metrics(accepted: number, ackBuckets: number[], ackCount: number): MetricJson[] {
  return [
    { name: 'sluice_source_accepted_records_total', type: 'counter', values: [{ value: accepted, labels: { source: 'syslog_tcp' } }] },
    { name: 'sluice_tenant_accepted_records_total', type: 'counter', values: [{ value: accepted, labels: { tenant: 'acme' } }] },
    {
      name: 'sluice_ack_latency_seconds', type: 'histogram', values: [
        ...ackBuckets.map((value, i) => ({ value, labels: { le: [0.01, 0.1][i]!, source: 'relp' }, metricName: 'sluice_ack_latency_seconds_bucket' })),
        { value: ackCount, labels: { le: '+Inf', source: 'relp' }, metricName: 'sluice_ack_latency_seconds_bucket' },
        { value: ackCount, labels: { source: 'relp' }, metricName: 'sluice_ack_latency_seconds_count' },
        { value: 0, labels: { source: 'relp' }, metricName: 'sluice_ack_latency_seconds_sum' },
      ],
    },
    { name: 'sluice_memory_accounted_bytes', type: 'gauge', values: [{ value: 1234, labels: { component: 'sessions' } }] },
    { name: 'sluice_event_loop_delay_p99_seconds', type: 'gauge', values: [{ value: 0.02, labels: {} }] },
    { name: 'sluice_restarts_total', type: 'counter', values: [{ value: 2, labels: { worker: '1' } }] },
  ];
}

const session = (id: string, bytes: number): SessionView => ({
  id, source: 'syslog_tcp', protocol: 'tcp', peer: '127.0.0.1:1', tenant: 'acme', host: 'h', openedAt: 0, records: bytes / 10, bytes, errors: 0,
  queuedBytes: 0, throttled: false, governed: false,
});

test('overview: rates and the interval\'s ack latency come from the difference of two snapshots', () => {
  const before = buildOverview(metrics(100, [10, 10], 10), [session('a', 1000)], [], [], null);
  const now = buildOverview(metrics(300, [10, 20], 30), [session('a', 3000), session('b', 500)], [], [], null);
  now.time = before.time + 2000;
  const live = withRates(now, before, 10);
  assert.equal(live.rates.acceptedRecords, 100);
  assert.deepEqual(live.tenants.map((t) => [t.tenant, t.recordsPerSec]), [['acme', 100]]);
  assert.deepEqual(live.sessions.map((s) => [s.id, s.bytesPerSec]).sort(), [['a', 1000], ['b', 250]]);
  // In the interval: 20 acknowledged batches, 10 within 100 ms and 10 beyond the last bucket.
  assert.equal(live.ackLatencyInterval?.count, 20);
  assert.equal(live.ackLatencyInterval?.max, 0.1, 'max is the highest finite bound reached');
  assert.equal(live.memory['sluice_memory_accounted_bytes{component=sessions}'], 1234, 'governor gauges pass through when present');
  assert.equal(live.eventLoop['sluice_event_loop_delay_p99_seconds'], 0.02);
  assert.equal(live.restarts, 2);
  assert.equal(live.udp, null, 'no UDP numbers without a UDP listener');
  assert.equal(withRates(before, null, 10).ackLatencyInterval?.count, 10);
});

test('overview: the exposition filtered to one tenant keeps its samples with their HELP and TYPE, nothing else', () => {
  const text = [
    '# HELP a_total A.', '# TYPE a_total counter', 'a_total{tenant="acme"} 1', 'a_total{tenant="globex"} 2', 'a_total{reason="x,tenant=\\"acme\\"",tenant="globex"} 3',
    '# HELP b_total B.', '# TYPE b_total counter', 'b_total{sink="files",tenant="acme"} 4',
    '# HELP c C.', '# TYPE c gauge', 'c 5', 'c{sink="files"} 6',
    '',
  ].join('\n');
  assert.equal(filterExposition(text, 'acme'), [
    '# HELP a_total A.', '# TYPE a_total counter', 'a_total{tenant="acme"} 1',
    '# HELP b_total B.', '# TYPE b_total counter', 'b_total{sink="files",tenant="acme"} 4', '',
  ].join('\n'));
  assert.equal(filterExposition(text, 'nobody'), '');
});

test('overview: a tenant routed to two sinks counts its delivered records once; one sink row per sink', () => {
  const delivered: MetricJson = {
    name: 'sluice_tenant_delivered_records_total', type: 'counter', values: [
      { value: 10, labels: { sink: 'files', tenant: 'acme' } },
      { value: 8, labels: { sink: 'nats', tenant: 'acme' } },
      { value: 5, labels: { sink: 'files', tenant: 'globex' } },
    ],
  };
  const components = [
    { name: 'sink:files', kind: 'sink' as const, healthy: true },
    { name: 'sink:nats', kind: 'sink' as const, healthy: true },
  ];
  const overview = buildOverview([delivered], [], components, [], null);
  assert.deepEqual(overview.tenants.map((t) => [t.tenant, t.deliveredRecords]), [['acme', 10], ['globex', 5]]);
  assert.deepEqual(overview.sinks.map((s) => s.name), ['files', 'nats']);
  assert.equal(buildOverview([delivered], [], components, [], 'acme').totals.deliveredRecords, 10);
});
