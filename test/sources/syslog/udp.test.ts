/**
 * Syslog over UDP read by a thread of its own: the hand-off ring against a
 * model, the kernel's counters, and a running node taking a burst from a
 * sender in another thread — every datagram delivered or counted as dropped
 * by sluice or by the kernel — and a blocked event loop that leaves the
 * kernel dropping nothing while the ring has room.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { createRingMemory, ipv4Number, ipv4Text, RingReader, RingWriter } from '../../../src/sources/syslog/udp-ring.js';
import { procAddress, udpReceiveErrors, udpSocketCounters } from '../../../src/sources/syslog/udp-kernel.js';
import type { SluiceNode } from '../../../src/ops/node.js';
import { buildOverview } from '../../../src/ops/admin/overview.js';
import { readTenantRecords, startTestNode, waitFor } from '../../helpers.js';

test('ring: entries come out in order, whole, across the wrap; what does not fit is dropped and counted', () => {
  const memory = createRingMemory(4096);
  const writer = new RingWriter(memory);
  const reader = new RingReader(memory);
  const model: { text: string; ipv4: number; address: string; port: number }[] = [];
  let dropped = 0;
  let seq = 0;
  // Random sizes, some reads between writes, so the writer wraps many times and fills up now and then.
  let random = 7;
  const next = (n: number): number => {
    random = (random * 1103515245 + 12345) & 0x7fffffff;
    return random % n;
  };
  for (let round = 0; round < 2000; round++) {
    const writes = next(6);
    for (let i = 0; i < writes; i++) {
      const text = `${seq++} ${'x'.repeat(next(700))}`;
      const v6 = next(4) === 0;
      const entry = { text, ipv4: v6 ? -1 : next(0xffffffff), address: v6 ? 'fe80::1:2' : '', port: next(65536) };
      if (writer.push(Buffer.from(text), entry.ipv4, entry.address, entry.port)) model.push(entry);
      else dropped++;
    }
    const reads = next(6);
    for (let i = 0; i < reads && reader.next(); i++) {
      const want = model.shift()!;
      assert.equal(reader.bytes.toString('latin1', reader.start, reader.end), want.text);
      assert.equal(reader.ipv4, want.ipv4);
      assert.equal(reader.port, want.port);
      if (want.ipv4 < 0) assert.equal(reader.address(), want.address);
    }
    reader.release();
  }
  while (reader.next()) assert.equal(reader.bytes.toString('latin1', reader.start, reader.end), model.shift()!.text);
  reader.release();
  assert.equal(model.length, 0);
  assert.ok(dropped > 0, 'the ring filled up at times');
  assert.equal(reader.takeDropped(), dropped);
  assert.equal(reader.takeDropped(), 0);
  assert.equal(reader.queuedBytes, 0);
});

test('ring: a waiting reader wakes when the writer adds an entry', async () => {
  const memory = createRingMemory(4096);
  const reader = new RingReader(memory);
  const woken = reader.whenWritten();
  new RingWriter(memory).push(Buffer.from('hello'), ipv4Number('10.1.2.3'), '', 514);
  await woken;
  assert.ok(reader.next());
  assert.equal(ipv4Text(reader.ipv4), '10.1.2.3');
});

test('kernel: /proc addresses in the host byte order; the counters of a bound socket and of the host', async (t) => {
  assert.equal(procAddress('127.0.0.1'), '0100007F');
  assert.equal(procAddress('::1'), '00000000000000000000000001000000');
  assert.equal(procAddress('::ffff:127.0.0.1'), '0000000000000000FFFF00000100007F');
  assert.equal(procAddress('localhost'), null);
  if (udpReceiveErrors() === null) {
    t.skip('no /proc/net/snmp (not Linux)');
    return;
  }
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  t.after(() => socket.close());
  const counters = udpSocketCounters('127.0.0.1', socket.address().port);
  assert.deepEqual(counters, { drops: 0, receiveQueueBytes: 0 });
  assert.equal(udpSocketCounters('127.0.0.2', socket.address().port), null);
});

const SIZE = 256;
const TENANT_YAML = 'tenants:\n  a:\n    networks: [127.0.0.0/8]\n';

/**
 * Send `count` datagrams of SIZE bytes (`<14>1 - h app - - - <seq>` padded) from
 * a thread of its own, as fast as it goes (or resting `pauseEvery256Ms` after
 * every 256). `done` (if given) is set to 1 and notified when the last send has completed.
 */
function sendFromThread(port: number, count: number, done?: Int32Array, pauseEvery256Ms = 0): Promise<{ errors: number }> {
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    const dgram = require('node:dgram');
    const { port, count, size, done, pause } = workerData;
    const socket = dgram.createSocket('udp4');
    let sent = 0, completed = 0, errors = 0;
    const finished = (err) => {
      if (err) errors++;
      if (++completed < count) return;
      if (done) { Atomics.store(done, 0, 1); Atomics.notify(done, 0); }
      socket.close(() => parentPort.postMessage({ errors }));
    };
    const burst = () => {
      const end = Math.min(count, sent + 256);
      for (; sent < end; sent++) {
        const head = '<14>1 - h app - - - ' + String(sent).padStart(8, '0') + ' ';
        socket.send(Buffer.from(head.padEnd(size, 'x')), port, '127.0.0.1', finished);
      }
      if (sent < count) pause > 0 ? setTimeout(burst, pause) : setImmediate(burst);
    };
    burst();
  `;
  const worker = new Worker(code, { eval: true, workerData: { port, count, size: SIZE, done, pause: pauseEvery256Ms } });
  return new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

/** The node's UDP numbers: datagrams taken from the ring, dropped there, dropped by the kernel. */
async function udpNumbers(node: SluiceNode): Promise<{ taken: number; handoffDropped: number; kernelDropped: number; otherDropped: number; accepted: number }> {
  const v = (name: string, labels: Record<string, string> = {}) => node.telemetry.value(name, labels);
  const handoffDropped = await v('sluice_dropped_records_total', { source: 'syslog_udp', reason: 'handoff_full' });
  return {
    taken: (await v('sluice_source_received_bytes_total', { source: 'syslog_udp' })) / SIZE,
    handoffDropped,
    kernelDropped: await v('sluice_udp_kernel_dropped_total'),
    otherDropped: (await v('sluice_dropped_records_total', { source: 'syslog_udp' })) - handoffDropped,
    accepted: await v('sluice_source_received_records_total', { source: 'syslog_udp' }),
  };
}

/** Wait until nothing waits in the socket's receive buffer or in the ring: every datagram is taken or counted. */
async function settled(node: SluiceNode, port: number): Promise<void> {
  await waitFor('socket and ring empty', async () =>
    udpSocketCounters('127.0.0.1', port)?.receiveQueueBytes === 0 && (await node.telemetry.value('sluice_udp_handoff_queued_bytes')) === 0, 120_000);
}

test('burst: one sender at full speed; every datagram is delivered or counted as dropped by sluice or the kernel', async (t) => {
  if (udpReceiveErrors() === null) {
    t.skip('the kernel counters need /proc (Linux)');
    return;
  }
  const count = 100_000;
  // The smallest ring, so a burst on a busy machine can fill it: its drops must be counted too.
  const { node, logs, udpPort } = await startTestNode(t, `${TENANT_YAML}sources:\n  syslog_udp: { handoff_buffer: 1MiB, receive_buffer: 0 }\n`);
  const { errors } = await sendFromThread(udpPort, count);
  assert.equal(errors, 0);
  await settled(node, udpPort);
  const n = await udpNumbers(node);
  // What was taken is accepted or dropped (backpressure) by the pipeline; accepted records reach the file.
  assert.equal(n.accepted + n.otherDropped, n.taken);
  const records = await waitFor('accepted records written', () => {
    const written = readTenantRecords(logs, 'a');
    return written.length >= n.accepted ? written : undefined;
  }, 120_000);
  assert.equal(records.length, n.accepted);
  const seqs = new Set(records.map((r) => Number(String(r.msg).slice(0, 8))));
  assert.equal(seqs.size, records.length, 'no datagram written twice');
  for (const seq of seqs) assert.ok(seq >= 0 && seq < count);
  assert.equal(n.taken + n.handoffDropped + n.kernelDropped, count, JSON.stringify(n));
  // The dashboard's overview shows both losses.
  const overview = buildOverview(await node.telemetry.registry.getMetricsAsJSON(), [], [], [], null);
  assert.equal(overview.udp?.handoffDropped, n.handoffDropped);
  assert.equal(overview.udp?.kernelDropped, n.kernelDropped);
  assert.ok(overview.udp.hostReceiveBufferErrors >= n.kernelDropped);
  t.diagnostic(`${count} sent: ${records.length} delivered, ${n.otherDropped} dropped by the pipeline, ${n.handoffDropped} in the hand-off, ${n.kernelDropped} by the kernel`);
});

test('a blocked event loop: the reader thread keeps draining the socket, so the kernel drops nothing while the ring has room', async (t) => {
  if (udpReceiveErrors() === null) {
    t.skip('the kernel counters need /proc (Linux)');
    return;
  }
  // 40,000 datagrams are ~10 MiB in the ring (16 MiB) and many times what the receive buffer holds
  // (4 MiB asked, about 8,000 such datagrams at their size in the kernel): read on the event loop, most would be dropped.
  const count = 40_000;
  const { node, logs, udpPort } = await startTestNode(t, `${TENANT_YAML}sources:\n  syslog_udp: { handoff_buffer: 16MiB, receive_buffer: 4MiB }\n`);
  const done = new Int32Array(new SharedArrayBuffer(4));
  // Paced (about 256 per 10 ms, so the block lasts a second or two): on a loaded machine a sender at full
  // speed can outrun the reader thread whatever the event loop does, which is not what this test is about.
  const sending = sendFromThread(udpPort, count, done, 10);
  // Block this thread (the node's event loop) until the sender's last datagram is out.
  Atomics.wait(done, 0, 0);
  assert.equal((await sending).errors, 0);
  await settled(node, udpPort);
  const n = await udpNumbers(node);
  assert.equal(n.kernelDropped, 0, JSON.stringify(n));
  assert.equal(n.handoffDropped, 0, JSON.stringify(n));
  assert.equal(n.taken, count);
  // The sinks' backpressure kept datagrams in the ring instead of dropping them.
  assert.equal(n.otherDropped, 0, JSON.stringify(n));
  await waitFor('every datagram written', () => readTenantRecords(logs, 'a').length === count, 120_000);
});

test('IPv6: a listener on ::1 takes datagrams from ::1, and its kernel counters are found in /proc/net/udp6', async (t) => {
  const { node, logs, udpPort } = await startTestNode(t, 'tenants:\n  six:\n    networks: ["::1/128"]\nsources:\n  syslog_udp: { address: "::1" }\n');
  const socket = dgram.createSocket('udp6');
  t.after(() => socket.close());
  for (let i = 0; i < 10; i++) socket.send(`<14>1 - h app - - - six ${i}`, udpPort, '::1');
  const records = await waitFor('ten records', () => {
    const got = readTenantRecords(logs, 'six');
    return got.length === 10 ? got : undefined;
  });
  assert.deepEqual(records.map((r) => r.msg).sort(), Array.from({ length: 10 }, (_, i) => `six ${i}`));
  if (udpReceiveErrors() !== null) {
    assert.ok(udpSocketCounters('::1', udpPort) !== null, 'the socket\'s line in /proc/net/udp6');
    const { values } = await node.telemetry.registry.getSingleMetric('sluice_udp_kernel_dropped_total')!.get();
    assert.deepEqual(values.map((v) => [v.labels.listener, v.value]), [[`[::1]:${udpPort}`, 0]]);
  }
});

test('a reader thread that ends leaves the source unhealthy; the node starts it again and datagrams flow', async (t) => {
  const { node, logs } = await startTestNode(t, `${TENANT_YAML}supervision: { initial_backoff: 100ms }\n`);
  // The thread is the source's own (private): ending it from here stands for a crash inside it.
  const restartsBefore = await node.telemetry.value('sluice_restarts_total', { component: 'source:syslog_udp' });
  await (node as unknown as { udp: { reader: Worker } }).udp.reader.terminate();
  const socket = dgram.createSocket('udp4');
  t.after(() => socket.close());
  let sent = 0;
  await waitFor('a datagram after the restart', () => {
    const port = node.addresses().syslogUdp?.port;
    if (port !== undefined) socket.send(`<14>1 - h app - - - again ${sent++}`, port, '127.0.0.1');
    return readTenantRecords(logs, 'a').some((r) => String(r.msg).startsWith('again '));
  }, 30_000);
  assert.equal(await node.telemetry.value('sluice_restarts_total', { component: 'source:syslog_udp' }), restartsBefore + 1, 'restarted by the supervisor');
});

test('a slow sink: datagrams wait in the ring while the sink holds the sources back; nothing is dropped by the kernel or by sluice', async (t) => {
  if (udpReceiveErrors() === null) {
    t.skip('the kernel counters need /proc (Linux)');
    return;
  }
  // The receiver reads nothing until released: the syslog sink's queue fills and it asks the sources to slow down.
  let received = '';
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => { release = resolve; });
  const receiver = net.createServer((socket) => {
    socket.pause();
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => { received += chunk; });
    void released.then(() => socket.resume());
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve()));
  t.after(() => receiver.close());
  const receiverPort = (receiver.address() as net.AddressInfo).port;
  const count = 20_000;
  const { node, udpPort } = await startTestNode(t, `${TENANT_YAML}sinks:
  fwd:
    type: syslog
    tenants: [a]
    queue_high_water: 256KiB
    syslog: { protocol: tcp, host: 127.0.0.1, port: ${receiverPort} }
sources:
  syslog_udp: { handoff_buffer: 16MiB, receive_buffer: 4MiB }
`);
  // Paced (about 256 per 10 ms) so that the reader thread, not the machine's load, is what is tested.
  const sending = sendFromThread(udpPort, count, undefined, 10);
  let mostQueued = 0;
  const sent = await waitFor('the sender done', async () => {
    mostQueued = Math.max(mostQueued, await node.telemetry.value('sluice_udp_handoff_queued_bytes'));
    return Promise.race([sending, new Promise<false>((resolve) => setTimeout(() => resolve(false), 5))]);
  }, 120_000);
  assert.equal(sent.errors, 0);
  assert.ok(mostQueued > 0, 'datagrams waited in the ring');
  assert.ok(await node.telemetry.value('sluice_sink_queued_bytes', { sink: 'fwd' }) > 0, 'the sink is held up');
  let n = await udpNumbers(node);
  assert.deepEqual([n.kernelDropped, n.handoffDropped, n.otherDropped], [0, 0, 0], JSON.stringify(n));
  release();
  await waitFor('every record at the receiver', () => (received.match(/ - - - \d{8} /g) ?? []).length === count, 120_000);
  n = await udpNumbers(node);
  assert.deepEqual([n.taken, n.kernelDropped, n.handoffDropped, n.otherDropped], [count, 0, 0, 0], JSON.stringify(n));
});
