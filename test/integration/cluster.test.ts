/**
 * Cluster mode end to end: three real `sluice start` nodes (a primary and one
 * worker each) coordinated through the shared NATS server (buckets with a
 * prefix of this run's own, deleted afterwards): they elect one leader and
 * see each other; a host that reconnects through another node takes its
 * session over (the old node closes its connection, the lock follows);
 * `sluice cluster status` shows it; kill -9 of the leader → a new leader
 * within 10 s, and the dead node leaves the member list within its TTL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { hostKey } from '../../src/core/identity.js';
import type { ClusterStatus } from '../../src/services/cluster/member.js';
import type { HostLockRecord } from '../../src/services/cluster/host-locks.js';
import { closed, connect, fetchClusterStatus, jsonLines, launchChromium, requireProgram, ROOT, SHARED_NATS_URL, tempDir, testClusterBuckets, waitFor } from '../helpers.js';

const CLI = path.join(ROOT, 'dist', 'src', 'ops', 'cli.js');
const noNats = requireProgram('nats-server', 'Debian package nats-server, run as `nats-server -js -a 127.0.0.1 -p 4222`');

interface ClusterNode {
  id: string;
  child: ChildProcess;
  lines: Record<string, unknown>[];
  admin: string;
  tcpPort: number;
}

async function startNode(t: { after(fn: () => void): void }, dir: string, id: string, bucketPrefix: string): Promise<ClusterNode> {
  const config = path.join(dir, `${id}.yaml`);
  writeFileSync(config, [
    `data_dir: ${JSON.stringify(path.join(dir, id))}`,
    'workers: 1',
    'sources: { syslog_udp: { enabled: false }, syslog_tcp: { port: 0 }, relp: { enabled: false }, http: { enabled: false } }',
    'hostmeta: { service: { port: 0 } }',
    'admin: { port: 0 }',
    `cluster: { nats: [${JSON.stringify(SHARED_NATS_URL)}], node_id: ${id}, bucket_prefix: ${bucketPrefix} }`,
  ].join('\n'));
  const child = spawn(process.execPath, [CLI, 'start', '-c', config], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  t.after(() => { child.kill('SIGKILL'); });
  const lines = jsonLines(child.stderr!);
  await waitFor(`${id} ready`, () => lines.some((l) => l.code === 'SLU0003I' && l.workers === 1), 30_000);
  const admin = String(lines.find((l) => l.code === 'SLU0700I')!.url);
  const tcpPort = Number(lines.find((l) => l.code === 'SLU0002I' && l.source === 'syslog_tcp')!.port);
  return { id, child, lines, admin, tcpPort };
}

const clusterStatus = (node: ClusterNode) => fetchClusterStatus(node.admin);

test('cluster: three nodes elect one leader; a host that moves takes its session and lock along; kill -9 the leader → a new one within 10 s',
  { skip: noNats, timeout: 120_000 }, async (t) => {
    const dir = tempDir(t);
    const { bucketPrefix, nc } = await testClusterBuckets(t);
    const nodes = await Promise.all(['n1', 'n2', 'n3'].map((id) => startNode(t, dir, id, bucketPrefix)));

    // Every node sees all three and the same single leader.
    const agreed = await waitFor('three members and one leader, seen alike by all', async () => {
      const statuses = await Promise.all(nodes.map(clusterStatus));
      if (statuses.some((s) => s === null || s.members.length !== 3 || s.leader === null)) return false;
      const leaders = new Set(statuses.map((s) => s!.leader!.id));
      if (leaders.size !== 1 || statuses.filter((s) => s!.leading).length !== 1) return false;
      return statuses as ClusterStatus[];
    }, 30_000);
    const leaderId = agreed[0]!.leader!.id;
    assert.deepEqual(agreed[0]!.members.map((m) => m.id), ['n1', 'n2', 'n3']);
    for (const m of agreed[0]!.members) assert.match(m.admin ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);

    // The dashboard of n1 shows the cluster: three members, the leader marked, links to the others' dashboards.
    const browser = await launchChromium();
    if (typeof browser !== 'string') {
      try {
        const page = await browser.newPage();
        await page.goto(nodes[0]!.admin);
        await page.waitForSelector('#cluster:not([hidden]) #cluster-members tbody tr:nth-child(3)', { timeout: 15_000 });
        const rows = await page.$$eval('#cluster-members tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
        assert.deepEqual(rows.map((r) => [r[0], r[1]]), ['n1', 'n2', 'n3'].map((id) => [id, id === leaderId ? 'leader' : 'member']));
        assert.equal(rows[0]![8], 'this node');
        assert.match(rows[1]![8] ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
        await page.screenshot({ path: path.join(dir, 'cluster-dashboard.png'), fullPage: true });
      } finally {
        await browser.close();
      }
    }

    // `sluice cluster status` prints the members and marks the leader; run where an earlier node left its
    // token in ./data (as `npm start` does in a clone), which a loopback read must not send.
    mkdirSync(path.join(dir, 'data'), { recursive: true });
    writeFileSync(path.join(dir, 'data', 'admin-token'), 'a-token-of-an-earlier-node\n', { mode: 0o600 });
    const printed = spawnSync(process.execPath, [CLI, 'cluster', 'status', '--url', nodes[0]!.admin], { encoding: 'utf8', cwd: dir });
    assert.equal(printed.status, 0, printed.stderr);
    assert.match(printed.stdout, /cluster of 3 nodes seen from n1/);
    assert.match(printed.stdout, new RegExp(`^${leaderId}\\s+leader\\s`, 'm'));
    assert.equal(printed.stdout.split('\n').filter((l) => /^n\d\s+member\s/.test(l)).length, 2);

    // Host "mover" connects to n1: n1 owns its lock.
    const locks = await (await nc.jetstream()).views.kv(`${bucketPrefix}_host_locks`, { bindOnly: true });
    const key = hostKey('default', 'mover');
    const lockNode = async () => {
      const entry = await locks.get(key);
      return entry?.operation === 'PUT' ? (JSON.parse(entry.string()) as HostLockRecord).node : null;
    };
    const first = await connect(nodes[0]!.tcpPort);
    const firstClosed = closed(first);
    first.write('<13>1 2026-11-27T20:00:00Z mover app - - - hello from n1\n');
    await waitFor('n1 to own the lock', async () => (await lockNode()) === 'n1', 10_000);

    // It reconnects through n2 (its old connection is still open, as a half-open one would be): n2 takes over, n1 closes the old one.
    const second = await connect(nodes[1]!.tcpPort);
    t.after(() => { second.destroy(); });
    second.write('<13>1 2026-11-27T20:00:01Z mover app - - - hello from n2\n');
    await waitFor('n2 to own the lock', async () => (await lockNode()) === 'n2', 10_000);
    await waitFor('n1 to close the stale session', async () => { await firstClosed; return true; }, 10_000);
    await waitFor('n1 to log the takeover', () => nodes[0]!.lines.some((l) => l.code === 'SLU0903I' && l.to === 'n2'), 10_000);
    assert.equal(second.destroyed, false);

    // kill -9 the leader: another node leads within 10 s.
    const leader = nodes.find((n) => n.id === leaderId)!;
    const survivors = nodes.filter((n) => n !== leader);
    const killedAt = Date.now();
    leader.child.kill('SIGKILL');
    const next = await waitFor('a new leader', async () => {
      const statuses = await Promise.all(survivors.map(clusterStatus));
      const leading = statuses.filter((s) => s?.leading === true);
      return leading.length === 1 ? leading[0] : false;
    }, 15_000);
    const took = Date.now() - killedAt;
    assert.notEqual(next!.nodeId, leaderId);
    t.diagnostic(`new leader ${next!.nodeId} ${took} ms after kill -9 of ${leaderId}`);

    // The dead node leaves the member list within its TTL (10 s by default), and the survivors agree on the new leader.
    await waitFor('the dead node to leave the member list', async () => {
      const statuses = await Promise.all(survivors.map(clusterStatus));
      return statuses.every((s) => s !== null && s.members.length === 2 && s.leader?.id === next!.nodeId && !s.members.some((m) => m.id === leaderId));
    }, 15_000);
  });
