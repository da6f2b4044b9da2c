/**
 * Live tails of a node started with `sluice start` (a primary and a worker,
 * the admin server in the primary), as issue 17 probed them: tails opened
 * and never read while a tenant floods hold bounded memory in the worker,
 * lose lines (counted in /metrics and told to the reader once it reads
 * again) while a tail that reads keeps getting lines; and a tenant's scoped
 * token holds only its share of the slots, so the node's own token always
 * finds one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { readEvents } from '../../src/ops/admin/commands.js';
import { startNode, type RunningNode } from '../sluice-cli.js';
import { closed, connect, tempDir, waitFor } from '../helpers.js';
import { startAdminFixture } from '../ops/admin/admin-helpers.js';

const NODE_TOKEN = 'node-admin-token-0123456789abcdef';
const tenantToken = (tenant: string): string => `${tenant}-admin-token-0123456789abcdef`;
const TENANTS = ['ta', 'tb', 'tc', 'td'];

type Cleanup = { after(fn: () => void | Promise<void>): void };

/** `sluice start` with one worker, tenants ta…td (tb is 127.0.0.1), a whole-node token and one scoped token per tenant. */
async function startTailNode(t: Cleanup, adminYaml: string): Promise<{ node: RunningNode; base: string; adminPort: number; tcpPort: number; workerPid: number }> {
  const dir = tempDir(t);
  const config = path.join(dir, 'sluice.yaml');
  writeFileSync(config, [
    `data_dir: ${JSON.stringify(path.join(dir, 'data'))}`,
    'workers: 1',
    'log: { level: info }',
    'shutdown_timeout: 10s',
    'sources:', '  syslog_udp: { enabled: false }', '  syslog_tcp: { port: 0 }', '  http: { enabled: false }', '  relp: { enabled: false }',
    'hostmeta: { service: { enabled: false }, client: { enabled: false } }',
    'tenants:',
    '  ta: { networks: [10.1.0.0/16] }', '  tb: { networks: [127.0.0.1] }', '  tc: { networks: [10.3.0.0/16] }', '  td: { networks: [10.4.0.0/16] }',
    'admin:',
    '  port: 0',
    `  ${adminYaml}`,
    '  tokens:',
    `    - { token: ${NODE_TOKEN} }`,
    ...TENANTS.map((id) => `    - { token: ${tenantToken(id)}, tenant: ${id} }`),
  ].join('\n'));
  const node = startNode(config, dir);
  t.after(async () => {
    node.child.kill('SIGKILL');
    await node.exited;
  });
  const field = (code: string, key: string, where: (l: Record<string, unknown>) => boolean = () => true): unknown =>
    node.lines.find((l) => l.code === code && where(l))?.[key];
  const adminPort = Number(await waitFor('admin listening', () => field('SLU0700I', 'port'), 30_000));
  const tcpPort = Number(await waitFor('tcp listening', () => field('SLU0002I', 'port', (l) => l.source === 'syslog_tcp'), 30_000));
  const workerPid = Number(await waitFor('worker ready', () => field('SLU0801I', 'pid'), 30_000));
  return { node, base: `http://127.0.0.1:${adminPort}`, adminPort, tcpPort, workerPid };
}

async function metric(base: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${NODE_TOKEN}` } })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels === '' ? ' ' : `{${labels}} `}`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** A tail over a raw socket that stops reading once its stream is open: the kernel's buffers fill, then the server's. */
async function openUnreadTail(adminPort: number, token: string): Promise<net.Socket> {
  const socket = await connect(adminPort);
  socket.write(`GET /api/tail?tenant=tb HTTP/1.1\r\nHost: 127.0.0.1:${adminPort}\r\nAuthorization: Bearer ${token}\r\n\r\n`);
  await new Promise<void>((resolve) => {
    let head = '';
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      if (!head.includes(': stream open')) return;
      socket.off('data', onData);
      socket.pause();
      resolve();
    };
    socket.on('data', onData);
  });
  return socket;
}

async function tailStatus(base: string, token: string): Promise<{ status: number; close: () => void }> {
  const abort = new AbortController();
  const response = await fetch(`${base}/api/tail`, { headers: { authorization: `Bearer ${token}` }, signal: abort.signal });
  if (!response.ok) await response.text();
  return { status: response.status, close: () => abort.abort() };
}

function rssBytes(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) * 1024;
}

/** Send `count` records of tenant tb (127.0.0.1) over one TCP connection, honouring backpressure. */
async function flood(tcpPort: number, count: number): Promise<void> {
  const socket = await connect(tcpPort);
  const body = 'x'.repeat(300);
  const chunkOf = (from: number): string => {
    let s = '';
    for (let i = from; i < from + 1000; i++) {
      const msg = `<13>1 2026-12-07T06:00:00Z flood-host app - - - flood ${i} ${body}`;
      s += `${Buffer.byteLength(msg)} ${msg}`;
    }
    return s;
  };
  for (let from = 0; from < count; from += 1000) {
    if (!socket.write(chunkOf(from))) await new Promise((resolve) => socket.once('drain', resolve));
  }
  socket.end();
  await closed(socket);
}

test('tails that never read while a tenant floods: the worker stays bounded, drops are counted and told, a reading tail still gets lines', { timeout: 300_000, skip: process.platform !== 'linux' ? 'reads a worker\'s RSS from /proc' : false }, async (t) => {
  const { base, adminPort, tcpPort, workerPid } = await startTailNode(t, 'tail_slots: 32');
  // Warm up (the sink's file, the parser) before the baseline.
  await flood(tcpPort, 2000);
  const baseline = rssBytes(workerPid);

  const unread = await Promise.all(Array.from({ length: 16 }, () => openUnreadTail(adminPort, NODE_TOKEN)));
  t.after(() => { for (const s of unread) s.destroy(); });
  const reading = new AbortController();
  t.after(() => reading.abort());
  const response = await fetch(`${base}/api/tail?tenant=tb`, { headers: { authorization: `Bearer ${NODE_TOKEN}` }, signal: reading.signal });
  assert.equal(response.status, 200);
  let read = 0;
  void readEvents(response.body!, (event) => { if (event === 'message') read++; }).catch(() => undefined);
  assert.equal(await metric(base, 'sluice_admin_tails'), 17);

  const RECORDS = 60_000;
  let peak = 0;
  const sampler = setInterval(() => { peak = Math.max(peak, rssBytes(workerPid)); }, 100);
  await flood(tcpPort, RECORDS);
  await waitFor('every record accepted', async () => (await metric(base, 'sluice_source_accepted_records_total', 'source="syslog_tcp"')) >= RECORDS + 2000, 120_000);
  clearInterval(sampler);
  peak = Math.max(peak, rssBytes(workerPid));

  // 16 unread tails × 60,000 lines of ~560 bytes is ~540 MB had any hop kept them all.
  const grown = peak - baseline;
  assert.ok(grown < 150 * 1024 * 1024, `the worker grew ${Math.round(grown / 1048576)} MB (baseline ${Math.round(baseline / 1048576)} MB)`);
  const droppedByClient = await metric(base, 'sluice_admin_tail_dropped_lines_total', 'stage="client"');
  const droppedByWorker = await metric(base, 'sluice_admin_tail_dropped_lines_total', 'stage="worker"');
  t.diagnostic(`worker RSS ${Math.round(baseline / 1048576)} MB, peak +${Math.round(grown / 1048576)} MB; lines dropped: ${droppedByWorker} in the worker, ${droppedByClient} for readers behind`);
  const dropped = droppedByClient + droppedByWorker;
  assert.ok(dropped > 0, 'lines were dropped, and counted');
  await waitFor('the reading tail gets lines', () => read > 0);

  // An unread tail that reads again is told how many it lost.
  const again = unread[0]!;
  let text = '';
  again.on('data', (chunk: Buffer) => { text += chunk.toString('latin1'); });
  again.resume();
  const told = await waitFor('a dropped event', () => {
    const m = /event: dropped\ndata: \{"dropped":(\d+)\}/.exec(text);
    return m === null ? undefined : Number(m[1]);
  }, 30_000);
  assert.ok(told > 0);
});

test('tail slots: a tenant\'s scoped tokens hold at most their share, scoped tails leave a share for the node\'s token, and every refusal is counted', { timeout: 120_000 }, async (t) => {
  // 8 slots, a quarter each: a tenant holds 2, all tenants together 6, the node's token always finds 2.
  const { base } = await startTailNode(t, 'tail_slots: 8\n  tenant_tail_share: 0.25');
  const open: { close: () => void }[] = [];
  t.after(() => { for (const tail of open) tail.close(); });
  const take = async (token: string): Promise<number> => {
    const tail = await tailStatus(base, token);
    if (tail.status === 200) open.push(tail);
    return tail.status;
  };

  assert.equal(await take(tenantToken('tb')), 200);
  assert.equal(await take(tenantToken('tb')), 200);
  assert.equal(await take(tenantToken('tb')), 429, 'tb holds its share');
  assert.equal(await metric(base, 'sluice_admin_refused_requests_total', 'reason="tenant_tail_share"'), 1);
  for (const id of ['ta', 'tc']) for (let i = 0; i < 2; i++) assert.equal(await take(tenantToken(id)), 200);
  assert.equal(await take(tenantToken('td')), 429, 'the tenants together leave a share free');
  assert.equal(await take(NODE_TOKEN), 200, 'the node\'s token finds one');
  assert.equal(await take(NODE_TOKEN), 200);
  assert.equal(await take(NODE_TOKEN), 429, 'every slot is taken');
  assert.equal(await metric(base, 'sluice_admin_refused_requests_total', 'reason="tail_slots"'), 2);
  assert.equal(await metric(base, 'sluice_admin_tails'), 8);

  // A closed tail gives its slot back.
  open.shift()!.close();
  await waitFor('the slot is free again', async () => (await metric(base, 'sluice_admin_tails')) === 7);
  assert.equal(await take(tenantToken('td')), 200, 'td finds the slot tb gave back');
  assert.equal(await take(tenantToken('tb')), 429, 'the scoped tails are at their limit again');
});

/** One request with exactly these headers (fetch would not let a test set Host). */
function raw(port: number, method: string, route: string, headers: Record<string, string>, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: route, headers, setHost: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (s: string) => { text += s; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('DNS rebinding and cross-site changes: a Host the server does not answer to is 421, a change from another site 403, both counted; deep JSON is 400', { timeout: 120_000 }, async (t) => {
  const { base, adminPort: port } = await startTailNode(t, 'hosts: [sluice-admin.internal]');
  const auth = { authorization: `Bearer ${NODE_TOKEN}` };

  // What a page on evil.example sends once its name resolves to 127.0.0.1: the tokenless loopback read is not answered.
  assert.equal((await raw(port, 'GET', '/api/sessions', { host: `evil.example:${port}` })).status, 421);
  assert.equal((await raw(port, 'GET', '/metrics', { host: 'evil.example' })).status, 421);
  assert.equal((await raw(port, 'GET', '/api/sessions', { host: `evil.example:${port}`, ...auth })).status, 421, 'a token does not make another name this server');
  assert.equal((await raw(port, 'GET', '/api/sessions', { host: `127.0.0.1.evil.example:${port}` })).status, 421);
  assert.equal(await metric(base, 'sluice_admin_refused_requests_total', 'reason="host"'), 4);
  // The names it does answer to.
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, 'LOCALHOST', `sluice-admin.internal:${port}`, 'sluice-admin.internal.']) {
    assert.equal((await raw(port, 'GET', '/api/sessions', { host })).status, 200, host);
  }
  assert.equal((await raw(port, 'GET', '/healthz', { host: 'balancer-probe.example' })).status, 200, 'health probes answer any name');
  assert.equal((await raw(port, 'GET', '/readyz', { host: 'balancer-probe.example' })).status, 200);

  // Changes from another site, even with a token (a browser holding one), are refused before anything changes.
  const limits = JSON.stringify({ messages_per_second: 5 });
  const put = (headers: Record<string, string>) => raw(port, 'PUT', '/api/tenants/tb/limits', { host: `127.0.0.1:${port}`, 'content-type': 'application/json', ...auth, ...headers }, limits);
  assert.equal((await put({ origin: 'http://evil.example' })).status, 403);
  assert.equal((await put({ origin: 'null' })).status, 403);
  assert.equal((await put({ origin: `http://localhost:${port}` })).status, 403, 'another origin, even on this machine');
  assert.equal((await put({ 'sec-fetch-site': 'cross-site' })).status, 403);
  assert.equal((await raw(port, 'POST', '/api/sessions/shed', { host: `127.0.0.1:${port}`, 'content-type': 'application/json', origin: 'http://evil.example', ...auth }, '{"count":1}')).status, 403);
  assert.equal(await metric(base, 'sluice_admin_refused_requests_total', 'reason="origin"'), 5);
  const tenants = JSON.parse((await raw(port, 'GET', '/api/tenants', { host: `127.0.0.1:${port}`, ...auth })).text) as { id: string; limits: { messages_per_second: number } }[];
  assert.equal(tenants.find((x) => x.id === 'tb')?.limits.messages_per_second, 0, 'nothing changed');
  // The same change from the dashboard's own page, or from a tool that sends no Origin, goes through.
  assert.equal((await put({ origin: `http://127.0.0.1:${port}` })).status, 200);
  assert.equal((await put({})).status, 200);

  // Deep JSON is the caller's fault.
  const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
  for (const body of [deep, `{"messages_per_second":${deep}}`]) {
    const answer = await raw(port, 'PUT', '/api/tenants/tb/limits', { host: `127.0.0.1:${port}`, 'content-type': 'application/json', ...auth }, body);
    assert.equal(answer.status, 400, answer.text);
  }
});

test('no CORS on the admin server or the hostmeta API: a page elsewhere cannot get a preflight through, so it cannot send them a token', async (t) => {
  const { node, server } = await startAdminFixture(t, '');
  const hostmetaPort = node.addresses().hostmeta!.port;
  for (const [port, route] of [[server.port, '/api/tenants/default/limits'], [server.port, '/api/sessions'], [hostmetaPort, `/host_metadata/default/${'0'.repeat(40)}`]] as const) {
    const answer = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'OPTIONS', path: route, headers: {
        origin: 'http://evil.example', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'authorization,content-type',
      } }, resolve);
      req.on('error', reject);
      req.end();
    });
    answer.resume();
    assert.equal(answer.headers['access-control-allow-origin'], undefined, `${port}${route}`);
    assert.notEqual(answer.statusCode, 200, `${port}${route}: ${answer.statusCode}`);
  }
});
