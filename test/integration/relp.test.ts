/**
 * RELP against a real in-process node: a client written here over real
 * loopback sockets, and the real rsyslog (omrelp) as the agent. A `200 OK`
 * must mean the record is already in its NDJSON file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { RelpSource } from '../../src/sources/relp/source.js';
import { DEFAULT_RELP_SOURCE_CONFIG, type RelpSourceConfig } from '../../src/sources/relp/config.js';
import { hostKey } from '../../src/core/identity.js';
import { closed, lateBoundPort, readTenantRecords, requireProgram, startTestNode, tempDir, waitFor } from '../helpers.js';
import { OPEN_OFFERS, RelpTestClient } from '../relp-client.js';

type TestNode = Awaited<ReturnType<typeof startTestNode>>['node'];

const syslogMessage = (msg: string, sd = '-'): string => `<13>1 2026-11-27T14:20:00.000Z web-1 app - - ${sd} ${msg}`;

async function startRelp(t: { after(fn: () => void | Promise<void>): void }, node: TestNode, overrides: Partial<RelpSourceConfig> = {}): Promise<{ source: RelpSource; port: number }> {
  const source = new RelpSource({ ...DEFAULT_RELP_SOURCE_CONFIG, enabled: true, port: 0, ...overrides }, node.pipeline, node.telemetry);
  await source.start();
  t.after(() => source.stop(Date.now() + 2000));
  return { source, port: source.address()!.port };
}

test('relp: 200 OK arrives only once the record is in the NDJSON file; responses in txnr order', async (t) => {
  const { node, logs } = await startTestNode(t);
  const { source, port } = await startRelp(t, node);
  const client = await RelpTestClient.connect(port);
  const open = await client.open();
  assert.match(open.data, /^200 OK\n/);
  assert.ok(open.data.split('\n').includes('relp_version=0'), open.data);
  assert.ok(open.data.split('\n').includes('commands=syslog'), open.data);

  const count = 50;
  const missing: string[] = [];
  client.onFrame = (frame) => {
    if (frame.command !== 'rsp' || frame.data !== '200 OK') return;
    // The txnr of record i is i + 2 (open took txnr 1).
    const msg = `record ${frame.txnr - 2}`;
    if (!readTenantRecords(logs, 'default').some((r) => r.msg === msg)) missing.push(msg);
  };
  let batch = '';
  const txnrs: number[] = [];
  for (let i = 0; i < count; i++) {
    const { bytes, txnr } = client.frame('syslog', syslogMessage(`record ${i}`));
    batch += bytes;
    txnrs.push(txnr);
  }
  // In three writes, so records arrive over more than one chunk and batch.
  client.socket.write(batch.slice(0, 1000));
  client.socket.write(batch.slice(1000, 2500));
  client.socket.write(batch.slice(2500));
  await client.response(txnrs.at(-1)!);
  assert.deepEqual(missing, [], 'every 200 OK found its record already written');
  assert.deepEqual(client.responses().map((f) => f.txnr), [1, ...txnrs], 'answered once each, in txnr order');
  assert.ok(client.responses().slice(1).every((f) => f.data === '200 OK'));

  const records = readTenantRecords(logs, 'default');
  assert.equal(records.length, count);
  assert.equal(records[0]!.host, hostKey('default', 'web-1'));
  assert.equal(await node.telemetry.value('sluice_source_received_records_total', { source: 'relp' }), count);

  const close = client.send('close');
  assert.equal((await client.response(close)).data, '200 OK');
  await closed(client.socket);
  await source.stop(Date.now() + 2000);
});

test('relp: a refused record is answered 500 at its turn, after the records before it (stored, 200); then serverclose and the session ends', async (t) => {
  const { node, logs } = await startTestNode(t);
  const { source, port } = await startRelp(t, node);
  const client = await RelpTestClient.connect(port);
  await client.open();
  const good1 = client.send('syslog', syslogMessage('before'));
  const refused = client.send('syslog', syslogMessage('with a bad token', '[sluice@32473 token="not-a-token-0000"]'));
  client.send('syslog', syslogMessage('after'));
  await closed(client.socket);
  assert.deepEqual(client.received.slice(1).map((f) => [f.txnr, f.command, f.data]), [
    [good1, 'rsp', '200 OK'], [refused, 'rsp', '500 refused: unknown token'], [0, 'serverclose', ''],
  ], 'the record after the refused one is left unanswered: its agent resends it once reconnected');
  assert.deepEqual(readTenantRecords(logs, 'default').map((r) => r.msg), ['before']);
  assert.equal(await node.telemetry.value('sluice_source_refused_total', { source: 'relp', reason: 'bad_token' }), 1);
  await source.stop(Date.now() + 2000);
});

test('relp: a record no sink takes is answered 500 (dropped), never 200', async (t) => {
  // Configuration refuses a tenant no sink takes; the route is taken away after validation, to see what the node does should one be missing.
  const { node, logs } = await startTestNode(t, [
    'tenants:',
    '  default: { networks: [127.0.0.0/8] }',
    '  orphan: { tokens: [orphan-token-0123456789] }',
  ].join('\n'), tempDir(t), (config) => ({ ...config, sinks: config.sinks.map((sink) => ({ ...sink, tenants: ['default'] })) }));
  const { source, port } = await startRelp(t, node);
  const client = await RelpTestClient.connect(port);
  await client.open();
  const orphan = client.send('syslog', syslogMessage('nowhere to go', '[sluice@32473 token="orphan-token-0123456789"]'));
  const kept = client.send('syslog', syslogMessage('kept'));
  await client.response(kept);
  assert.match((await client.response(orphan)).data, /^500 record dropped/);
  assert.equal((await client.response(kept)).data, '200 OK');
  assert.deepEqual(readTenantRecords(logs, 'default').map((r) => r.msg), ['kept']);
  assert.equal(await node.telemetry.value('sluice_dropped_records_total', { source: 'relp', reason: 'no_route' }), 1);
  await source.stop(Date.now() + 2000);
});

test('relp: a fast sink\'s ack waits for a slow sink\'s earlier transaction', async (t) => {
  const { node, logs } = await startTestNode(t, [
    'tenants:',
    '  default: { networks: [127.0.0.0/8] }',
    '  acme: { tokens: [acme-token-0123456789] }',
    'sinks:',
    '  slow: { tenants: [default], batch_delay: 600ms }',
    '  fast: { tenants: [acme], batch_delay: 1ms }',
  ].join('\n'));
  const { source, port } = await startRelp(t, node);
  const client = await RelpTestClient.connect(port);
  await client.open();
  const slow = client.frame('syslog', syslogMessage('slow sink'));
  const fast = client.frame('syslog', syslogMessage('fast sink', '[sluice@32473 token="acme-token-0123456789"]'));
  client.socket.write(slow.bytes + fast.bytes);
  await waitFor('the fast sink to write its record', () => readTenantRecords(logs, 'acme').length === 1);
  assert.deepEqual(readTenantRecords(logs, 'default'), [], 'the slow sink has not written yet');
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(client.responses().map((f) => f.txnr), [1], 'the fast record is committed but not answered before the slow one');
  await client.response(fast.txnr);
  assert.deepEqual(client.responses().map((f) => [f.txnr, f.data]).slice(1), [[slow.txnr, '200 OK'], [fast.txnr, '200 OK']]);
  await source.stop(Date.now() + 2000);
});

test('relp: garbage, a txnr out of sequence, syslog before open, an oversized frame: counted, that connection closed, others unaffected', async (t) => {
  const { node, logs } = await startTestNode(t);
  const { source, port } = await startRelp(t, node, { maxFrameBytes: 1024 });
  const healthy = await RelpTestClient.connect(port);
  await healthy.open();

  const cases: { name: string; reason: string; run(c: RelpTestClient): Promise<void> }[] = [
    { name: 'garbage', reason: 'bad_txnr', run: async (c) => { c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'); } },
    { name: 'txnr out of sequence', reason: 'txnr_sequence', run: async (c) => {
      await c.open();
      const msg = syslogMessage('skipped ahead');
      c.socket.write(`5 syslog ${msg.length} ${msg}\n`);
    } },
    { name: 'repeated txnr', reason: 'txnr_sequence', run: async (c) => {
      await c.open();
      c.socket.write('1 close 0\n');
    } },
    { name: 'syslog before open', reason: 'not_open', run: async (c) => { c.send('syslog', syslogMessage('too early')); } },
    { name: 'oversized frame', reason: 'too_large', run: async (c) => {
      await c.open();
      c.send('syslog', syslogMessage('x'.repeat(2000)));
    } },
    { name: 'unknown command', reason: 'unknown_command', run: async (c) => {
      await c.open();
      c.send('starttls');
    } },
  ];
  const expected = new Map<string, number>();
  for (const c of cases) {
    const bad = await RelpTestClient.connect(port);
    await c.run(bad);
    await closed(bad.socket);
    expected.set(c.reason, (expected.get(c.reason) ?? 0) + 1);
    assert.equal(await node.telemetry.value('sluice_source_bad_frames_total', { source: 'relp', reason: c.reason }), expected.get(c.reason),
      `${c.name} counted as ${c.reason}`);
    assert.deepEqual(bad.responses().filter((f) => f.txnr > 1), [], `${c.name}: nothing after the open was answered`);
  }
  assert.equal(await node.telemetry.value('sluice_source_bad_frames_total', { source: 'relp' }), cases.length);
  assert.deepEqual(readTenantRecords(logs, 'default'), [], 'nothing from the bad connections was stored');

  const txnr = healthy.send('syslog', syslogMessage('still fine'));
  assert.equal((await healthy.response(txnr)).data, '200 OK');
  assert.deepEqual(readTenantRecords(logs, 'default').map((r) => r.msg), ['still fine']);
  await source.stop(Date.now() + 2000);
});

test('relp: an open repeated inside a session, between records, is answered and the session goes on (found by fuzzing)', async (t) => {
  const { node, logs } = await startTestNode(t);
  const { port } = await startRelp(t, node);
  const client = await RelpTestClient.connect(port);
  await client.open();
  // One chunk: the repeated open lands between two records of one batch.
  let bytes = '';
  const txnrs: number[] = [];
  for (const [command, data] of [['syslog', syslogMessage('before')], ['open', OPEN_OFFERS], ['syslog', syslogMessage('after')]] as const) {
    const frame = client.frame(command, data);
    bytes += frame.bytes;
    txnrs.push(frame.txnr);
  }
  client.socket.write(bytes);
  await client.response(txnrs.at(-1)!);
  assert.deepEqual(client.responses().slice(1).map((f) => [f.txnr, f.data]), [
    [txnrs[0], '200 OK'], [txnrs[1], '200 connection already open - ignored'], [txnrs[2], '200 OK'],
  ]);
  assert.deepEqual(readTenantRecords(logs, 'default').map((r) => r.msg), ['before', 'after']);
  client.socket.end();
  await closed(client.socket);
});

test('relp: a connection from a network no tenant claims, with no tenant taking tokens, is refused at once', async (t) => {
  const { node, logs } = await startTestNode(t, 'tenants:\n  acme: { networks: [127.0.0.1/32] }');
  const { source, port } = await startRelp(t, node);
  const stranger = await RelpTestClient.connect(port, '127.0.0.2');
  stranger.send('open', OPEN_OFFERS);
  await closed(stranger.socket);
  assert.deepEqual(stranger.received, []);
  assert.equal(await node.telemetry.value('sluice_source_refused_total', { source: 'relp', reason: 'no_tenant' }), 1);
  const member = await RelpTestClient.connect(port, '127.0.0.1');
  await member.open();
  assert.equal((await member.response(member.send('syslog', syslogMessage('from acme')))).data, '200 OK');
  assert.deepEqual(readTenantRecords(logs, 'acme').map((r) => r.msg), ['from acme']);
  await source.stop(Date.now() + 2000);
});

test('relp: an open without the syslog command is answered 500 and closed', async (t) => {
  const { node } = await startTestNode(t);
  const { source, port } = await startRelp(t, node);
  const client = await RelpTestClient.connect(port);
  const txnr = client.send('open', 'relp_version=0\ncommands=eventlog');
  assert.match((await client.response(txnr)).data, /^500 /);
  await closed(client.socket);
  assert.equal(await node.telemetry.value('sluice_source_bad_frames_total', { source: 'relp', reason: 'no_syslog_command' }), 1);
  await source.stop(Date.now() + 2000);
});

test('relp: reading stops at the window and resumes as acknowledgements drain', async (t) => {
  const { node, logs } = await startTestNode(t, 'sinks:\n  files: { batch_delay: 400ms }');
  const window = 4;
  const { source, port } = await startRelp(t, node, { window });
  const client = await RelpTestClient.connect(port);
  await client.open();
  const received = () => node.telemetry.value('sluice_source_received_records_total', { source: 'relp' });
  const first = Array.from({ length: window }, (_, i) => client.frame('syslog', syslogMessage(`first ${i}`)));
  client.socket.write(first.map((f) => f.bytes).join(''));
  await waitFor('the first window', async () => (await received()) === window);
  const second = Array.from({ length: window }, (_, i) => client.frame('syslog', syslogMessage(`second ${i}`)));
  client.socket.write(second.map((f) => f.bytes).join(''));
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.equal(await received(), window, 'nothing more is read while the window is full');
  assert.equal([...source.sessions()][0]!.unanswered, window);
  await client.response(second.at(-1)!.txnr);
  assert.equal(await received(), 2 * window);
  assert.deepEqual(client.responses().slice(1).map((f) => f.txnr), [...first, ...second].map((f) => f.txnr));
  assert.equal(readTenantRecords(logs, 'default').length, 2 * window);
  await source.stop(Date.now() + 2000);
});

test('relp: stop answers what was read, then sends serverclose, then closes', async (t) => {
  const { node, logs } = await startTestNode(t, 'sinks:\n  files: { batch_delay: 200ms }');
  const { source, port } = await startRelp(t, node);
  const client = await RelpTestClient.connect(port);
  const idle = await RelpTestClient.connect(port);
  await client.open();
  await idle.open();
  const count = 20;
  const frames = Array.from({ length: count }, (_, i) => client.frame('syslog', syslogMessage(`draining ${i}`)));
  client.socket.write(frames.map((f) => f.bytes).join(''));
  await waitFor('records read', async () => (await node.telemetry.value('sluice_source_received_records_total', { source: 'relp' })) === count);
  assert.equal(client.responses().length, 1, 'the acknowledgements are still pending when stop begins');

  // Far off: a stop that waited out its deadline instead of finishing when the answers went out shows as reaching it.
  const deadline = Date.now() + 60_000;
  await source.stop(deadline);
  assert.ok(Date.now() < deadline, 'stop did not wait out its timeout');
  await closed(client.socket);
  await closed(idle.socket);
  assert.deepEqual(client.received.map((f) => `${f.txnr} ${f.command}`), [
    '1 rsp', ...frames.map((f) => `${f.txnr} rsp`), '0 serverclose',
  ], 'every record answered, then the hint, last');
  assert.ok(client.responses().slice(1).every((f) => f.data === '200 OK'));
  assert.deepEqual(idle.received.map((f) => `${f.txnr} ${f.command}`), ['1 rsp', '0 serverclose']);
  assert.equal(readTenantRecords(logs, 'default').length, count);
  assert.equal(source.health().healthy, false);
  await assert.rejects(RelpTestClient.connect(port), 'no longer accepting');
});

test('relp: a batch held by its tenant\'s rate limit pauses the session; stop routes it at once and answers it', async (t) => {
  const { node, logs } = await startTestNode(t, 'tenants:\n  default:\n    networks: [127.0.0.0/8]\n    limits: { messages_per_second: 1, burst: 1s }');
  const { source, port } = await startRelp(t, node);
  const client = await RelpTestClient.connect(port);
  await client.open();
  // At 1 a second, the tokens for these would take 9 s.
  const frames = Array.from({ length: 10 }, (_, i) => client.frame('syslog', syslogMessage(`limited ${i}`)));
  client.socket.write(frames.map((f) => f.bytes).join(''));
  await waitFor('the batch to be throttled', async () => (await node.telemetry.value('sluice_tenant_throttled_total', { source: 'relp' })) === 1);
  const unread = Array.from({ length: 2 }, (_, i) => client.frame('syslog', syslogMessage(`unread ${i}`)));
  client.socket.write(unread.map((f) => f.bytes).join(''));
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(client.responses().map((f) => f.txnr), [1], 'held, so not answered');
  assert.equal(await node.telemetry.value('sluice_source_received_records_total', { source: 'relp' }), frames.length, 'paused: the later frames are not read');
  const started = Date.now();
  await source.stop(Date.now() + 60_000);
  assert.ok(Date.now() - started < 9000, 'the held batch did not wait the 9 s for its tokens');
  assert.deepEqual(client.received.map((f) => `${f.txnr} ${f.command}`), ['1 rsp', ...frames.map((f) => `${f.txnr} rsp`), '0 serverclose'],
    'the held batch answered, the unread frames left for the agent to resend, then the hint');
  assert.deepEqual(readTenantRecords(logs, 'default').map((r) => r.msg), frames.map((_, i) => `limited ${i}`));
});

test('relp: at the drain deadline, sessions still waiting for their sinks are closed and logged', async (t) => {
  const { node, lines } = await startTestNode(t, 'sinks:\n  files: { batch_delay: 30s }');
  const { source, port } = await startRelp(t, node, { drainTimeoutMs: 200 });
  const client = await RelpTestClient.connect(port);
  await client.open();
  const frames = Array.from({ length: 3 }, (_, i) => client.frame('syslog', syslogMessage(`slow ${i}`)));
  client.socket.write(frames.map((f) => f.bytes).join(''));
  await waitFor('records read', async () => (await node.telemetry.value('sluice_source_received_records_total', { source: 'relp' })) === 3);
  const started = Date.now();
  await source.stop(Date.now() + 60_000);
  assert.ok(Date.now() - started < 30_000, 'stop kept to its drain timeout, not the sink\'s 30 s batch delay');
  await closed(client.socket);
  assert.deepEqual(client.received.map((f) => `${f.txnr} ${f.command}`), ['1 rsp'], 'nothing uncommitted was answered, and no hint was sent');
  const incomplete = lines.filter((l) => l.code === 'SLU0403W');
  assert.equal(incomplete.length, 1);
  assert.equal(incomplete[0]!.unanswered, 3);
});

test('relp: a client that half-closes still gets its answers', async (t) => {
  const { node, logs } = await startTestNode(t);
  const { source, port } = await startRelp(t, node);
  const client = await RelpTestClient.connect(port);
  await client.open();
  const last = client.frame('syslog', syslogMessage('then end of stream'));
  client.socket.end(last.bytes);
  await closed(client.socket);
  assert.equal((await client.response(last.txnr, 0)).data, '200 OK');
  assert.deepEqual(readTenantRecords(logs, 'default').map((r) => r.msg), ['then end of stream']);
  await source.stop(Date.now() + 2000);
});

const noRsyslog = requireProgram('rsyslogd', 'Debian packages rsyslog and rsyslog-relp') || requireProgram('logger', 'Debian package bsdutils');
const OMRELP = ['/usr/lib/x86_64-linux-gnu/rsyslog/omrelp.so', '/usr/lib/rsyslog/omrelp.so'];

test('relp: the real rsyslog (omrelp) delivers N numbered messages exactly once, and again after serverclose and a reconnect', { skip: noRsyslog }, async (t) => {
  if (!OMRELP.some((p) => existsSync(p))) {
    if (process.env.CI === 'true') throw new Error('rsyslog-relp (omrelp) is required under CI=true');
    process.stderr.write('skipping: rsyslog-relp (omrelp.so) not installed\n');
    t.skip('rsyslog-relp not installed');
    return;
  }
  const { node, logs, lines } = await startTestNode(t);
  const { source, port } = await startRelp(t, node);
  const dir = tempDir(t);
  const inputPort = await lateBoundPort('udp');
  const conf = path.join(dir, 'rsyslog.conf');
  writeFileSync(conf, `
global(workDirectory="${dir}")
module(load="imudp")
module(load="omrelp")
input(type="imudp" address="127.0.0.1" port="${inputPort}")
action(type="omrelp" target="127.0.0.1" port="${port}" template="RSYSLOG_SyslogProtocol23Format")
`);
  const rsyslog = spawn('rsyslogd', ['-n', '-f', conf, '-i', path.join(dir, 'rsyslog.pid')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  rsyslog.stdout.on('data', (d: Buffer) => { output += d.toString(); });
  rsyslog.stderr.on('data', (d: Buffer) => { output += d.toString(); });
  t.after(() => { rsyslog.kill('SIGKILL'); });
  const send = (tag: string, msg: string) => execFileSync('logger', ['-n', '127.0.0.1', '-P', String(inputPort), '-d', '--rfc5424', '-t', tag, msg]);
  // rsyslog needs a moment to open its UDP input; resend until the first record shows up.
  await waitFor('rsyslog forwarding over RELP', () => {
    send('probe', 'warming up');
    return readTenantRecords(logs, 'default').length > 0;
  }, 20_000).catch((err: Error) => { throw new Error(`${err.message}; rsyslog said: ${output}`); });

  const count = 200;
  for (let i = 0; i < count; i++) send('viarelp', `numbered ${i}`);
  const numbered = await waitFor('all numbered records', () => {
    const recs = readTenantRecords(logs, 'default').filter((r) => r.app === 'viarelp');
    return recs.length >= count ? recs : undefined;
  }, 20_000);
  // rsyslog forwards in order, resends first: once a last line is stored, any duplicate would have been too.
  send('viarelp-end', 'after the numbered ones');
  await waitFor('the last line', () => readTenantRecords(logs, 'default').some((r) => r.app === 'viarelp-end'), 20_000);
  const final = readTenantRecords(logs, 'default').filter((r) => r.app === 'viarelp');
  assert.equal(final.length, count, 'no duplicates');
  assert.deepEqual(new Set(numbered.map((r) => r.msg)), new Set(Array.from({ length: count }, (_, i) => `numbered ${i}`)));
  assert.equal(await node.telemetry.value('sluice_source_bad_frames_total', { source: 'relp' }), 0);

  // rsyslog keeps one session open; stop asks it to go with serverclose.
  assert.equal([...source.sessions()].length, 1);
  await source.stop(Date.now() + 5000);
  assert.equal([...source.sessions()].length, 0);
  assert.equal(lines.filter((l) => l.code === 'SLU0403W').length, 0, 'every session was answered before the drain deadline');

  // A new listener on the same port: rsyslog reconnects and goes on, still exactly once.
  const again = new RelpSource({ ...DEFAULT_RELP_SOURCE_CONFIG, enabled: true, port }, node.pipeline, node.telemetry);
  await again.start();
  t.after(() => again.stop(Date.now() + 2000));
  for (let i = count; i < 2 * count; i++) send('viarelp', `numbered ${i}`);
  // rsyslog notices the closed session when it next sends, suspends the action and reconnects (about a second).
  await waitFor('records after the reconnect', () => readTenantRecords(logs, 'default').filter((r) => r.app === 'viarelp').length >= 2 * count, 30_000);
  send('viarelp-end', 'after the reconnect');
  await waitFor('the last line after the reconnect', () => readTenantRecords(logs, 'default').filter((r) => r.app === 'viarelp-end').length === 2, 30_000);
  const all = readTenantRecords(logs, 'default').filter((r) => r.app === 'viarelp');
  assert.equal(all.length, 2 * count, 'no duplicates across the reconnect');
  assert.equal(new Set(all.map((r) => r.msg)).size, 2 * count);
  await again.stop(Date.now() + 2000);
});

test('relp: a session paused through its control (the call the memory governor makes) gets its answers late, in order, once resumed', async (t) => {
  // The governor driving the pause itself is test/integration/memory-node.test.ts's; here the session's side of it.
  // Commits come at most once a second, so the pause lands between reading the records and committing them.
  const { node, logs } = await startTestNode(t, 'sinks:\n  files: { type: file, fsync_interval: 1s }\n');
  const { port } = await startRelp(t, node);
  const client = await RelpTestClient.connect(port);
  await client.open();
  const entry = await waitFor('the session', () => [...node.pipeline.sessions.values()].find((e) => e.source === 'relp'));
  // A first record answered: the file was just synced, so the next sync is a second away.
  const first = client.send('syslog', syslogMessage('first'));
  await client.response(first);
  let batch = '';
  const txnrs: number[] = [];
  for (let i = 0; i < 10; i++) {
    const { bytes, txnr } = client.frame('syslog', syslogMessage(`delayed ${i}`));
    batch += bytes;
    txnrs.push(txnr);
  }
  client.socket.write(batch);
  await waitFor('the records read', () => entry.records === 11);
  entry.control.pauseReading();
  await waitFor('the records committed', () => readTenantRecords(logs, 'default').length === 11);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.deepEqual(client.responses().map((f) => f.txnr), [1, first], 'committed, but not answered while paused');
  assert.ok(entry.control.queuedBytes() > 0, 'the held answers are accounted');
  entry.control.resumeReading();
  await client.response(txnrs.at(-1)!);
  assert.deepEqual(client.responses().map((f) => f.txnr), [1, first, ...txnrs]);
  assert.ok(client.responses().slice(1).every((f) => f.data === '200 OK'));
  client.socket.destroy();
});

test('relp: stopping answers a paused session\'s held answers first, then serverclose', async (t) => {
  const { node, logs } = await startTestNode(t, 'sinks:\n  files: { type: file, fsync_interval: 1s }\n');
  const { source, port } = await startRelp(t, node);
  const client = await RelpTestClient.connect(port);
  await client.open();
  const entry = await waitFor('the session', () => [...node.pipeline.sessions.values()].find((e) => e.source === 'relp'));
  const first = client.send('syslog', syslogMessage('first'));
  await client.response(first);
  const txnrs: number[] = [];
  let batch = '';
  for (let i = 0; i < 5; i++) {
    const { bytes, txnr } = client.frame('syslog', syslogMessage(`held ${i}`));
    batch += bytes;
    txnrs.push(txnr);
  }
  client.socket.write(batch);
  await waitFor('the records read', () => entry.records === 6);
  entry.control.pauseReading(); // as an operator's pause would: the governor will not resume it
  await waitFor('the records committed', () => readTenantRecords(logs, 'default').length === 6);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.deepEqual(client.responses().map((f) => f.txnr), [1, first], 'held while paused');
  await source.stop(Date.now() + 2000);
  assert.deepEqual(client.responses().map((f) => f.txnr), [1, first, ...txnrs], 'every held answer, in order');
  assert.equal(client.received.at(-1)?.command, 'serverclose', 'then the hint');
  await closed(client.socket);
});
