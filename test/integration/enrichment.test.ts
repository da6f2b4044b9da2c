/**
 * Host metadata end to end: hosts of several tenants send at once, and every
 * stored record carries its own host's metadata; hosts are registered as they
 * are seen; with the metadata service down, ingestion goes on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { request } from 'undici';
import { ADMIN_TOKEN_FILE, readToken } from '../../src/core/access-tokens.js';
import { hostKey } from '../../src/core/identity.js';
import { closed, connect, readTenantRecords, startTestNode, tempDir, waitFor } from '../helpers.js';

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
  assert.ok(readTenantRecords(logs, 'default').every((r) => r.meta === undefined));
  const lookups = await node.telemetry.value('sluice_hostmeta_cache_lookups_total');
  assert.ok(lookups > 0, 'lookups are counted');
});
