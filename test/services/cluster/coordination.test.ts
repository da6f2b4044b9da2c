/**
 * Membership, leader election and host session locks against the shared
 * NATS server (127.0.0.1:4222), each test with buckets of its own (a unique
 * prefix) that are deleted afterwards. Several "nodes" are several instances
 * in this process, each with a connection of its own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NatsConnection } from 'nats';
import { connectCluster, destroyClusterBuckets, openClusterBuckets, type ClusterBuckets } from '../../../src/services/cluster/buckets.js';
import { Membership, type MemberLoad } from '../../../src/services/cluster/membership.js';
import { LeaderElection } from '../../../src/services/cluster/leader.js';
import { HostLocks, type HostLockEvents, type HostLockRecord } from '../../../src/services/cluster/host-locks.js';
import { SessionRegistry, type SessionControl } from '../../../src/core/sessions.js';
import { defaultConfig } from '../../../src/ops/config/load.js';
import type { ClusterConfig } from '../../../src/services/cluster/config.js';
import { ClusterMember } from '../../../src/services/cluster/member.js';
import { Telemetry } from '../../../src/telemetry/telemetry.js';
import { memoryLogger, requireProgram, waitFor } from '../../helpers.js';

const noNats = requireProgram('nats-server', 'Debian package nats-server, run as `nats-server -js -a 127.0.0.1 -p 4222`');

let prefixes = 0;
function clusterConfig(overrides: Partial<ClusterConfig> = {}): ClusterConfig {
  return {
    ...defaultConfig().cluster, nats: ['nats://127.0.0.1:4222'],
    bucketPrefix: `sluicetest_${process.pid}_${Date.now().toString(36)}_${prefixes++}`, ...overrides,
  };
}

/** `count` connections with the buckets open, closed and the buckets deleted when the test ends. */
async function nodes(t: { after(fn: () => Promise<void>): void }, config: ClusterConfig, count: number): Promise<{ nc: NatsConnection; buckets: ClusterBuckets }[]> {
  const opened: { nc: NatsConnection; buckets: ClusterBuckets }[] = [];
  for (let i = 0; i < count; i++) {
    const nc = await connectCluster({ ...config, nodeId: `n${i}` }, 'test');
    opened.push({ nc, buckets: await openClusterBuckets(nc, config) });
  }
  t.after(async () => {
    await destroyClusterBuckets(opened[0]!.nc, config.bucketPrefix);
    for (const { nc } of opened) await nc.close();
  });
  return opened;
}

const LOAD: MemberLoad = { connections: 3, recordsPerSec: 10, bytesPerSec: 1000, rssBytes: 50e6, memoryState: 0 };

test('membership: each node heartbeats its load; a node that stops disappears within the time-to-live', { skip: noNats, timeout: 30_000 }, async (t) => {
  const config = clusterConfig({ memberTtlMs: 2000 });
  const [a, b] = await nodes(t, config, 2);
  const self = (id: string) => ({ id, version: 'test', startedAt: Date.now(), admin: null });
  const memberA = new Membership(a!.buckets, self('node-a'));
  const memberB = new Membership(b!.buckets, self('node-b'));
  await memberA.heartbeat(LOAD);
  await memberB.heartbeat({ ...LOAD, connections: 7 });
  const seen = await memberA.members();
  assert.deepEqual(seen.map((m) => [m.id, m.load.connections]), [['node-a', 3], ['node-b', 7]]);

  // node-b stops heartbeating; node-a goes on. node-b is gone within its TTL (plus the server's expiry timer).
  const stoppedAt = Date.now();
  const beat = setInterval(() => void memberA.heartbeat(LOAD), 300);
  t.after(() => clearInterval(beat));
  await waitFor('node-b to expire', async () => (await memberA.members()).every((m) => m.id !== 'node-b'), 15_000);
  const gone = Date.now() - stoppedAt;
  t.diagnostic(`node-b expired ${gone} ms after its last heartbeat (TTL 2000 ms)`);
  // Not before its TTL (less the time its last write took to land).
  assert.ok(gone >= 1500, `expired after ${gone} ms, before its TTL`);
  assert.deepEqual((await memberA.members()).map((m) => m.id), ['node-a']);

  // A clean stop leaves at once.
  await memberA.leave();
  clearInterval(beat);
  assert.deepEqual(await memberB.members(), []);
});

test('leader election: one leader; it renews; resigning or dying hands over to another', { skip: noNats, timeout: 30_000 }, async (t) => {
  const config = clusterConfig({ leaderTtlMs: 1500, heartbeatIntervalMs: 300 });
  const opened = await nodes(t, config, 3);
  const changes: string[] = [];
  const elections = opened.map(({ buckets }, i) => new LeaderElection(buckets.leader, `n${i}`, config.leaderTtlMs, config.heartbeatIntervalMs,
    (leading, leader) => changes.push(`n${i}:${leading ? 'leads' : `sees ${leader?.id ?? 'none'}`}`)));
  const tickAll = (among = elections) => Promise.all(among.map((e) => e.tick()));

  await tickAll();
  await tickAll();
  const leaders = elections.filter((e) => e.leading);
  assert.equal(leaders.length, 1, `one leader, got ${changes.join(', ')}`);
  const first = leaders[0]!;
  for (const e of elections) assert.equal(e.leading ? first.leader?.id : e.leader?.id, first.leader?.id);

  // Renewals keep the term: several ticks later the same node leads.
  for (let i = 0; i < 5; i++) {
    await tickAll();
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(first.leading);
  assert.equal(elections.filter((e) => e.leading).length, 1);

  // Resign: another node leads at its next tick.
  await first.resign();
  await tickAll(elections.filter((e) => e !== first));
  const second = elections.find((e) => e.leading);
  assert.ok(second !== undefined && second !== first, `a new leader after resigning: ${changes.join(', ')}`);

  // Die (stop ticking, nothing deleted): the others take over once the key expires, within TTL + an interval or so.
  const others = elections.filter((e) => e !== second);
  const diedAt = Date.now();
  const third = await waitFor('a leader after the old one died', async () => {
    await tickAll(others);
    return others.find((e) => e.leading);
  }, 10_000);
  t.diagnostic(`a new leader ${Date.now() - diedAt} ms after the old one died`);
  assert.equal(others.filter((e) => e.leading).length, 1);
  // The dead leader's own next tick finds its key gone and rewritten: it steps down instead of leading twice.
  await second!.tick();
  assert.equal(second!.leading, false);
  assert.equal(second!.leader, null);
  assert.ok(third.leading);
});

/** Two nodes' host locks, each observing a session registry of its own; stopped when the test ends. */
async function twoLockNodes(
  t: { after(fn: () => void): void },
  buckets: [ClusterBuckets, ClusterBuckets],
  events: (node: string) => HostLockEvents,
): Promise<{ locksA: HostLocks; locksB: HostLocks; registryA: SessionRegistry; registryB: SessionRegistry }> {
  const locksA = new HostLocks(buckets[0].hostLocks, 'node-a', events('node-a'));
  const locksB = new HostLocks(buckets[1].hostLocks, 'node-b', events('node-b'));
  await Promise.all([locksA.start(), locksB.start()]);
  t.after(() => {
    locksA.stop();
    locksB.stop();
  });
  const registryA = new SessionRegistry('a:');
  const registryB = new SessionRegistry('b:');
  registryA.observe(locksA);
  registryB.observe(locksB);
  return { locksA, locksB, registryA, registryB };
}

/** A session control that records being closed. */
function recordingControl(closedWith: string[]): SessionControl {
  return {
    close: (reason) => closedWith.push(reason),
    queuedBytes: () => 0,
    pauseReading: () => undefined,
    resumeReading: () => undefined,
  };
}

test('host locks: a host that connects through another node takes its session over; the old one is closed', { skip: noNats, timeout: 30_000 }, async (t) => {
  const config = clusterConfig();
  const [a, b] = await nodes(t, config, 2);
  const moved: { node: string; host: string; to: string }[] = [];
  const events = (node: string) => ({
    hostMoved: (host: string, record: HostLockRecord) => moved.push({ node, host, to: record.node }),
    lockFailed: (_host: string, err: Error) => assert.fail(err),
  });
  const { locksA, locksB, registryA, registryB } = await twoLockNodes(t, [a!.buckets, b!.buckets], events);
  const lock = async (key: string) => {
    const entry = await a!.buckets.hostLocks.get(key);
    return entry?.operation === 'PUT' ? (JSON.parse(entry.string()) as HostLockRecord) : null;
  };

  // web-1 connects to node A: A owns it.
  const closedA: string[] = [];
  const sessionA = registryA.open('relp', 'relp', '10.0.0.5:4000', 'acme', recordingControl(closedA));
  sessionA.noteHosts([{ hostname: 'web-1', host: 'key1' }, { hostname: 'web-1', host: 'key1' }]);
  await waitFor('A to own key1', async () => (await lock('key1'))?.node === 'node-a');
  assert.equal(sessionA.hostKey, 'key1');

  // web-1 reconnects through node B: B owns it, A closes its stale session.
  const closedB: string[] = [];
  const sessionB = registryB.open('relp', 'relp', '10.0.0.5:4001', 'acme', recordingControl(closedB));
  sessionB.noteHosts([{ hostname: 'web-1', host: 'key1' }]);
  await waitFor('A to close its session', () => closedA.length > 0);
  assert.deepEqual(closedA, ['host_moved']);
  assert.deepEqual(closedB, []);
  assert.deepEqual(moved, [{ node: 'node-a', host: 'key1', to: 'node-b' }]);
  assert.equal((await lock('key1'))?.node, 'node-b');
  registryA.close(sessionA);
  // A's close after the takeover does not remove B's lock.
  await new Promise((r) => setTimeout(r, 200));
  assert.equal((await lock('key1'))?.node, 'node-b');

  // A relay (records of several hosts on one session) claims none.
  const relay = registryA.open('relp', 'relp', '10.0.0.9:5000', 'acme', recordingControl([]));
  relay.noteHosts([{ hostname: 'web-2', host: 'key2' }, { hostname: 'web-3', host: 'key3' }]);
  assert.equal(relay.multiHost, true);
  assert.equal(relay.hostKey, null);
  assert.equal(locksA.size, 0);

  // A host whose last session closes gives its lock up.
  registryB.close(sessionB);
  await waitFor('key1 unlocked', async () => (await lock('key1')) === null);
  assert.equal(locksB.size, 0);
});

test('host locks: two nodes racing for one host agree on the winner (the later write)', { skip: noNats, timeout: 30_000 }, async (t) => {
  const config = clusterConfig();
  const [a, b] = await nodes(t, config, 2);
  const quiet = { hostMoved: () => undefined, lockFailed: (_h: string, err: Error) => assert.fail(err) };
  const { locksA, locksB, registryA, registryB } = await twoLockNodes(t, [a!.buckets, b!.buckets], () => quiet);
  const hosts = 50;
  const closed = { a: 0, b: 0 };
  for (let i = 0; i < hosts; i++) {
    const sa = registryA.open('relp', 'relp', 'p', 'acme', { ...recordingControl([]), close: () => { closed.a++; registryA.close(sa); } });
    const sb = registryB.open('relp', 'relp', 'p', 'acme', { ...recordingControl([]), close: () => { closed.b++; registryB.close(sb); } });
    // Both claim at (nearly) the same moment.
    sa.noteHosts([{ hostname: `h${i}`, host: `race${i}` }]);
    sb.noteHosts([{ hostname: `h${i}`, host: `race${i}` }]);
  }
  await waitFor('every race decided', () => closed.a + closed.b === hosts);
  await new Promise((r) => setTimeout(r, 300));
  // Exactly one side closed per host, and the lock names the side that kept its session.
  assert.equal(closed.a + closed.b, hosts);
  assert.equal(locksA.size + locksB.size, hosts);
  for (let i = 0; i < hosts; i++) {
    const entry = await a!.buckets.hostLocks.get(`race${i}`);
    const owner = (JSON.parse(entry!.string()) as HostLockRecord).node;
    const keptByA = [...registryA.values()].some((s) => s.hostKey === `race${i}`);
    const keptByB = [...registryB.values()].some((s) => s.hostKey === `race${i}`);
    assert.ok(keptByA !== keptByB, `race${i}: exactly one node keeps it`);
    assert.equal(owner, keptByA ? 'node-a' : 'node-b');
  }
});

test('cluster member: heartbeats the node\'s load; the leader publishes totals, removes locks of departed nodes and prunes hosts; a node over its fair share sheds', { skip: noNats, timeout: 30_000 }, async (t) => {
  const config = clusterConfig({ heartbeatIntervalMs: 200, leaderTtlMs: 1000, shedIntervalMs: 60_000, pruneHostsAfterMs: 86_400_000 });
  const [observer] = await nodes(t, config, 1);
  // A lock left by a node that is gone, and one of a live member: the leader removes the first only.
  await observer!.buckets.hostLocks.put('ghostkey', new TextEncoder().encode(JSON.stringify({ owner: 'ghost/x', node: 'ghost', session: 's', at: 0 })));
  await observer!.buckets.hostLocks.put('livekey', new TextEncoder().encode(JSON.stringify({ owner: 'busy/x', node: 'busy', session: 's', at: 0 })));

  const started: ClusterMember[] = [];
  const shed: Record<string, number[]> = { busy: [], quiet: [] };
  const pruned: Record<string, number[]> = { busy: [], quiet: [] };
  const member = (id: string, sessions: number): ClusterMember => {
    const telemetry = new Telemetry(memoryLogger().logger);
    const m = new ClusterMember({ ...config, nodeId: id }, telemetry, {
      load: async () => ({ connections: sessions, receivedRecords: 0, receivedBytes: 0, rssBytes: 0, memoryState: 0 }),
      shed: async (count) => { shed[id]!.push(count); return count; },
      pruneHosts: async (olderThanMs) => { pruned[id]!.push(olderThanMs); return 0; },
    }, `http://127.0.0.1:${id === 'busy' ? 1 : 2}`);
    started.push(m);
    m.start();
    return m;
  };
  t.after(async () => { for (const m of started) await m.stop(); });
  const busy = member('busy', 100);
  const quiet = member('quiet', 10);

  // The leader may publish totals before the second member's first heartbeat: wait for totals that count both.
  const seen = await waitFor('both members, a leader and its totals over both, seen by both', () => {
    const views = [busy.view(), quiet.view()];
    return views.every((v) => v.members.length === 2 && v.totals?.members === 2 && v.leader !== null) ? views : false;
  }, 15_000);
  assert.deepEqual(seen[0]!.members.map((m) => [m.id, m.load.connections, m.admin]), [['busy', 100, 'http://127.0.0.1:1'], ['quiet', 10, 'http://127.0.0.1:2']]);
  const leader = seen.find((v) => v.leading)!;
  assert.equal(seen.filter((v) => v.leading).length, 1);
  assert.deepEqual({ ...seen[1]!.totals!, at: 0 }, { by: leader.nodeId, at: 0, members: 2, connections: 110, recordsPerSec: 0, bytesPerSec: 0, rssBytes: 0 });

  // busy holds 100 of 110 connections (fair share 55; over 1.25 × 55): it asks min(100 − 55, a quarter of 100) = 25 agents to reconnect, once per interval.
  await waitFor('busy to shed', () => shed.busy!.length > 0, 10_000);
  await new Promise((r) => setTimeout(r, 600));
  assert.deepEqual(shed, { busy: [25], quiet: [] });
  assert.deepEqual({ ...busy.view().lastShed!, at: 0 }, { at: 0, asked: 25, reason: 'connections' });

  // Only the leader runs the singleton jobs.
  await waitFor('the ghost lock removed', async () => (await observer!.buckets.hostLocks.get('ghostkey'))?.operation !== 'PUT', 10_000);
  assert.equal((await observer!.buckets.hostLocks.get('livekey'))?.operation, 'PUT');
  assert.deepEqual(pruned[leader.nodeId], [86_400_000]);
  assert.deepEqual(pruned[leader.nodeId === 'busy' ? 'quiet' : 'busy'], []);

  // A clean stop leaves at once and hands leadership over within a heartbeat or two.
  const leaving = leader.nodeId === 'busy' ? busy : quiet;
  const staying = leaving === busy ? quiet : busy;
  await leaving.stop();
  await waitFor('the other to lead, alone', () => staying.view().leading && staying.view().members.length === 1, 5000);
});
