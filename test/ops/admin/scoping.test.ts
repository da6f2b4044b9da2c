/**
 * The admin API's access rules: a tenant-scoped token sees and changes only
 * its own tenant (sessions, tail, metrics, limits); the whole-node token
 * everything; tokenless loopback callers may read but not tail or change.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { SessionView } from '../../../src/ops/control.js';
import type { LiveOverview } from '../../../src/ops/admin/overview.js';
import { closed, connect, tempDir, waitFor } from '../../helpers.js';
import { ACME_TOKEN, ADMIN_TOKEN, GLOBEX_TOKEN, TWO_TENANTS, call, frame, openTail, startAdminFixture } from './admin-helpers.js';

test('scoping: a tenant token sees only its tenant\'s sessions, records and metrics, and changes only its own', async (t) => {
  const { node, base, tcpPort } = await startAdminFixture(t, TWO_TENANTS);
  const acme = await connect(tcpPort, '127.0.0.1');
  const globex = await connect(tcpPort, '127.0.0.2');
  t.after(() => {
    acme.destroy();
    globex.destroy();
  });
  acme.write(frame('web-01', 'acme 1'));
  globex.write(frame('db-01', 'globex 1'));
  await waitFor('both sessions are listed with a record', async () => {
    const { body } = await call(base, '/api/sessions', ADMIN_TOKEN);
    const sessions = (body as { sessions: SessionView[] }).sessions;
    return sessions.length === 2 && sessions.every((s) => s.records === 1);
  });
  const all = ((await call(base, '/api/sessions', ADMIN_TOKEN)).body as { sessions: SessionView[] }).sessions;
  const acmeSession = all.find((s) => s.tenant === 'acme')!;
  const globexSession = all.find((s) => s.tenant === 'globex')!;

  // Sessions: only its own; another tenant's reads as absent, and cannot be disconnected.
  const listed = (await call(base, '/api/sessions', ACME_TOKEN)).body as { total: number; sessions: SessionView[] };
  assert.deepEqual(listed.sessions.map((s) => s.id), [acmeSession.id]);
  assert.deepEqual(((await call(base, '/api/sessions?tenant=globex', ACME_TOKEN)).body as { sessions: SessionView[] }).sessions.map((s) => s.tenant), ['acme']);
  assert.equal((await call(base, `/api/sessions/${globexSession.id}`, ACME_TOKEN)).status, 404);
  assert.equal((await call(base, `/api/sessions/${acmeSession.id}`, ACME_TOKEN)).status, 200);
  assert.equal((await call(base, `/api/sessions/${globexSession.id}`, ACME_TOKEN, { method: 'DELETE' })).status, 404);

  // Tail: its own records only, whatever the filter asks.
  const own = await openTail(base, '', ACME_TOKEN);
  const ofGlobexSession = await openTail(base, `?session=${globexSession.id}`, ACME_TOKEN);
  const globexTail = await openTail(base, '?tenant=globex', ACME_TOKEN);
  const adminOfGlobex = await openTail(base, `?session=${globexSession.id}`, ADMIN_TOKEN);
  assert.equal(own.status, 200);
  assert.equal(ofGlobexSession.status, 200);
  assert.equal(globexTail.status, 403);
  t.after(() => {
    own.close();
    ofGlobexSession.close();
    adminOfGlobex.close();
  });
  globex.write(frame('db-01', 'globex 2'));
  acme.write(frame('web-01', 'acme 2'));
  await waitFor('the acme tail sees acme 2', () => own.lines.length >= 1);
  // The node's own tail of the globex session sees globex 2: the line went out to the tails.
  await waitFor('the admin tail sees globex 2', () => adminOfGlobex.lines.some((l) => (JSON.parse(l) as { msg: string }).msg === 'globex 2'));
  assert.deepEqual(own.lines.map((l) => (JSON.parse(l) as { msg: string; tenant: string }).tenant), ['acme']);
  assert.deepEqual(ofGlobexSession.lines, [], 'a scoped tail of another tenant\'s session sees nothing');
  for (const tail of [own, ofGlobexSession, adminOfGlobex]) assert.equal(tail.failure(), null, 'every tail is still open');
  // The globex session was not disconnected: it still delivers.
  assert.equal(globex.destroyed, false);

  // Metrics: only series labelled with its tenant.
  const metrics = await call(base, '/metrics', ACME_TOKEN);
  assert.equal(metrics.status, 200);
  assert.match(metrics.text, /^sluice_tenant_accepted_records_total\{tenant="acme"\} 2$/m);
  assert.doesNotMatch(metrics.text, /globex/);
  for (const line of metrics.text.split('\n').filter((l) => l !== '' && !l.startsWith('#'))) assert.match(line, /tenant="acme"/);
  const whole = await call(base, '/metrics', ADMIN_TOKEN);
  assert.match(whole.text, /sluice_tenant_accepted_records_total\{tenant="globex"\} 2/);

  // The live overview: its tenant, its sessions, no sinks or node internals.
  const overview = (await call(base, '/api/overview', ACME_TOKEN)).body as LiveOverview;
  assert.equal(overview.scope, 'acme');
  assert.deepEqual(overview.tenants.map((r) => r.tenant), ['acme']);
  assert.deepEqual(overview.sessions.map((s) => s.tenant), ['acme']);
  assert.deepEqual(overview.sinks, []);
  assert.deepEqual(overview.memory, {});

  // Limits: its own only.
  const globexLimits = await call(base, '/api/tenants/globex/limits', ACME_TOKEN, { method: 'PUT', body: { messages_per_second: 1 } });
  assert.equal(globexLimits.status, 403);
  assert.equal(node.pipeline.directory.tenants.get('globex')!.limiter.limits.messagesPerSecond, 0);
  const acmeLimits = await call(base, '/api/tenants/acme/limits', ACME_TOKEN, { method: 'PUT', body: { messages_per_second: 500, max_connections: 4 } });
  assert.equal(acmeLimits.status, 200);
  assert.deepEqual(node.pipeline.directory.tenants.get('acme')!.limiter.limits, { messagesPerSecond: 500, bytesPerSecond: 0, burstMs: 1000, maxConnections: 4 });
  assert.deepEqual(((await call(base, '/api/tenants', ACME_TOKEN)).body as { id: string }[]).map((r) => r.id), ['acme']);

  // Node-wide operations are not a tenant's.
  assert.equal((await call(base, '/api/components', ACME_TOKEN)).status, 403);
  assert.equal((await call(base, '/api/components/source:syslog_tcp/stop', ACME_TOKEN, { method: 'POST' })).status, 403);
  assert.equal((await call(base, '/api/heap-snapshot', ACME_TOKEN, { method: 'POST' })).status, 403);
  assert.equal((await node.components()).find((c) => c.name === 'source:syslog_tcp')?.health.healthy, true);

  // The other tenant's token (configured as a SHA-256) mirrors it.
  const globexView = (await call(base, '/api/sessions', GLOBEX_TOKEN)).body as { sessions: SessionView[] };
  assert.deepEqual(globexView.sessions.map((s) => s.id), [globexSession.id]);

  // Its own session it may close.
  assert.equal((await call(base, `/api/sessions/${acmeSession.id}`, ACME_TOKEN, { method: 'DELETE' })).status, 202);
  await closed(acme);
  assert.equal(globex.destroyed, false);
});

test('scoping: tokenless loopback callers read but neither tail nor change; unknown tokens are refused', async (t) => {
  const { base, node } = await startAdminFixture(t, TWO_TENANTS);
  assert.equal((await call(base, '/healthz', null)).status, 200);
  assert.equal((await call(base, '/readyz', null)).status, 200);
  assert.equal((await call(base, '/metrics', null)).status, 200);
  assert.equal((await call(base, '/api/sessions', null)).status, 200);
  assert.equal((await call(base, '/api/overview', null)).status, 200);
  assert.equal((await call(base, '/', null)).status, 200);
  const tail = await openTail(base, '?tenant=acme', null);
  assert.equal(tail.status, 401);
  assert.equal((await call(base, '/api/tenants/acme/limits', null, { method: 'PUT', body: { messages_per_second: 1 } })).status, 401);
  assert.equal((await call(base, '/api/sessions/x', null, { method: 'DELETE' })).status, 401);
  assert.equal((await call(base, '/api/components', null)).status, 401);
  assert.equal(node.pipeline.directory.tenants.get('acme')!.limiter.limits.messagesPerSecond, 0);

  const unknown = await call(base, '/api/sessions', 'not-a-token-of-this-node');
  assert.equal(unknown.status, 401);
  assert.equal((await call(base, '/metrics', 'not-a-token-of-this-node')).status, 401);

  // The whole-node token: components, and a listener stopped and started again shows in /readyz.
  const components = (await call(base, '/api/components', ADMIN_TOKEN)).body as { name: string }[];
  assert.ok(components.some((c) => c.name === 'sink:files'));
  assert.equal((await call(base, '/api/components/source:syslog_tcp/stop', ADMIN_TOKEN, { method: 'POST' })).status, 200);
  const unready = await call(base, '/readyz', null);
  assert.equal(unready.status, 503);
  assert.match(JSON.stringify(unready.body), /source:syslog_tcp/);
  assert.equal((await call(base, '/api/components/source:syslog_tcp/start', ADMIN_TOKEN, { method: 'POST' })).status, 200);
  assert.equal((await call(base, '/readyz', null)).status, 200);
  assert.equal((await call(base, '/api/components/sink:files/stop', ADMIN_TOKEN, { method: 'POST' })).status, 409);
  assert.equal((await call(base, '/api/tenants/acme/limits', ADMIN_TOKEN, { method: 'PUT', body: { messages_per_second: -1 } })).status, 400);
  assert.equal((await call(base, '/api/tenants/acme/limits', ADMIN_TOKEN, { method: 'PUT', body: { rate: 1 } })).status, 400);
  assert.equal((await call(base, '/api/tenants/nobody/limits', ADMIN_TOKEN, { method: 'PUT', body: {} })).status, 404);
});

test('scoping: with open_loopback_reads off, reading needs a token too', async (t) => {
  const { base } = await startAdminFixture(t, `${TWO_TENANTS}  open_loopback_reads: false\n`);
  assert.equal((await call(base, '/metrics', null)).status, 401);
  assert.equal((await call(base, '/api/sessions', null)).status, 401);
  assert.equal((await call(base, '/healthz', null)).status, 200, 'health stays open for probes');
  assert.equal((await call(base, '/metrics', ADMIN_TOKEN)).status, 200);
});

test('scoping: with no token configured the node writes one (mode 0600) and keeps it across restarts', async (t) => {
  const dir = tempDir(t);
  const first = await startAdminFixture(t, '', dir);
  const file = first.server.tokenFile!;
  assert.equal(file, path.resolve(dir, 'admin-token'));
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const token = readFileSync(file, 'utf8').trim();
  assert.ok(token.length >= 32);
  assert.equal((await call(first.base, '/api/components', token)).status, 200);
  await first.server.close();
  await first.node.stop();
  const second = await startAdminFixture(t, '', dir);
  assert.equal(readFileSync(second.server.tokenFile!, 'utf8').trim(), token);
  assert.equal((await call(second.base, '/api/components', token)).status, 200);
});

test('scoping: two Authorization headers are refused as ambiguous (400), whichever comes first, as syslog refuses two tokens', async (t) => {
  const { base } = await startAdminFixture(t, TWO_TENANTS);
  const statusWith = (first: string, second: string) => new Promise<number>((resolve, reject) => {
    // Raw header pairs: both lines are sent (Node's parsed `headers` would keep only the first on the server).
    const req = http.request(`${base}/api/tenants/globex/limits`, {
      method: 'PUT', headers: ['authorization', `Bearer ${first}`, 'authorization', `Bearer ${second}`, 'content-type', 'application/json'],
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ messages_per_second: 1 }));
  });
  for (const [first, second] of [[GLOBEX_TOKEN, ACME_TOKEN], [ACME_TOKEN, GLOBEX_TOKEN], [ADMIN_TOKEN, ADMIN_TOKEN]]) {
    assert.equal(await statusWith(first!, second!), 400);
  }
  const tenants = (await call(base, '/api/tenants', ADMIN_TOKEN)).body as { id: string; limits: { messages_per_second: number } }[];
  assert.equal(tenants.find((x) => x.id === 'globex')!.limits.messages_per_second, 0, 'nothing changed');
});
