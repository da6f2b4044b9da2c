/**
 * Syslog over UDP in a node with two workers: the UDP reader thread binds the
 * port exclusively (node:dgram has no SO_REUSEPORT here), so one worker
 * reads and the other stands by; when the reading worker dies, the other
 * takes the port over.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import path from 'node:path';
import { Primary } from '../../../src/ops/workers/primary.js';
import { lateBoundPort, memoryLogger, readTenantRecords, tempDir, testConfig, waitFor } from '../../helpers.js';

test('cluster UDP: one worker reads the port, the other stands by and takes it over when the first dies', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const udpPort = await lateBoundPort();
  const { logger } = memoryLogger();
  const primary = new Primary(testConfig(dir, [
    'workers: 2',
    // The dead worker is not back before the standby has taken over.
    'supervision: { initial_backoff: 60s, max_backoff: 60s }',
    `sources: { syslog_udp: { port: ${udpPort} }, relp: { enabled: false }, http: { enabled: false } }`,
  ].join('\n')), { configPath: null, logger });
  t.after(() => primary.stop(Date.now() + 5000));
  await primary.start();
  const readers = primary.readyWorkers().filter((w) => w.addresses!.syslogUdp !== null);
  assert.equal(readers.length, 1, 'one worker holds the UDP port');
  assert.equal(readers[0]!.addresses!.syslogUdp!.port, udpPort);

  const socket = dgram.createSocket('udp4');
  t.after(() => socket.close());
  const logs = path.join(dir, 'logs');
  const delivered = (msg: string) => readTenantRecords(logs, 'default').some((r) => r.msg === msg);
  socket.send('<14>1 - h app - - - before', udpPort, '127.0.0.1');
  await waitFor('the datagram sent before', () => delivered('before'), 30_000);

  const victim = readers[0]!;
  process.kill(victim.worker.process.pid!, 'SIGKILL');
  await victim.exited;
  // Datagrams sent before the standby has bound are refused by the kernel: send until one arrives.
  let sent = 0;
  await waitFor('a datagram read by the standby worker', () => {
    socket.send(`<14>1 - h app - - - after ${sent++}`, udpPort, '127.0.0.1');
    return readTenantRecords(logs, 'default').some((r) => String(r.msg).startsWith('after '));
  }, 30_000);
  assert.equal(primary.readyWorkers().length, 1, 'the dead worker is still in its backoff');
});
