/**
 * Host metadata end to end: hosts of several tenants send at once, and every
 * stored record carries its own host's metadata; hosts are registered as they
 * are seen — 300 and 10,000 new hosts at once, every record with its `meta`;
 * with the metadata service down, ingestion goes on, each record saying why
 * it has no metadata, counted per tenant.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { request } from 'undici';
import { ADMIN_TOKEN_FILE, readToken } from '../../src/core/access-tokens.js';
import { hostKey } from '../../src/core/identity.js';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { SluiceNode } from '../../src/ops/node.js';
import { withDefaultUser } from '../../src/services/hostmeta/postgres-store.js';
import { closed, connect, POSTGRES_URL, readTenantRecords, requirePostgres, startTestNode, tempDir, waitFor } from '../helpers.js';

const postgresSkip = await requirePostgres(POSTGRES_URL);

const TENANTS = ['alpha', 'beta', 'gamma'];
const tenantsYaml = ['tenants:', ...TENANTS.flatMap((t, i) => [`  ${t}:`, `    networks: [127.0.${i + 1}.0/24]`])].join('\n');
const frame = (msg: string): string => `${Buffer.byteLength(msg)} ${msg}`;

test('enrichment: 500 hosts of 3 tenants send concurrently; every record carries its own host\'s metadata', async (t) => {
  // A generous lookup bound: this test is about every record getting its metadata, not about speed.
  const { node, logs, tcpPort } = await startTestNode(t, `${tenantsYaml}\nhostmeta:\n  service: { port: 0 }\n  client: { lookup_timeout: 10s }`);
  const hostmeta = node.addresses().hostmeta!;
  const base = `http://127.0.0.1:${hostmeta.port}`;
  // No admin token configured: the operator's is the one the node generated.
  const authorization = `Bearer ${readToken(path.join(node.config.dataDir, ADMIN_TOKEN_FILE))}`;
  const hosts = Array.from({ length: 500 }, (_, i) => {
    const tenantIndex = i % 3;
    const tenant = TENANTS[tenantIndex]!;
    const hostname = `host-${i}`;
    return { tenant, tenantIndex, hostname, key: hostKey(tenant, hostname), local: `127.0.${tenantIndex + 1}.${1 + (i % 250)}`, owner: `owner-of-${tenant}-${i}` };
  });
  // Metadata first, each host its own value.
  await Promise.all(hosts.map(async (h) => {
    const res = await request(`${base}/host_metadata/${h.tenant}/${h.key}`, {
      method: 'PUT', headers: { 'content-type': 'application/json', authorization }, body: JSON.stringify({ labels: { owner: h.owner } }),
    });
    await res.body.dump();
    assert.equal(res.statusCode, 204);
  }));
  const perHost = 10;
  const sockets = await Promise.all(hosts.map((h) => connect(tcpPort, h.local)));
  await Promise.all(sockets.map(async (socket, i) => {
    const h = hosts[i]!;
    let data = '';
    for (let n = 0; n < perHost; n++) data += frame(`<14>1 - ${h.hostname} app - - - record ${n} of ${h.hostname}`);
    socket.end(data);
    await closed(socket);
  }));
  const total = hosts.length * perHost;
  await waitFor('every record', () => TENANTS.reduce((sum, t) => sum + readTenantRecords(logs, t).length, 0) === total, 30_000);
  const byKey = new Map(hosts.map((h) => [h.key, h]));
  for (const tenant of TENANTS) {
    for (const rec of readTenantRecords(logs, tenant)) {
      const h = byKey.get(String(rec.host));
      assert.ok(h, `record of an unknown host ${String(rec.host)}`);
      assert.equal(h.tenant, tenant);
      assert.match(String(rec.msg), new RegExp(` of ${h.hostname}$`));
      const meta = rec.meta as { labels?: { owner?: string } } | undefined;
      assert.equal(meta?.labels?.owner, h.owner, `record of ${h.hostname}`);
    }
  }
  // Registration merged the collector's fields into the operator's document, never replacing it.
  const sample = hosts[7]!;
  const doc = await waitFor('registration', async () => {
    const res = await request(`${base}/host_metadata/${sample.tenant}/${sample.key}`, { headers: { authorization } });
    const body = await res.body.json() as Record<string, unknown>;
    return typeof body.last_seen === 'string' ? body : undefined;
  });
  assert.equal((doc.labels as { owner: string }).owner, sample.owner);
  assert.equal(doc.hostname, sample.hostname);
});

test('enrichment: a host never seen before is registered with hostname, first and last seen, address and protocol', async (t) => {
  const { node, tcpPort } = await startTestNode(t);
  const socket = await connect(tcpPort);
  socket.end(frame('<14>1 - brand-new-host app - - - hello'));
  await closed(socket);
  const key = hostKey('default', 'brand-new-host');
  const base = `http://127.0.0.1:${node.addresses().hostmeta!.port}`;
  const authorization = `Bearer ${readToken(path.join(node.config.dataDir, ADMIN_TOKEN_FILE))}`;
  const doc = await waitFor('registered', async () => {
    const res = await request(`${base}/host_metadata/default/${key}`, { headers: { authorization } });
    if (res.statusCode !== 200) {
      await res.body.dump();
      return undefined;
    }
    return await res.body.json() as Record<string, unknown>;
  });
  assert.equal(doc.hostname, 'brand-new-host');
  assert.equal(doc.source_address, '127.0.0.1');
  assert.equal(doc.protocol, 'syslog_tcp');
  assert.equal(typeof doc.first_seen, 'string');
  assert.equal(typeof doc.last_seen, 'string');
});

/** Records of `tenant` written so far, by host key. */
function recordsByHost(logs: string, tenant: string): Map<string, Record<string, unknown>[]> {
  const byHost = new Map<string, Record<string, unknown>[]>();
  for (const rec of readTenantRecords(logs, tenant)) {
    const host = String(rec.host);
    byHost.set(host, [...(byHost.get(host) ?? []), rec]);
  }
  return byHost;
}

/** Every record carries its host's registration (the document created from its first sighting), and no record says metadata is missing. */
function assertEveryRecordRegistered(byHost: Map<string, Record<string, unknown>[]>, hostnames: readonly string[]): void {
  for (const hostname of hostnames) {
    const records = byHost.get(hostKey('default', hostname)) ?? [];
    assert.ok(records.length > 0, `records of ${hostname}`);
    for (const rec of records) {
      const meta = rec.meta as Record<string, unknown> | undefined;
      assert.equal(meta?.hostname, hostname, `${hostname}: a record without its meta (${JSON.stringify(rec)})`);
      assert.equal(typeof meta?.first_seen, 'string');
      assert.equal(rec.meta_missing, undefined);
    }
  }
}

/** How many hosts of `tenant` the node's own metadata service holds, paged through its listing with the operator's token. */
async function registeredHosts(node: SluiceNode, tenant: string): Promise<number> {
  const base = `http://127.0.0.1:${node.addresses().hostmeta!.port}/host_metadata/${tenant}?limit=1000`;
  const authorization = `Bearer ${readToken(path.join(node.config.dataDir, ADMIN_TOKEN_FILE))}`;
  let count = 0;
  for (let cursor: string | null = null; ;) {
    const res = await request(cursor === null ? base : `${base}&cursor=${cursor}`, { headers: { authorization } });
    const page = await res.body.json() as { hosts: unknown[]; next_cursor: string | null };
    count += page.hosts.length;
    if (page.next_cursor === null) return count;
    cursor = page.next_cursor;
  }
}

// The wait for a new host's metadata is generous in these two tests: they are about every record getting its
// metadata, not about speed (the time to register a storm of hosts is benchmark W7's target).
const STORM_YAML = 'hostmeta:\n  service: { port: 0 }\n  client: { lookup_timeout: 30s }';

test('enrichment: 300 hosts never seen before connect at once, 5 messages each; every record carries its host\'s metadata', async (t) => {
  const { node, logs, tcpPort } = await startTestNode(t, STORM_YAML);
  const hostnames = await storm(tcpPort, 'storm', 5);
  await waitFor('every record', () => readTenantRecords(logs, 'default').length === 1500, 60_000);
  assertEveryRecordRegistered(recordsByHost(logs, 'default'), hostnames);
  assert.equal(await registeredHosts(node, 'default'), 300, 'every host registered');
  assert.equal(await node.telemetry.value('sluice_tenant_meta_missing_records_total'), 0);
});

test('enrichment: 10,000 hosts never seen before at once (20 connections of 500 hostnames, 2 messages each); every record carries its host\'s metadata', async (t) => {
  const { node, logs, tcpPort } = await startTestNode(t, STORM_YAML);
  const connections = 20;
  const perConnection = 500;
  const hostnames = Array.from({ length: connections * perConnection }, (_, i) => `fleet-${i}`);
  const sockets = await Promise.all(Array.from({ length: connections }, () => connect(tcpPort)));
  await Promise.all(sockets.map(async (socket, c) => {
    let data = '';
    for (let n = 0; n < 2; n++) {
      for (let h = 0; h < perConnection; h++) data += frame(`<14>1 - ${hostnames[c * perConnection + h]} app - - - message ${n}`);
    }
    socket.end(data);
    await closed(socket);
  }));
  await waitFor('every record', () => readTenantRecords(logs, 'default').length === hostnames.length * 2, 60_000);
  assertEveryRecordRegistered(recordsByHost(logs, 'default'), hostnames);
  assert.equal(await registeredHosts(node, 'default'), hostnames.length, 'every host registered');
  assert.equal(await node.telemetry.value('sluice_tenant_meta_missing_records_total'), 0);
});

/** 300 hosts connect at once, `perHost` messages each, from hostnames `prefix-<i>`. */
async function storm(tcpPort: number, prefix: string, perHost: number): Promise<string[]> {
  const hostnames = Array.from({ length: 300 }, (_, i) => `${prefix}-${i}`);
  const sockets = await Promise.all(hostnames.map(() => connect(tcpPort)));
  await Promise.all(sockets.map(async (socket, i) => {
    let data = '';
    for (let n = 0; n < perHost; n++) data += frame(`<14>1 - ${hostnames[i]} app - - - message ${n}`);
    socket.end(data);
    await closed(socket);
  }));
  return hostnames;
}

test('enrichment on PostgreSQL: 300 new hosts at once, every record with its meta; restarted, the known hosts\' records carry their stored documents', { skip: postgresSkip }, async (t) => {
  const schema = `enrichment_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: withDefaultUser(POSTGRES_URL) });
  await admin.connect();
  // Registered first, so it runs last: after the nodes are stopped.
  t.after(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  });
  const yaml = `hostmeta:\n  service: { port: 0, postgres_url: ${JSON.stringify(POSTGRES_URL)}, postgres_schema: ${schema} }\n  client: { lookup_timeout: 30s }`;
  const dir = tempDir(t);
  const first = await startTestNode(t, yaml, dir);
  const hostnames = await storm(first.tcpPort, 'pg-host', 3);
  await waitFor('every record', () => readTenantRecords(first.logs, 'default').length === 900, 60_000);
  assertEveryRecordRegistered(recordsByHost(first.logs, 'default'), hostnames);
  await first.node.stop();
  const { rows } = await admin.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".host_metadata WHERE tenant = 'default'`);
  assert.equal(Number(rows[0]!.n), 300, 'every host registered in PostgreSQL');
  // An operator labels a host while the node is down; the restarted node sees it on the host's first record.
  await admin.query(`UPDATE "${schema}".host_metadata SET metadata = (metadata::jsonb || '{"labels":{"owner":"ops"}}')::json WHERE metadata->>'hostname' = 'pg-host-7'`);

  const restartedAt = new Date().toISOString();
  const second = await startTestNode(t, yaml, dir);
  await storm(second.tcpPort, 'pg-host', 1);
  await waitFor('the restarted node\'s records', () => readTenantRecords(second.logs, 'default').length === 1200, 60_000);
  const after = readTenantRecords(second.logs, 'default').filter((r) => String(r.received) > restartedAt);
  assert.equal(after.length, 300);
  assert.ok(after.every((r) => typeof (r.meta as { first_seen?: unknown } | undefined)?.first_seen === 'string'), 'every known host\'s record with its meta');
  assert.deepEqual(after.filter((r) => (r.meta as { labels?: unknown }).labels !== undefined).map((r) => [r.hostname, (r.meta as { labels: unknown }).labels]),
    [['pg-host-7', { owner: 'ops' }]], 'the stored document, not a new registration');
  assert.equal(await second.node.telemetry.value('sluice_tenant_meta_missing_records_total'), 0);
});

test('enrichment: with the metadata service unreachable or silent, records still flow, without metadata, and it is counted', async (t) => {
  // A server that accepts and never answers: the worst case for a client.
  const silent = net.createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => silent.close());
  const silentPort = (silent.address() as net.AddressInfo).port;
  const tokenFile = path.join(tempDir(t), 'hostmeta-token');
  writeFileSync(tokenFile, 'a-copy-of-the-services-credential\n');
  const yaml = `hostmeta:\n  service: { enabled: false }\n  client: { url: "http://127.0.0.1:${silentPort}", token_file: ${JSON.stringify(tokenFile)}, lookup_timeout: 50ms }`;
  const { node, logs, tcpPort } = await startTestNode(t, yaml);
  const socket = await connect(tcpPort);
  let data = '';
  for (let i = 0; i < 200; i++) data += frame(`<14>1 - host-${i % 20} app - - - n${i}`);
  const started = Date.now();
  socket.end(data);
  await closed(socket);
  await waitFor('records', () => readTenantRecords(logs, 'default').length === 200);
  assert.ok(Date.now() - started < 5_000, 'a silent service delays a new host by lookup_timeout at most');
  const records = readTenantRecords(logs, 'default');
  assert.ok(records.every((r) => r.meta === undefined));
  assert.deepEqual([...new Set(records.map((r) => r.meta_missing))], ['timeout'], 'each record says its metadata did not come in time');
  assert.equal(await node.telemetry.value('sluice_tenant_meta_missing_records_total', { tenant: 'default', reason: 'timeout' }), 200);
  const lookups = await node.telemetry.value('sluice_hostmeta_cache_lookups_total');
  assert.ok(lookups > 0, 'lookups are counted');
});

test('enrichment: with the metadata service failing (connections cut), records go on marked unavailable, counted per tenant', async (t) => {
  const cut = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => cut.listen(0, '127.0.0.1', resolve));
  t.after(() => cut.close());
  const tokenFile = path.join(tempDir(t), 'hostmeta-token');
  writeFileSync(tokenFile, 'a-copy-of-the-services-credential\n');
  const yaml = `${tenantsYaml}\nhostmeta:\n  service: { enabled: false }\n  client: { url: "http://127.0.0.1:${(cut.address() as net.AddressInfo).port}", token_file: ${JSON.stringify(tokenFile)}, lookup_timeout: 30s }`;
  const { node, logs, tcpPort } = await startTestNode(t, yaml);
  for (const [index, tenant] of TENANTS.slice(0, 2).entries()) {
    const socket = await connect(tcpPort, `127.0.${index + 1}.9`);
    let data = '';
    for (let i = 0; i < 50; i++) data += frame(`<14>1 - ${tenant}-host-${i % 5} app - - - n${i}`);
    socket.end(data);
    await closed(socket);
  }
  await waitFor('records', () => readTenantRecords(logs, 'alpha').length === 50 && readTenantRecords(logs, 'beta').length === 50);
  for (const tenant of ['alpha', 'beta']) {
    const records = readTenantRecords(logs, tenant);
    assert.deepEqual([...new Set(records.map((r) => `${String(r.meta)} ${String(r.meta_missing)}`))], ['undefined unavailable'], tenant);
    assert.equal(await node.telemetry.value('sluice_tenant_meta_missing_records_total', { tenant, reason: 'unavailable' }), 50, tenant);
  }
});
