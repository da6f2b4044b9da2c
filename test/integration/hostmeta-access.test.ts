/**
 * The host metadata API of a running node, as an attacker and as the node
 * itself use it. Tenant A is told by network, tenant B by token (issue 17's
 * setup): neither a caller without a token, nor B's agents' token, nor B's
 * scoped admin token can change what A's records carry, and an unknown
 * tenant is never created; the node still registers hosts and enriches
 * records, in one process (its in-process client), with worker processes
 * (over their IPC channel to the primary), and against a service
 * elsewhere (the credential copied to `hostmeta.client.token_file`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { hostKey } from '../../src/core/identity.js';
import { ADMIN_TOKEN_FILE, readToken } from '../../src/core/access-tokens.js';
import { DEFAULT_HOSTMETA_SERVICE_CONFIG } from '../../src/services/hostmeta/config.js';
import { startHostmetaService } from '../../src/services/hostmeta/server.js';
import { SluiceNode } from '../../src/ops/node.js';
import { Primary } from '../../src/ops/workers/primary.js';
import { loadConfigFile } from '../../src/ops/config/load.js';
import { Telemetry } from '../../src/telemetry/telemetry.js';
import { closed, connect, memoryLogger, readTenantRecords, startTestNode, tempDir, testConfig, waitFor } from '../helpers.js';

type Cleanup = { after(fn: () => void | Promise<void>): void };

const ADMIN_TOKEN = 'node-admin-token-0123456789abcdef';
const B_ADMIN_TOKEN = 'tenantb-admin-token-0123456789abcdef';
const B_INGEST_TOKEN = 'tenantb-ingest-token-0123456789abcdef';

const TWO_TENANTS = `
tenants:
  tenanta: { networks: [127.0.0.1] }
  tenantb: { tokens: [${B_INGEST_TOKEN}] }
admin:
  tokens:
    - { token: ${ADMIN_TOKEN} }
    - { token: ${B_ADMIN_TOKEN}, tenant: tenantb }
hostmeta:
  client: { lookup_timeout: 10s }
`;

const frame = (msg: string): string => `${Buffer.byteLength(msg)} ${msg}`;
const tokenSd = (token: string): string => `[sluice@32473 token="${token}"]`;

async function call(base: string, method: 'GET' | 'PUT', route: string, token: string | null, body?: unknown): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await request(`${base}${route}`, { method, headers, body: body === undefined ? null : JSON.stringify(body) });
  const text = await res.body.text();
  return { status: res.statusCode, body: text === '' ? null : JSON.parse(text) };
}

/** Send `count` records from `hostname` over syslog TCP from 127.0.0.1 (or `from`), prefixed by `sd` (a token element). */
async function send(tcpPort: number, hostname: string, sd: string, count: number, from = '127.0.0.1'): Promise<void> {
  const socket = await connect(tcpPort, from);
  let data = '';
  for (let i = 0; i < count; i++) data += frame(`<13>1 - ${hostname} app - - ${sd} ${hostname} record ${i}`);
  socket.end(data);
  await closed(socket);
}

test('hostmeta on a node: no token, B\'s agents\' token or B\'s scoped admin token cannot change what tenant A\'s records carry', async (t) => {
  const { node, logs, tcpPort } = await startTestNode(t, TWO_TENANTS);
  const base = `http://127.0.0.1:${node.addresses().hostmeta!.port}`;
  const aKey = hostKey('tenanta', 'ahost-fresh');
  const aItem = `/host_metadata/tenanta/${aKey}`;
  const poison = { labels: { owner: 'ATTACKER' } };

  // Poisoning a host of A before it ever connects (host keys are predictable).
  assert.equal((await call(base, 'PUT', aItem, null, poison)).status, 401, 'no token');
  assert.equal((await call(base, 'PUT', aItem, B_INGEST_TOKEN, poison)).status, 401, 'an agent\'s token opens nothing here');
  assert.equal((await call(base, 'PUT', aItem, B_ADMIN_TOKEN, poison)).status, 403, 'B\'s operators reach B only');
  assert.equal((await call(base, 'GET', aItem, B_ADMIN_TOKEN)).status, 403, 'nor read A');
  assert.equal((await call(base, 'GET', '/host_metadata/tenanta', B_ADMIN_TOKEN)).status, 403, 'nor list A');
  // Growing the database under a tenant that does not exist.
  const fake = `/host_metadata/fake123/${'0'.repeat(40)}`;
  assert.equal((await call(base, 'PUT', fake, null, poison)).status, 401);
  assert.equal((await call(base, 'PUT', fake, B_ADMIN_TOKEN, poison)).status, 403);
  assert.equal((await call(base, 'PUT', fake, ADMIN_TOKEN, poison)).status, 404, 'not even the admin token creates a tenant');
  assert.equal(await node.telemetry.value('sluice_hostmeta_refused_requests_total'), 8, 'every refusal counted');

  // B's operators may label B's own hosts, and B's records carry that.
  const bKey = hostKey('tenantb', 'bhost');
  assert.equal((await call(base, 'PUT', `/host_metadata/tenantb/${bKey}`, B_ADMIN_TOKEN, { labels: { owner: 'b-ops' } })).status, 204);

  await send(tcpPort, 'ahost-fresh', '-', 5);
  await send(tcpPort, 'bhost', tokenSd(B_INGEST_TOKEN), 5, '127.0.0.2');
  await waitFor('records of both tenants', () => readTenantRecords(logs, 'tenanta').length === 5 && readTenantRecords(logs, 'tenantb').length === 5);
  for (const record of readTenantRecords(logs, 'tenanta')) {
    assert.equal(record.host, aKey);
    assert.ok(!JSON.stringify(record).includes('ATTACKER'), `A's record is clean: ${JSON.stringify(record)}`);
  }
  for (const record of readTenantRecords(logs, 'tenantb')) assert.deepEqual((record.meta as { labels?: unknown } | undefined)?.labels, { owner: 'b-ops' });

  // The node itself still registers A's host (its own client), and A's document holds no attacker's field.
  const registered = await waitFor('A\'s host registered', async () => {
    const got = await call(base, 'GET', aItem, ADMIN_TOKEN);
    return got.status === 200 ? got.body as Record<string, unknown> : undefined;
  });
  assert.equal(registered.hostname, 'ahost-fresh');
  assert.equal(registered.protocol, 'syslog_tcp');
  assert.equal(registered.labels, undefined);
});

test('hostmeta with worker processes: the workers reach the primary\'s service over their IPC channel and enrich records; callers without a token are refused', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t);
  const { logger } = memoryLogger();
  const primary = new Primary(testConfig(dir, 'workers: 1\nhostmeta: { client: { lookup_timeout: 10s } }'), { configPath: null, logger });
  t.after(() => primary.stop(Date.now() + 5000).then(() => undefined));
  await primary.start();
  const service = primary.hostmetaService!;
  const worker = primary.readyWorkers()[0]!;
  const tcpPort = worker.addresses!.syslogTcp!.port;
  // Zero configuration: the operator's token is the one the node generated; the service's own client credential is another.
  const adminToken = readToken(path.join(dir, ADMIN_TOKEN_FILE));
  assert.notEqual(readFileSync(service.tokenFile, 'utf8').trim(), adminToken, 'the service\'s client credential is not the admin token');

  const key = hostKey('default', 'web-1');
  const item = `/host_metadata/default/${key}`;
  assert.equal((await call(service.url, 'PUT', item, null, { labels: { owner: 'ATTACKER' } })).status, 401);
  assert.equal((await call(service.url, 'PUT', item, adminToken, { labels: { owner: 'ops' } })).status, 204);
  await send(tcpPort, 'web-1', '-', 3);
  await send(tcpPort, 'new-host', '-', 1);
  const logs = path.join(dir, 'logs');
  await waitFor('records written', () => readTenantRecords(logs, 'default').length === 4, 30_000);
  for (const record of readTenantRecords(logs, 'default').filter((r) => r.hostname === 'web-1')) {
    assert.deepEqual((record.meta as { labels?: unknown } | undefined)?.labels, { owner: 'ops' }, 'looked up through the primary');
  }
  const registered = await waitFor('the new host registered by the worker', async () => {
    const got = await call(service.url, 'GET', `/host_metadata/default/${hostKey('default', 'new-host')}`, adminToken);
    return got.status === 200 ? got.body as Record<string, unknown> : undefined;
  }, 30_000);
  assert.equal(registered.hostname, 'new-host');
  assert.equal(await primary.telemetry.value('sluice_hostmeta_refused_requests_total', { error: 'unauthorized' }), 1, 'only the test\'s tokenless call was refused');
});

async function startRemoteService(t: Cleanup) {
  const dataDir = tempDir(t);
  const service = await startHostmetaService({ ...DEFAULT_HOSTMETA_SERVICE_CONFIG, port: 0, dataDir },
    { tenants: ['default'], tokens: [] }, new Telemetry(memoryLogger().logger));
  t.after(() => service.close());
  return { service, adminToken: readToken(path.join(dataDir, ADMIN_TOKEN_FILE)) };
}

test('hostmeta elsewhere: a node enriches with the credential copied to token_file; without one it does not start; with a wrong one it is denied and counted', async (t) => {
  const { service, adminToken } = await startRemoteService(t);
  const key = hostKey('default', 'web-1');
  assert.equal((await call(service.url, 'PUT', `/host_metadata/default/${key}`, adminToken, { labels: { owner: 'ops' } })).status, 204);

  const copy = path.join(tempDir(t), 'hostmeta-token');
  writeFileSync(copy, readFileSync(service.tokenFile));
  const remote = (tokenFile: string) => `hostmeta:\n  service: { enabled: false }\n  client: { url: "${service.url}", token_file: ${JSON.stringify(tokenFile)}, lookup_timeout: 10s }`;
  const { node, logs, tcpPort } = await startTestNode(t, remote(copy));
  await send(tcpPort, 'web-1', '-', 2);
  await waitFor('records', () => readTenantRecords(logs, 'default').length === 2);
  for (const record of readTenantRecords(logs, 'default')) assert.deepEqual((record.meta as { labels?: unknown }).labels, { owner: 'ops' });
  assert.equal(await node.telemetry.value('sluice_hostmeta_client_requests_total', { outcome: 'denied' }), 0);

  const missing = new SluiceNode(testConfig(tempDir(t), remote(path.join(tempDir(t), 'no-such-file'))), memoryLogger().logger);
  t.after(() => missing.stop().then(() => undefined));
  await assert.rejects(missing.start(), /hostmeta\.client: no token to send to the service .*no-such-file.*hostmeta\.client\.token_file/);

  const wrong = path.join(tempDir(t), 'wrong-token');
  writeFileSync(wrong, 'not-the-services-credential\n');
  const denied = await startTestNode(t, remote(wrong));
  await send(denied.tcpPort, 'web-1', '-', 2);
  await waitFor('records, without metadata', () => readTenantRecords(denied.logs, 'default').length === 2);
  assert.ok(readTenantRecords(denied.logs, 'default').every((r) => r.meta === undefined));
  assert.ok(await denied.node.telemetry.value('sluice_hostmeta_client_requests_total', { outcome: 'denied' }) > 0, 'the refusals are counted as denied');
});

test('hostmeta with worker processes: a reload that adds a tenant and its scoped token serves that tenant\'s hosts at once', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'sluice.yaml');
  const yaml = (tenants: string[], tokens: string[]) => [
    `data_dir: ${JSON.stringify(dir)}`, 'workers: 1', 'log: { level: warn }',
    'sources: { syslog_udp: { enabled: false }, syslog_tcp: { port: 0 }, syslog_tls: { port: 0 }, relp: { enabled: false }, http: { enabled: false } }',
    'tenants:', ...tenants, 'admin:', '  port: 0', '  tokens:', ...tokens,
    'hostmeta: { service: { port: 0 }, client: { lookup_timeout: 10s } }',
  ].join('\n');
  const acme = ['  acme: { networks: [127.0.0.1] }'];
  const adminToken = [`    - { token: ${ADMIN_TOKEN} }`];
  writeFileSync(file, yaml(acme, adminToken));
  const { logger } = memoryLogger();
  const primary = new Primary(loadConfigFile(file), { configPath: file, logger });
  t.after(() => primary.stop(Date.now() + 5000).then(() => undefined));
  await primary.start();
  const base = primary.hostmetaService!.url;
  const key = hostKey('globex', 'db-1');
  const item = `/host_metadata/globex/${key}`;
  assert.equal((await call(base, 'PUT', item, ADMIN_TOKEN, { labels: { owner: 'globex-ops' } })).status, 404, 'no tenant globex yet');

  writeFileSync(file, yaml([...acme, '  globex: { networks: [127.0.0.2] }'], [...adminToken, `    - { token: ${B_ADMIN_TOKEN}, tenant: globex }`]));
  const outcome = await primary.reload();
  assert.deepEqual(outcome.problems, []);
  await outcome.applied;
  assert.equal((await call(base, 'PUT', item, B_ADMIN_TOKEN, { labels: { owner: 'globex-ops' } })).status, 204, 'the new scoped token, on the new tenant');
  assert.equal((await call(base, 'PUT', `/host_metadata/acme/${hostKey('acme', 'web-1')}`, B_ADMIN_TOKEN, { hostname: 'x' })).status, 403);
  await send(primary.readyWorkers()[0]!.addresses!.syslogTcp!.port, 'db-1', '-', 2, '127.0.0.2');
  const logs = path.join(dir, 'logs');
  await waitFor('globex records', () => readTenantRecords(logs, 'globex').length === 2, 30_000);
  for (const record of readTenantRecords(logs, 'globex')) assert.deepEqual((record.meta as { labels?: unknown }).labels, { owner: 'globex-ops' });
});
