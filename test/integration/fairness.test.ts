/**
 * Fairness between tenants over real sockets: one tenant floods a sink whose
 * receiver is slow; the sink pauses that tenant alone, and a second tenant's
 * records overtake the flood's backlog (per-tenant queues, deficit
 * round-robin) instead of waiting behind it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startRsyslogReceiver } from '../rsyslog-receiver.js';
import { connect, readTenantRecords, requireProgram, startTestNode, tempDir, waitFor } from '../helpers.js';

const noRsyslog = requireProgram('rsyslogd', 'Debian package rsyslog');

const frame = (msg: string): string => `${Buffer.byteLength(msg)} ${msg}`;

test('fairness: a tenant flooding a slow sink is paused alone, and another tenant\'s records overtake its backlog', { skip: noRsyslog }, async (t) => {
  // The real rsyslog, stopped: it reads nothing until the test lets it run; it writes every message in arrival order.
  const receiver = await startRsyslogReceiver(t, tempDir(t));
  receiver.pause();
  const receiverPort = receiver.port;
  // rsyslog's fields: PRI|TIMESTAMP|HOSTNAME|APP|PROCID|MSGID|SD|MSG, the message `<tenant> <seq> ...`.
  const arrivalsNow = (): { tenant: string; seq: number }[] => receiver.lines().map((line) => {
    const words = line.split('|')[7]!.split(' ');
    return { tenant: words[0]!, seq: Number(words[1]) };
  });
  const yaml = [
    'tenants:',
    '  flood:',
    '    networks: [127.0.1.0/24]',
    '  light:',
    '    networks: [127.0.2.0/24]',
    'sinks:',
    '  forward:',
    '    type: syslog',
    '    batch_size: 16KiB',
    '    batch_delay: 1ms',
    '    queue_high_water: 1MiB',
    `    syslog: { protocol: tcp, port: ${receiverPort} }`,
    // No host lookups: a batch waiting for one would not be in the sink yet when the receiver starts reading.
    'hostmeta: { client: { enabled: false }, service: { enabled: false } }',
  ].join('\n');
  const { node, tcpPort } = await startTestNode(t, yaml);
  const sink = node.pipeline.directory.tenants.get('flood')!.sinks[0]!;
  const session = (tenant: string) => node.pipeline.sessions.views().find((s) => s.tenant === tenant);

  // The flood: numbered messages, as fast as the node reads them, until the node stops reading.
  const flood = await connect(tcpPort, '127.0.1.1');
  t.after(() => flood.destroy());
  const padding = 'x'.repeat(200);
  let seq = 0;
  const pump = (): void => {
    for (;;) {
      let chunk = '';
      for (let i = 0; i < 200; i++) chunk += frame(`<14>1 - web-1 app - - - flood ${seq++} ${padding}`);
      if (flood.destroyed || !flood.write(chunk)) return;
    }
  };
  flood.on('drain', pump);
  flood.on('error', () => undefined);
  pump();
  await waitFor('the flood tenant paused by the sink', () => sink.congested('flood') && session('flood')?.throttled === true, 20_000);
  assert.equal(sink.congested('light'), false, 'the other tenant is not held');

  // Everything the flood sent so far is at the receiver's door, in the kernel, or queued in the sink.
  const floodAccepted = session('flood')!.records;
  const light = await connect(tcpPort, '127.0.2.1');
  t.after(() => light.destroy());
  light.write(frame('<14>1 - db-1 app - - - light 0') + frame('<14>1 - db-1 app - - - light 1'));
  await waitFor('the light records in the sink', () => session('light')?.records === 2);
  assert.equal(session('light')!.throttled, false, 'the light session reads on');
  assert.equal(session('flood')!.records, floodAccepted, 'the flood is still paused');

  receiver.resume();
  const arrivals = await waitFor('the light records and the flood backlog at the receiver', () => {
    const seen = arrivalsNow();
    return seen.filter((a) => a.tenant === 'light').length === 2 && seen.some((a) => a.tenant === 'flood' && a.seq === floodAccepted - 1) ? seen : undefined;
  }, 30_000);
  const lightAt = arrivals.findIndex((a) => a.tenant === 'light');
  const overtaken = arrivals.slice(lightAt).filter((a) => a.tenant === 'flood' && a.seq < floodAccepted).length;
  // The sink held at least its 1 MiB high water of the flood (about 4,000 messages) when the light records came.
  assert.ok(overtaken >= 2000, `the light records went ahead of ${overtaken} flood messages queued before them`);
  const floodSeqs = arrivals.filter((a) => a.tenant === 'flood').map((a) => a.seq);
  assert.ok(floodSeqs.every((n, i) => i === 0 || n === floodSeqs[i - 1]! + 1), 'the flood arrives in order, nothing lost');
  assert.deepEqual(arrivals.filter((a) => a.tenant === 'light').map((a) => a.seq), [0, 1]);
});

test('fairness: a connection sending megabytes at once is read a bounded slice per event-loop turn, in order', async (t) => {
  const { node, logs, tcpPort } = await startTestNode(t, 'hostmeta: { client: { enabled: false }, service: { enabled: false } }');
  const sink = node.pipeline.directory.tenants.get('default')!.sinks[0]!;
  const write = sink.write.bind(sink);
  const batches: number[] = [];
  sink.write = (tenant, records, ack) => {
    batches.push(records.length);
    return write(tenant, records, ack);
  };
  const count = 16_000;
  const line = (i: number): string => `<14>1 - web-1 app - - - big ${i} ${'y'.repeat(200)}`;
  const frameBytes = Buffer.byteLength(frame(line(0)));
  // Another process sends, so that data keeps arriving while the node reads (as from a real agent).
  const sender = spawn(process.execPath, ['-e', `
    const net = require('node:net');
    let data = '';
    for (let i = 0; i < ${count}; i++) { const m = '<14>1 - web-1 app - - - big ' + i + ' ' + 'y'.repeat(200); data += Buffer.byteLength(m) + ' ' + m; }
    const s = net.connect(${tcpPort}, '127.0.0.1', () => s.end(data));
  `], { stdio: 'ignore' });
  t.after(() => sender.kill());
  await waitFor('every record written', () => readTenantRecords(logs, 'default').length === count, 30_000);
  // Per turn: up to 64 KiB, plus the read that crossed it (64 KiB at most) and what the stream
  // buffered before reading stopped (its 16 KiB high-water mark).
  const most = Math.ceil((144 * 1024) / frameBytes);
  assert.ok(Math.max(...batches) <= most, `largest batch ${Math.max(...batches)} records; at most ${most} expected`);
  assert.ok(batches.length >= 16, `${batches.length} batches`);
  const numbers = readTenantRecords(logs, 'default').map((r) => Number(String(r.msg).split(' ')[1]));
  assert.ok(numbers.every((n, i) => n === i), 'in order');
});

test('fairness: a tenant flooding with no limit set is read its share of each turn, deferred, while steady tenants\' records are served at once', async (t) => {
  const yaml = [
    'hostmeta: { client: { enabled: false }, service: { enabled: false } }',
    'tenants:',
    '  flood: { networks: [127.0.1.0/24] }',
    '  steady1: { networks: [127.0.2.0/24] }',
    '  steady2: { networks: [127.0.3.0/24] }',
    '  steady3: { networks: [127.0.4.0/24] }',
  ].join('\n');
  const { node, logs, tcpPort } = await startTestNode(t, yaml);
  const value = (metric: string, tenant: string) => node.telemetry.value(metric, { tenant });
  const connections = 4;
  const perConnection = 50_000;
  const floodTotal = connections * perConnection;
  // Another process floods over four connections, each as fast as the node reads it.
  const flooder = spawn(process.execPath, ['-e', `
    const net = require('node:net');
    for (let c = 0; c < ${connections}; c++) {
      let data = '';
      for (let i = 0; i < ${perConnection}; i++) { const m = '<14>1 - flood-' + c + ' app - - - flood ' + i + ' ' + 'x'.repeat(180); data += Buffer.byteLength(m) + ' ' + m; }
      const s = net.connect({ port: ${tcpPort}, host: '127.0.0.1', localAddress: '127.0.1.' + (c + 1) }, () => s.end(data));
    }
  `], { stdio: 'ignore' });
  t.after(() => flooder.kill());
  await waitFor('the flood to begin', async () => (await value('sluice_tenant_accepted_records_total', 'flood')) > 0);

  // Each steady tenant sends one record at a time, the next once the last is written, until the flood is all written.
  const steady = ['steady1', 'steady2', 'steady3'];
  const servedDuringFlood = new Map(steady.map((tenant) => [tenant, 0]));
  const sent = new Map(steady.map((tenant) => [tenant, 0]));
  await Promise.all(steady.map(async (tenant, n) => {
    const socket = await connect(tcpPort, `127.0.${n + 2}.1`);
    for (let i = 0; ; i++) {
      socket.write(frame(`<14>1 - ${tenant}-host app - - - ${tenant} ${i}`));
      sent.set(tenant, i + 1);
      await waitFor(`${tenant} ${i} written`, async () => (await value('sluice_tenant_delivered_records_total', tenant)) === i + 1, 30_000);
      const flooded = await value('sluice_tenant_delivered_records_total', 'flood');
      if (flooded >= floodTotal) break;
      servedDuringFlood.set(tenant, servedDuringFlood.get(tenant)! + 1);
    }
    socket.end();
  }));

  const deferred = await value('sluice_tenant_turn_deferred_total', 'flood');
  t.diagnostic(`flood deferred ${deferred} times; steady records written during the flood: ${[...servedDuringFlood.values()].join(", ")}`);
  assert.ok(deferred > 0, 'the flooder waited for later turns');
  for (const tenant of steady) {
    assert.equal(await value('sluice_tenant_turn_deferred_total', tenant), 0, `${tenant} was never deferred`);
    assert.ok(servedDuringFlood.get(tenant)! >= 1, `${tenant}: ${servedDuringFlood.get(tenant)} records written while the flood went on`);
    assert.deepEqual(readTenantRecords(logs, tenant).map((r) => r.msg), Array.from({ length: sent.get(tenant)! }, (_, i) => `${tenant} ${i}`));
  }
  // The flooder lost nothing either: every record, in order on each connection.
  const flood = readTenantRecords(logs, 'flood');
  assert.equal(flood.length, floodTotal);
  for (let c = 0; c < connections; c++) {
    const numbers = flood.filter((r) => r.hostname === `flood-${c}`).map((r) => Number(String(r.msg).split(' ')[1]));
    assert.ok(numbers.length === perConnection && numbers.every((n, i) => n === i), `connection ${c} in order`);
  }
});
