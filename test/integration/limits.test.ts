/**
 * Per-tenant rate limits over real sockets: a tenant over its limit is slowed
 * (TCP) or dropped and counted (UDP); a tenant next to it is not held up; the
 * limit can be changed while the node runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { closed, connect, readTenantRecords, startTestNode, waitFor } from '../helpers.js';

const yaml = [
  'tenants:',
  '  slow:',
  '    networks: [127.0.1.0/24]',
  '    limits: { messages_per_second: 500, burst: 200ms }',
  '  fast:',
  '    networks: [127.0.2.0/24]',
].join('\n');
const frame = (msg: string): string => `${Buffer.byteLength(msg)} ${msg}`;

function batch(prefix: string, count: number): string {
  let data = '';
  for (let i = 0; i < count; i++) data += frame(`<14>1 - h app - - - ${prefix} ${i}`);
  return data;
}

test('limits: a TCP tenant over its rate is slowed, loses nothing, and does not hold up its neighbour', async (t) => {
  const { node, logs, tcpPort } = await startTestNode(t, yaml);
  const slow = await connect(tcpPort, '127.0.1.1');
  const fast = await connect(tcpPort, '127.0.2.1');
  const started = Date.now();
  slow.end(batch('slow', 1000)); // 100 in the burst, then 500/s: about 1.8 s
  fast.end(batch('fast', 1000));
  await waitFor('fast tenant', () => readTenantRecords(logs, 'fast').length === 1000);
  const slowWhenFastDone = readTenantRecords(logs, 'slow').length;
  await Promise.all([closed(slow), closed(fast)]);
  await waitFor('slow tenant', () => readTenantRecords(logs, 'slow').length === 1000, 20_000);
  const elapsed = Date.now() - started;
  assert.ok(slowWhenFastDone < 1000, `the fast tenant finished first (slow had ${slowWhenFastDone})`);
  assert.ok(elapsed >= 1200, `1,000 messages at 500/s took ${elapsed} ms`);
  assert.deepEqual(readTenantRecords(logs, 'slow').map((r) => r.msg), Array.from({ length: 1000 }, (_, i) => `slow ${i}`));
  assert.ok((await node.telemetry.value('sluice_tenant_throttled_total', { tenant: 'slow' })) > 0);
  assert.equal(await node.telemetry.value('sluice_tenant_throttled_total', { tenant: 'fast' }), 0);
});

test('limits: UDP over the rate is dropped and counted; raising the limit at runtime lets it through', async (t) => {
  const { node, logs, udpPort } = await startTestNode(t, yaml);
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.1.7', () => resolve()));
  t.after(() => socket.close());
  const send = (msg: string) => new Promise<void>((resolve) => socket.send(`<14>1 - h app - - - ${msg}`, udpPort, '127.0.0.1', () => resolve()));
  for (let i = 0; i < 400; i++) await send(`first ${i}`);
  const dropped = await waitFor('drops counted', async () => {
    const n = await node.telemetry.value('sluice_dropped_records_total', { reason: 'rate_limited' });
    const delivered = readTenantRecords(logs, 'slow').length;
    return n > 0 && n + delivered === 400 ? n : undefined;
  });
  assert.ok(dropped >= 100, `${dropped} of 400 dropped at 500/s with a 100-message burst`);
  node.setTenantLimits('slow', { messagesPerSecond: 0, bytesPerSecond: 0, burstMs: 1000, maxConnections: 0 });
  for (let i = 0; i < 400; i++) await send(`second ${i}`);
  await waitFor('all of the second round', () => readTenantRecords(logs, 'slow').filter((r) => String(r.msg).startsWith('second')).length === 400);
  assert.equal(await node.telemetry.value('sluice_dropped_records_total', { reason: 'rate_limited' }), dropped);
});
