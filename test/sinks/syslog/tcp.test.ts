/**
 * Syslog forwarding over TCP and TLS against real receivers: rsyslog (imtcp,
 * plain and gtls with client certificates) writing to a file through a
 * template, and loopback servers that misbehave (never read, never finish
 * the TLS handshake).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { existsSync } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import pino from 'pino';
import { AckStatus } from '../../../src/core/ack.js';
import { LogRecord } from '../../../src/core/record.js';
import { SyslogSink } from '../../../src/sinks/syslog/sink.js';
import { DEFAULT_SYSLOG_SINK, type SyslogSinkConfig } from '../../../src/sinks/syslog/config.js';
import { SyslogFramer } from '../../../src/sources/syslog/framing.js';
import { Telemetry } from '../../../src/telemetry/telemetry.js';
import { makePki } from '../../certs.js';
import { ackInto, requireProgram, tempDir, waitFor, watchLoopStalls } from '../../helpers.js';
import { startRsyslogReceiver } from '../../rsyslog-receiver.js';

const TS = '2026-11-27T14:20:00.123Z';

function records(from: number, count: number, padding = 0): LogRecord[] {
  const out: LogRecord[] = [];
  for (let i = from; i < from + count; i++) {
    const rec = new LogRecord();
    rec.tenant = 'acme';
    rec.host = 'b'.repeat(40);
    rec.ts = rec.received = TS;
    rec.facility = 3;
    rec.severity = 6;
    rec.hostname = 'web-1';
    rec.app = 'shop';
    rec.procid = '42';
    rec.msgid = 'ORDER';
    rec.sd = { 'order@32473': { id: String(i), note: 'say "hi" ]' } };
    rec.msg = (padding > 0 ? 'x'.repeat(padding) + ' ' : '') + `message ${i}`;
    out.push(rec);
  }
  return out;
}

function sinkConfig(name: string, port: number, overrides: Partial<SyslogSinkConfig> = {}): SyslogSinkConfig {
  return {
    ...DEFAULT_SYSLOG_SINK, name, protocol: 'tcp', host: '127.0.0.1', port, batchDelayMs: 2, retryInitialMs: 50, retryMaxMs: 500,
    ...overrides,
  };
}

const noRsyslog = requireProgram('rsyslogd', 'Debian packages rsyslog and rsyslog-gnutls');

function gtlsMissing(): string | false {
  const found = ['/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so', '/usr/lib/rsyslog/lmnsd_gtls.so', '/usr/lib64/rsyslog/lmnsd_gtls.so']
    .some((p) => existsSync(p));
  if (found) return false;
  if (process.env.CI === 'true') throw new Error('rsyslog-gnutls is required under CI=true');
  return 'rsyslog-gnutls not installed';
}

test('tcp: rsyslog receives octet-counted RFC 5424 frames with every field intact', { skip: noRsyslog }, async (t) => {
  const dir = tempDir(t);
  const rsyslog = await startRsyslogReceiver(t, dir);
  const sink = new SyslogSink(sinkConfig('to_rsyslog', rsyslog.port), new Telemetry(pino({ level: 'silent' })));
  await sink.start();
  const statuses: AckStatus[] = [];
  for (let i = 0; i < 10; i++) sink.write('acme', records(i * 50, 50), ackInto(statuses));
  await sink.stop(Date.now() + 5000);
  assert.deepEqual(statuses, Array(10).fill(AckStatus.Committed));
  const lines = await waitFor('500 lines', () => { const l = rsyslog.lines(); return l.length >= 500 ? l : undefined; });
  assert.equal(lines.length, 500);
  for (const [i, line] of lines.entries()) {
    assert.equal(line, `30|${TS}|web-1|shop|42|ORDER|[order@32473 id="${i}" note="say \\"hi\\" \\]"]|message ${i}`);
  }
});

test('tls: rsyslog (gtls, client certificate required) receives from the sink; a sink trusting another CA never connects', { skip: noRsyslog }, async (t) => {
  const gtls = gtlsMissing();
  if (gtls) {
    t.skip(gtls);
    return;
  }
  const dir = tempDir(t);
  const pki = makePki(dir);
  const client = pki.client('sluice-node', 'sluice-node.example');
  const rsyslog = await startRsyslogReceiver(t, dir, { tls: { ca: pki.ca.cert, cert: pki.server.cert, key: pki.server.key } });
  const telemetry = new Telemetry(pino({ level: 'silent' }));
  const tlsOptions = { caFile: pki.ca.cert, certFile: client.cert, keyFile: client.key, serverName: null };
  const sink = new SyslogSink(sinkConfig('tls_ok', rsyslog.port, { protocol: 'tls', tls: tlsOptions }), telemetry);
  const rogue = new SyslogSink(sinkConfig('tls_rogue', rsyslog.port, { protocol: 'tls', tls: { ...tlsOptions, caFile: pki.rogueCa.cert } }), telemetry);
  await sink.start();
  await rogue.start();
  t.after(() => rogue.destroy());
  const statuses: AckStatus[] = [];
  for (let i = 0; i < 4; i++) sink.write('acme', records(i * 25, 25), ackInto(statuses));
  const rogueStatuses: AckStatus[] = [];
  rogue.write('acme', records(1000, 5), ackInto(rogueStatuses));
  await sink.stop(Date.now() + 5000);
  assert.deepEqual(statuses, Array(4).fill(AckStatus.Committed));
  const lines = await waitFor('100 lines', () => { const l = rsyslog.lines(); return l.length >= 100 ? l : undefined; });
  assert.deepEqual(lines.map((l) => Number(l.split(' ').at(-1))), Array.from({ length: 100 }, (_, i) => i));
  await waitFor('rogue retries', async () => await telemetry.value('sluice_sink_errors_total', { sink: 'tls_rogue' }) >= 2);
  assert.deepEqual(rogueStatuses, [], 'nothing committed to an unverified receiver');
  assert.match(rogue.health().detail ?? '', /certificate/);
  assert.ok(rsyslog.lines().every((l) => !l.endsWith('message 1000')));
});

test('tls: a receiver that accepts but never completes the handshake hits the connect timeout, and is retried', async (t) => {
  const silent = net.createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => { silent.close(); });
  silent.on('connection', (s) => t.after(() => s.destroy()));
  const telemetry = new Telemetry(pino({ level: 'silent' }));
  const port = (silent.address() as net.AddressInfo).port;
  const sink = new SyslogSink(sinkConfig('slow_tls', port, { protocol: 'tls', connectTimeoutMs: 150, retryInitialMs: 20, retryMaxMs: 40 }), telemetry);
  await sink.start();
  t.after(() => sink.destroy());
  sink.write('acme', records(0, 1), null);
  const started = Date.now();
  await waitFor('two timeouts', async () => await telemetry.value('sluice_sink_errors_total', { sink: 'slow_tls' }) >= 2);
  assert.ok(Date.now() - started >= 250, 'each attempt waited for its timeout');
  assert.match(sink.health().detail ?? '', /timed out after 150 ms/);
});

test('tcp: a receiver that never reads: the queue stops at its bound and write() says false, other sinks go on; it drains once reading resumes', async (t) => {
  // The stuck receiver: accepts, then never reads, until told to.
  const stuckSockets: net.Socket[] = [];
  let stuckFrames = 0;
  const stuck = net.createServer((socket) => {
    const framer = new SyslogFramer(1 << 20, () => { stuckFrames++; });
    socket.on('data', (chunk) => framer.push(chunk));
    socket.pause();
    stuckSockets.push(socket);
  });
  await new Promise<void>((resolve) => stuck.listen(0, '127.0.0.1', resolve));
  t.after(() => { for (const s of stuckSockets) s.destroy(); stuck.close(); });
  // A healthy receiver for the other sink.
  let healthyFrames = 0;
  const healthy = net.createServer((socket) => {
    const framer = new SyslogFramer(1 << 20, () => { healthyFrames++; });
    socket.on('data', (chunk) => framer.push(chunk));
  });
  await new Promise<void>((resolve) => healthy.listen(0, '127.0.0.1', resolve));
  t.after(() => { healthy.close(); });

  const telemetry = new Telemetry(pino({ level: 'silent' }));
  const bounds = { queueHighWaterBytes: 512 * 1024, queueMaxBytes: 1024 * 1024 };
  const blocked = new SyslogSink(sinkConfig('blocked', (stuck.address() as net.AddressInfo).port, bounds), telemetry);
  const other = new SyslogSink(sinkConfig('other', (healthy.address() as net.AddressInfo).port, bounds), telemetry);
  await blocked.start();
  await other.start();
  t.after(() => { blocked.destroy(); other.destroy(); });
  let drains = 0;
  blocked.onDrain(() => drains++);

  const stalls = watchLoopStalls(2);
  const statuses: AckStatus[] = [];
  const perWrite = 100;
  let writes = 0;
  let sawFalse = false;
  let maxQueued = 0;
  let writeBytes = 0;
  // Until the blocked sink refuses batches, or 100 MB, whichever comes first.
  while (writes < 1000 && await telemetry.value('sluice_sink_dropped_records_total', { sink: 'blocked', reason: 'queue_full' }) === 0) {
    const batch = records(writes * perWrite, perWrite, 900);
    const before = blocked.queuedBytes();
    if (!blocked.write('acme', batch, ackInto(statuses))) sawFalse = true;
    writeBytes = Math.max(writeBytes, blocked.queuedBytes() - before);
    maxQueued = Math.max(maxQueued, blocked.queuedBytes());
    assert.equal(other.write('acme', batch, null), true, 'the other sink is never congested');
    writes++;
    await nextTurn();
  }
  const maxGap = stalls.stop();
  assert.ok(sawFalse, 'write() said false');
  assert.equal(blocked.congested(), true);
  assert.ok(maxQueued <= bounds.queueMaxBytes + writeBytes, `queue reached ${maxQueued} bytes`);
  const refused = await telemetry.value('sluice_sink_dropped_records_total', { sink: 'blocked', reason: 'queue_full' });
  assert.equal(refused, perWrite, 'one batch refused, then the loop stopped');
  await waitFor('the other sink delivered everything', () => healthyFrames === writes * perWrite, 20_000);
  assert.ok(maxGap < 250, `the event loop stalled for ${maxGap.toFixed(0)} ms of CPU`);

  for (const s of stuckSockets) s.resume();
  await waitFor('drain', () => drains === 1, 20_000);
  await blocked.stop(Date.now() + 20_000);
  const committed = statuses.filter((s) => s === AckStatus.Committed).length;
  assert.equal(committed, writes - 1);
  assert.deepEqual(statuses.filter((s) => s === AckStatus.Failed).length, 1);
  await waitFor('every committed record read', () => stuckFrames === committed * perWrite, 20_000);
});
