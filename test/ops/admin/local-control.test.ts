/**
 * LocalControl: the NodeControl of a single-process node — sessions,
 * disconnect, limits, components, readiness, heap snapshot and the live tail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { LocalControl } from '../../../src/ops/admin/local-control.js';
import { closed, connect, startTestNode, tailInto, tempDir, waitFor } from '../../helpers.js';

const TENANTS = `
tenants:
  acme: { networks: [127.0.0.1] }
  globex: { networks: [127.0.0.2] }
`;

function frame(host: string, msg: string): string {
  const line = `<13>1 2026-11-27T10:00:00Z ${host} app - - - ${msg}`;
  return `${Buffer.byteLength(line)} ${line}`;
}

test('local control: tail filters by tenant, host and session; sessions list and disconnect', async (t) => {
  const { node, tcpPort } = await startTestNode(t, TENANTS);
  const control = new LocalControl(node);
  const acmeLines: string[] = [];
  const hostLines: string[] = [];
  const stopAcme = await control.tail({ tenant: 'acme' }, tailInto(acmeLines));
  const stopHost = await control.tail({ host: 'db-02' }, tailInto(hostLines));

  const acme = await connect(tcpPort, '127.0.0.1');
  const globex = await connect(tcpPort, '127.0.0.2');
  acme.write(frame('web-01', 'a1') + frame('db-02', 'a2'));
  globex.write(frame('db-02', 'g1'));
  await waitFor('both tails see their records', () => acmeLines.length === 2 && hostLines.length === 2);
  assert.deepEqual(acmeLines.map((l) => (JSON.parse(l) as { msg: string }).msg), ['a1', 'a2']);
  assert.deepEqual(hostLines.map((l) => (JSON.parse(l) as { msg: string }).msg).sort(), ['a2', 'g1']);

  const sessions = await control.sessions();
  assert.equal(sessions.length, 2);
  const globexSession = sessions.find((s) => s.tenant === 'globex')!;
  const sessionLines: string[] = [];
  const stopSession = await control.tail({ session: globexSession.id }, tailInto(sessionLines));
  acme.write(frame('web-01', 'a3'));
  globex.write(frame('db-02', 'g2'));
  await waitFor('the session tail sees its record', () => sessionLines.length === 1 && acmeLines.length === 3);
  assert.equal((JSON.parse(sessionLines[0]!) as { msg: string }).msg, 'g2');

  stopAcme();
  stopHost();
  stopSession();
  acme.write(frame('web-01', 'a4'));
  await waitFor('a4 is accepted', async () => (await node.telemetry.value('sluice_tenant_accepted_records_total', { tenant: 'acme' })) === 4);
  assert.equal(acmeLines.length, 3, 'a stopped tail sees nothing more');

  assert.equal(await control.disconnect(globexSession.id), true);
  await closed(globex);
  await waitFor('the registry forgets it', async () => (await control.sessions()).length === 1);
  assert.equal(await control.disconnect(globexSession.id), false);
  acme.destroy();
});

test('local control: limits, components, readiness, restart of a source, heap snapshot', async (t) => {
  const { node } = await startTestNode(t, TENANTS);
  const control = new LocalControl(node);
  assert.deepEqual(await control.readiness(), { ready: true, detail: [] });

  await control.setTenantLimits('acme', { messagesPerSecond: 10, bytesPerSecond: 0, burstMs: 1000, maxConnections: 3 });
  assert.equal(node.pipeline.directory.tenants.get('acme')!.limiter.limits.messagesPerSecond, 10);
  await assert.rejects(control.setTenantLimits('nobody', { messagesPerSecond: 1, bytesPerSecond: 0, burstMs: 1000, maxConnections: 0 }), /no tenant nobody/);

  const components = await control.components();
  assert.ok(components.some((c) => c.name === 'source:syslog_tcp' && c.kind === 'source' && c.healthy));
  assert.ok(components.some((c) => c.name === 'sink:files' && c.kind === 'sink' && c.healthy));

  await control.controlComponent('source:syslog_tcp', 'stop');
  const stopped = await control.readiness();
  assert.equal(stopped.ready, false);
  assert.match(stopped.detail.join(';'), /source:syslog_tcp/);
  await control.controlComponent('source:syslog_tcp', 'start');
  assert.equal((await control.readiness()).ready, true);
  await control.controlComponent('source:http', 'restart');
  assert.equal((await control.readiness()).ready, true);
  await assert.rejects(control.controlComponent('sink:files', 'stop'), /only sources/);
  await assert.rejects(control.controlComponent('source:nope', 'stop'), /no component/);

  const dir = tempDir(t);
  const [file] = await control.heapSnapshot(path.join(dir, 'heap'));
  assert.ok(file !== undefined && existsSync(file) && statSync(file).size > 0);
});

test('local control: tenants past admin.tenant_series are counted as other; an acknowledged batch observes ack latency', async (t) => {
  const { node, tcpPort } = await startTestNode(t, `${TENANTS}admin: { tenant_series: 1 }\n`);
  const acme = await connect(tcpPort, '127.0.0.1');
  const globex = await connect(tcpPort, '127.0.0.2');
  acme.write(frame('web-01', 'a'));
  globex.write(frame('db-01', 'g1') + frame('db-01', 'g2'));
  await waitFor('three records accepted', async () => (await node.telemetry.value('sluice_source_accepted_records_total', { source: 'syslog_tcp' })) === 3);
  assert.equal(await node.telemetry.value('sluice_tenant_accepted_records_total', { tenant: 'acme' }), 1);
  assert.equal(await node.telemetry.value('sluice_tenant_accepted_records_total', { tenant: 'other' }), 2);
  assert.equal(await node.telemetry.value('sluice_tenant_accepted_records_total', { tenant: 'globex' }), 0, 'globex has no series of its own');
  acme.destroy();
  globex.destroy();

  const http = node.addresses().http!;
  const response = await fetch(`http://127.0.0.1:${http.port}/v1/ingest`, { method: 'POST', body: 'one line\n' });
  assert.equal(response.status, 200);
  const histogram = (await node.telemetry.registry.getSingleMetric('sluice_ack_latency_seconds')!.get()).values;
  const count = histogram.find((v) => (v as { metricName?: string }).metricName === 'sluice_ack_latency_seconds_count' && v.labels.source === 'http');
  assert.equal(count?.value, 1);
});
