/**
 * A sink that is down for 30 s, behind a disk buffer: every acknowledged
 * record reaches it once it is back — even across a node restart in the
 * middle of the outage — and the other sink of the route never waits for it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { SluiceNode } from '../../src/ops/node.js';
import { startRsyslogReceiver } from '../rsyslog-receiver.js';
import { lateBoundPort, memoryLogger, requireProgram, readTenantRecords, tempDir, testConfig, waitFor } from '../helpers.js';

const OUTAGE_MS = 30_000;
const noRsyslog = requireProgram('rsyslogd', 'Debian package rsyslog');

async function ingest(node: SluiceNode, from: number, count: number): Promise<void> {
  const port = node.addresses().http!.port;
  for (let i = from; i < from + count; i += 100) {
    const body = Array.from({ length: 100 }, (_, k) => JSON.stringify({ msg: `n ${i + k}`, hostname: 'web-1' })).join('\n');
    const res = await request(`http://127.0.0.1:${port}/v1/ingest`, { method: 'POST', body });
    assert.equal(res.statusCode, 200, await res.body.text());
  }
}

test('faults: a syslog receiver down for 30 s behind a disk buffer loses nothing acknowledged, across a node restart', { skip: noRsyslog, timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const receiverPort = await lateBoundPort();
  const yaml = [
    'sinks:',
    '  files: { type: file }',
    '  forward:',
    '    type: syslog',
    `    syslog: { protocol: tcp, port: ${receiverPort} }`,
    '    buffer: { type: disk, max_size: 64MiB }',
  ].join('\n');
  const config = testConfig(dir, yaml);
  const startedAt = Date.now();
  let node = new SluiceNode(config, memoryLogger().logger);
  await node.start();
  t.after(() => node.stop().then(() => undefined));

  await ingest(node, 0, 1000);
  // Answered 200 with the receiver down: the file and the disk buffer had committed them.
  assert.equal(readTenantRecords(`${dir}/logs`, 'default').length, 1000, 'the file sink is not held up by the dead one');

  await node.stop();
  node = new SluiceNode(config, memoryLogger().logger);
  await node.start();
  await ingest(node, 1000, 1000);
  assert.equal(readTenantRecords(`${dir}/logs`, 'default').length, 2000);

  await new Promise((resolve) => setTimeout(resolve, Math.max(0, startedAt + OUTAGE_MS - Date.now())));
  // The real rsyslog comes up where the sink points: what it parsed is what is judged.
  const receiver = await startRsyslogReceiver(t, tempDir(t), { port: receiverPort });
  // rsyslog's fields: PRI|TIMESTAMP|HOSTNAME|APP|PROCID|MSGID|SD|MSG
  const messages = () => receiver.lines().map((l) => l.split('|')[7] ?? '');
  await waitFor('every record at the receiver', () => new Set(messages()).size === 2000, 60_000);
  const received = messages();
  const numbers = new Set(received.map((m) => Number(m.slice(m.lastIndexOf('n ') + 2))));
  for (let i = 0; i < 2000; i++) assert.ok(numbers.has(i), `record ${i} missing at the receiver`);
  await node.stop();
  t.diagnostic(`faults: ${received.length} frames for 2000 records after a ${OUTAGE_MS / 1000} s outage and a restart`);
});
