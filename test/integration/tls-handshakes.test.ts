/**
 * Silent and half-open TLS clients against a real `sluice start` (primary and
 * two workers): rounds of thousands of connections that never send a
 * ClientHello, or send half of one and stop. Handshakes in progress stay
 * within max_handshakes per worker, every such connection is closed at its
 * handshake timeout (counted), the node's memory (RSS summed over its
 * processes) returns near its baseline after each round and does not grow
 * round over round, and a real TLS client still gets its records in.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { readTenantRecords, tempDir, waitFor } from '../helpers.js';
import { makePki } from '../certs.js';
import { adminUrl, nodeRssBytes, scrapeMetric, startNode } from '../sluice-cli.js';

const ROUNDS = 3;
const CLIENTS = 3000;
/** Of each round's clients, every third sends the start of a ClientHello and then nothing. */
const HALF_OPEN_EVERY = 3;
const MAX_HANDSHAKES = 100;
const WORKERS = 2;
const MiB = 1024 ** 2;
/**
 * How far above its baseline the node may stay once a round's clients are gone: generous, as malloc keeps
 * freed OpenSSL state and V8 collects a quiet node's garbage late (in a loaded full suite a round left
 * up to 60 MiB); before the handshake bounds, each round of 3,000 added about 90 MiB that never came back.
 */
const SETTLED_ABOVE_BASELINE = 100 * MiB;
/** How far above where the first round left it the node may end: no growth round over round. */
const GROWTH_OVER_ROUNDS = 40 * MiB;

/** A TLS record header (handshake, TLS 1.0 framing) announcing 512 bytes, and 100 of them: a handshake that never completes. */
const HALF_CLIENT_HELLO = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]), Buffer.alloc(91, 0x42)]);

/** Opens `count` connections, `parallel` connects at a time; each resolves its `closed` when the node closes it. */
async function openClients(port: number, count: number, parallel = 200): Promise<Promise<void>[]> {
  const closedAll: Promise<void>[] = [];
  for (let start = 0; start < count; start += parallel) {
    const batch: Promise<void>[] = [];
    for (let i = start; i < Math.min(count, start + parallel); i++) {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.on('error', () => undefined);
      closedAll.push(new Promise((resolve) => socket.once('close', () => resolve())));
      batch.push(new Promise((resolve) => {
        socket.once('connect', () => {
          if (i % HALF_OPEN_EVERY === 0) socket.write(HALF_CLIENT_HELLO);
          resolve();
        });
        socket.once('close', () => resolve());
      }));
    }
    await Promise.all(batch);
  }
  return closedAll;
}

test('tls handshakes: rounds of silent and half-open clients are closed at the handshake timeout, memory returns near its baseline, a real client still gets in', { timeout: 180_000 }, async (t) => {
  const dir = tempDir(t);
  const pki = makePki(dir);
  const config = path.join(dir, 'sluice.yaml');
  writeFileSync(config, [
    `data_dir: ${JSON.stringify(path.join(dir, 'node'))}`,
    `workers: ${WORKERS}`,
    'log: { level: info }',
    'sources:',
    '  syslog_udp: { enabled: false }',
    '  syslog_tcp: { enabled: false }',
    '  relp: { enabled: false }',
    '  http: { enabled: false }',
    `  syslog_tls: { port: 0, certificate: ${JSON.stringify(pki.server.cert)}, key: ${JSON.stringify(pki.server.key)}, max_handshakes: ${MAX_HANDSHAKES}, handshake_timeout: 3s }`,
    'hostmeta: { service: { enabled: false }, client: { enabled: false } }',
    'admin: { port: 0 }',
  ].join('\n'));
  const node = startNode(config, dir);
  t.after(() => { node.child.kill('SIGKILL'); });
  await waitFor('node ready', () => node.lines.some((l) => l.code === 'SLU0003I' && l.workers === WORKERS), 30_000);
  const port = Number(node.lines.find((l) => l.code === 'SLU0002I' && l.source === 'syslog_tls')!.port);
  const admin = await adminUrl(node);
  const logs = path.join(dir, 'node', 'logs');

  /** A real client: a handshake, records, end. */
  const realClient = async (tag: string, count: number): Promise<void> => {
    const socket = tls.connect({ port, host: '127.0.0.1', ca: readFileSync(pki.ca.cert), servername: 'localhost' });
    await new Promise<void>((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject); });
    const frames = Array.from({ length: count }, (_, i) => `<14>1 - tls-agent app - - - ${tag} ${i}`).map((m) => `${Buffer.byteLength(m)} ${m}`).join('');
    await new Promise<void>((resolve) => socket.end(frames, resolve));
    await waitFor(`the ${tag} records written`, () => readTenantRecords(logs, 'default').filter((r) => String(r.msg).startsWith(`${tag} `)).length === count, 30_000);
  };

  // A first real client warms the TLS code paths up before the baseline is taken.
  await realClient('warm-up', 10);
  const baseline = nodeRssBytes(node);
  t.diagnostic(`baseline RSS (primary + ${WORKERS} workers): ${(baseline / MiB).toFixed(0)} MiB`);

  const settled: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const clientsClosed = await openClients(port, CLIENTS);
    const handshaking = await scrapeMetric(admin, 'sluice_tls_handshakes', { state: 'handshaking' });
    const held = handshaking + await scrapeMetric(admin, 'sluice_tls_handshakes', { state: 'waiting' });
    const peak = nodeRssBytes(node);
    assert.ok(handshaking <= MAX_HANDSHAKES * WORKERS, `round ${round}: ${handshaking} handshakes in progress, at most ${MAX_HANDSHAKES} per worker`);
    assert.ok(held > 0, `round ${round}: the node holds the clients' connections (${held})`);
    // Every connection is closed by the node (the clients never close), at its handshake timeout.
    await Promise.all(clientsClosed);
    await waitFor(`round ${round}: every connection counted as a handshake timeout`, async () =>
      await scrapeMetric(admin, 'sluice_source_closed_connections_total', { source: 'syslog_tls', reason: 'handshake_timeout' }) >= round * CLIENTS, 30_000);
    const after = await waitFor(`round ${round}: RSS back within ${SETTLED_ABOVE_BASELINE / MiB} MiB of the baseline`, () => {
      const rss = nodeRssBytes(node);
      return rss <= baseline + SETTLED_ABOVE_BASELINE ? rss : false;
    }, 60_000);
    settled.push(after);
    t.diagnostic(`round ${round}: ${CLIENTS} clients, ${handshaking} handshaking at once, RSS peak ${(peak / MiB).toFixed(0)} MiB, settled ${(after / MiB).toFixed(0)} MiB`);
  }
  assert.equal(await scrapeMetric(admin, 'sluice_tls_handshakes'), 0, 'nothing left half-way');
  // Each connection counted once, as a timeout: closing one the sweep expired is not also a failed handshake.
  assert.equal(await scrapeMetric(admin, 'sluice_source_closed_connections_total', { source: 'syslog_tls', reason: 'handshake_timeout' }), ROUNDS * CLIENTS);
  assert.equal(await scrapeMetric(admin, 'sluice_source_refused_total', { source: 'syslog_tls', reason: 'tls_handshake' }), 0);
  // Not growing round over round: what the rounds left is garbage V8 collects once the node is quiet
  // (each round's figure above is taken at once, before that), so the node gets back to where the first round left it.
  const last = await waitFor(`RSS back within ${GROWTH_OVER_ROUNDS / MiB} MiB of the first round's ${(settled[0]! / MiB).toFixed(0)} MiB`, () => {
    const rss = nodeRssBytes(node);
    return rss <= settled[0]! + GROWTH_OVER_ROUNDS ? rss : false;
  }, 60_000);
  t.diagnostic(`after all rounds: RSS ${(last / MiB).toFixed(0)} MiB`);

  await realClient('after-the-rounds', 100);
});
