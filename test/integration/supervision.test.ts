/**
 * A node keeps its listeners, sinks and metadata client running with the same
 * supervisor the primary uses for workers: a listener that cannot come back
 * (its port taken), a sink that cannot start, or a metadata client whose every
 * request fails is retried with growing backoff while the rest of the node
 * serves, and returns once it can.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'undici';
import { ADMIN_TOKEN_FILE, readToken } from '../../src/core/access-tokens.js';
import { hostKey } from '../../src/core/identity.js';
import { connect, lateBoundPort, readTenantRecords, startTestNode, tempDir, waitFor } from '../helpers.js';

test('supervision: a listener whose port is taken is retried with backoff while the node serves, and comes back once it is free', { timeout: 60_000 }, async (t) => {
  const tcpPort = await lateBoundPort();
  const { node, logs, lines } = await startTestNode(t, [
    'supervision: { initial_backoff: 20ms, max_backoff: 200ms, crash_loop_after: 4 }',
    `sources: { syslog_udp: { enabled: false }, http: { enabled: false }, syslog_tcp: { port: ${tcpPort} } }`,
  ].join('\n'));
  await node.controlComponent('source:syslog_tcp', 'stop');
  // Someone else takes the port while the listener is down.
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen(tcpPort, '127.0.0.1', resolve));
  t.after(() => { squatter.close(); });
  await assert.rejects(node.controlComponent('source:syslog_tcp', 'start'), /did not start .*retrying with backoff/);

  const restarts = () => lines.filter((l) => l.code === 'SLU0802W' && l.component === 'source:syslog_tcp');
  await waitFor('six retries', () => restarts().length >= 6, 20_000);
  assert.deepEqual(restarts().slice(0, 6).map((l) => l.failures), [1, 2, 3, 4, 5, 6]);
  restarts().slice(0, 6).forEach((l, i) => {
    const cap = Math.min(200, 20 * 2 ** i);
    assert.ok(Number(l.delay_ms) >= cap / 2 && Number(l.delay_ms) <= cap, `retry ${i + 1}: ${String(l.delay_ms)} ms within [${cap / 2}, ${cap}]`);
  });
  assert.ok(lines.some((l) => l.code === 'SLU0803E' && l.component === 'source:syslog_tcp'), 'the crash loop is reported');
  const readiness = node.readiness();
  assert.equal(readiness.ready, false);
  assert.ok(readiness.detail.some((d) => d.startsWith('source:syslog_tcp: crash loop')), readiness.detail.join('; '));
  assert.equal(await node.telemetry.value('sluice_crash_loop', { component: 'source:syslog_tcp' }), 1);
  assert.ok(await node.telemetry.value('sluice_restarts_total', { component: 'source:syslog_tcp' }) >= 6);
  assert.ok(node.components().find((c) => c.name === 'source:relp')!.health.healthy, 'the other listeners serve on');

  await new Promise<void>((resolve) => squatter.close(() => resolve()));
  await waitFor('listening again', () => node.components().find((c) => c.name === 'source:syslog_tcp')!.health.healthy, 10_000);
  const socket = await connect(tcpPort);
  socket.end('<13>1 - host app - - - back\n');
  await waitFor('record written', () => readTenantRecords(logs, 'default').some((r) => r.msg === 'back'));
});

test('supervision: a sink that cannot start is retried with backoff while its records wait, then everything arrives in order', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  // The sink's folder cannot be created: a plain file stands where its parent should be.
  const blocker = path.join(dir, 'mnt');
  writeFileSync(blocker, 'not a folder');
  const logs = path.join(blocker, 'logs');
  const { node, lines, tcpPort } = await startTestNode(t, [
    'supervision: { initial_backoff: 20ms, max_backoff: 200ms }',
    'sources: { syslog_udp: { enabled: false } }',
    'sinks:',
    `  files: { type: file, path: ${logs} }`,
  ].join('\n'), dir);
  const sink = () => node.components().find((c) => c.name === 'sink:files')!;
  assert.equal(sink().health.healthy, false);
  assert.match(sink().health.detail ?? '', /not started .*retrying with backoff/);
  assert.equal(node.readiness().ready, false, 'not ready while a sink is down');

  // An agent sends meanwhile: its records are held and its session stops reading.
  const agent = await connect(tcpPort);
  agent.write(Array.from({ length: 50 }, (_, i) => `<13>1 - web-1 app - - - held ${i}\n`).join(''));
  await waitFor('retries logged', () => lines.filter((l) => l.code === 'SLU0802W' && l.component === 'sink:files').length >= 3);
  assert.ok(await node.telemetry.value('sluice_restarts_total', { component: 'sink:files' }) >= 3);
  await waitFor('the session read them', () => node.pipeline.sessions.views().some((s) => s.records === 50));
  await waitFor('the sink holds them', () => /; [1-9]\d* bytes queued/.test(sink().health.detail ?? ''));
  assert.equal(existsSync(logs), false, 'nothing written yet');

  // The folder can be made now: the next retry starts the sink and the held records go in, in order.
  rmSync(blocker);
  await waitFor('the sink started', () => sink().health.healthy, 10_000);
  agent.end('<13>1 - web-1 app - - - after\n');
  await waitFor('all 51 records written', () => readTenantRecords(logs, 'default').length === 51, 10_000);
  assert.deepEqual(readTenantRecords(logs, 'default').map((r) => r.msg), [...Array.from({ length: 50 }, (_, i) => `held ${i}`), 'after']);
  assert.equal(node.readiness().ready, true);
});

test('supervision: a metadata client whose every request fails is restarted with backoff; the node delivers meanwhile and enriches again once the service answers', { timeout: 60_000 }, async (t) => {
  const servicePort = await lateBoundPort();
  // The service that comes up later keeps its clients' credential in its data dir: this node was given a copy.
  const serviceDir = tempDir(t);
  writeFileSync(path.join(serviceDir, 'hostmeta-token'), 'the-later-services-credential\n');
  const { node, logs, lines, tcpPort } = await startTestNode(t, [
    'supervision: { initial_backoff: 20ms, max_backoff: 200ms }',
    'sources: { syslog_udp: { enabled: false } }',
    'hostmeta:',
    '  service: { enabled: false }',
    `  client: { url: "http://127.0.0.1:${servicePort}", token_file: ${JSON.stringify(path.join(serviceDir, 'hostmeta-token'))}, lookup_timeout: 50ms, restart_after: 300ms }`,
  ].join('\n'));
  const agent = await connect(tcpPort);
  let sent = 0;
  // A new host every 50 ms: each is a lookup, and each lookup fails while no service listens.
  const sender = setInterval(() => agent.write(`<13>1 - host-${sent} app - - - record ${sent++}\n`), 50);
  t.after(() => clearInterval(sender));
  const restarts = () => lines.filter((l) => l.code === 'SLU0802W' && l.component === 'client:hostmeta');
  await waitFor('the client restarted twice', () => restarts().length >= 2, 20_000);
  assert.match(String(restarts()[0]!.error), /every request to the metadata service failed/);
  assert.ok(await node.telemetry.value('sluice_restarts_total', { component: 'client:hostmeta' }) >= 2);
  await waitFor('records delivered without metadata meanwhile', () => readTenantRecords(logs, 'default').length >= 10);

  // The service comes up where the client points: lookups are answered again.
  const service = await startTestNode(t, `hostmeta:\n  service: { port: ${servicePort} }`, serviceDir);
  // Each new host is looked up and registered in one get-or-create batch (POST 200).
  const answered = () => node.telemetry.value('sluice_hostmeta_client_requests_total', { method: 'POST', outcome: 'ok' });
  await waitFor('lookups answered', async () => (await answered()) > 0, 20_000);
  clearInterval(sender);

  // Enriched again: a host the operator labels now is sent with its label.
  const authorization = `Bearer ${readToken(path.join(service.node.config.dataDir, ADMIN_TOKEN_FILE))}`;
  const labelled = await request(`http://127.0.0.1:${servicePort}/host_metadata/default/${hostKey('default', 'labelled-host')}`, {
    method: 'PUT', headers: { 'content-type': 'application/json', authorization }, body: JSON.stringify({ labels: { owner: 'back-again' } }),
  });
  await labelled.body.dump();
  assert.equal(labelled.statusCode, 204);
  agent.write('<13>1 - labelled-host app - - - enriched\n');
  const total = sent + 1;
  agent.end();
  await waitFor('every record delivered', () => readTenantRecords(logs, 'default').length === total, 10_000);
  const enriched = readTenantRecords(logs, 'default').find((r) => r.msg === 'enriched');
  assert.deepEqual((enriched?.meta as { labels?: unknown } | undefined)?.labels, { owner: 'back-again' }, 'the record carries the metadata the service answers');
});
