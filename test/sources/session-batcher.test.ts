/**
 * The session batcher, through the syslog TCP source of a real node: the
 * reasons a session does not read combine and it reads again only once all
 * are clear; the lane's answer is one reason (a rate limit is RateLimit);
 * runs are one tenant's records, cut at a tenant change and at
 * MAX_RUN_RECORDS, and the last one goes out at the turn's end; a session that
 * closes leaves nothing paused or counted, and what it read still goes through.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { PauseReason, type SessionEntry } from '../../src/core/sessions.js';
import type { SluiceNode } from '../../src/ops/node.js';
import { MAX_RUN_RECORDS, type SessionBatcher } from '../../src/sources/session-batcher.js';
import { closed, connect, readTenantRecords, startTestNode, waitFor } from '../helpers.js';

const TOKEN = 'batcher-test-token-b';
const yaml = [
  'tenants:',
  '  a:',
  '    networks: [127.0.0.0/8]',
  '  b:',
  `    tokens: [${TOKEN}]`,
  '  slow:',
  '    networks: [127.0.9.0/24]',
  '    limits: { messages_per_second: 100, burst: 100ms }',
].join('\n');

/** An RFC 6587 octet-counted frame; `token` names tenant b. */
function frame(msg: string, token = false): string {
  const text = `<14>1 - h app - - ${token ? `[sluice@32473 token="${TOKEN}"]` : '-'} ${msg}`;
  return `${Buffer.byteLength(text)} ${text}`;
}

function frames(prefix: string, count: number): string {
  let data = '';
  for (let i = 0; i < count; i++) data += frame(`${prefix} ${i}`);
  return data;
}

/** The session of `agent`'s connection. */
async function sessionOf(node: SluiceNode, agent: net.Socket): Promise<{ entry: SessionEntry; session: SessionBatcher }> {
  const peer = `${agent.localAddress}:${agent.localPort}`;
  const entry = await waitFor('the session', () => [...node.pipeline.sessions.values()].find((e) => e.peer === peer));
  return { entry, session: entry.control as SessionBatcher };
}

/** Resolves once `data` is in the kernel (on loopback: in the node's receive queue). */
function written(socket: net.Socket, data: string): Promise<void> {
  return new Promise((resolve, reject) => socket.write(data, (err) => (err ? reject(err) : resolve())));
}

test('session batcher: pause reasons combine, and the session reads again only once every one is clear', async (t) => {
  const { node, logs, tcpPort } = await startTestNode(t, yaml);
  const agent = await connect(tcpPort);
  const { entry, session } = await sessionOf(node, agent);
  assert.equal(session.pausedByNode, false);

  session.pauseReading(); // the memory governor's reason
  session.pause(PauseReason.Pipeline);
  session.pause(PauseReason.Turn);
  assert.equal(session.pausedByNode, true, 'not reading; the idle and frame clocks wait');
  assert.equal(entry.governed, true);
  assert.equal(entry.throttled, true);
  assert.equal(node.pipeline.sessions.totals().paused, 1);
  await written(agent, frame('while paused'));

  session.resume(PauseReason.Turn);
  session.resume(PauseReason.Window); // not held: changes nothing
  assert.equal(session.pausedByNode, true, 'two reasons still hold');
  session.resume(PauseReason.Pipeline);
  assert.equal(entry.throttled, false);
  assert.equal(session.pausedByNode, true, 'the governor still holds it');

  // A fence: a record written after ours, on a connection that reads, is read; ours still is not.
  const other = await connect(tcpPort);
  other.write(frame('fence'));
  await waitFor('the fence record', () => readTenantRecords(logs, 'a').some((r) => r.msg === 'fence'));
  assert.equal(entry.records, 0, 'nothing is read while a reason holds');

  session.resumeReading();
  assert.equal(session.pausedByNode, false);
  assert.equal(entry.paused, 0);
  assert.equal(node.pipeline.sessions.totals().paused, 0);
  await waitFor('the record read once every reason cleared', () => entry.records === 1);
  agent.destroy();
  other.destroy();
});

test('session batcher: a rate limit pauses for RateLimit alone, cleared once the lane is ready; nothing is lost', async (t) => {
  const { node, logs, tcpPort } = await startTestNode(t, yaml);
  const agent = await connect(tcpPort, '127.0.9.1');
  const { entry, session } = await sessionOf(node, agent);
  agent.write(frames('limited', 200)); // 10 in the burst, then 100/s
  await waitFor('the rate-limit pause', () => session.pausedFor(PauseReason.RateLimit));
  assert.equal(session.pausedFor(PauseReason.Pipeline), false, 'the lane said why: the limiter, not a sink');
  assert.equal(entry.throttled, true);
  assert.equal(entry.governed, false);
  await waitFor('every record stored', () => readTenantRecords(logs, 'slow').length === 200, 20_000);
  await waitFor('reading again', () => entry.paused === 0 && !session.pausedByNode);
  assert.deepEqual(readTenantRecords(logs, 'slow').map((r) => r.msg), Array.from({ length: 200 }, (_, i) => `limited ${i}`));
  agent.destroy();
});

test('session batcher: one run per tenant change and per MAX_RUN_RECORDS; the last run goes out at the turn\'s end', async (t) => {
  const { node, tcpPort } = await startTestNode(t, yaml);
  const agent = await connect(tcpPort);
  const { entry, session } = await sessionOf(node, agent);
  const runs: string[] = [];
  t.after(node.pipeline.tap({ onRecords: (records) => runs.push(`${records[0]!.tenant}:${records.length}`) }));

  // Paused while the agent writes, so the whole write is one read when it resumes.
  session.pauseReading();
  await written(agent, frames('a', 3) + frame('b 0', true) + frame('b 1', true) + frame('a again'));
  session.resumeReading();
  await waitFor('three runs', () => entry.records === 6);
  assert.deepEqual(runs, ['a:3', 'b:2', 'a:1'], 'cut where the tenant changes; the last run went out with no more input');

  runs.length = 0;
  session.pauseReading();
  await written(agent, frames('many', MAX_RUN_RECORDS + 5));
  session.resumeReading();
  await waitFor('every record', () => entry.records === 6 + MAX_RUN_RECORDS + 5);
  assert.deepEqual(runs, [`a:${MAX_RUN_RECORDS}`, 'a:5'], 'a run is cut at MAX_RUN_RECORDS');
  agent.destroy();
});

test('session batcher: a session closed while paused leaves nothing paused or counted; what it read goes through', async (t) => {
  const { node, logs, tcpPort } = await startTestNode(t, yaml);
  const slow = node.pipeline.directory.tenants.get('slow')!;
  const agent = await connect(tcpPort, '127.0.9.2');
  const { session } = await sessionOf(node, agent);
  assert.equal(slow.connections, 1);
  agent.write(frames('closing', 100));
  await waitFor('the rate-limit pause', () => session.pausedFor(PauseReason.RateLimit));
  session.pauseReading();
  assert.equal(node.pipeline.sessions.totals().paused, 1);
  session.close('admin'); // the admin API's disconnect
  await closed(agent);
  await waitFor('the session forgotten', () => node.pipeline.sessions.size === 0);
  assert.deepEqual(node.pipeline.sessions.totals(), { open: 0, queuedBytes: 0, paused: 0 });
  assert.equal(await node.telemetry.value('sluice_sessions_paused'), 0);
  assert.equal(await node.telemetry.value('sluice_source_connections', { source: 'syslog_tcp' }), 0);
  assert.equal(slow.connections, 0);
  await waitFor('the records read before the close stored', () => readTenantRecords(logs, 'slow').length === 100, 20_000);
});
