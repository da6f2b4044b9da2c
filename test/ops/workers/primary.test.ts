/**
 * The primary and its workers, run in this test process (it becomes the
 * node:cluster primary; the workers are real forked processes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Primary, WORKER_HEAP_FLOOR_MIB, workerHeapLimitMiB } from '../../../src/ops/workers/primary.js';
import { proportionalShares, WorkersControl } from '../../../src/ops/workers/workers-control.js';
import { connect, memoryLogger, readTenantRecords, tailInto, tempDir, testConfig, waitFor } from '../../helpers.js';
import { RelpTestClient } from '../../relp-client.js';

async function startPrimary(t: { after(fn: () => void | Promise<void>): void }, dir: string, yaml: string, workerExec?: string) {
  const { logger, lines } = memoryLogger();
  // Round robin: these tests count on connections reaching every worker (the first Primary of a process fixes the policy).
  const primary = new Primary(testConfig(dir, `connection_balancing: round_robin\n${yaml}`), { configPath: null, logger, ...(workerExec === undefined ? {} : { workerExec }) });
  t.after(async () => {
    await primary.stop(Date.now() + 5000);
  });
  await primary.start();
  return { primary, control: new WorkersControl(primary), lines };
}

/** POST one batch to /v1/ingest on a new connection (so batches spread over the workers); true when answered 200. */
function post(port: number, body: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/ingest', agent: false, headers: { 'content-type': 'application/x-ndjson' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
      res.on('error', () => resolve(false));
    });
    req.on('error', () => resolve(false));
    req.setTimeout(10_000, () => req.destroy());
    req.end(body);
  });
}

test('cluster: kill -9 a worker under load: it comes back after its backoff, the node keeps serving, nothing acknowledged is lost', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t);
  const { primary, control, lines } = await startPrimary(t, dir, [
    'workers: 2',
    'supervision: { initial_backoff: 200ms, max_backoff: 2s }',
    'sources: { syslog_udp: { enabled: false }, relp: { enabled: false } }',
  ].join('\n'));
  assert.deepEqual(primary.slotIds(), [1, 2]);
  const port = primary.readyWorkers()[0]!.addresses!.http!.port;
  assert.ok(primary.readyWorkers().every((w) => w.addresses!.http!.port === port), 'every worker shares the one HTTP port');

  const acknowledged = new Set<number>();
  let next = 0;
  let sending = true;
  let failures = 0;
  const sender = async (): Promise<void> => {
    while (sending) {
      const first = next;
      next += 20;
      const body = Array.from({ length: 20 }, (_, i) => `seq ${first + i}`).join('\n');
      // At least once: a batch that was not acknowledged is sent again until it is.
      while (!(await post(port, body))) failures++;
      for (let i = 0; i < 20; i++) acknowledged.add(first + i);
    }
  };
  const senders = [sender(), sender(), sender(), sender()];
  await waitFor('load before the kill', () => acknowledged.size >= 2000, 30_000);
  const victim = primary.workers.get(1)!;
  const victimPid = victim.worker.process.pid!;
  process.kill(victimPid, 'SIGKILL');
  await victim.exited;
  const atKill = acknowledged.size;
  await waitFor('worker 1 back', () => {
    const w = primary.workers.get(1);
    return w !== undefined && w.addresses !== null && w.worker.process.pid !== victimPid;
  }, 30_000);
  await waitFor('more load after the restart', () => acknowledged.size >= atKill + 2000, 30_000);
  sending = false;
  await Promise.all(senders);

  const restarting = lines.filter((l) => l.code === 'SLU0802W');
  assert.equal(restarting.length, 1);
  assert.equal(restarting[0]!.component, 'worker:1');
  assert.ok(Number(restarting[0]!.delay_ms) >= 100 && Number(restarting[0]!.delay_ms) <= 200, `first backoff within [initial/2, initial]: ${String(restarting[0]!.delay_ms)}`);
  assert.match((await control.metrics()).text, /sluice_restarts_total\{component="worker:1"\} 1/);
  assert.equal((await control.readiness()).ready, true);

  await primary.stop(Date.now() + 5000);
  const seen = new Set<number>();
  for (const record of readTenantRecords(path.join(dir, 'logs'), 'default')) seen.add(Number(String(record.msg).slice(4)));
  const missing = [...acknowledged].filter((seq) => !seen.has(seq));
  t.diagnostic(`${acknowledged.size} acknowledged (${failures} retried requests around the kill), ${seen.size} in the files`);
  assert.deepEqual(missing, [], 'every acknowledged record is in the files');
});

test('cluster: a worker that crashes on start 20 times in a row: backoff grows, the node stays up, serves and reports it', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  // The worker of slot 2 exits at every start (a worker program that does so); slot 1 is healthy.
  const { primary, control, lines } = await startPrimary(t, dir, [
    'workers: 2',
    'supervision: { initial_backoff: 10ms, max_backoff: 160ms, crash_loop_after: 5 }',
    'sources: { syslog_udp: { enabled: false }, relp: { enabled: false }, http: { enabled: false } }',
  ].join('\n'), fileURLToPath(new URL('./crashing-worker.js', import.meta.url)));
  const failures = () => lines.filter((l) => l.code === 'SLU0802W' && l.component === 'worker:2');
  await waitFor('20 failed starts', () => failures().length >= 20, 100_000);

  const delays = failures().map((l) => Number(l.delay_ms));
  // Full jitter in [cap/2, cap]: the caps are 10, 20, 40, 80, 160, 160, …
  delays.forEach((delay, i) => {
    const cap = Math.min(160, 10 * 2 ** i);
    assert.ok(delay >= cap / 2 && delay <= cap, `restart ${i + 1}: ${delay} ms within [${cap / 2}, ${cap}]`);
  });
  assert.deepEqual(failures().map((l) => l.failures).slice(0, 20), Array.from({ length: 20 }, (_, i) => i + 1));
  assert.equal(lines.filter((l) => l.code === 'SLU0803E' && l.component === 'worker:2').length, 1, 'the crash loop is reported once');
  assert.match((await control.metrics()).text, /sluice_crash_loop\{component="worker:2"\} 1/);
  const readiness = await control.readiness();
  assert.equal(readiness.ready, true, 'the healthy worker keeps the node ready');
  assert.ok(readiness.detail.some((d) => d.startsWith('worker:2: crash loop')), readiness.detail.join('; '));

  const port = primary.workers.get(1)!.addresses!.syslogTcp!.port;
  const socket = await connect(port);
  socket.end('<13>1 - host app - - - still serving\n');
  await waitFor('record written', () => readTenantRecords(path.join(dir, 'logs'), 'default').some((r) => r.msg === 'still serving'));
});

test('cluster control: the node seen as one — sessions of every worker, disconnect routed by id, tail from every worker, metrics summed', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const { primary, control } = await startPrimary(t, dir, [
    'workers: 2',
    'sources: { syslog_udp: { enabled: false }, relp: { enabled: false }, http: { enabled: false } }',
  ].join('\n'));
  const port = primary.workers.get(1)!.addresses!.syslogTcp!.port;
  const tailed: string[] = [];
  const stopTail = await control.tail({ tenant: 'default' }, tailInto(tailed));

  // Connections are handed to the workers in turn: a handful reaches both.
  const sockets = await Promise.all(Array.from({ length: 6 }, () => connect(port)));
  sockets.forEach((socket, i) => socket.write(`<13>1 - host${i} app - - - hello ${i}\n`));
  const sessions = await waitFor('six sessions', async () => {
    const list = await control.sessions();
    return list.length === 6 && list.every((s) => s.records === 1) ? list : undefined;
  });
  const workersSeen = new Set(sessions.map((s) => /^w(\d+):/.exec(s.id)?.[1]));
  assert.deepEqual([...workersSeen].sort(), ['1', '2'], 'sessions of both workers, ids prefixed by their worker');
  await waitFor('six tailed records', () => tailed.length === 6);
  assert.deepEqual(tailed.map((line) => (JSON.parse(line) as { msg: string }).msg).sort(), Array.from({ length: 6 }, (_, i) => `hello ${i}`));
  // Each worker registered its hosts with the primary's metadata service (over the IPC channel) before writing them.
  const metas = tailed.map((line) => JSON.parse(line) as { host: string; meta?: { hostname?: string } | null; meta_missing?: string });
  assert.deepEqual(metas.filter((r) => r.meta_missing !== undefined), [], 'no record without its metadata');
  assert.deepEqual(metas.map((r) => r.meta?.hostname).sort(), Array.from({ length: 6 }, (_, i) => `host${i}`));
  const registered = await primary.hostmetaService!.store.getOrCreateMany('default', metas.map((r) => ({ key: r.host })), Date.now(), 64 * 1024);
  assert.ok(registered.every((h) => h.metadata !== null && !h.created), `the hosts are in the primary's store: ${JSON.stringify(registered)}`);
  stopTail();

  const victim = sessions.find((s) => s.id.startsWith('w2:'))!;
  assert.equal(await control.disconnect(victim.id), true);
  assert.equal(await control.disconnect('w2:syslog_tcp-999'), false);
  await waitFor('five sessions', async () => (await control.sessions()).length === 5);

  const text = (await control.metrics()).text;
  assert.match(text, /sluice_source_received_records_total\{source="syslog_tcp"\} 6\b/, 'received records summed over the workers');
  assert.match(text, /sluice_workers_running 2\b/);
  const components = await control.components();
  assert.equal(new Set(components.map((c) => c.name)).size, components.length, 'one view per component of the node, not one per worker');
  assert.equal(components.find((c) => c.name === 'source:syslog_tcp')?.healthy, true);
  assert.match(components.find((c) => c.kind === 'sink')?.detail ?? '', /worker 1: .*; worker 2: /, 'each worker\'s detail of a sink');
  assert.ok(components.some((c) => c.name === 'service:hostmeta'), 'the metadata service runs once, in the primary');
  const limits = { messagesPerSecond: 1000, bytesPerSecond: 0, burstMs: 1000, maxConnections: 0 };
  await control.setTenantLimits('default', limits);
  assert.deepEqual((await control.tenantLimits())['default'], limits, 'the node runs the limits it was given');
  await assert.rejects(control.setTenantLimits('nobody', { messagesPerSecond: 1, bytesPerSecond: 0, burstMs: 1000, maxConnections: 0 }), /no tenant nobody/);
  for (const socket of sockets) socket.destroy();
});

test('cluster: 10,000 hosts never seen before at once through two workers; every record carries its metadata from the primary\'s service', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  // The wait for a new host's metadata is generous: this is about every record getting it (speed is benchmark W7's).
  const { primary } = await startPrimary(t, dir, [
    'workers: 2',
    'sources: { syslog_udp: { enabled: false }, relp: { enabled: false }, http: { enabled: false } }',
    'hostmeta: { client: { lookup_timeout: 30s } }',
  ].join('\n'));
  const port = primary.workers.get(1)!.addresses!.syslogTcp!.port;
  // Each worker runs as docs/memory.md and docs/tenants.md say: two malloc arenas, 16 pool threads, an 8 MiB young generation.
  const pid = primary.workers.get(1)!.worker.process.pid!;
  const environ = new Set(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0'));
  assert.ok(environ.has(`MALLOC_ARENA_MAX=${process.env['MALLOC_ARENA_MAX'] ?? '2'}`), 'MALLOC_ARENA_MAX');
  assert.ok(environ.has(`UV_THREADPOOL_SIZE=${process.env['UV_THREADPOOL_SIZE'] ?? '16'}`), 'UV_THREADPOOL_SIZE');
  assert.ok(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('--max-semi-space-size=8'), '--max-semi-space-size');
  const connections = 20;
  const perConnection = 500;
  const frame = (msg: string): string => `${Buffer.byteLength(msg)} ${msg}`;
  // Connections go to the workers in turn: each worker's batches of 500 hosts (over 100 KB of JSON each) back its IPC channel up.
  const sockets = await Promise.all(Array.from({ length: connections }, () => connect(port)));
  await Promise.all(sockets.map((socket, c) => new Promise<void>((resolve) => {
    let data = '';
    for (let n = 0; n < 2; n++) for (let h = 0; h < perConnection; h++) data += frame(`<14>1 - fleet-${c * perConnection + h} app - - - message ${n}`);
    socket.end(data, () => resolve());
  })));
  const logs = path.join(dir, 'logs');
  const records = await waitFor('every record', () => {
    const all = readTenantRecords(logs, 'default');
    return all.length === connections * perConnection * 2 ? all : undefined;
  }, 90_000);
  const missing = records.filter((r) => r['meta_missing'] !== undefined || r['meta'] === null || r['meta'] === undefined);
  assert.equal(missing.length, 0, `records without metadata: ${JSON.stringify(missing.slice(0, 3))}`);
  const byHostname = new Map(records.map((r) => [r['hostname'], (r['meta'] as { hostname?: string }).hostname]));
  assert.equal(byHostname.size, connections * perConnection);
  for (const [hostname, registered] of byHostname) assert.equal(registered, hostname, 'each record carries its own host\'s document');
});

test('proportionalShares: in proportion, capped by each capacity, remainders to the largest fractions, adding up', () => {
  assert.deepEqual(proportionalShares(4, [4, 3]), [2, 2]);
  assert.deepEqual(proportionalShares(3, [9, 1, 0]), [3, 0, 0]);
  assert.deepEqual(proportionalShares(5, [1, 1, 8]), [1, 0, 4]);
  assert.deepEqual(proportionalShares(10, [6, 2]), [6, 2], 'no more than there is');
  assert.deepEqual(proportionalShares(0, [3, 3]), [0, 0]);
  assert.deepEqual(proportionalShares(3, [0, 0]), [0, 0]);
  assert.deepEqual(proportionalShares(3, []), []);
  for (let count = 0; count <= 20; count++) {
    const shares = proportionalShares(count, [7, 0, 5, 1]);
    assert.equal(shares.reduce((a, b) => a + b, 0), Math.min(count, 13));
    shares.forEach((share, i) => assert.ok(share <= [7, 0, 5, 1][i]!));
  }
});

test('cluster control: shedding is split across the workers in proportion to what each can shed; plain TCP is never shed', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const { primary, control } = await startPrimary(t, dir, [
    'workers: 2',
    'sources: { syslog_udp: { enabled: false }, http: { enabled: false } }',
  ].join('\n'));
  const worker = primary.workers.get(1)!.addresses!;
  const tcp = await Promise.all(Array.from({ length: 2 }, () => connect(worker.syslogTcp!.port)));
  const relp = await Promise.all(Array.from({ length: 7 }, () => RelpTestClient.connect(worker.relp!.port)));
  await Promise.all(relp.map((client) => client.open()));
  const sessions = await waitFor('nine sessions', async () => {
    const list = await control.sessions();
    return list.length === 9 ? list : undefined;
  });
  const workers = new Map(relp.map((client) => {
    const session = sessions.find((s) => s.protocol === 'relp' && s.peer === `127.0.0.1:${client.socket.localPort}`)!;
    return [client, /^w(\d+):/.exec(session.id)![1]!];
  }));
  const workerOf = (client: RelpTestClient): string => workers.get(client)!;
  const perWorker = ['1', '2'].map((w) => relp.filter((client) => workerOf(client) === w).length);
  assert.equal(await control.sheddableSessions(), 7, 'the RELP sessions of both workers; TCP cannot be shed');

  assert.equal(await control.shedSessions(4), 4);
  const expected = proportionalShares(4, perWorker);
  const asked = await waitFor('four sessions closed', () => {
    const gone = relp.filter((client) => client.received.some((f) => f.command === 'serverclose'));
    return gone.length === 4 ? gone : undefined;
  });
  assert.deepEqual(['1', '2'].map((w) => asked.filter((client) => workerOf(client) === w).length), expected,
    `${perWorker.join('/')} sessions on the workers: asked ${expected.join('/')}`);
  await waitFor('three sheddable left', async () => (await control.sheddableSessions()) === 3);
  assert.equal(await control.shedSessions(100), 3, 'no more than there are');
  await waitFor('only the TCP sessions left', async () => {
    const list = await control.sessions();
    return list.length === 2 && list.every((s) => s.protocol === 'tcp');
  });
  assert.match((await control.metrics()).text, /sluice_sessions_shed_total\{protocol="relp"\} 7\b/, 'counted in the workers, summed');
  for (const socket of tcp) socket.destroy();
});

test('workers: each worker\'s V8 heap limit is its share of the memory budget up to the soft mark, less what it holds outside the heap, never below the floor', (t) => {
  const dir = tempDir(t);
  // 2 GiB × 0.8 shared by a worker and the primary: 819 MiB each, 64 of them outside the heap.
  assert.equal(workerHeapLimitMiB(testConfig(dir, 'workers: 1\nmemory: { budget: 2GiB }')), 755);
  assert.equal(workerHeapLimitMiB(testConfig(dir, 'workers: 2\nmemory: { budget: 2GiB, soft_mark: 0.6 }')), 345);
  assert.equal(workerHeapLimitMiB(testConfig(dir, 'workers: 2\nmemory: { budget: 512MiB }')), WORKER_HEAP_FLOOR_MIB, '72 MiB each would be below the floor');
  assert.equal(workerHeapLimitMiB(testConfig(dir, 'workers: 4\nmemory: { budget: 256MiB }')), WORKER_HEAP_FLOOR_MIB);
});
