/**
 * Zero-downtime operations on a real `sluice start` (primary and workers):
 * reload refused and accepted, rolling restarts during 200,000 messages from
 * the real rsyslog over RELP with zero loss, SIGTERM drains and exits 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect, lateBoundPort, readTenantRecords, tempDir, waitFor } from '../helpers.js';
import { sluice, startNode } from '../sluice-cli.js';
import { deliveredSequences, everyDelivered, rsyslogRelayMissing, startRsyslogRelay } from '../rsyslog-relay.js';

const TOTAL = 200_000;

function nodeYaml(dir: string, extra: string[]): string {
  return [
    `data_dir: ${JSON.stringify(path.join(dir, 'node'))}`,
    'workers: 2',
    'log: { level: info }',
    ...extra,
    'hostmeta: { service: { port: 0 } }',
    'admin: { port: 0 }',
  ].join('\n');
}

test('operations: reload refuses a bad file with its reasons and the old config serves; a good file is applied with no downtime; SIGTERM drains and exits 0', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t);
  const config = path.join(dir, 'sluice.yaml');
  const sources = 'sources: { syslog_udp: { enabled: false }, syslog_tcp: { port: 0 }, relp: { enabled: false }, http: { enabled: false } }';
  const withPath = (logs: string) => nodeYaml(dir, [sources, `sinks: { files: { type: file, path: ${JSON.stringify(path.join(dir, logs))} } }`]);
  writeFileSync(config, withPath('logs-a'));
  const node = startNode(config, dir);
  t.after(() => { node.child.kill('SIGKILL'); });
  await waitFor('node ready', () => node.lines.some((l) => l.code === 'SLU0003I' && l.workers === 2), 30_000);
  const port = Number(node.lines.find((l) => l.code === 'SLU0002I' && l.source === 'syslog_tcp')!.port);
  const send = async (msg: string): Promise<void> => {
    const socket = await connect(port);
    await new Promise<void>((resolve) => socket.end(`<13>1 - host app - - - ${msg}\n`, resolve));
  };
  const messages = (logs: string) => readTenantRecords(path.join(dir, logs), 'default').map((r) => r.msg);

  writeFileSync(config, `${withPath('logs-b')}\nshutdown_timeout: soon\nsinks_typo: 1\n`);
  const refused = await sluice(['reload', '-c', config], dir);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /shutdown_timeout: got "soon"; expected a duration/);
  assert.match(refused.stderr, /unknown key "sinks_typo"/);
  assert.ok(node.lines.some((l) => l.code === 'SLU0806E'), 'the refusal is logged');
  await send('after the refused reload');
  await waitFor('served by the old config', () => messages('logs-a').includes('after the refused reload'));

  writeFileSync(config, withPath('logs-b'));
  const accepted = await sluice(['reload', '-c', config], dir);
  assert.equal(accepted.status, 0, accepted.stderr);
  assert.ok(accepted.stdout.includes(`configuration ${config} accepted`), accepted.stdout);
  await send('after the accepted reload');
  await waitFor('served by the new config', () => messages('logs-b').includes('after the accepted reload'));
  assert.ok(!messages('logs-a').includes('after the accepted reload'));

  const stoppingAt = Date.now();
  node.child.kill('SIGTERM');
  assert.equal(await node.exited, 0);
  assert.ok(Date.now() - stoppingAt < 10_000, 'within shutdown_timeout');
  assert.ok(node.lines.some((l) => l.code === 'SLU0811I' && l.complete === true));
});

test('operations: two rolling restarts during 200,000 messages from rsyslog over RELP lose nothing', { skip: rsyslogRelayMissing, timeout: 240_000 }, async (t) => {
  const dir = tempDir(t);
  const relpPort = await lateBoundPort();
  const config = path.join(dir, 'sluice.yaml');
  writeFileSync(config, nodeYaml(dir, [
    'sources:',
    '  syslog_udp: { enabled: false }',
    '  syslog_tcp: { enabled: false }',
    '  http: { enabled: false }',
    `  relp: { port: ${relpPort}, window: 1024 }`,
  ]));
  const logsDir = path.join(dir, 'node', 'logs');
  const node = startNode(config, dir);
  t.after(() => { node.child.kill('SIGKILL'); });
  await waitFor('node ready', () => node.lines.some((l) => l.code === 'SLU0003I' && l.workers === 2), 30_000);

  const relay = await startRsyslogRelay(t, dir, { host: '127.0.0.1', port: relpPort });
  const sent = relay.feed(TOTAL);

  for (const restartAt of [50_000, 120_000]) {
    await waitFor(`${restartAt} delivered`, () => deliveredSequences(logsDir).length >= restartAt, 120_000);
    const restart = await sluice(['restart', '--rolling', '-c', config], dir);
    assert.equal(restart.status, 0, restart.stderr);
    assert.match(restart.stdout, /rolling restart done/);
  }
  await sent;
  const { duplicates } = await everyDelivered(logsDir, TOTAL);
  const drained = node.lines.filter((l) => l.code === 'SLU0809I').length;
  t.diagnostic(`rolling restarts: ${TOTAL} sent, ${TOTAL} delivered, ${duplicates} duplicates, ${drained} workers drained`);
  assert.equal(drained, 4, 'two workers replaced per rolling restart');
  assert.equal(node.lines.filter((l) => l.code === 'SLU0802W').length, 0, 'no worker crashed');
  node.child.kill('SIGTERM');
  assert.equal(await node.exited, 0);
});
