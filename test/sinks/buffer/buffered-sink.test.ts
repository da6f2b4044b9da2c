/**
 * The buffered sink end to end, with a real syslog TCP sink behind it and a
 * real receiver (rsyslog): the receiver is down while a flooding tenant and then a
 * steady tenant write; once it is up, every record arrives once, each
 * tenant's in order, and the steady tenant's records are not queued behind
 * the flood's backlog — neither on disk (the buffer's round-robin) nor at the
 * sink (the flood is held while the sink is full of it, and the steady tenant
 * goes on).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AckStatus, AckToken } from '../../../src/core/ack.js';
import { LogRecord } from '../../../src/core/record.js';
import { BufferedSink } from '../../../src/sinks/buffer/buffered-sink.js';
import { DEFAULT_DISK_BUFFER_CONFIG } from '../../../src/sinks/buffer/config.js';
import { SyslogSink } from '../../../src/sinks/syslog/sink.js';
import { DEFAULT_SYSLOG_SINK } from '../../../src/sinks/syslog/config.js';
import { startRsyslogReceiver } from '../../rsyslog-receiver.js';
import { lateBoundPort, requireProgram, silentTelemetry, tempDir, waitFor } from '../../helpers.js';

const noRsyslog = requireProgram('rsyslogd', 'Debian package rsyslog');

const RECEIVED = '2026-11-27T14:20:00.123Z';

function records(tenant: string, from: number, count: number): LogRecord[] {
  return Array.from({ length: count }, (_, i) => {
    const rec = new LogRecord();
    rec.tenant = tenant;
    rec.ts = rec.received = RECEIVED;
    rec.msg = `${'x'.repeat(150)} message ${from + i}`;
    return rec;
  });
}

test('buffered sink: after an outage a steady tenant\'s records reach the receiver early, not after a flooding tenant\'s backlog; every record once, in order per tenant', { skip: noRsyslog, timeout: 120_000 }, async (t) => {
  const port = await lateBoundPort();
  const telemetry = silentTelemetry();
  const inner = new SyslogSink({
    ...DEFAULT_SYSLOG_SINK, name: 'fwd', protocol: 'tcp', port, identitySdId: 'sluice@32473', batchDelayMs: 2, batchBytes: 8 * 1024,
    // A small sink queue, so that the flood fills it while the receiver is down.
    queueHighWaterBytes: 64 * 1024, queueMaxBytes: 256 * 1024, retryInitialMs: 20, retryMaxMs: 100, connectTimeoutMs: 2000,
  }, telemetry);
  const sink = new BufferedSink(inner, tempDir(t), { ...DEFAULT_DISK_BUFFER_CONFIG, syncIntervalMs: 1 }, telemetry);
  await sink.start();
  t.after(() => sink.stop(Date.now() + 5000));

  const FLOOD = 6000;
  const STEADY = 60;
  const committed: Promise<AckStatus>[] = [];
  const write = (tenant: string, from: number, count: number): void => {
    committed.push(new Promise((resolve) => {
      const ack = new AckToken(resolve);
      ack.retain();
      sink.write(tenant, records(tenant, from, count), ack);
      ack.seal();
    }));
  };
  for (let i = 0; i < FLOOD; i += 100) write('flood', i, 100);
  for (let i = 0; i < STEADY; i += 5) write('steady', i, 5);
  assert.ok((await Promise.all(committed)).every((status) => status === AckStatus.Committed), 'every batch is on disk before the receiver is up');

  // The real rsyslog comes up where the sink points; its fields: PRI|TIMESTAMP|HOSTNAME|APP|PROCID|MSGID|SD|MSG.
  const receiver = await startRsyslogReceiver(t, tempDir(t), { port });
  const arrivals = (): [string, number][] => receiver.lines().map((line) => {
    const fields = line.split('|');
    return [/tenant="([^"]+)"/.exec(fields[6]!)![1]!, Number(fields[7]!.slice(fields[7]!.lastIndexOf(' ') + 1))];
  });
  const received = await waitFor('every record at the receiver', () => {
    const seen = arrivals();
    return seen.length >= FLOOD + STEADY ? seen : undefined;
  }, 60_000);

  for (const [tenant, count] of [['flood', FLOOD], ['steady', STEADY]] as const) {
    assert.deepEqual(received.filter(([who]) => who === tenant).map(([, n]) => n), Array.from({ length: count }, (_, i) => i), `${tenant}: every record once, in order`);
  }
  const lastSteady = received.findLastIndex(([who]) => who === 'steady');
  t.diagnostic(`the steady tenant's last record was number ${lastSteady + 1} of ${received.length} to arrive`);
  assert.ok(lastSteady < received.length * 0.25, `the steady tenant's last record arrived as number ${lastSteady + 1} of ${received.length}`);
});
