/**
 * /metrics as Prometheus reads it: the exposition parsed by a real parser
 * (parse-prometheus-text-format, a port of the Python client's parser) and,
 * where installed, linted by Prometheus' own `promtool check metrics`;
 * names follow the conventions; per-tenant series stay bounded, the tenants
 * past `admin.tenant_series` counted under `other`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect, requireProgram, waitFor } from '../../helpers.js';
import { ADMIN_TOKEN, call, frame, startAdminFixture } from './admin-helpers.js';

interface ParsedFamily {
  name: string;
  help: string;
  type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
  metrics: { labels?: Record<string, string>; value?: string; buckets?: Record<string, string>; count?: string; sum?: string }[];
}

/** A devDependency that may be missing from an old install: skip with the reason, except under CI. */
async function importParser(): Promise<((text: string) => ParsedFamily[]) | string> {
  const name = 'parse-prometheus-text-format';
  try {
    const module = (await import(name)) as { default: (text: string) => ParsedFamily[] };
    return module.default;
  } catch (err) {
    if (process.env.CI === 'true') throw err;
    const reason = `${name} not installed (npm install)`;
    process.stderr.write(`skipping: ${reason}\n`);
    return reason;
  }
}

const THREE_TENANTS = `
tenants:
  acme: { networks: [127.0.0.1] }
  globex: { networks: [127.0.0.2] }
  initech: { networks: [127.0.0.3] }
admin:
  tokens: [{ token: ${ADMIN_TOKEN} }]
  tenant_series: 2
`;

test('metrics: the exposition parses, names follow the conventions, tenants past the cap share `other`', async (t) => {
  const parse = await importParser();
  if (typeof parse === 'string') return t.skip(parse);
  const { node, base, tcpPort } = await startAdminFixture(t, THREE_TENANTS);
  const sockets = await Promise.all(['127.0.0.1', '127.0.0.2', '127.0.0.3'].map((address) => connect(tcpPort, address)));
  t.after(() => sockets.forEach((s) => s.destroy()));
  sockets.forEach((socket, i) => socket.write(Array.from({ length: i + 1 }, (_, j) => frame(`host-${i}`, `m${j}`)).join('')));
  // An acknowledged batch (HTTP ingest answers after commit), so the ack latency histogram has a sample.
  const http = node.addresses().http!;
  const ingest = await fetch(`http://127.0.0.1:${http.port}/v1/ingest`, { method: 'POST', body: '{"msg":"over http"}\n' });
  assert.equal(ingest.status, 200);
  await waitFor('every record written', async () => (await node.telemetry.value('sluice_sink_written_records_total')) === 7);

  const response = await call(base, '/metrics', ADMIN_TOKEN);
  assert.equal(response.status, 200);
  const families = parse(response.text);
  const byName = new Map(families.map((f) => [f.name, f]));

  for (const family of families) {
    assert.match(family.name, /^[a-z_:][a-z0-9_:]*$/, family.name);
    assert.ok(family.help.length > 0, `${family.name} has a help text`);
    if (!family.name.startsWith('sluice_')) continue;
    if (family.type === 'COUNTER') assert.match(family.name, /_total$/, `counter ${family.name} ends in _total`);
    else assert.doesNotMatch(family.name, /_total$/, `${family.type} ${family.name} does not end in _total`);
    // Units are spelled out, in base units.
    assert.doesNotMatch(family.name, /_(ms|milliseconds|kb|mb|kib|mib)(_|$)/, `${family.name} uses base units`);
    assert.doesNotMatch(family.name, /[A-Z]/);
  }

  const value = (name: string, labels: Record<string, string>): number => {
    const family = byName.get(name);
    assert.ok(family, `${name} is exposed`);
    const sample = family.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
    return sample === undefined ? 0 : Number(sample.value);
  };
  // Tenants in configuration order: the first two get their own series, initech goes to `other`.
  assert.equal(value('sluice_tenant_accepted_records_total', { tenant: 'acme' }), 2, 'acme: one TCP record, one over HTTP');
  assert.equal(value('sluice_tenant_accepted_records_total', { tenant: 'globex' }), 2);
  assert.equal(value('sluice_tenant_accepted_records_total', { tenant: 'other' }), 3);
  const tenantLabels = new Set(byName.get('sluice_tenant_accepted_records_total')!.metrics.map((m) => m.labels?.tenant));
  assert.deepEqual([...tenantLabels].sort(), ['acme', 'globex', 'other']);
  assert.equal(value('sluice_tenant_delivered_records_total', { tenant: 'other', sink: 'files' }), 3);
  assert.equal(value('sluice_source_accepted_records_total', { source: 'syslog_tcp' }), 6);
  assert.equal(value('sluice_source_accepted_records_total', { source: 'http' }), 1);
  assert.ok(value('sluice_source_accepted_bytes_total', { source: 'syslog_tcp' }) > 0);
  assert.equal(value('sluice_sessions', {}), 3, 'the three agents\' sessions');
  assert.equal(byName.get('sluice_sessions_queued_bytes')?.type, 'GAUGE');

  // Only HTTP acknowledged a batch, so the histogram has one child. (This parser folds a
  // labelled histogram's children into one and drops their _count and _sum: those are read
  // from the text, and promtool below parses them properly.)
  const ack = byName.get('sluice_ack_latency_seconds');
  assert.equal(ack?.type, 'HISTOGRAM');
  assert.equal(Number(ack.metrics[0]!.buckets!['+Inf']), 1);
  assert.match(response.text, /^sluice_ack_latency_seconds_count\{source="http"\} 1$/m);
  assert.match(response.text, /^sluice_ack_latency_seconds_bucket\{le="\+Inf",source="http"\} 1$/m);

  // Prometheus' own linter, where installed (Debian: prometheus).
  if (requireProgram('promtool', 'apt-get install prometheus') === false) {
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: response.text, encoding: 'utf8' });
    const output = `${lint.stdout}${lint.stderr}`;
    assert.doesNotMatch(output, /error while linting|parsing error/i, 'promtool parses the exposition');
    const problems = output.split('\n').filter((l) => l.startsWith('sluice_'));
    assert.deepEqual(problems, [], 'promtool check metrics finds nothing in sluice_* metrics');
  }
});
