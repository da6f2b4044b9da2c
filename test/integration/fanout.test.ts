/**
 * One node, three kinds of sink: records of one tenant reach the file, a
 * syslog receiver over TCP (the real rsyslog), and NATS JetStream; another tenant reaches only
 * the sinks that name it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as natsConnect } from 'nats';
import { closed, connect, readTenantRecords, requireProgram, startTestNode, tempDir, waitFor } from '../helpers.js';
import { startRsyslogReceiver } from '../rsyslog-receiver.js';

const noNats = requireProgram('nats-server', 'Debian package nats-server; CI machines run one on 127.0.0.1:4222');
const noRsyslog = requireProgram('rsyslogd', 'Debian package rsyslog');
const frame = (msg: string): string => `${Buffer.byteLength(msg)} ${msg}`;

test('fan-out: file, syslog over TCP and NATS JetStream each get their tenants\' records', { skip: noNats || noRsyslog }, async (t) => {
  // The real rsyslog receives the syslog sink's stream: what it parsed is what is judged.
  const receiver = await startRsyslogReceiver(t, tempDir(t));
  const receiverPort = receiver.port;
  const suffix = randomBytes(4).toString('hex');
  const stream = `FANOUT_${suffix}`;
  const prefix = `fanout${suffix}`;
  const nc = await natsConnect({ servers: '127.0.0.1:4222' });
  t.after(async () => {
    await (await nc.jetstreamManager()).streams.delete(stream).catch(() => false);
    await nc.close();
  });
  const yaml = [
    'tenants:',
    '  alpha: { networks: [127.0.1.0/24] }',
    '  beta: { networks: [127.0.2.0/24] }',
    'sinks:',
    '  files: { type: file }',
    '  forward:',
    '    type: syslog',
    '    tenants: [alpha]',
    `    syslog: { protocol: tcp, port: ${receiverPort} }`,
    '  bus:',
    '    type: nats',
    '    tenants: [alpha]',
    `    nats: { stream: ${stream}, subject_prefix: ${prefix} }`,
  ].join('\n');
  const { logs, tcpPort } = await startTestNode(t, yaml);
  const alpha = await connect(tcpPort, '127.0.1.1');
  const beta = await connect(tcpPort, '127.0.2.1');
  let a = '';
  for (let i = 0; i < 100; i++) a += frame(`<14>1 - web-1 app - - - alpha ${i}`);
  alpha.end(a);
  beta.end(frame('<14>1 - db-1 app - - - beta only in files'));
  await Promise.all([closed(alpha), closed(beta)]);

  await waitFor('file sink', () => readTenantRecords(logs, 'alpha').length === 100 && readTenantRecords(logs, 'beta').length === 1);
  const received = await waitFor('syslog receiver', () => {
    const lines = receiver.lines();
    return lines.length >= 100 ? lines : undefined;
  });
  // rsyslog's fields: PRI|TIMESTAMP|HOSTNAME|APP|PROCID|MSGID|SD|MSG
  assert.deepEqual(received.map((l) => { const f = l.split('|'); return [f[0], f[2], f[3], f[7]]; }),
    Array.from({ length: 100 }, (_, i) => ['14', 'web-1', 'app', `alpha ${i}`]), 'every record parsed by rsyslog, in order');
  const jsm = await nc.jetstreamManager();
  const info = await waitFor('nats stream', async () => {
    const s = await jsm.streams.info(stream).catch(() => null);
    return s !== null && s.state.messages === 100 ? s : undefined;
  });
  assert.equal(info.state.messages, 100);
  const consumer = await nc.jetstream().consumers.get(stream);
  const first = await consumer.next({ expires: 2000 });
  assert.ok(first);
  assert.match(first.subject, new RegExp(`^${prefix}\\.alpha\\.[0-9a-f]{40}$`));
  assert.equal((JSON.parse(first.string()) as { msg: string }).msg, 'alpha 0');
  assert.ok(!receiver.lines().some((m) => m.includes('beta only')), 'beta is not routed to the forward sink');
});
