/**
 * The sender chain's shared lane (the syslog and NATS sinks): queue,
 * batching, retry, classification of errors, high water and drain, stop and
 * destroy. Most tests drive it through
 * the syslog TCP sink against real sockets; the classification tests use a
 * transport that fails on cue, since no real receiver fails on cue.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { AckStatus, AckToken } from '../../src/core/ack.js';
import { LogRecord } from '../../src/core/record.js';
import { EncodedQueue } from '../../src/sinks/encoded-queue.js';
import { DeliverySink } from '../../src/sinks/delivery/chain.js';
import { DEFAULT_DELIVERY } from '../../src/sinks/delivery/config.js';
import { SinkStats } from '../../src/sinks/delivery/stats.js';
import { PermanentError, type DeliveryBatch, type DeliveryEncoder, type DeliveryTransport } from '../../src/sinks/delivery/transport.js';
import { SyslogSink } from '../../src/sinks/syslog/sink.js';
import { DEFAULT_SYSLOG_SINK, type SyslogSinkConfig } from '../../src/sinks/syslog/config.js';
import { SyslogFramer } from '../../src/sources/syslog/framing.js';
import { Telemetry } from '../../src/telemetry/telemetry.js';
import { ackInto, lateBoundPort, memoryLogger, silentTelemetry, waitFor } from '../helpers.js';

const RECEIVED = '2026-11-27T14:20:00.123Z';

function records(from: number, count: number): LogRecord[] {
  const out: LogRecord[] = [];
  for (let i = from; i < from + count; i++) {
    const rec = new LogRecord();
    rec.tenant = 'acme';
    rec.ts = rec.received = RECEIVED;
    rec.msg = `message ${i}`;
    out.push(rec);
  }
  return out;
}

/** A syslog receiver on loopback: frames with the project's own framer, numbers from "message N". */
async function receiver(t: { after(fn: () => void): void }, port = 0): Promise<{ port: number; numbers: number[]; close(): Promise<void>; dropConnections(): void }> {
  const numbers: number[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const framer = new SyslogFramer(1 << 20, (buf, start, end) => {
      const text = buf.toString('utf8', start, end);
      numbers.push(Number(text.slice(text.lastIndexOf(' ') + 1)));
    });
    socket.on('data', (chunk) => framer.push(chunk));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const close = (): Promise<void> => new Promise((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  });
  t.after(close);
  return { port: (server.address() as net.AddressInfo).port, numbers, close, dropConnections: () => { for (const s of sockets) s.destroy(); } };
}

function tcpConfig(port: number, overrides: Partial<SyslogSinkConfig> = {}): SyslogSinkConfig {
  return {
    ...DEFAULT_SYSLOG_SINK, name: 'fwd', protocol: 'tcp', port, batchDelayMs: 2, retryInitialMs: 20, retryMaxMs: 200, connectTimeoutMs: 2000,
    ...overrides,
  };
}

const range = (from: number, count: number): number[] => Array.from({ length: count }, (_, i) => from + i);

test('encoded queue: chunks released as failed fail their batches and the batch straddling into the queued chunks', () => {
  const q = new EncodedQueue(10);
  const settled: [string, AckStatus][] = [];
  const ack = (name: string): AckToken => {
    const a = new AckToken((s) => settled.push([name, s]));
    a.retain();
    a.seal();
    return a;
  };
  q.append('aaaa\n');
  q.mark(1, ack('a'));
  q.append('bbbb\n'); // fills chunk 0 exactly
  q.append('cccc\n'); // chunk 1: batch b straddles chunks 0 and 1
  q.mark(2, ack('b'));
  q.append('dddd\n');
  q.mark(1, ack('d'));
  q.take(10);
  assert.equal(q.release(1, true), 1, 'only batch a is complete');
  assert.deepEqual(settled, [['a', AckStatus.Failed]]);
  q.take(10);
  assert.equal(q.release(1), 3);
  assert.deepEqual(settled.slice(1), [['b', AckStatus.Failed], ['d', AckStatus.Committed]], 'b lost a record in chunk 0');
  assert.ok(q.empty);
});

test('delivery: a receiver that is down at first gets every record once it is up; acks commit after the write', async (t) => {
  const port = await lateBoundPort();
  const telemetry = silentTelemetry();
  const sink = new SyslogSink(tcpConfig(port), telemetry);
  assert.equal(sink.acknowledges, true);
  await sink.start();
  t.after(() => sink.destroy());
  const statuses: AckStatus[] = [];
  for (let i = 0; i < 10; i++) sink.write('acme', records(i * 100, 100), ackInto(statuses));
  await waitFor('a few failed connects', async () => await telemetry.value('sluice_sink_errors_total', { sink: 'fwd' }) >= 2);
  assert.deepEqual(statuses, [], 'nothing is committed while the receiver is down');
  assert.equal(sink.health().healthy, false);
  assert.match(sink.health().detail ?? '', /ECONNREFUSED/);
  const rx = await receiver(t, port);
  await waitFor('all acks', () => statuses.length === 10);
  assert.deepEqual(statuses, Array(10).fill(AckStatus.Committed));
  await waitFor('all records', () => rx.numbers.length >= 1000);
  assert.deepEqual(rx.numbers, range(0, 1000), 'in order, each once');
  assert.equal(sink.health().healthy, true);
  assert.equal(await telemetry.value('sluice_sink_written_records_total', { sink: 'fwd' }), 1000);
  assert.equal(await telemetry.value('sluice_sink_connected', { sink: 'fwd' }), 1);
  await sink.stop(Date.now() + 2000);
  assert.equal(await telemetry.value('sluice_sink_connected', { sink: 'fwd' }), 0);
});

test('delivery: a connection the receiver closes is noticed and re-established for the next records', async (t) => {
  const rx = await receiver(t);
  const { logger, lines } = memoryLogger();
  const telemetry = new Telemetry(logger);
  const sink = new SyslogSink(tcpConfig(rx.port), telemetry);
  await sink.start();
  t.after(() => sink.destroy());
  const statuses: AckStatus[] = [];
  for (let i = 0; i < 5; i++) sink.write('acme', records(i * 100, 100), ackInto(statuses));
  await waitFor('first records', () => rx.numbers.length === 500);
  rx.dropConnections();
  await waitFor('the loss noticed', () => lines.some((l) => l.code === 'SLU0501W'));
  assert.equal(await telemetry.value('sluice_sink_connected', { sink: 'fwd' }), 0);
  for (let i = 5; i < 10; i++) sink.write('acme', records(i * 100, 100), ackInto(statuses));
  await waitFor('the rest', () => rx.numbers.length === 1000);
  assert.deepEqual(rx.numbers, range(0, 1000));
  assert.deepEqual(statuses, Array(10).fill(AckStatus.Committed));
  assert.equal(lines.filter((l) => l.code === 'SLU0500I').length, 2, 'connected, then reconnected');
});

test('delivery: stop() sends what is queued, even a partial batch, before it resolves', async (t) => {
  const rx = await receiver(t);
  const sink = new SyslogSink(tcpConfig(rx.port, { batchDelayMs: 60_000, batchBytes: 1 << 20 }), silentTelemetry());
  await sink.start();
  const statuses: AckStatus[] = [];
  sink.write('acme', records(0, 7), ackInto(statuses));
  await sink.stop(Date.now() + 3000);
  assert.deepEqual(statuses, [AckStatus.Committed]);
  await waitFor('records', () => rx.numbers.length === 7);
  assert.equal(sink.write('acme', records(7, 1), ackInto(statuses)), true);
  assert.deepEqual(statuses, [AckStatus.Committed, AckStatus.Failed], 'a write after stop fails its ack at once');
});

test('delivery: stop() gives up at the deadline: what remains fails its acks and is counted', async () => {
  const port = await lateBoundPort(); // nobody listens
  const telemetry = silentTelemetry();
  const sink = new SyslogSink(tcpConfig(port), telemetry);
  await sink.start();
  const statuses: AckStatus[] = [];
  sink.write('acme', records(0, 5), ackInto(statuses));
  sink.write('acme', records(5, 5), ackInto(statuses));
  const started = Date.now();
  // Nobody ever listens: without the deadline the sink would retry for good, so the rejection is the proof.
  await assert.rejects(sink.stop(started + 300), /not delivered by the deadline/);
  assert.deepEqual(statuses, [AckStatus.Failed, AckStatus.Failed]);
  assert.equal(await telemetry.value('sluice_sink_dropped_records_total', { sink: 'fwd', reason: 'shutdown' }), 10);
  assert.equal(sink.queuedBytes(), 0);
});

test('delivery: destroy() fails every pending ack at once', async () => {
  const port = await lateBoundPort();
  const sink = new SyslogSink(tcpConfig(port), silentTelemetry());
  await sink.start();
  const statuses: AckStatus[] = [];
  sink.write('acme', records(0, 5), ackInto(statuses));
  sink.destroy();
  sink.destroy();
  assert.deepEqual(statuses, [AckStatus.Failed]);
});

/** Fails its sends as told, then delivers: the chain's contract with any transport. */
class ScriptedTransport implements DeliveryTransport {
  readonly sent: string[] = [];
  constructor(readonly failures: Error[]) {}
  async open(): Promise<void> {}
  async send(batch: DeliveryBatch): Promise<void> {
    const failure = this.failures.shift();
    if (failure !== undefined) throw failure;
    for (const chunk of batch.chunks) this.sent.push(...chunk.toString().split('\n').filter((l) => l !== ''));
  }
  async close(): Promise<void> {}
  destroy(): void {}
  describe(): string | null {
    return null;
  }
}

const lineEncoder: DeliveryEncoder<LogRecord> = { encode: (_tenant, recs, queue) => { for (const rec of recs) queue.append(rec.msg + '\n', false); } };

test('delivery: retryable errors are retried with growing delays; permanent errors drop the batch, counted by reason', async () => {
  const telemetry = silentTelemetry();
  const transport = new ScriptedTransport([
    new Error('timeout'), new Error('timeout'), new Error('timeout'),
    new PermanentError('rejected', 'receiver says no'),
  ]);
  const config = { ...DEFAULT_DELIVERY, batchDelayMs: 0, retryInitialMs: 40, retryMaxMs: 1000 };
  const sink = new DeliverySink('scripted', config, lineEncoder, transport, new SinkStats('scripted', telemetry), true);
  await sink.start();
  const statuses: AckStatus[] = [];
  const started = Date.now();
  sink.write('acme', records(0, 3), ackInto(statuses));
  await waitFor('first batch settled', () => statuses.length === 1);
  // Delays are uniform in [cap/2, cap] with cap 40, 80, 160 ms: at least 140 ms in all.
  assert.ok(Date.now() - started >= 140, `retried too soon: ${Date.now() - started} ms`);
  assert.deepEqual(statuses, [AckStatus.Failed], 'the permanent error after three retries dropped it');
  assert.equal(await telemetry.value('sluice_sink_errors_total', { sink: 'scripted' }), 3);
  assert.equal(await telemetry.value('sluice_sink_dropped_records_total', { sink: 'scripted', reason: 'rejected' }), 3);
  sink.write('acme', records(3, 2), ackInto(statuses));
  await waitFor('second batch', () => statuses.length === 2);
  assert.deepEqual(statuses, [AckStatus.Failed, AckStatus.Committed], 'the chain goes on after a permanent error');
  assert.deepEqual(transport.sent, ['message 3', 'message 4']);
  await sink.stop(Date.now() + 1000);
});

test('delivery: past queue_max a batch is refused (queue_full, ack failed) and write() says false until below half of high water', async () => {
  const telemetry = silentTelemetry();
  const transport = new ScriptedTransport(Array.from({ length: 1000 }, () => new Error('down')));
  const config = { ...DEFAULT_DELIVERY, batchDelayMs: 0, retryInitialMs: 5, retryMaxMs: 5, queueHighWaterBytes: 1000, queueMaxBytes: 2000 };
  const sink = new DeliverySink('bounded', config, lineEncoder, transport, new SinkStats('bounded', telemetry), true);
  let drains = 0;
  sink.onDrain(() => drains++);
  await sink.start();
  const statuses: AckStatus[] = [];
  const results: boolean[] = [];
  for (let i = 0; i < 100; i++) {
    results.push(sink.write('acme', records(i * 10, 10), ackInto(statuses)));
    assert.ok(sink.queuedBytes() < 2000 + 200, `queue at ${sink.queuedBytes()} bytes`);
  }
  assert.equal(results[0], true);
  assert.equal(results.at(-1), false);
  assert.equal(sink.congested(), true);
  const refused = await telemetry.value('sluice_sink_dropped_records_total', { sink: 'bounded', reason: 'queue_full' });
  assert.ok(refused > 0);
  assert.equal(statuses.filter((s) => s === AckStatus.Failed).length * 10, refused);
  transport.sent.length = 0;
  transport.failures.length = 0; // the receiver is back
  await waitFor('drained', () => drains === 1);
  assert.equal(sink.congested(), false);
  await sink.stop(Date.now() + 1000);
  assert.equal(statuses.filter((s) => s === AckStatus.Committed).length * 10, transport.sent.length);
  assert.equal(statuses.length, 100);
});

/** A transport whose sends complete only when the test lets them, one at a time. */
class GatedTransport implements DeliveryTransport {
  readonly batches: string[][] = [];
  private readonly gates: (() => void)[] = [];
  async open(): Promise<void> {}
  send(batch: DeliveryBatch): Promise<void> {
    const lines: string[] = [];
    for (const chunk of batch.chunks) lines.push(...chunk.toString().split('\n').filter((l) => l !== ''));
    this.batches.push(lines);
    return new Promise((resolve) => this.gates.push(resolve));
  }
  get waiting(): number {
    return this.gates.length;
  }
  release(): void {
    this.gates.shift()?.();
  }
  async close(): Promise<void> {}
  destroy(): void {}
  describe(): string | null {
    return null;
  }
}

const tenantEncoder: DeliveryEncoder<LogRecord> = { encode: (tenant, recs, queue) => { for (const rec of recs) queue.append(`${tenant} ${rec.msg}\n`, false); } };

test('delivery fairness: a tenant with a deep backlog is paused alone, and another tenant\'s records go in the next batch, not after the backlog; each tenant keeps its order', async () => {
  const telemetry = silentTelemetry();
  const transport = new GatedTransport();
  const config = { ...DEFAULT_DELIVERY, batchBytes: 4096, batchDelayMs: 0, queueHighWaterBytes: 32 * 1024, queueMaxBytes: 64 * 1024 };
  const sink = new DeliverySink('gated', config, tenantEncoder, transport, new SinkStats('gated', telemetry), true);
  const drained: (string | null)[] = [];
  sink.onDrain((tenant) => drained.push(tenant));
  await sink.start();
  const statuses: AckStatus[] = [];
  let floodPaused = false;
  let n = 0;
  while (!floodPaused) {
    floodPaused = !sink.write('flood', records(n, 50), ackInto(statuses));
    n += 50;
  }
  await waitFor('first send', () => transport.waiting === 1);
  assert.equal(sink.congested('flood'), true);
  assert.equal(sink.write('light', records(0, 3), ackInto(statuses)), true, 'the light tenant is under its share');
  assert.equal(sink.congested('light'), false);
  transport.release();
  await waitFor('second send', () => transport.batches.length === 2);
  assert.ok(transport.batches[1]!.some((l) => l.startsWith('light ')), 'the light records are in the very next batch');
  // Let everything through.
  while (statuses.length < n / 50 + 1) {
    transport.release();
    await new Promise((r) => setImmediate(r));
  }
  assert.ok(drained.includes('flood') || drained.includes(null), 'the flooding tenant was told to go on');
  const flood = transport.batches.flat().filter((l) => l.startsWith('flood ')).map((l) => Number(l.split(' ').at(-1)));
  assert.deepEqual(flood, range(0, n), 'the flood arrives whole and in order');
  assert.ok(statuses.every((s) => s === AckStatus.Committed));
  const stopping = sink.stop(Date.now() + 1000);
  transport.release();
  await stopping;
});
