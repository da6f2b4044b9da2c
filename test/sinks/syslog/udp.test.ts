import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { setImmediate as nextTurn } from 'node:timers/promises';
import pino from 'pino';
import { LogRecord } from '../../../src/core/record.js';
import { parseSyslog } from '../../../src/sources/syslog/parse.js';
import { SyslogSink } from '../../../src/sinks/syslog/sink.js';
import { DEFAULT_SYSLOG_SINK, type SyslogSinkConfig } from '../../../src/sinks/syslog/config.js';
import { Telemetry } from '../../../src/telemetry/telemetry.js';
import { waitFor, watchLoopStalls } from '../../helpers.js';

const RECEIVED = '2026-11-27T14:20:00.123Z';

function records(tenant: string, from: number, count: number, msgBytes = 0): LogRecord[] {
  const out: LogRecord[] = [];
  for (let i = from; i < from + count; i++) {
    const rec = new LogRecord();
    rec.tenant = tenant;
    rec.host = 'a'.repeat(40);
    rec.ts = rec.received = RECEIVED;
    rec.hostname = 'web-1';
    rec.app = 'app';
    rec.msg = `message ${i}` + (msgBytes > 0 ? ' ' + 'x'.repeat(msgBytes) : '');
    out.push(rec);
  }
  return out;
}

function config(port: number, overrides: Partial<SyslogSinkConfig> = {}): SyslogSinkConfig {
  return { ...DEFAULT_SYSLOG_SINK, name: 'fwd_udp', protocol: 'udp', host: '127.0.0.1', port, batchDelayMs: 1, ...overrides };
}

async function receiver(t: { after(fn: () => void): void }): Promise<{ port: number; messages: string[] }> {
  const socket = dgram.createSocket('udp4');
  const messages: string[] = [];
  socket.on('message', (m) => messages.push(m.toString('utf8')));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  socket.setRecvBufferSize(8 * 1024 * 1024);
  t.after(() => socket.close());
  return { port: socket.address().port, messages };
}

test('udp: one RFC 5424 datagram per record, no acknowledgement, counted as written', async (t) => {
  const rx = await receiver(t);
  const telemetry = new Telemetry(pino({ level: 'silent' }));
  const sink = new SyslogSink(config(rx.port), telemetry);
  assert.equal(sink.acknowledges, false);
  await sink.start();
  sink.write('acme', records('acme', 0, 100), null);
  sink.write('globex', records('globex', 100, 100), null);
  await waitFor('200 datagrams', () => rx.messages.length === 200);
  await sink.stop(Date.now() + 2000);
  const seen = rx.messages.map((text) => {
    const rec = new LogRecord();
    parseSyslog(text, rec, Date.now());
    assert.equal(rec.parseError, false, text);
    assert.deepEqual([rec.hostname, rec.app, rec.ts], ['web-1', 'app', RECEIVED]);
    return Number(rec.msg.split(' ')[1]);
  });
  assert.deepEqual(seen.sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i));
  assert.equal(await telemetry.value('sluice_sink_written_records_total', { sink: 'fwd_udp' }), 200);
});

test('udp: past max_pending_datagrams sends are dropped and counted as socket_full; the event loop keeps turning', async (t) => {
  const rx = await receiver(t);
  const telemetry = new Telemetry(pino({ level: 'silent' }));
  // A small cap and big batches: each batch hands the socket more than the cap at once.
  const sink = new SyslogSink(config(rx.port, { maxPendingDatagrams: 32, batchBytes: 1024 * 1024 }), telemetry);
  await sink.start();
  const stalls = watchLoopStalls(1);
  const total = 40_000;
  for (let i = 0; i < total; i += 2000) {
    sink.write('acme', records('acme', i, 2000, 200), null);
    await nextTurn();
  }
  await sink.stop(Date.now() + 10_000);
  const maxGap = stalls.stop();
  const written = await telemetry.value('sluice_sink_written_records_total', { sink: 'fwd_udp' });
  const full = await telemetry.value('sluice_sink_dropped_records_total', { sink: 'fwd_udp', reason: 'socket_full' });
  assert.ok(full > 0, 'some sends were refused');
  assert.equal(written + full, total, 'every record is either handed to the socket or counted as dropped');
  const kernelFull = await telemetry.value('sluice_sink_dropped_records_total', { sink: 'fwd_udp', reason: 'kernel_full' });
  assert.ok(kernelFull <= written, 'the kernel can only refuse datagrams it was handed');
  await waitFor('the datagrams handed over', () => rx.messages.length >= written * 0.9);
  assert.ok(maxGap < 250, `the event loop stalled for ${maxGap.toFixed(0)} ms of CPU`);
});

test('udp: a receiver that is not there costs counted errors, nothing else', async (t) => {
  // A port nobody listens on: the kernel answers with ICMP port unreachable, reported on later sends.
  const probe = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
  const port = probe.address().port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const telemetry = new Telemetry(pino({ level: 'silent' }));
  const sink = new SyslogSink(config(port), telemetry);
  await sink.start();
  t.after(() => sink.destroy());
  for (let i = 0; i < 20; i++) {
    sink.write('acme', records('acme', i * 10, 10), null);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await waitFor('send errors counted', async () =>
    await telemetry.value('sluice_sink_dropped_records_total', { sink: 'fwd_udp', reason: 'send_error' }) > 0);
  assert.equal(sink.congested(), false);
  await sink.stop(Date.now() + 2000);
});

test('udp: stop() before start() and twice is safe; a write after stop is counted, not sent', async () => {
  const telemetry = new Telemetry(pino({ level: 'silent' }));
  const sink = new SyslogSink(config(9), telemetry);
  await sink.stop(Date.now() + 100);
  await sink.stop(Date.now() + 100);
  sink.destroy();
  assert.equal(sink.write('acme', records('acme', 0, 3), null), true);
  assert.equal(await telemetry.value('sluice_sink_dropped_records_total', { sink: 'fwd_udp', reason: 'stopped' }), 3);
});
