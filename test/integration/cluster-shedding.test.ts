/**
 * Load shedding across a cluster, end to end: six RELP agents (one rsyslog,
 * six omrelp actions under hostnames of their own) connect through HAProxy
 * (leastconn) while only node A is up, so A holds all six. Node B starts and
 * joins; A is over its fair share, asks agents to reconnect (RELP
 * serverclose), HAProxy places them on B, and the two end with three each —
 * with every message of every agent delivered (at-least-once: duplicates
 * counted, none lost).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fetchClusterStatus, jsonLines, lateBoundPort, requireProgram, ROOT, SHARED_NATS_URL, tempDir, testClusterBuckets, waitFor } from '../helpers.js';
import { deliveredByHost, missingAndDuplicates, rsyslogRelayMissing, startRsyslogRelay } from '../rsyslog-relay.js';

const CLI = path.join(ROOT, 'dist', 'src', 'ops', 'cli.js');
const AGENTS = 6;
const TOTAL = 6000;
const skip = requireProgram('nats-server', 'Debian package nats-server, run as `nats-server -js -a 127.0.0.1 -p 4222`')
  || requireProgram('haproxy', 'Debian package haproxy')
  || rsyslogRelayMissing;

interface Node { id: string; child: ChildProcess; lines: Record<string, unknown>[]; relpPort: number; adminPort: number; logs: string }

async function nodePorts(): Promise<{ relpPort: number; adminPort: number }> {
  return { relpPort: await lateBoundPort(), adminPort: await lateBoundPort() };
}

function startNode(t: { after(fn: () => void): void }, dir: string, id: string, ports: { relpPort: number; adminPort: number }, bucketPrefix: string): Node {
  const config = path.join(dir, `${id}.yaml`);
  const logs = path.join(dir, id, 'logs');
  writeFileSync(config, [
    `data_dir: ${JSON.stringify(path.join(dir, id))}`,
    'workers: 1',
    `sources: { syslog_udp: { enabled: false }, syslog_tcp: { enabled: false }, http: { enabled: false }, relp: { port: ${ports.relpPort}, window: 1024 } }`,
    'hostmeta: { service: { port: 0 } }',
    `admin: { port: ${ports.adminPort} }`,
    // Quick heartbeats and shedding rounds, so the test sees several within seconds.
    `cluster: { nats: [${JSON.stringify(SHARED_NATS_URL)}], node_id: ${id}, bucket_prefix: ${bucketPrefix}, heartbeat_interval: 500ms, shed_interval: 2s }`,
  ].join('\n'));
  const child = spawn(process.execPath, [CLI, 'start', '-c', config], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  t.after(() => { child.kill('SIGKILL'); });
  return { id, child, lines: jsonLines(child.stderr!), ...ports, logs };
}

const clusterStatus = (adminPort: number) => fetchClusterStatus(`http://127.0.0.1:${adminPort}`);

/** Open RELP sessions per node, as the cluster sees them (each member's heartbeat). */
async function connectionsByNode(adminPort: number): Promise<Record<string, number>> {
  const status = await clusterStatus(adminPort);
  return Object.fromEntries((status?.members ?? []).map((m) => [m.id, m.load.connections]));
}

test('cluster shedding: a node over its fair share asks RELP agents to reconnect and HAProxy spreads them; nothing is lost', { skip, timeout: 150_000 }, async (t) => {
  const dir = tempDir(t);
  const { bucketPrefix } = await testClusterBuckets(t);
  const portsA = await nodePorts();
  const portsB = await nodePorts();
  const lbPort = await lateBoundPort();

  // HAProxy: leastconn over both nodes' RELP ports, each checked through its /readyz. B is not up yet: it is marked down.
  const haproxyConfig = path.join(dir, 'haproxy.cfg');
  writeFileSync(haproxyConfig, `
global
  maxconn 200
defaults
  mode tcp
  timeout connect 2s
  timeout client 1h
  timeout server 1h
  option redispatch
  retries 3
frontend relp
  bind 127.0.0.1:${lbPort}
  default_backend nodes
backend nodes
  balance leastconn
  option httpchk GET /readyz
  server a 127.0.0.1:${portsA.relpPort} check port ${portsA.adminPort} inter 500ms fall 2 rise 2
  server b 127.0.0.1:${portsB.relpPort} check port ${portsB.adminPort} inter 500ms fall 2 rise 2
`);
  const haproxy = spawn('haproxy', ['-f', haproxyConfig, '-db'], { stdio: 'ignore' });
  t.after(() => { haproxy.kill('SIGKILL'); });

  const a = startNode(t, dir, 'a', portsA, bucketPrefix);
  await waitFor('a ready and in the cluster', async () => (await clusterStatus(portsA.adminPort))?.members.length === 1, 30_000);

  // Six agents connect through HAProxy: all land on A, the only node up.
  const relay = await startRsyslogRelay(t, dir, { host: '127.0.0.1', port: lbPort }, { agents: AGENTS, queueSize: 100_000 });
  // Paced over ~30 s, so the agents are still sending while they are moved.
  const sent = relay.feed(TOTAL, { chunk: 100, pauseMs: 500 });
  await waitFor('six agents on a', async () => (await connectionsByNode(portsA.adminPort)).a === AGENTS, 30_000);

  // B starts and joins: A (6 of 6; fair share 3, over 1.25 × 3) sheds; HAProxy puts the reconnects on B.
  const joinedAt = Date.now();
  const b = startNode(t, dir, 'b', portsB, bucketPrefix);
  const balanced = await waitFor('three agents on each node', async () => {
    const counts = await connectionsByNode(portsB.adminPort);
    return counts.a === 3 && counts.b === 3 ? counts : false;
  }, 60_000);
  t.diagnostic(`balanced ${JSON.stringify(balanced)} ${Date.now() - joinedAt} ms after b started`);
  const shedLines = a.lines.filter((l) => l.code === 'SLU0905I');
  assert.ok(shedLines.length >= 1, 'a logged its shedding');
  assert.ok(shedLines.every((l) => l.reason === 'connections'));
  assert.equal(b.lines.filter((l) => l.code === 'SLU0905I').length, 0, 'b, under its share, never shed');

  // Every agent's every message is in the two nodes' files together.
  await sent;
  const hosts = Array.from({ length: AGENTS }, (_, i) => `agent-${i + 1}`);
  const delivered = await waitFor('every message of every agent', () => {
    const byHost = deliveredByHost([a.logs, b.logs]);
    return hosts.every((h) => new Set(byHost.get(h)).size >= TOTAL) ? byHost : false;
  }, 60_000);
  let duplicates = 0;
  for (const host of hosts) {
    const result = missingAndDuplicates(delivered.get(host)!, TOTAL);
    assert.deepEqual(result.missing, [], `${host}: none missing`);
    duplicates += result.duplicates;
  }
  const onB = deliveredByHost([b.logs]);
  assert.ok(hosts.filter((h) => (onB.get(h)?.length ?? 0) > 0).length >= 3, 'at least three agents moved to b and sent through it');
  t.diagnostic(`${AGENTS} agents × ${TOTAL} messages delivered, ${duplicates} duplicates, ${shedLines.length} shedding rounds on a`);
});
