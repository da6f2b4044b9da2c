/**
 * Bad input costs only its own connection: it is counted, logged with its
 * code, and every other connection carries on untouched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { closed, connect, readTenantRecords, startTestNode, waitFor } from '../helpers.js';

const frame = (msg: string): string => `${Buffer.byteLength(msg)} ${msg}`;

async function sendAll(socket: import('node:net').Socket, data: string | Buffer): Promise<void> {
  await new Promise<void>((resolve, reject) => socket.write(data, (err) => (err ? reject(err) : resolve())));
}

test('a frame over the maximum closes that connection only; others keep flowing', async (t) => {
  const { node, logs, lines, tcpPort } = await startTestNode(t, 'sources:\n  syslog_udp: { port: 0 }\n  syslog_tcp: { port: 0, max_frame: 1KiB }');
  const good = await connect(tcpPort);
  const bad = await connect(tcpPort);
  await sendAll(good, frame('<13>1 - host1 app - - - before'));
  await sendAll(bad, `<13>ok line\n${'x'.repeat(2000)}\n<13>after\n`);
  await closed(bad);
  await sendAll(good, frame('<13>1 - host1 app - - - after'));
  good.end();
  await closed(good);
  const recs = await waitFor('records', () => {
    const r = readTenantRecords(logs, 'default');
    return r.length >= 3 ? r : undefined;
  });
  assert.deepEqual(recs.map((r) => r.msg).sort(), ['after', 'before', 'ok line']);
  assert.equal(await node.telemetry.value('sluice_source_bad_frames_total', { reason: 'too_large' }), 1);
  const event = lines.find((l) => l.code === 'SLU0101W');
  assert.equal(event?.reason, 'too_large');
  assert.equal(event?.source, 'syslog_tcp');
});

test('a bad octet count closes the connection and is counted', async (t) => {
  const { node, tcpPort } = await startTestNode(t);
  const bad = await connect(tcpPort);
  bad.write('0 <13>1 - - - - - - x');
  await closed(bad);
  assert.equal(await node.telemetry.value('sluice_source_bad_frames_total', { reason: 'bad_octet_count' }), 1);
  const huge = await connect(tcpPort);
  huge.write('99999999 <13>x');
  await closed(huge);
  assert.equal(await node.telemetry.value('sluice_source_bad_frames_total', { reason: 'too_large' }), 1);
});

test('an octet-counted frame cut short by the peer is counted as truncated', async (t) => {
  const { node, tcpPort } = await startTestNode(t);
  const socket = await connect(tcpPort);
  socket.end('100 <13>only part of it');
  await waitFor('truncated counted', async () => (await node.telemetry.value('sluice_source_bad_frames_total', { reason: 'truncated' })) === 1);
});

test('invalid UTF-8 is kept with replacement characters and flagged', async (t) => {
  const { node, logs, tcpPort, udpPort } = await startTestNode(t);
  const socket = await connect(tcpPort);
  const bytes = Buffer.concat([Buffer.from('<13>1 - h app - - - bad '), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(' end\n')]);
  socket.end(bytes);
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => udp.send(Buffer.from('<13>1 - h app - - - fine \uFFFD replacement char'), udpPort, '127.0.0.1', () => resolve()));
  udp.close();
  const recs = await waitFor('records', () => {
    const r = readTenantRecords(logs, 'default');
    return r.length >= 2 ? r : undefined;
  });
  const bad = recs.find((r) => String(r.msg).startsWith('bad'));
  assert.equal(bad?.msg, 'bad \uFFFD\uFFFD\uFFFD end');
  assert.equal(bad?.invalid_utf8, true);
  const fine = recs.find((r) => String(r.msg).startsWith('fine'));
  assert.equal(fine?.invalid_utf8, undefined, 'a real U+FFFD sent as valid UTF-8 is not flagged');
  assert.equal(await node.telemetry.value('sluice_source_invalid_utf8_total'), 1);
});

test('garbage on one connection never affects another', async (t) => {
  const { node, logs, tcpPort } = await startTestNode(t);
  const clean = await connect(tcpPort);
  const noisy = await connect(tcpPort);
  let seed = 42;
  const random = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  const garbage = Buffer.alloc(64 * 1024);
  for (let i = 0; i < garbage.length; i++) garbage[i] = random() & 0xff;
  for (let i = 0; i < 200; i++) {
    clean.write(frame(`<14>1 2026-11-27T00:00:00Z host app - - - clean ${i}`));
    if (i % 20 === 0) noisy.write(garbage.subarray(i * 100, i * 100 + 3000));
  }
  clean.end();
  noisy.end();
  await Promise.all([closed(clean), closed(noisy)]);
  const recs = await waitFor('clean records', () => {
    const r = readTenantRecords(logs, 'default').filter((x) => String(x.msg).startsWith('clean'));
    return r.length >= 200 ? r : undefined;
  });
  assert.deepEqual(recs.map((r) => r.msg), Array.from({ length: 200 }, (_, i) => `clean ${i}`));
  assert.ok(recs.every((r) => r.parse_error === undefined && r.hostname === 'host'));
  // The node is still healthy and accepting.
  const after = await connect(tcpPort);
  after.end('<13>still here\n');
  await waitFor('still here', () => readTenantRecords(logs, 'default').some((r) => r.msg === 'still here'));
  assert.ok((await node.telemetry.value('sluice_source_received_records_total')) > 200);
});

test('sources outside every tenant network are refused and counted, over TCP and UDP', async (t) => {
  const yaml = 'tenants:\n  default:\n    networks: [127.0.0.1/32]';
  const { node, logs, tcpPort, udpPort, lines } = await startTestNode(t, yaml);
  const stranger = await connect(tcpPort, '127.0.0.2');
  stranger.write('<13>1 - spoof app - - - should never land\n');
  await closed(stranger);
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.2', () => resolve()));
  await new Promise<void>((resolve) => udp.send('<13>1 - spoof app - - - nor this', udpPort, '127.0.0.1', () => resolve()));
  udp.close();
  const friend = await connect(tcpPort, '127.0.0.1');
  friend.end('<13>1 - host app - - - welcome\n');
  await waitFor('friend record', () => readTenantRecords(logs, 'default').length === 1);
  await waitFor('udp refusal', async () => (await node.telemetry.value('sluice_source_refused_total', { source: 'syslog_udp', reason: 'no_tenant' })) === 1);
  assert.equal(await node.telemetry.value('sluice_source_refused_total', { source: 'syslog_tcp', reason: 'no_tenant' }), 1);
  assert.deepEqual(readTenantRecords(logs, 'default').map((r) => r.msg), ['welcome']);
  assert.ok(lines.some((l) => l.code === 'SLU0100W' && l.peer === '127.0.0.2'));
});

test('malformed messages are kept raw with the parse-error flag', async (t) => {
  const { node, logs, tcpPort } = await startTestNode(t);
  const socket = await connect(tcpPort);
  socket.end('<999>not a priority\n<13>1 2026-13-45T99:00:00Z host app - - - bad timestamp\nplain words, no header\n');
  const recs = await waitFor('records', () => {
    const r = readTenantRecords(logs, 'default');
    return r.length >= 3 ? r : undefined;
  });
  assert.deepEqual(recs.map((r) => [r.msg, r.parse_error]), [
    ['<999>not a priority', true],
    ['<13>1 2026-13-45T99:00:00Z host app - - - bad timestamp', true],
    ['plain words, no header', true],
  ]);
  assert.equal(await node.telemetry.value('sluice_source_parse_errors_total'), 3);
});
