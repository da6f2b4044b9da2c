/**
 * SIGTERM after floods (issue 17): a node that was sent TLS connections
 * that never finished their handshake, and RELP sessions that came and
 * went, drains at once and exits 0. It used to end with SLU0006E: a worker
 * with no open session was still "draining" at the deadline, because
 * closing the TLS listener waits for every socket it accepted, and a
 * socket still in its handshake belongs to no session that stop() ends.
 * Half-sent HTTP requests must not hold it either.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { makePki } from '../certs.js';
import { RelpTestClient } from '../relp-client.js';
import { startNode } from '../sluice-cli.js';
import { closed, connect, readTenantRecords, tempDir, waitFor } from '../helpers.js';

test('SIGTERM after a RELP flood, silent TLS handshakes and half-sent HTTP requests: no session is open, the node drains and exits 0 without SLU0006E', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const pki = makePki(dir);
  const config = path.join(dir, 'sluice.yaml');
  writeFileSync(config, [
    `data_dir: ${JSON.stringify(path.join(dir, 'data'))}`,
    'workers: 1',
    'log: { level: info }',
    // Far shorter than the TLS handshake timeout: a drain that waits for handshakes misses it.
    'shutdown_timeout: 4s',
    'sources:',
    '  syslog_udp: { enabled: false }', '  syslog_tcp: { enabled: false }', '  http: { port: 0, request_timeout: 60s }', '  relp: { port: 0 }',
    `  syslog_tls: { port: 0, certificate: ${pki.server.cert}, key: ${pki.server.key} }`,
    'hostmeta: { service: { enabled: false }, client: { enabled: false } }',
    'admin: { enabled: false }',
  ].join('\n'));
  const node = startNode(config, dir);
  t.after(() => { node.child.kill('SIGKILL'); });
  const portOf = (source: string) => waitFor(`${source} listening`, () => node.lines.find((l) => l.code === 'SLU0002I' && l.source === source)?.port as number | undefined, 30_000);
  const relpPort = await portOf('relp');
  const tlsPort = await portOf('syslog_tls');
  const httpPort = await portOf('http');
  await waitFor('node ready', () => node.lines.some((l) => l.code === 'SLU0003I'), 30_000);

  // Silent TLS clients: connected, never a ClientHello.
  const silent: net.Socket[] = await Promise.all(Array.from({ length: 50 }, () => connect(tlsPort)));
  t.after(() => { for (const s of silent) s.destroy(); });
  // Slow HTTP clients: half a request each, the rest never sent.
  const slow: net.Socket[] = await Promise.all(Array.from({ length: 10 }, () => connect(httpPort)));
  t.after(() => { for (const s of slow) s.destroy(); });
  for (const socket of slow) socket.write('POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf a bo');

  // A RELP flood from a few sessions, each closed properly once answered.
  const RECORDS = 2000;
  await Promise.all([1, 2, 3, 4].map(async (n) => {
    const client = await RelpTestClient.connect(relpPort);
    await client.open();
    let last = 0;
    for (let i = 0; i < RECORDS; i++) last = client.send('syslog', `<13>1 2026-12-07T06:00:00Z relp-${n} app - - - flood ${i}`);
    await client.response(last, 60_000);
    client.send('close');
    await closed(client.socket);
  }));
  await waitFor('every record written', () => readTenantRecords(path.join(dir, 'data', 'logs'), 'default').length === 4 * RECORDS, 60_000);

  node.child.kill('SIGTERM');
  const code = await node.exited;
  const deadlineMissed = node.lines.filter((l) => l.code === 'SLU0006E');
  assert.deepEqual(deadlineMissed, [], 'no part of the node was still draining at the deadline');
  assert.equal(code, 0);
  assert.ok(node.lines.some((l) => l.code === 'SLU0005I'), 'the worker logged node stopped');
});
