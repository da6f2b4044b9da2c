/**
 * In cluster mode a tenant's limit is per node (docs/tenants.md): two nodes
 * of one cluster, the same tenant limited to RATE records/s, each sent more
 * than that over UDP. Each node stores about RATE/s, so the cluster takes
 * about twice the limit: nodes do not share a budget.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fetchClusterStatus, readTenantRecords, requireProgram, SHARED_NATS_URL, tempDir, testClusterBuckets, waitFor } from '../helpers.js';
import { startNode } from '../sluice-cli.js';

const noNats = requireProgram('nats-server', 'Debian package nats-server, run as `nats-server -js -a 127.0.0.1 -p 4222`');
const RATE = 50;
const RUN_MS = 5000;
const MEASURE_FROM_MS = 1500;

test('cluster limits: each node of a cluster holds a tenant to the whole limit (a limit is per node)', { skip: noNats, timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const { bucketPrefix } = await testClusterBuckets(t);
  const nodes = await Promise.all(['n1', 'n2'].map(async (id) => {
    const config = path.join(dir, `${id}.yaml`);
    writeFileSync(config, [
      `data_dir: ${JSON.stringify(path.join(dir, id))}`,
      'workers: 1',
      'sources: { syslog_udp: { port: 0 }, syslog_tcp: { enabled: false }, relp: { enabled: false }, http: { enabled: false } }',
      'hostmeta: { service: { port: 0 } }',
      'admin: { port: 0 }',
      `cluster: { nats: [${JSON.stringify(SHARED_NATS_URL)}], node_id: ${id}, bucket_prefix: ${bucketPrefix} }`,
      'tenants:',
      `  acme: { networks: [127.0.6.0/24], limits: { messages_per_second: ${RATE}, burst: 1s } }`,
    ].join('\n'));
    const node = startNode(config, dir);
    t.after(() => { node.child.kill('SIGKILL'); });
    await waitFor(`${id} ready`, () => node.lines.some((l) => l.code === 'SLU0003I' && l.workers === 1), 30_000);
    const admin = String(node.lines.find((l) => l.code === 'SLU0700I')!.url);
    const udpPort = Number(node.lines.find((l) => l.code === 'SLU0002I' && l.source === 'syslog_udp')!.port);
    return { id, node, admin, udpPort, logs: path.join(dir, id, 'logs') };
  }));
  await waitFor('one cluster of two', async () => (await Promise.all(nodes.map((n) => fetchClusterStatus(n.admin)))).every((s) => s?.members.length === 2), 30_000);

  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.6.1', () => resolve()));
  t.after(() => socket.close());
  const start = Date.now();
  let i = 0;
  const samples: { at: number; counts: number[] }[] = [];
  while (Date.now() - start < RUN_MS) {
    // 4 × the limit at each node.
    for (const n of nodes) for (let k = 0; k < 4; k++) socket.send(`<14>1 - h app - - - ${n.id} ${i++}`, n.udpPort, '127.0.0.1');
    if (samples.length === 0 || Date.now() - samples.at(-1)!.at >= 100) samples.push({ at: Date.now(), counts: nodes.map((n) => readTenantRecords(n.logs, 'acme').length) });
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const measured = samples.filter((s) => s.at - start >= MEASURE_FROM_MS);
  const first = measured[0]!;
  const last = measured.at(-1)!;
  const rates = nodes.map((_, k) => (last.counts[k]! - first.counts[k]!) / ((last.at - first.at) / 1000));
  t.diagnostic(`stored per node: ${rates.map((r) => r.toFixed(1)).join(', ')} records/s (limit ${RATE}/s each); the cluster ${(rates[0]! + rates[1]!).toFixed(1)}/s`);
  for (const rate of rates) assert.ok(Math.abs(rate - RATE) <= RATE * 0.1, `a node stored ${rate.toFixed(1)}/s against a limit of ${RATE}/s`);
  for (const n of nodes) n.node.child.kill('SIGTERM');
  await Promise.all(nodes.map((n) => n.node.exited));
});
