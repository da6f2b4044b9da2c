/**
 * docs/cluster.md followed step by step on one machine, with the files it ships in
 * deploy/cluster/: a 3-server NATS JetStream cluster, three sluice nodes (`sluice start`,
 * each its own processes and data folder) sharing it and one PostgreSQL, HAProxy in
 * front, and a real rsyslog as the agent, configured with the shipped snippet, sending
 * numbered messages over RELP through HAProxy. Mid-stream the node holding rsyslog's
 * connection dies (SIGKILL to its whole process group, as when its machine goes):
 * HAProxy marks it down, rsyslog reconnects through HAProxy to another node and resends
 * what was not answered, and every number fed is in the JetStream stream. The dead node
 * is started again and HAProxy takes it back.
 *
 * How the files meet loopback: they describe machines on 10.0.0.0/24 (NATS .11-.13,
 * nodes .21-.23, HAProxy .30). Here 10.0.0.N becomes 127.X.Y.N, a /24 of loopback drawn
 * per run (never 127.0.0.*, where the shared servers and the other tests listen), so
 * every program binds the address and the real port its file names; other tests bind
 * 127.0.0.1 or port 0, never 0.0.0.0 on these ports. Each machine's absolute paths
 * (/var/lib/...) are moved under a folder of its own. Only what one shared test host
 * forces is changed beyond that — see `sluiceChanges` and `HAPROXY_DROPPED`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { connect as natsConnect, type ConsumerMessages, type NatsConnection } from 'nats';
import pg from 'pg';
import YAML from 'yaml';
import { hostKey } from '../../src/core/identity.js';
import { withDefaultUser } from '../../src/services/hostmeta/postgres-store.js';
import { lateBoundPort, POSTGRES_URL, removeQuietly, requirePostgres, requireProgram, ROOT, waitFor } from '../helpers.js';

const DEPLOY = path.join(ROOT, 'deploy', 'cluster');
const CLI = path.join(ROOT, 'dist', 'src', 'ops', 'cli.js');
const TOTAL = 40_000;
const KILL_AT = 12_000;
/** The token whose hash the shipped node files carry (they say to replace it). */
const TOKEN = 'replace-with-a-long-random-token';

const omrelp = ['/usr/lib/x86_64-linux-gnu/rsyslog/omrelp.so', '/usr/lib/rsyslog/omrelp.so'].some((p) => existsSync(p));
if (!omrelp && process.env.CI === 'true') throw new Error('rsyslog-relp is required under CI=true');
const skip = requireProgram('haproxy', 'Debian package haproxy')
  || requireProgram('logger', 'Debian package bsdutils')
  || requireProgram('nats-server', 'Debian package nats-server')
  || requireProgram('rsyslogd', 'Debian packages rsyslog and rsyslog-relp')
  || (omrelp ? false : 'rsyslog-relp not installed')
  || await requirePostgres();

/** Global settings of the shipped haproxy.cfg that need root or the system's files (and `log global`, which refers to them); dropped here. */
const HAPROXY_DROPPED = /^\s*(log|chroot|user|group|daemon|stats socket)\b/;

/** A shipped file with the deployment's machines moved onto loopback: 10.0.0.N → `<net>.N`, /var/lib → `<root>/var/lib`. */
function onLoopback(file: string, net: string, root: string): string {
  return readFileSync(path.join(DEPLOY, file), 'utf8').replaceAll('10.0.0.', `${net}.`).replaceAll('/var/lib/', `${root}/var/lib/`);
}

/** A child process whose output is kept (the tail of it) for the failure message. */
interface Machine {
  name: string;
  child: ChildProcess;
  output: () => string;
}

function run(name: string, command: string, args: string[], options: { detached?: boolean } = {}): Machine {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached ?? false });
  let output = '';
  const keep = (d: Buffer): void => { output = (output + d.toString()).slice(-4000); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { name, child, output: () => `--- ${name} (exit ${String(child.exitCode ?? child.signalCode)}):\n${output}` };
}

function killGroup(machine: Machine): void {
  try {
    process.kill(-machine.child.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
}

async function httpStatus(url: string): Promise<number> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return 0;
  }
}

/** HAProxy's view of its servers from the stats page: `<backend>/<server>` → status and current sessions. */
async function haproxyServers(statsUrl: string): Promise<Map<string, { status: string; sessions: number }>> {
  const text = await (await fetch(`${statsUrl};csv`, { signal: AbortSignal.timeout(2000) })).text();
  const [header, ...rows] = text.trim().split('\n');
  const columns = header!.replace(/^# /, '').split(',');
  const at = (name: string): number => columns.indexOf(name);
  const servers = new Map<string, { status: string; sessions: number }>();
  for (const row of rows) {
    const cells = row.split(',');
    const server = cells[at('svname')]!;
    if (server === 'FRONTEND' || server === 'BACKEND') continue;
    servers.set(`${cells[at('pxname')]}/${server}`, { status: cells[at('status')]!, sessions: Number(cells[at('scur')]) });
  }
  return servers;
}

interface ClusterView {
  members: string[];
  leader: string | null;
}

/** A node's view of the cluster from its admin API (GET /api/cluster, with the token the node wrote at first start). */
async function clusterView(adminUrl: string, dataDir: string): Promise<ClusterView | null> {
  try {
    const token = readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    const response = await fetch(`${adminUrl}/api/cluster`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(2000) });
    if (response.status !== 200) return null;
    const status = await response.json() as { members: { id: string }[]; leader: { id: string } | null };
    return { members: status.members.map((m) => m.id).sort(), leader: status.leader?.id ?? null };
  } catch {
    return null;
  }
}

test('cluster deployment (docs/cluster.md) on loopback: a node killed under RELP load through HAProxy loses nothing acknowledged', { skip, timeout: 150_000 }, async (t) => {
  const started = Date.now();
  const timings: string[] = [];
  const mark = (what: string): void => { timings.push(`${what} ${((Date.now() - started) / 1000).toFixed(1)}s`); };
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-cluster-'));
  const net24 = `127.${randomInt(1, 255)}.${randomInt(0, 256)}`;
  const at = (n: number): string => `${net24}.${n}`;
  const runId = `${process.pid}_${Date.now().toString(36)}`;
  const stream = `SLUICE_CLUSTER_TEST_${runId}`;
  const subjectPrefix = `sluicetest.cluster${runId}`;
  const schema = `sluice_cluster_test_${randomBytes(6).toString('hex')}`;
  const machines: Machine[] = [];
  let nc: NatsConnection | null = null;
  let consuming: ConsumerMessages | null = null;

  t.after(async () => {
    consuming?.stop();
    for (const machine of machines) if (!machine.name.startsWith('nats-')) killGroup(machine);
    if (nc !== null) {
      await (await nc.jetstreamManager()).streams.delete(stream).catch(() => false);
      await nc.close();
    }
    for (const machine of machines) killGroup(machine);
    const admin = new pg.Client({ connectionString: withDefaultUser(POSTGRES_URL) });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
    removeQuietly(dir);
  });
  const diagnose = (): string => machines.map((m) => m.output()).join('\n');
  const within = async <T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> => {
    try {
      return await waitFor(what, probe, timeoutMs);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${diagnose()}`, { cause: err });
    }
  };
  const start = (machine: Machine): Machine => {
    machines.push(machine);
    return machine;
  };

  // Step: the NATS servers, each with its shipped file; any may start first.
  for (const n of [1, 2, 3]) {
    const root = path.join(dir, `nats-${n}`);
    mkdirSync(path.join(root, 'var', 'lib', 'nats'), { recursive: true });
    const config = path.join(root, 'nats-server.conf');
    writeFileSync(config, onLoopback(`nats-${n}.conf`, net24, root));
    start(run(`nats-${n}`, 'nats-server', ['-c', config], { detached: true }));
  }
  // Verify: every server healthy, JetStream included (503 until a meta leader is elected), one cluster of three.
  await within('the NATS cluster healthy', async () => {
    const statuses = await Promise.all([11, 12, 13].map((n) => httpStatus(`http://${at(n)}:8222/healthz`)));
    return statuses.every((s) => s === 200);
  }, 30_000);
  const meta = (await (await fetch(`http://${at(11)}:8222/jsz`)).json() as { meta_cluster: { leader?: string; cluster_size: number } }).meta_cluster;
  assert.equal(meta.cluster_size, 3);
  assert.match(meta.leader ?? '', /^nats-[123]$/);
  mark('nats cluster');

  // Step: the three sluice nodes, each with its file.
  const sluiceChanges = (doc: YAML.Document, n: number): void => {
    // One shared PostgreSQL for every test: a schema of this run's own.
    doc.setIn(['hostmeta', 'service', 'postgres_url'], POSTGRES_URL);
    doc.setIn(['hostmeta', 'service', 'postgres_schema'], schema);
    // The nodes' own metadata APIs listen on loopback, which the three share here.
    doc.setIn(['hostmeta', 'service', 'port'], 0);
    // The stream and subjects of this run (deleted afterwards).
    doc.setIn(['sinks', 'bus', 'nats', 'stream'], stream);
    doc.setIn(['sinks', 'bus', 'nats', 'subject_prefix'], subjectPrefix);
    // `workers: auto` is one per core of the node's machine; here three nodes share one machine of any size.
    doc.setIn(['workers'], 2);
    assert.equal(doc.getIn(['cluster', 'node_id']), `node-${n}`);
  };
  const nodeDataDir = (n: number): string => path.join(dir, `node-${n}`, 'var', 'lib', 'sluice');
  const nodeConfigs = [1, 2, 3].map((n) => {
    const root = path.join(dir, `node-${n}`);
    mkdirSync(path.join(root, 'var', 'lib', 'sluice'), { recursive: true });
    const doc = YAML.parseDocument(onLoopback(`sluice-node-${n}.yaml`, net24, root));
    sluiceChanges(doc, n);
    const config = path.join(root, 'sluice.yaml');
    writeFileSync(config, doc.toString());
    return config;
  });
  const startNode = (n: number): Machine => start(run(`node-${n}`, process.execPath, [CLI, 'start', '-c', nodeConfigs[n - 1]!], { detached: true }));
  const nodes = [1, 2, 3].map(startNode);
  // Verify: /readyz answers 200 on every node's admin address (what HAProxy checks).
  await within('every node ready', async () => {
    const statuses = await Promise.all([21, 22, 23].map((n) => httpStatus(`http://${at(n)}:8080/readyz`)));
    return statuses.every((s) => s === 200);
  }, 40_000);
  mark('nodes ready');
  // Verify: the nodes found each other (`sluice cluster status`, as the doc runs it, then each node's view).
  const all = ['node-1', 'node-2', 'node-3'];
  const agreeOn = async (ids: number[], members: string[]): Promise<string | false> => {
    const views = await Promise.all(ids.map((n) => clusterView(`http://${at(20 + n)}:8080`, nodeDataDir(n))));
    const leader = views[0]?.leader ?? null;
    return leader !== null && members.includes(leader)
      && views.every((v) => v !== null && v.members.join() === members.join() && v.leader === leader) && leader;
  };
  await within('the three nodes in one cluster with one leader', () => agreeOn([1, 2, 3], all), 20_000);
  const status = spawnSync(process.execPath, [CLI, 'cluster', 'status', '--url', `http://${at(21)}:8080`, '--data-dir', nodeDataDir(1), '--json'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(status.status, 0, status.stderr);
  assert.deepEqual((JSON.parse(status.stdout) as { members: { id: string }[] }).members.map((m) => m.id).sort(), all);
  mark('cluster formed');

  // Step: HAProxy with the shipped file.
  const haproxyConfig = path.join(dir, 'haproxy.cfg');
  writeFileSync(haproxyConfig, onLoopback('haproxy.cfg', net24, path.join(dir, 'haproxy')).split('\n').filter((line) => !HAPROXY_DROPPED.test(line)).join('\n'));
  // -db: in the foreground. -n: a maxconn within this host's open-files limit (HAProxy
  // refuses to start when it cannot get 2 x maxconn files; a server's root can).
  start(run('haproxy', 'haproxy', ['-db', '-n', '4000', '-f', haproxyConfig], { detached: true }));
  const statsUrl = `http://${at(30)}:8404/`;
  // Verify: the stats page shows every node UP in every backend.
  await within('HAProxy sees every node up', async () => {
    const servers = await haproxyServers(statsUrl).catch(() => null);
    return servers !== null && servers.size === 9 && [...servers.values()].every((s) => s.status === 'UP');
  }, 20_000);
  mark('haproxy up');

  // Verify, as the doc does: one message with logger over syslog TCP and one over HTTP, through HAProxy.
  const logger = spawnSync('logger', ['-n', at(30), '-P', '5514', '-T', '--octet-count', '--rfc5424', '--sd-id', 'sluice@32473',
    '--sd-param', `token="${TOKEN}"`, '-t', 'deploycheck', 'hello over tcp'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(logger.status, 0, logger.stderr);
  const posted = await fetch(`http://${at(30)}:4318/v1/ingest`, {
    method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: '{"msg":"hello over http","app":"deploycheck"}\n',
  });
  assert.equal(posted.status, 200, await posted.text());

  // Read the stream as it fills: every message, parsed.
  nc = await natsConnect({ servers: [11, 12, 13].map((n) => `nats://${at(n)}:4222`) });
  const jsm = await nc.jetstreamManager();
  await within('the stream created by a node', async () => (await jsm.streams.info(stream).catch(() => null)) !== null, 10_000);
  const received: { subject: string; record: { tenant: string; hostname: string; app: string; msg: string } }[] = [];
  const seqCounts = new Uint8Array(TOTAL);
  let seqsSeen = 0;
  consuming = await (await nc.jetstream().consumers.get(stream)).consume();
  void (async () => {
    for await (const m of consuming!) {
      const record = JSON.parse(m.string()) as { tenant: string; hostname: string; app: string; msg: string };
      received.push({ subject: m.subject, record });
      const seq = /^seq (\d+)$/.exec(record.msg);
      if (seq === null) continue;
      const i = Number(seq[1]);
      if (seqCounts[i] === 0) seqsSeen++;
      seqCounts[i] = seqCounts[i]! + 1;
    }
  })();
  await within('both check messages in the stream', async () => received.filter((r) => r.record.app === 'deploycheck').length === 2, 10_000);
  const checks = received.filter((r) => r.record.app === 'deploycheck');
  assert.deepEqual(checks.map((r) => r.record.msg).sort(), ['hello over http', 'hello over tcp']);
  assert.ok(checks.every((r) => r.record.tenant === 'acme' && r.subject.startsWith(`${subjectPrefix}.acme.`)), JSON.stringify(checks));
  const info = await jsm.streams.info(stream);
  assert.equal(info.config.num_replicas, 3, 'the stream the node created is replicated on the three servers');
  assert.equal(info.cluster?.replicas?.length, 2);

  // Step: the agent, rsyslog with the shipped snippet, fed numbered messages over TCP.
  const agentRoot = path.join(dir, 'agent');
  mkdirSync(path.join(agentRoot, 'spool'), { recursive: true });
  const snippet = path.join(agentRoot, '60-sluice.conf');
  writeFileSync(snippet, onLoopback('rsyslog-agent.conf', net24, agentRoot));
  const inputPort = await lateBoundPort();
  const rsyslogConfig = path.join(agentRoot, 'rsyslog.conf');
  writeFileSync(rsyslogConfig, [
    `global(workDirectory="${path.join(agentRoot, 'spool')}")`,
    'module(load="imtcp")',
    `input(type="imtcp" address="127.0.0.1" port="${inputPort}")`,
    `include(file="${snippet}")`,
  ].join('\n'));
  start(run('rsyslog', 'rsyslogd', ['-n', '-f', rsyslogConfig, '-i', path.join(agentRoot, 'rsyslog.pid')], { detached: true }));
  const feeder = await within('rsyslog input', () => new Promise<net.Socket | undefined>((resolve) => {
    const socket = net.connect(inputPort, '127.0.0.1', () => resolve(socket));
    socket.once('error', () => resolve(undefined));
  }), 20_000);
  const fed = new Promise<void>((resolve) => {
    let i = 0;
    const pump = (): void => {
      while (i < TOTAL) {
        let chunk = '';
        for (let k = 0; k < 1000 && i < TOTAL; k++, i++) chunk += `<14>1 2026-11-27T00:00:00Z agent app - - - seq ${i}\n`;
        if (!feeder.write(chunk)) {
          feeder.once('drain', pump);
          return;
        }
      }
      feeder.end(resolve);
    };
    pump();
  });
  mark('agent started');

  // A node dies mid-stream: the one holding rsyslog's RELP connection.
  await within(`${KILL_AT} messages in the stream`, async () => seqsSeen >= KILL_AT, 60_000);
  const victim = await within('rsyslog\'s connection on a node', async () => {
    const servers = await haproxyServers(statsUrl);
    return [1, 2, 3].find((n) => servers.get(`relp/node-${n}`)!.sessions > 0);
  }, 10_000);
  killGroup(nodes[victim - 1]!);
  const killedAt = Date.now();
  mark(`node-${victim} killed at ${seqsSeen} delivered`);
  await within(`HAProxy marks node-${victim} down`, async () => (await haproxyServers(statsUrl)).get(`relp/node-${victim}`)!.status.startsWith('DOWN'), 15_000);
  const downAfterMs = Date.now() - killedAt;
  mark('marked down');
  const survivor = await within('rsyslog reconnected to another node', async () => {
    const servers = await haproxyServers(statsUrl);
    return [1, 2, 3].find((n) => n !== victim && servers.get(`relp/node-${n}`)!.sessions > 0);
  }, 15_000);
  await fed;
  await within('every message in the stream', async () => seqsSeen === TOTAL, 60_000);
  mark('all delivered');
  // The dead node leaves the cluster once its heartbeat expires (member_ttl, 10 s); the other two agree on a leader among them.
  const alive = [1, 2, 3].filter((n) => n !== victim);
  const leaderAfter = await within(`node-${victim} gone from the cluster`, () => agreeOn(alive, alive.map((n) => `node-${n}`)), 20_000);
  const leftAfterMs = Date.now() - killedAt;
  mark('membership updated');

  // Zero acknowledged loss: every number is in the stream; duplicates (RELP resends) are counted.
  const missing: number[] = [];
  let duplicates = 0;
  for (let i = 0; i < TOTAL; i++) {
    if (seqCounts[i] === 0) missing.push(i);
    else duplicates += seqCounts[i]! - 1;
  }
  assert.deepEqual(missing, []);
  const agentRecords = received.filter((r) => r.record.hostname === 'agent');
  assert.ok(agentRecords.every((r) => r.record.tenant === 'acme'));

  // Both nodes that served the agent registered it in the one shared store: one document.
  const client = new pg.Client({ connectionString: withDefaultUser(POSTGRES_URL) });
  await client.connect();
  try {
    const rows = (await client.query(`SELECT tenant, host_key, metadata FROM ${schema}.host_metadata WHERE tenant = 'acme'`)).rows as
      { host_key: string; metadata: { hostname: string } }[];
    const agentRows = rows.filter((r) => r.metadata.hostname === 'agent');
    assert.equal(agentRows.length, 1, JSON.stringify(rows));
    assert.equal(agentRows[0]!.host_key, hostKey('acme', 'agent'));
  } finally {
    await client.end();
  }

  // Step: the dead node comes back; HAProxy takes it back after its checks pass.
  nodes[victim - 1] = startNode(victim);
  await within(`HAProxy marks node-${victim} up again`, async () => (await haproxyServers(statsUrl)).get(`relp/node-${victim}`)!.status === 'UP', 40_000);
  await within(`node-${victim} back in the cluster`, () => agreeOn([1, 2, 3], all), 20_000);
  mark('back up');

  t.diagnostic(`cluster deploy: ${TOTAL} fed, all in the stream, ${duplicates} duplicates; node-${victim} killed, HAProxy marked it down after ${downAfterMs} ms, rsyslog went on through node-${survivor}; members node-${alive.join(' and node-')} with leader ${leaderAfter} ${leftAfterMs} ms after the kill`);
  t.diagnostic(`timings: ${timings.join(', ')}`);
});
