/**
 * Load shedding against a real in-process node: agents asked to reconnect
 * (RELP `serverclose`, HTTP `Connection: close`) lose nothing, plain syslog
 * over TCP is never asked, and the real rsyslog reconnects and goes on
 * exactly once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { LocalControl } from '../../src/ops/admin/local-control.js';
import { RECONNECT_CLOSE_GRACE_MS } from '../../src/sources/relp/session.js';
import { closed, connect, readTenantRecords, startTestNode, tempDir, waitFor } from '../helpers.js';
import { OPEN_OFFERS, RelpTestClient } from '../relp-client.js';
import { FEED_END, rsyslogRelayMissing, startRsyslogRelay } from '../rsyslog-relay.js';
import { ADMIN_TOKEN, ACME_TOKEN, call, startAdminFixture, TWO_TENANTS } from '../ops/admin/admin-helpers.js';

const syslogMessage = (msg: string): string => `<13>1 2026-11-27T14:20:00.000Z web-1 app - - - ${msg}`;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('shedding: a RELP session asked to reconnect answers what it read, then serverclose; the longest connected first; plain TCP never', async (t) => {
  // Commits wait 200 ms, so the records are read and not yet answered when the session is asked.
  const { node, logs, lines, tcpPort } = await startTestNode(t, 'sinks:\n  files: { batch_delay: 200ms }');
  const control = new LocalControl(node);
  const relpPort = node.addresses().relp!.port;

  const tcp = await connect(tcpPort);
  tcp.write(`${Buffer.byteLength(syslogMessage('over tcp'))} ${syslogMessage('over tcp')}`);
  const older = await RelpTestClient.connect(relpPort);
  await older.open();
  await pause(5);
  // An agent that keeps its side open after the hint (an idle librelp client reads only when it next sends).
  const idle = net.connect({ port: relpPort, host: '127.0.0.1', allowHalfOpen: true });
  let idleReceived = '';
  idle.on('data', (d: Buffer) => { idleReceived += d.toString(); });
  idle.write(`1 open ${Buffer.byteLength(OPEN_OFFERS)} ${OPEN_OFFERS}\n`);
  await waitFor('the idle session open', () => idleReceived.startsWith('1 rsp'));
  await waitFor('three sessions', () => node.pipeline.sessions.size === 3);
  assert.equal(await control.sheddableSessions(), 2, 'the two RELP sessions; the TCP one cannot be shed');

  const frames = Array.from({ length: 20 }, (_, i) => older.frame('syslog', syslogMessage(`shed ${i}`)));
  older.socket.write(frames.map((f) => f.bytes).join(''));
  await waitFor('records read', async () => (await node.telemetry.value('sluice_source_received_records_total', { source: 'relp' })) === 20);
  assert.equal(older.responses().length, 1, 'not yet answered when asked to reconnect');

  assert.equal(await control.shedSessions(1), 1);
  await closed(older.socket);
  assert.deepEqual(older.received.map((f) => `${f.txnr} ${f.command}`), ['1 rsp', ...frames.map((f) => `${f.txnr} rsp`), '0 serverclose'],
    'every record read was answered, then the hint, last');
  assert.ok(older.responses().slice(1).every((f) => f.data === '200 OK'));
  assert.deepEqual(readTenantRecords(logs, 'default').filter((r) => String(r.msg).startsWith('shed')).map((r) => r.msg), frames.map((_, i) => `shed ${i}`));
  assert.equal(idle.destroyed, false, 'the younger session was not asked');
  assert.equal(await control.sheddableSessions(), 1);

  const asked = Date.now();
  const idleEnded = new Promise((resolve) => idle.once('end', resolve));
  assert.equal(await control.shedSessions(5), 1, 'only what can be shed: the TCP session never');
  await idleEnded;
  assert.match(idleReceived, /^1 rsp [^\n]*\n[\s\S]*0 serverclose 0\n$/, 'answered, then the hint, then the end of the node\'s side');
  // The agent keeps its side open: the node closes the connection once the grace is over.
  await waitFor('the node closes the idle session', () => node.pipeline.sessions.size === 1, RECONNECT_CLOSE_GRACE_MS + 5000);
  const waited = Date.now() - asked;
  idle.destroy();
  // Not before the grace; how soon after is the wait's bound above, not an assertion a loaded machine could break.
  assert.ok(waited >= RECONNECT_CLOSE_GRACE_MS - 50, `closed by the node after its grace (${waited} ms)`);
  assert.equal(await control.sheddableSessions(), 0);
  assert.equal(await control.shedSessions(1), 0);
  assert.equal(tcp.destroyed, false, 'the TCP session is still open');
  assert.equal(node.pipeline.sessions.size, 1);

  assert.equal(await node.telemetry.value('sluice_sessions_shed_total', { protocol: 'relp' }), 2);
  const shed = lines.filter((l) => l.code === 'SLU0950I');
  assert.deepEqual(shed.map((l) => [l.requested, l.asked, l.relp]), [[1, 1, 1], [5, 1, 1], [1, 0, undefined]], 'one line per call');
  tcp.destroy();
});

/** Send one HTTP/1.1 request on `socket` and read its response (headers lowercased). */
function exchange(socket: net.Socket, body: string): Promise<{ status: number; headers: Record<string, string> }> {
  return new Promise((resolve, reject) => {
    let received = '';
    const onData = (d: Buffer): void => {
      received += d.toString();
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...fields] = received.slice(0, end).split('\r\n');
      const headers = Object.fromEntries(fields.map((f) => [f.slice(0, f.indexOf(':')).toLowerCase(), f.slice(f.indexOf(':') + 1).trim()]));
      if (received.length - end - 4 < Number(headers['content-length'] ?? 0)) return;
      socket.off('data', onData);
      resolve({ status: Number(statusLine!.split(' ')[1]), headers });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(`POST /v1/ingest HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/x-ndjson\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });
}

test('shedding: an HTTP keep-alive connection gets Connection: close on its next response, then closes', async (t) => {
  const { node, logs } = await startTestNode(t);
  const control = new LocalControl(node);
  const httpPort = node.addresses().http!.port;
  const socket = await connect(httpPort);
  const first = await exchange(socket, 'first\n');
  assert.equal(first.status, 200);
  assert.equal(first.headers.connection, 'keep-alive');
  assert.equal(await control.sheddableSessions(), 1);

  assert.equal(await control.shedSessions(3), 1);
  assert.equal(await control.sheddableSessions(), 0, 'asked once');
  const second = await exchange(socket, 'second\n');
  assert.equal(second.status, 200, 'the request is still answered');
  assert.equal(second.headers.connection, 'close');
  await closed(socket);
  assert.deepEqual(readTenantRecords(logs, 'default').map((r) => r.msg), ['first', 'second']);
  assert.equal(await node.telemetry.value('sluice_sessions_shed_total', { protocol: 'http' }), 1);

  const again = await connect(httpPort);
  assert.equal((await exchange(again, 'third\n')).headers.connection, 'keep-alive', 'a new connection is kept alive');
  assert.equal(await control.sheddableSessions(), 1);
  again.destroy();
});

test('shedding: POST /api/sessions/shed takes a whole-node token and a positive count', async (t) => {
  const { node, base } = await startAdminFixture(t, TWO_TENANTS);
  const client = await RelpTestClient.connect(node.addresses().relp!.port);
  await client.open();
  assert.equal((await call(base, '/api/sessions/shed', null, { method: 'POST', body: { count: 1 } })).status, 401);
  assert.equal((await call(base, '/api/sessions/shed', ACME_TOKEN, { method: 'POST', body: { count: 1 } })).status, 403);
  for (const count of [0, -1, 1.5, '2', null]) {
    assert.equal((await call(base, '/api/sessions/shed', ADMIN_TOKEN, { method: 'POST', body: { count } })).status, 400, `count ${String(count)}`);
  }
  const shed = await call(base, '/api/sessions/shed', ADMIN_TOKEN, { method: 'POST', body: { count: 2 } });
  assert.equal(shed.status, 200);
  assert.deepEqual(shed.body, { requested: 2, asked: 1 });
  await closed(client.socket);
  assert.equal(client.received.at(-1)?.command, 'serverclose');
});


test('shedding: the real rsyslog, asked to reconnect mid-stream, reconnects and delivers every message exactly once', { skip: rsyslogRelayMissing, timeout: 120_000 }, async (t) => {
  const total = 20_000;
  const { node, logs } = await startTestNode(t, 'sources: { relp: { window: 1024 } }');
  const control = new LocalControl(node);
  const relay = await startRsyslogRelay(t, tempDir(t), { host: '127.0.0.1', port: node.addresses().relp!.port }, { queueSize: 100_000 });
  // Paced, so the stream is still flowing when the session is asked to go.
  const sent = relay.feed(total, { chunk: 500, pauseMs: 20 });
  const delivered = () => readTenantRecords(logs, 'default').map((r) => String(r.msg)).filter((m) => m.startsWith('seq '));

  await waitFor('a quarter delivered', () => delivered().length >= total / 4, 60_000);
  const before = [...node.pipeline.sessions.values()].filter((s) => s.protocol === 'relp').map((s) => s.id);
  assert.equal(before.length, 1, 'rsyslog holds one session');
  assert.equal(await control.shedSessions(1), 1);
  const atShed = delivered().length;
  await waitFor('rsyslog reconnected', () => [...node.pipeline.sessions.values()].some((s) => s.protocol === 'relp' && !before.includes(s.id)), 30_000);
  await sent;
  const all = await waitFor('every message', () => {
    const seqs = delivered();
    return new Set(seqs).size >= total ? seqs : undefined;
  }, 60_000);
  await waitFor('the line after the feed', () => readTenantRecords(logs, 'default').some((r) => r.msg === FEED_END), 30_000);
  const final = delivered();
  const unique = new Set(final);
  for (let i = 0; i < total; i++) assert.ok(unique.has(`seq ${i}`), `seq ${i} is missing`);
  t.diagnostic(`${total} sent through rsyslog, asked to reconnect after ${atShed} delivered: ${unique.size} delivered, ${final.length - unique.size} duplicates`);
  assert.equal(final.length, all.length, 'nothing more arrived');
  assert.equal(final.length - unique.size, 0, 'no duplicates: everything read was answered before serverclose');
  assert.equal(await node.telemetry.value('sluice_sessions_shed_total', { protocol: 'relp' }), 1);
});
