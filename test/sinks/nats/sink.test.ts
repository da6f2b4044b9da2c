/**
 * The NATS JetStream sink against real servers: the shared one on
 * 127.0.0.1:4222 (a stream and subject prefix of its own per test, deleted
 * afterwards) and, for the crash test, a server of its own that is killed
 * with SIGKILL and restarted on the same port and store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import pino from 'pino';
import { connect, StorageType, type NatsConnection } from 'nats';
import { AckStatus, AckToken } from '../../../src/core/ack.js';
import { LogRecord } from '../../../src/core/record.js';
import { encodeRecord } from '../../../src/core/ndjson.js';
import { DeliveryBatch } from '../../../src/sinks/delivery/transport.js';
import { SinkStats } from '../../../src/sinks/delivery/stats.js';
import { JetStreamTransport, NatsEncoder, NatsSink } from '../../../src/sinks/nats/sink.js';
import { DEFAULT_NATS_SINK, type NatsSinkConfig } from '../../../src/sinks/nats/config.js';
import { Telemetry } from '../../../src/telemetry/telemetry.js';
import { ackInto, encodedFrame, lateBoundPort, memoryLogger, requireProgram, tempDir, waitFor } from '../../helpers.js';

const SHARED_SERVER = '127.0.0.1:4222';
const TS = '2026-11-27T14:20:00.123Z';
const HOST_A = 'a'.repeat(40);
const HOST_B = 'b'.repeat(40);

let streams = 0;
/** A stream name and subject prefix no other test or CI run uses at the same time. */
function uniqueNames(): { stream: string; prefix: string } {
  const id = `${process.pid}_${Date.now().toString(36)}_${streams++}`;
  return { stream: `SLUICE_TEST_${id}`, prefix: `sluicetest.${id}` };
}

function records(tenant: string, host: string, from: number, count: number, msgBytes = 0): LogRecord[] {
  const out: LogRecord[] = [];
  for (let i = from; i < from + count; i++) {
    const rec = new LogRecord();
    rec.tenant = tenant;
    rec.host = host;
    rec.ts = rec.received = TS;
    rec.hostname = 'web-1';
    rec.msg = msgBytes > 0 ? 'x'.repeat(msgBytes) + ` ${i}` : `message ${i}`;
    out.push(rec);
  }
  return out;
}

function sinkConfig(names: { stream: string; prefix: string }, overrides: Partial<NatsSinkConfig> = {}): NatsSinkConfig {
  return {
    ...DEFAULT_NATS_SINK, name: 'js', servers: [SHARED_SERVER], stream: names.stream, subjectPrefix: names.prefix,
    batchDelayMs: 2, retryInitialMs: 50, retryMaxMs: 500, ...overrides,
  };
}

const noNats = requireProgram('nats-server', 'Debian package nats-server, run as `nats-server -js -a 127.0.0.1 -p 4222`');

/** A connection to the shared server that deletes the test's stream when the test ends. */
async function sharedConnection(t: { after(fn: () => Promise<void>): void }, stream: string): Promise<NatsConnection> {
  const nc = await connect({ servers: SHARED_SERVER });
  t.after(async () => {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(stream).catch(() => false);
    await nc.close();
  });
  return nc;
}

interface StoredMessage {
  subject: string;
  data: string;
  id: string | undefined;
}

/** Every message of the stream, in order, through an ordered consumer. */
async function readStream(nc: NatsConnection, stream: string): Promise<StoredMessage[]> {
  const jsm = await nc.jetstreamManager();
  const total = (await jsm.streams.info(stream)).state.messages;
  const consumer = await nc.jetstream().consumers.get(stream);
  const out: StoredMessage[] = [];
  while (out.length < total) {
    const fetched = await consumer.fetch({ max_messages: Math.min(1000, total - out.length), expires: 2000 });
    for await (const m of fetched) out.push({ subject: m.subject, data: m.string(), id: m.headers?.get('Nats-Msg-Id') });
  }
  return out;
}

test('nats: the stream is created; each record goes to <prefix>.<tenant>.<host key> as its NDJSON line with a message id; acks follow JetStream acks', { skip: noNats }, async (t) => {
  const names = uniqueNames();
  const nc = await sharedConnection(t, names.stream);
  const { logger, lines } = memoryLogger();
  const telemetry = new Telemetry(logger);
  const sink = new NatsSink(sinkConfig(names), telemetry);
  assert.equal(sink.acknowledges, true);
  await sink.start();
  const statuses: AckStatus[] = [];
  const acme = records('acme', HOST_A, 0, 100);
  const globex = records('globex', HOST_B, 100, 50);
  sink.write('acme', acme, ackInto(statuses));
  sink.write('globex', globex, ackInto(statuses));
  await sink.stop(Date.now() + 10_000);
  assert.deepEqual(statuses, [AckStatus.Committed, AckStatus.Committed]);

  const info = await (await nc.jetstreamManager()).streams.info(names.stream);
  assert.deepEqual(info.config.subjects, [`${names.prefix}.>`]);
  assert.equal(info.config.duplicate_window, 120_000 * 1e6);
  assert.equal(info.config.storage, StorageType.File);
  assert.ok(lines.some((l) => l.code === 'SLU0510I' && l.stream === names.stream));

  const stored = await readStream(nc, names.stream);
  assert.equal(stored.length, 150);
  // Tenants are served in turn (deficit round-robin), so their records interleave; each tenant's keep their order.
  const acmeStored = stored.filter((m) => m.subject === `${names.prefix}.acme.${HOST_A}`);
  const globexStored = stored.filter((m) => m.subject === `${names.prefix}.globex.${HOST_B}`);
  assert.equal(acmeStored.length + globexStored.length, 150);
  assert.deepEqual(acmeStored.map((m) => m.data), acme.map(encodeRecord));
  assert.deepEqual(globexStored.map((m) => m.data), globex.map(encodeRecord));
  const ids = stored.map((m) => m.id);
  assert.ok(ids.every((id) => id !== undefined && /^[A-Za-z0-9_-]{16}-[0-9a-z]+$/.test(id)), String(ids[0]));
  assert.equal(new Set(ids).size, 150, 'one id per record');
  assert.equal(await telemetry.value('sluice_sink_written_records_total', { sink: 'js' }), 150);
});

test('nats: a batch published again is stored once: ids are fixed when records are queued', { skip: noNats }, async (t) => {
  const names = uniqueNames();
  const nc = await sharedConnection(t, names.stream);
  const telemetry = new Telemetry(pino({ level: 'silent' }));
  const stats = new SinkStats('js', telemetry);
  const transport = new JetStreamTransport(sinkConfig(names), stats);
  t.after(() => transport.destroy());
  const encoder = new NatsEncoder(names.prefix);
  const frames = records('acme', HOST_A, 0, 200).map((rec) => encodedFrame(encoder, 'acme', rec)).join('');
  const batch = new DeliveryBatch();
  // What the chain does when a send fails after JetStream stored (part of) it: the same chunks again.
  batch.reset([Buffer.from(frames)], null);
  await transport.send(batch);
  batch.reset([Buffer.from(frames)], null);
  await transport.send(batch);
  const stored = await readStream(nc, names.stream);
  assert.equal(stored.length, 200);
  assert.equal(await telemetry.value('sluice_sink_duplicates_total', { sink: 'js' }), 200);
});

test('nats: a record over the stream\'s size limit is dropped as too_large and fails only its own write\'s ack', { skip: noNats }, async (t) => {
  const names = uniqueNames();
  const nc = await sharedConnection(t, names.stream);
  // The operator's stream, with a limit; the sink uses it as it is.
  await (await nc.jetstreamManager()).streams.add({ name: names.stream, subjects: [`${names.prefix}.>`], max_msg_size: 2048 });
  const telemetry = new Telemetry(pino({ level: 'silent' }));
  const sink = new NatsSink(sinkConfig(names, { batchDelayMs: 50 }), telemetry);
  await sink.start();
  const statuses: AckStatus[] = [];
  sink.write('acme', records('acme', HOST_A, 0, 10), ackInto(statuses));
  sink.write('acme', [...records('acme', HOST_A, 10, 2), ...records('acme', HOST_A, 12, 1, 5000)], ackInto(statuses));
  sink.write('acme', records('acme', HOST_A, 13, 10), ackInto(statuses));
  await sink.stop(Date.now() + 10_000);
  assert.deepEqual(statuses, [AckStatus.Committed, AckStatus.Failed, AckStatus.Committed], 'the three writes shared one send');
  assert.equal(await telemetry.value('sluice_sink_dropped_records_total', { sink: 'js', reason: 'too_large' }), 1);
  const stored = await readStream(nc, names.stream);
  assert.equal(stored.length, 22);
  assert.ok(stored.every((m) => !m.data.includes('xxxxx')));
});

test('nats: with create_stream off, records wait (retrying) until the stream exists', { skip: noNats }, async (t) => {
  const names = uniqueNames();
  const nc = await sharedConnection(t, names.stream);
  const telemetry = new Telemetry(pino({ level: 'silent' }));
  const sink = new NatsSink(sinkConfig(names, { createStream: false }), telemetry);
  await sink.start();
  t.after(() => sink.destroy());
  const statuses: AckStatus[] = [];
  sink.write('acme', records('acme', HOST_A, 0, 5), ackInto(statuses));
  await waitFor('retries', async () => await telemetry.value('sluice_sink_errors_total', { sink: 'js' }) >= 2);
  assert.match(sink.health().detail ?? '', /does not exist and create_stream is off/);
  assert.deepEqual(statuses, []);
  await (await nc.jetstreamManager()).streams.add({ name: names.stream, subjects: [`${names.prefix}.>`] });
  await waitFor('ack', () => statuses.length === 1);
  assert.deepEqual(statuses, [AckStatus.Committed]);
  assert.equal((await readStream(nc, names.stream)).length, 5);
});

/** A nats-server of this test's own, with JetStream storing under `dir`; resolves once it takes connections. */
async function startNatsServer(port: number, dir: string): Promise<ChildProcess> {
  const server = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], { stdio: 'ignore' });
  await waitFor('nats-server up', async () => {
    const nc = await connect({ servers: `127.0.0.1:${port}`, timeout: 500 }).catch(() => null);
    if (nc === null) return false;
    await nc.close();
    return true;
  }, 10_000);
  return server;
}

function killHard(server: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    server.once('exit', () => resolve());
    process.kill(server.pid!, 'SIGKILL');
  });
}

test('nats: kill -9 of the server mid-stream and a restart on the same store lose no acknowledged record', { skip: noNats }, async (t) => {
  const dir = tempDir(t, 'sluice-nats-');
  const port = await lateBoundPort();
  let server = await startNatsServer(port, dir);
  t.after(() => { if (server.exitCode === null) process.kill(server.pid!, 'SIGKILL'); });
  const names = uniqueNames();
  const telemetry = new Telemetry(pino({ level: 'silent' }));
  const sink = new NatsSink(sinkConfig(names, {
    servers: [`127.0.0.1:${port}`], publishTimeoutMs: 1000, reconnectWaitMs: 100, retryInitialMs: 50, retryMaxMs: 400, maxInFlight: 256,
  }), telemetry);
  await sink.start();
  t.after(() => sink.destroy());

  const batches = 40;
  const perBatch = 250;
  const statuses: (AckStatus | undefined)[] = Array(batches).fill(undefined);
  for (let b = 0; b < batches; b++) {
    const ack = new AckToken((s) => { statuses[b] = s; });
    ack.retain();
    ack.seal();
    sink.write('acme', records('acme', HOST_A, b * perBatch, perBatch), ack);
    if (b === 15) {
      // Mid-stream: some batches acked, some in flight, more to come while the server is gone.
      await killHard(server);
      await new Promise((resolve) => setTimeout(resolve, 300));
      server = await startNatsServer(port, dir);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await sink.stop(Date.now() + 30_000);
  assert.ok(await telemetry.value('sluice_sink_errors_total', { sink: 'js' }) > 0, 'the crash was felt: sends failed and were retried');
  const committed = statuses.flatMap((s, b) => (s === AckStatus.Committed ? [b] : []));
  assert.equal(committed.length, batches, `every batch committed in the end: ${statuses.join(',')}`);

  const nc = await connect({ servers: `127.0.0.1:${port}` });
  t.after(() => nc.close());
  const stored = await readStream(nc, names.stream);
  const numbers = stored.map((m) => Number((JSON.parse(m.data) as { msg: string }).msg.split(' ')[1]));
  const unique = new Set(numbers);
  for (const b of committed) {
    for (let i = b * perBatch; i < (b + 1) * perBatch; i++) assert.ok(unique.has(i), `acknowledged record ${i} is missing`);
  }
  assert.equal(stored.length, unique.size, 're-published records were de-duplicated by message id');
});
