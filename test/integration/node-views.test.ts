/**
 * A node of several workers reads as one: a real `sluice start` with 2
 * workers and a tenant routed to two sinks. The overview has one row per sink
 * and per tenant (its delivered records counted once, not once per sink),
 * /api/components one entry per component, and the counters of /metrics and
 * the overview keep their totals across a rolling restart and a reload (the
 * primary keeps the counters of the workers that left); the event-loop
 * gauges report each worker's delay and the node's; reload applies exactly
 * the node's file and the admin API shows what runs after it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect, readTenantRecords, tempDir, waitFor } from '../helpers.js';
import { sluice, startNode } from '../sluice-cli.js';
import type { Overview } from '../../src/ops/admin/overview.js';

test('node views: one row per sink and tenant, counted once; totals survive a rolling restart and a reload', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const config = path.join(dir, 'sluice.yaml');
  const bothSinks = `sinks: { a: { type: file, path: ${JSON.stringify(path.join(dir, 'a'))} }, b: { type: file, path: ${JSON.stringify(path.join(dir, 'b'))} } }`;
  const yaml = (extra: string[], sinks = bothSinks, adminYaml = 'admin: { port: 0 }'): string => [
    `data_dir: ${JSON.stringify(path.join(dir, 'node'))}`,
    'workers: 2',
    'connection_balancing: round_robin',
    'log: { level: info }',
    'sources: { syslog_udp: { enabled: false }, syslog_tcp: { port: 0 }, relp: { enabled: false }, http: { enabled: false } }',
    sinks,
    'hostmeta: { service: { port: 0 } }',
    adminYaml,
    ...extra,
  ].join('\n');
  writeFileSync(config, yaml([]));
  const node = startNode(config, dir);
  t.after(() => { node.child.kill('SIGKILL'); });
  await waitFor('node ready', () => node.lines.some((l) => l.code === 'SLU0003I' && l.workers === 2), 30_000);
  const tcpPort = Number(node.lines.find((l) => l.code === 'SLU0002I' && l.source === 'syslog_tcp')!.port);
  const admin = `http://127.0.0.1:${String(node.lines.find((l) => l.code === 'SLU0700I')!.port)}`;
  let token = readFileSync(path.join(dir, 'node', 'admin-token'), 'utf8').trim();
  const get = async <T>(route: string): Promise<T> => (await (await fetch(`${admin}${route}`, { headers: { authorization: `Bearer ${token}` } })).json()) as T;
  const metric = async (sample: string): Promise<number> => {
    const text = await (await fetch(`${admin}/metrics`)).text();
    return Number(text.split('\n').find((l) => l.startsWith(`${sample} `))?.split(' ')[1] ?? 0);
  };
  let sent = 0;
  const send = async (count: number): Promise<void> => {
    // Four connections: round robin puts them on both workers.
    for (let c = 0; c < 4; c++) {
      const socket = await connect(tcpPort);
      let data = '';
      for (let i = 0; i < count / 4; i++) data += `<14>1 - h app - - - view ${sent++}\n`;
      await new Promise<void>((resolve) => socket.end(data, resolve));
    }
    const want = sent;
    await waitFor(`${want} records in both sinks`, () => ['a', 'b'].every((sink) => readTenantRecords(path.join(dir, sink), 'default').length === want));
  };
  const delivered = async (): Promise<number> => (await get<Overview>('/api/overview')).tenants.find((r) => r.tenant === 'default')?.deliveredRecords ?? -1;

  await send(20);
  const sessionsSeen = await waitFor('the overview counts all 20', async () => ((await delivered()) === 20 ? get<Overview>('/api/overview') : undefined));
  assert.deepEqual(sessionsSeen.sinks.map((s) => s.name), ['a', 'b'], 'one row per sink, not one per worker');
  assert.deepEqual(sessionsSeen.tenants.map((r) => r.tenant), ['default'], 'one row per tenant');
  const components = await get<{ name: string }[]>('/api/components');
  assert.equal(new Set(components.map((c) => c.name)).size, components.length, 'one entry per component');
  assert.equal(await metric('sluice_tenant_delivered_records_total{sink="a",tenant="default"}'), 20);
  // Event-loop delay: p99 and max of one scrape are real (not zeroed by the p50 gauge read first), per worker and for the node.
  await waitFor('event-loop delay per worker and for the node', async () => {
    const text = await (await fetch(`${admin}/metrics`)).text();
    const value = (sample: string) => Number(text.split('\n').find((l) => l.startsWith(`${sample} `))?.split(' ')[1] ?? 0);
    const series = ['sluice_event_loop_delay_p99_seconds', 'sluice_event_loop_delay_max_seconds',
      ...['1', '2'].flatMap((w) => [`sluice_worker_event_loop_delay_p99_seconds{worker="${w}"}`, `sluice_worker_event_loop_delay_max_seconds{worker="${w}"}`])];
    return series.every((name) => value(name) > 0) && value('sluice_event_loop_delay_max_seconds') >= value('sluice_event_loop_delay_p99_seconds');
  });

  const restart = await sluice(['restart', '--rolling', '-c', config], dir);
  assert.equal(restart.status, 0, restart.stderr);
  await waitFor('the first workers have exited', () => node.lines.filter((l) => l.code === 'SLU0809I').length === 2);
  await waitFor('their counters kept by the primary', async () => (await metric('sluice_tenant_delivered_records_total{sink="a",tenant="default"}')) === 20);
  assert.equal(await delivered(), 20, 'the overview keeps the total across the rolling restart');
  assert.equal(await metric('sluice_source_received_records_total{source="syslog_tcp"}'), 20);

  await send(8);
  // A reload names the file it applies; another file than the node's is refused, naming both.
  const other = path.join(dir, 'other.yaml');
  writeFileSync(other, yaml([]));
  const elsewhere = await sluice(['reload', '-c', other], dir);
  assert.equal(elsewhere.status, 1);
  assert.ok(elsewhere.stderr.includes(`this node runs ${config}, not ${other}`), elsewhere.stderr);
  // A tenant no sink takes is refused by validate and by reload.
  const lonely = ['tenants:', '  default: { networks: [127.0.0.0/8] }', '  lonely: { networks: [10.9.0.0/16] }'];
  writeFileSync(other, yaml(lonely, `sinks: { a: { type: file, tenants: [default], path: ${JSON.stringify(path.join(dir, 'a'))} } }`));
  const invalid = await sluice(['validate', '-c', other], dir);
  assert.equal(invalid.status, 1);
  assert.match(invalid.stderr, /tenants\.lonely.*some sink takes/);
  writeFileSync(config, readFileSync(other, 'utf8'));
  const refused = await sluice(['reload', '-c', config], dir);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /tenants\.lonely.*some sink takes/);
  // The reload applies the new tenant: the admin API shows it with its limits, and changes them.
  const acme = ['tenants:', '  default: { networks: [127.0.0.0/8] }', '  acme: { networks: [10.8.0.0/16], limits: { messages_per_second: 50 } }'];
  const configuredToken = 'views-admin-token-0123456789abcdef';
  writeFileSync(config, yaml(acme, bothSinks, `admin: { port: 0, tokens: [{ token: ${configuredToken} }] }`));
  const reload = await sluice(['reload', '-c', config], dir);
  assert.equal(reload.status, 0, reload.stderr);
  assert.ok(reload.stdout.includes(`configuration ${config} accepted`), reload.stdout);
  assert.ok(node.lines.some((l) => l.code === 'SLU0805I' && l.file === config), 'the log line names the file');
  // The admin server takes the file's admin tokens: the generated one no longer opens it, the configured one does.
  const generated = token;
  const components200 = async (bearer: string) => (await fetch(`${admin}/api/components`, { headers: { authorization: `Bearer ${bearer}` } })).status;
  assert.equal(await components200(generated), 401);
  assert.equal(await components200(configuredToken), 200);
  token = configuredToken;
  const tenants = await get<{ id: string; limits: { messages_per_second: number } }[]>('/api/tenants');
  assert.deepEqual(tenants.map((r) => [r.id, r.limits.messages_per_second]).sort(), [['acme', 50], ['default', 0]]);
  const put = await fetch(`${admin}/api/tenants/acme/limits`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ messages_per_second: 70 }) });
  assert.equal(put.status, 200, await put.text());
  await waitFor('the reload has replaced both workers', () => node.lines.filter((l) => l.code === 'SLU0809I').length === 4, 30_000);
  await waitFor('28 after the reload', async () => (await metric('sluice_tenant_delivered_records_total{sink="b",tenant="default"}')) === 28);
  assert.equal(await delivered(), 28);
  node.child.kill('SIGTERM');
  assert.equal(await node.exited, 0);
});
