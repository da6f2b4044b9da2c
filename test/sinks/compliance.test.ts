/**
 * What every sink type must do and count, alike (after Vector's
 * run_and_assert_source_compliance): the file sink, syslog over UDP and TCP
 * and NATS JetStream, each against its real receiver, run the same scenarios
 * and must emit the same counters and events:
 *
 * - delivery: every record of every tenant arrives; acks commit (acknowledging
 *   sinks); sluice_sink_written_* equal the sums of the per-tenant
 *   sluice_tenant_delivered_*; queued bytes, of the sink and of each tenant,
 *   come back to 0; a write after stop() is refused, counted as `stopped` for
 *   the sink and for its tenant, its ack failed;
 * - failure: a receiver that fails the sends has them retried with backoff,
 *   counted (sluice_sink_errors_total, sluice_tenant_failed_sends_total,
 *   sluice_tenant_retried_bytes_total), logged with the sink's code; health
 *   says so; once the receiver is back everything is delivered. UDP has no
 *   failing sends (a datagram is handed over, or dropped and counted);
 * - destroy: what is queued is given up, acks failed, counted as `shutdown`
 *   for the sink and for each tenant.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { AckStatus } from '../../src/core/ack.js';
import type { Sink } from '../../src/core/component.js';
import { LogRecord } from '../../src/core/record.js';
import type { DeliveryConfig } from '../../src/sinks/delivery/config.js';
import { FileSink } from '../../src/sinks/file/sink.js';
import { DEFAULT_NATS_SINK } from '../../src/sinks/nats/config.js';
import { NatsSink } from '../../src/sinks/nats/sink.js';
import { DEFAULT_SYSLOG_SINK } from '../../src/sinks/syslog/config.js';
import { SyslogSink } from '../../src/sinks/syslog/sink.js';
import { SyslogFramer } from '../../src/sources/syslog/framing.js';
import type { Telemetry } from '../../src/telemetry/telemetry.js';
import { ackInto, lateBoundPort, memoryTelemetry, readTenantRecords, requireProgram, tempDir, waitFor } from '../helpers.js';

type T = { after(fn: () => void | Promise<void>): void };
type Tenant = 'alpha' | 'beta';
const TENANTS: Tenant[] = ['alpha', 'beta'];

/** A sink of one type, and what its receiver got of each tenant. */
interface Made {
  sink: Sink;
  received(tenant: Tenant): Promise<number>;
  /** With `down`: the tenants whose sends fail, until recover(). */
  failing: Tenant[];
  recover(): Promise<void>;
}

interface SinkCase {
  type: string;
  skip: string | false;
  /** The code a failed send logs. */
  failureCode: string;
  /** Whether sends can fail (and be retried) at all. */
  sendsCanFail: boolean;
  /** `down`: the receiver fails the sends (of `failing` tenants) until recover(). */
  make(t: T, telemetry: Telemetry, delivery: Partial<DeliveryConfig>, down: boolean): Promise<Made>;
}

/** Fast retries and short batch delays, so the scenarios do not wait long. */
const QUICK = { batchDelayMs: 2, retryInitialMs: 20, retryMaxMs: 200 };
/** A batch delay no scenario waits out: records stay queued. */
const HELD = { batchDelayMs: 600_000, batchBytes: 1 << 20 };
const IDENTITY_SD = 'sluice@32473';

function records(tenant: Tenant, from: number, count: number): LogRecord[] {
  const out: LogRecord[] = [];
  for (let i = from; i < from + count; i++) {
    const rec = new LogRecord();
    rec.tenant = tenant;
    rec.host = 'c'.repeat(40);
    rec.ts = rec.received = '2026-11-27T14:20:00.123Z';
    rec.hostname = 'web-1';
    rec.app = 'shop';
    rec.msg = `message ${i}`;
    out.push(rec);
  }
  return out;
}

/** Messages per tenant, read from the identity SD element every forwarded message carries. */
function countTenant(counts: Map<string, number>, text: string): void {
  const m = /tenant="(\w+)"/.exec(text);
  if (m !== null) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
}

async function tcpReceiver(t: T, port = 0): Promise<{ port: number; counts: Map<string, number> }> {
  const counts = new Map<string, number>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const framer = new SyslogFramer(1 << 20, (buf, start, end) => countTenant(counts, buf.toString('utf8', start, end)));
    socket.on('data', (chunk) => framer.push(chunk));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  return { port: (server.address() as net.AddressInfo).port, counts };
}

async function udpReceiver(t: T): Promise<{ port: number; counts: Map<string, number> }> {
  const counts = new Map<string, number>();
  const socket = dgram.createSocket('udp4');
  socket.on('message', (m) => countTenant(counts, m.toString('utf8')));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return { port: socket.address().port, counts };
}

const noNats = requireProgram('nats-server', 'Debian package nats-server, run as `nats-server -js -a 127.0.0.1 -p 4222`');
let natsStreams = 0;

/** A stream name and subject prefix of this run's own on the shared server, the stream deleted when the test ends. */
async function natsStream(t: T): Promise<{ stream: string; prefix: string; nc: NatsConnection }> {
  const id = `${process.pid}_${Date.now().toString(36)}_${natsStreams++}`;
  const nc = await connect({ servers: '127.0.0.1:4222' });
  const names = { stream: `SLUICE_COMPLIANCE_${id}`, prefix: `sluicecompliance.${id}`, nc };
  t.after(async () => {
    await (await nc.jetstreamManager()).streams.delete(names.stream).catch(() => false);
    await nc.close();
  });
  return names;
}

const CASES: SinkCase[] = [
  {
    type: 'file',
    skip: false,
    failureCode: 'SLU0201E',
    sendsCanFail: true,
    async make(t, telemetry, delivery, down) {
      const dir = tempDir(t);
      // Down: a regular file where beta's folder must go; alpha's folder is fine.
      if (down) {
        mkdirSync(dir, { recursive: true });
        writeFileSync(path.join(dir, 'beta'), 'in the way');
      }
      const sink = new FileSink({
        name: 'out', type: 'file', tenants: ['*'], path: dir, rotateBytes: 1 << 30, rotateIntervalMs: 0, maxFiles: 0,
        batchBytes: delivery.batchBytes ?? 256 * 1024, batchDelayMs: delivery.batchDelayMs ?? 2, queueHighWaterBytes: 8 << 20, fsyncIntervalMs: 5,
      }, telemetry);
      return {
        sink,
        received: async (tenant) => readTenantRecords(dir, tenant).length,
        failing: ['beta'],
        recover: async () => rmSync(path.join(dir, 'beta')),
      };
    },
  },
  {
    type: 'syslog tcp',
    skip: false,
    failureCode: 'SLU0502W',
    sendsCanFail: true,
    async make(t, telemetry, delivery, down) {
      // Down: nobody listens on the port yet.
      const port = down ? await lateBoundPort() : 0;
      let counts = new Map<string, number>();
      let actual = port;
      if (!down) ({ port: actual, counts } = await tcpReceiver(t));
      const sink = new SyslogSink({
        ...DEFAULT_SYSLOG_SINK, name: 'out', protocol: 'tcp', port: actual, identitySdId: IDENTITY_SD, connectTimeoutMs: 2000, ...QUICK, ...delivery,
      }, telemetry);
      return {
        sink,
        received: async (tenant) => counts.get(tenant) ?? 0,
        failing: TENANTS,
        recover: async () => { ({ counts } = await tcpReceiver(t, port)); },
      };
    },
  },
  {
    type: 'syslog udp',
    skip: false,
    failureCode: 'SLU0502W',
    sendsCanFail: false,
    async make(t, telemetry, delivery) {
      const { port, counts } = await udpReceiver(t);
      const sink = new SyslogSink({
        ...DEFAULT_SYSLOG_SINK, name: 'out', protocol: 'udp', port, identitySdId: IDENTITY_SD, ...QUICK, ...delivery,
      }, telemetry);
      return { sink, received: async (tenant) => counts.get(tenant) ?? 0, failing: [], recover: async () => undefined };
    },
  },
  {
    type: 'nats',
    skip: noNats,
    failureCode: 'SLU0502W',
    sendsCanFail: true,
    async make(t, telemetry, delivery, down) {
      const { stream, prefix, nc } = await natsStream(t);
      // Down: the stream does not exist and the sink may not create it.
      const sink = new NatsSink({
        ...DEFAULT_NATS_SINK, name: 'out', servers: ['127.0.0.1:4222'], stream, subjectPrefix: prefix, createStream: !down, ...QUICK, ...delivery,
      }, telemetry);
      const jsm = await nc.jetstreamManager();
      return {
        sink,
        received: async (tenant) => {
          const info = await jsm.streams.info(stream, { subjects_filter: `${prefix}.${tenant}.>` }).catch(() => null);
          return Object.values(info?.state.subjects ?? {}).reduce((sum, n) => sum + n, 0);
        },
        failing: TENANTS,
        recover: async () => { await jsm.streams.add({ name: stream, subjects: [`${prefix}.>`] }); },
      };
    },
  },
];

/** A telemetry whose tenants alpha and beta have series of their own, and whose log is kept. */
function telemetryOf(): { telemetry: Telemetry; codes: () => string[] } {
  const made = memoryTelemetry();
  made.telemetry.setTenantSeries(TENANTS, 10);
  return made;
}

async function counters(telemetry: Telemetry, metric: string, tenant?: Tenant): Promise<number> {
  return telemetry.value(metric, tenant === undefined ? { sink: 'out' } : { sink: 'out', tenant });
}

for (const c of CASES) {
  test(`compliance ${c.type}: every record of every tenant delivered; the sink's and the tenants' counters agree; a write after stop is refused and counted`, { skip: c.skip }, async (t) => {
    const { telemetry } = telemetryOf();
    const made = await c.make(t, telemetry, QUICK, false);
    const sink = made.sink;
    t.after(() => sink.destroy());
    await sink.start();
    const statuses: AckStatus[] = [];
    const sent: Record<Tenant, number> = { alpha: 0, beta: 0 };
    for (let i = 0; i < 3; i++) {
      for (const tenant of TENANTS) {
        const n = tenant === 'alpha' ? 50 : 20;
        sink.write(tenant, records(tenant, sent[tenant], n), sink.acknowledges ? ackInto(statuses) : null);
        sent[tenant] += n;
      }
    }
    if (sink.acknowledges) {
      await waitFor('every ack', () => statuses.length === 6);
      assert.deepEqual(statuses, Array(6).fill(AckStatus.Committed));
    }
    for (const tenant of TENANTS) await waitFor(`every record of ${tenant}`, async () => await made.received(tenant) >= sent[tenant]);
    await waitFor('the counters', async () => await counters(telemetry, 'sluice_sink_written_records_total') === 210);
    for (const tenant of TENANTS) {
      assert.equal(await made.received(tenant), sent[tenant], `${tenant}: each record once`);
      assert.equal(await counters(telemetry, 'sluice_tenant_delivered_records_total', tenant), sent[tenant]);
      assert.equal(await counters(telemetry, 'sluice_tenant_queued_bytes', tenant), 0);
      assert.equal(await counters(telemetry, 'sluice_tenant_dropped_records_total', tenant), 0);
    }
    const bytes = await counters(telemetry, 'sluice_sink_written_bytes_total');
    assert.ok(bytes > 210 * 20, `${bytes} bytes written`);
    assert.equal(await counters(telemetry, 'sluice_tenant_delivered_bytes_total', 'alpha') + await counters(telemetry, 'sluice_tenant_delivered_bytes_total', 'beta'), bytes);
    assert.equal(await counters(telemetry, 'sluice_sink_queued_bytes'), 0);
    assert.equal(sink.queuedBytes(), 0);
    assert.deepEqual(sink.health().healthy, true);

    await sink.stop(Date.now() + 10_000);
    const after: AckStatus[] = [];
    assert.equal(sink.write('beta', records('beta', 100, 4), ackInto(after)), true, 'nothing a source could wait for');
    assert.deepEqual(after, [AckStatus.Failed]);
    assert.equal(await telemetry.value('sluice_sink_dropped_records_total', { sink: 'out', reason: 'stopped' }), 4);
    assert.equal(await counters(telemetry, 'sluice_tenant_dropped_records_total', 'beta'), 4);
  });

  // UDP sends never fail (a datagram is handed over, or dropped and counted): the case has no such test rather than a skip.
  if (c.sendsCanFail) test(`compliance ${c.type}: failed sends are retried with backoff, counted for the sink and its tenants, logged and reported unhealthy; then delivered`, { skip: c.skip }, async (t) => {
    const { telemetry, codes } = telemetryOf();
    const made = await c.make(t, telemetry, QUICK, true);
    const sink = made.sink;
    t.after(() => sink.destroy());
    await sink.start();
    const statuses: AckStatus[] = [];
    for (const tenant of TENANTS) sink.write(tenant, records(tenant, 0, 30), ackInto(statuses));
    await waitFor('two failed sends', async () => await counters(telemetry, 'sluice_sink_errors_total') >= 2);
    for (const tenant of made.failing) {
      assert.ok(await counters(telemetry, 'sluice_tenant_failed_sends_total', tenant) >= 1, `${tenant}: a failed send counted`);
      assert.ok(await counters(telemetry, 'sluice_tenant_retried_bytes_total', tenant) > 0, `${tenant}: its bytes go again`);
      assert.ok(await counters(telemetry, 'sluice_tenant_queued_bytes', tenant) > 0, `${tenant}: its records are kept`);
      assert.equal(await counters(telemetry, 'sluice_tenant_delivered_records_total', tenant), 0);
    }
    for (const tenant of TENANTS.filter((x) => !made.failing.includes(x))) {
      // A tenant whose sends do not fail goes on meanwhile (the file sink: a lane per tenant).
      await waitFor(`${tenant} delivered meanwhile`, async () => await counters(telemetry, 'sluice_tenant_delivered_records_total', tenant) === 30);
      assert.equal(await counters(telemetry, 'sluice_tenant_failed_sends_total', tenant), 0);
    }
    assert.ok(codes().includes(c.failureCode), `logged ${c.failureCode}`);
    assert.equal(sink.health().healthy, false);
    assert.match(sink.health().detail ?? '', /^retrying: /);
    assert.equal(statuses.filter((s) => s === AckStatus.Committed).length, 2 - made.failing.length, 'no ack of a failing tenant yet');

    await made.recover();
    await waitFor('every ack', () => statuses.length === 2, 20_000);
    assert.deepEqual(statuses, [AckStatus.Committed, AckStatus.Committed]);
    for (const tenant of TENANTS) {
      await waitFor(`${tenant} delivered`, async () => await made.received(tenant) >= 30);
      assert.equal(await counters(telemetry, 'sluice_tenant_delivered_records_total', tenant), 30);
      assert.equal(await counters(telemetry, 'sluice_tenant_queued_bytes', tenant), 0);
    }
    assert.equal(await counters(telemetry, 'sluice_sink_written_records_total'), 60);
    await waitFor('healthy again', () => sink.health().healthy);
    await sink.stop(Date.now() + 10_000);
  });

  test(`compliance ${c.type}: destroy gives up on what is queued: acks fail, counted as shutdown for the sink and each tenant`, { skip: c.skip }, async (t) => {
    const { telemetry, codes } = telemetryOf();
    const made = await c.make(t, telemetry, HELD, false);
    const sink = made.sink;
    await sink.start();
    const statuses: AckStatus[] = [];
    sink.write('alpha', records('alpha', 0, 7), ackInto(statuses));
    sink.write('beta', records('beta', 0, 3), ackInto(statuses));
    assert.ok(await counters(telemetry, 'sluice_tenant_queued_bytes', 'alpha') > 0);
    assert.equal(await counters(telemetry, 'sluice_sink_queued_bytes'), sink.queuedBytes());
    sink.destroy();
    sink.destroy();
    assert.deepEqual(statuses, [AckStatus.Failed, AckStatus.Failed]);
    assert.equal(await telemetry.value('sluice_sink_dropped_records_total', { sink: 'out', reason: 'shutdown' }), 10);
    assert.equal(await counters(telemetry, 'sluice_tenant_dropped_records_total', 'alpha'), 7);
    assert.equal(await counters(telemetry, 'sluice_tenant_dropped_records_total', 'beta'), 3);
    for (const tenant of TENANTS) assert.equal(await counters(telemetry, 'sluice_tenant_queued_bytes', tenant), 0);
    assert.equal(await counters(telemetry, 'sluice_sink_queued_bytes'), 0);
    assert.ok(codes().includes('SLU0503W'), 'the drop is logged');
    assert.equal(sink.health().healthy, false);
  });
}
