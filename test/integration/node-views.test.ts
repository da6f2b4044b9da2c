/**
 * A node of several workers reads as one: a real `sluice start` with 2
 * workers and a tenant routed to two sinks. The overview has one row per sink
 * and per tenant (its delivered records counted once, not once per sink),
 * /api/components one entry per component, and the counters of /metrics and
 * the overview keep their totals across a rolling restart and a reload (the
 * primary keeps the counters of the workers that left).
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
  writeFileSync(config, [
    `data_dir: ${JSON.stringify(path.join(dir, 'node'))}`,
    'workers: 2',
    'connection_balancing: round_robin',
    'log: { level: info }',
    'sources: { syslog_udp: { enabled: false }, syslog_tcp: { port: 0 }, relp: { enabled: false }, http: { enabled: false } }',
    `sinks: { a: { type: file, path: ${JSON.stringify(path.join(dir, 'a'))} }, b: { type: file, path: ${JSON.stringify(path.join(dir, 'b'))} } }`,
    'hostmeta: { service: { port: 0 } }',
    'admin: { port: 0 }',
  ].join('\n'));
  const node = startNode(config, dir);
  t.after(() => { node.child.kill('SIGKILL'); });
  await waitFor('node ready', () => node.lines.some((l) => l.code === 'SLU0003I' && l.workers === 2), 30_000);
  const tcpPort = Number(node.lines.find((l) => l.code === 'SLU0002I' && l.source === 'syslog_tcp')!.port);
  const admin = `http://127.0.0.1:${String(node.lines.find((l) => l.code === 'SLU0700I')!.port)}`;
  const token = readFileSync(path.join(dir, 'node', 'admin-token'), 'utf8').trim();
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

  const restart = await sluice(['restart', '--rolling', '-c', config], dir);
  assert.equal(restart.status, 0, restart.stderr);
  await waitFor('the first workers have exited', () => node.lines.filter((l) => l.code === 'SLU0809I').length === 2);
  await waitFor('their counters kept by the primary', async () => (await metric('sluice_tenant_delivered_records_total{sink="a",tenant="default"}')) === 20);
  assert.equal(await delivered(), 20, 'the overview keeps the total across the rolling restart');
  assert.equal(await metric('sluice_source_received_records_total{source="syslog_tcp"}'), 20);

  await send(8);
  const reload = await sluice(['reload', '-c', config], dir);
  assert.equal(reload.status, 0, reload.stderr);
  await waitFor('the reload has replaced both workers', () => node.lines.filter((l) => l.code === 'SLU0809I').length === 4, 30_000);
  await waitFor('28 after the reload', async () => (await metric('sluice_tenant_delivered_records_total{sink="b",tenant="default"}')) === 28);
  assert.equal(await delivered(), 28);
  node.child.kill('SIGTERM');
  assert.equal(await node.exited, 0);
});
