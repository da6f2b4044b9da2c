/**
 * The host metadata HTTP API through real fastify on loopback, backed by a
 * real SQLite store: status codes, error bodies, limits, paging, the echo
 * headers, and the service's start/stop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { Client } from 'undici';
import { AccessTokens, sha256Hex } from '../../../src/core/access-tokens.js';
import { DEFAULT_HOSTMETA_SERVICE_CONFIG } from '../../../src/services/hostmeta/config.js';
import { HOST_METADATA_SCHEMA } from '../../../src/services/hostmeta/schema.js';
import { buildHostmetaApp, decodeCursor, encodeCursor, MAX_BATCH_HOSTS, PRUNE_BATCH, startHostmetaService } from '../../../src/services/hostmeta/server.js';
import { SqliteHostmetaStore } from '../../../src/services/hostmeta/sqlite-store.js';
import { Telemetry } from '../../../src/telemetry/telemetry.js';
import { ROOT, memoryLogger, tempDir } from '../../helpers.js';

type Cleanup = { after(fn: () => void | Promise<void>): void };

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** The whole-node token of the services these tests run (access itself is tested in access.test.ts). */
const TOKEN = 'hostmeta-test-token-0123456789';
const TENANTS = ['1710', 'acme', 'other', 'nobody'];
/** A started service's access: its tenants, and no configured token (so it generates one, as a zero-config node does). */
const ACCESS = { tenants: TENANTS, tokens: [] };

/** A real service on 127.0.0.1 with a fresh SQLite store, and an HTTP client for it; both closed when the test ends. */
async function serve(t: Cleanup, maxDocumentBytes = DEFAULT_HOSTMETA_SERVICE_CONFIG.maxDocumentBytes) {
  const store = new SqliteHostmetaStore(path.join(tempDir(t, 'sluice-hostmeta-'), 'hostmeta.sqlite'));
  await store.open();
  const { logger, lines } = memoryLogger();
  const callers = { tokens: new AccessTokens([{ tokenHash: sha256Hex(TOKEN), tenant: null }]), tenants: new Set(TENANTS) };
  const app = buildHostmetaApp(store, { maxDocumentBytes, callers, telemetry: new Telemetry(logger) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  const client = new Client(`http://127.0.0.1:${port}`);
  t.after(async () => {
    await client.close();
    await app.close();
    await store.close();
  });
  async function call(method: 'GET' | 'PUT' | 'PATCH' | 'DELETE' | 'POST', url: string, body?: unknown,
    headers: Record<string, string> = {}): Promise<Reply> {
    const raw = typeof body === 'string' ? body : body === undefined ? undefined : JSON.stringify(body);
    const authorized = { authorization: `Bearer ${TOKEN}`, ...headers };
    const withType: Record<string, string> = raw === undefined ? authorized : { 'content-type': 'application/json', ...authorized };
    const response = await client.request({ method, path: url, headers: withType, body: raw });
    const text = await response.body.text();
    return { status: response.statusCode, headers: response.headers, body: text === '' ? null : JSON.parse(text) };
  }
  return { call, store, lines };
}

function randomKey(): string {
  return randomBytes(20).toString('hex');
}

function assertEcho(reply: Reply, tenant: string, key: string, what: string): void {
  assert.equal(reply.headers['x-hostmeta-tenant'], tenant, `${what}: tenant echoed`);
  assert.equal(reply.headers['x-hostmeta-key'], key, `${what}: key echoed`);
}

test('hostmeta http: 404, PUT 204, GET 200, PATCH merge, DELETE 204 then 404 — each response echoes its tenant and key', async (t) => {
  const { call } = await serve(t);
  const key = randomKey();
  const item = `/host_metadata/1710/${key}`;

  const missing = await call('GET', item);
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.body, { error: 'not_found', message: `no metadata for 1710/${key}` });
  assertEcho(missing, '1710', key, 'GET 404');

  const document = {
    hostname: 'web-1', first_seen: '2026-11-27T14:00:00.000Z', last_seen: '2026-11-27T14:00:00.000Z',
    source_address: '10.3.12.102', protocol: 'syslog_tcp', labels: { role: 'web' }, owner: 'ops',
  };
  const put = await call('PUT', item, document);
  assert.equal(put.status, 204);
  assert.equal(put.body, null);
  assertEcho(put, '1710', key, 'PUT');

  const got = await call('GET', item);
  assert.equal(got.status, 200);
  assert.deepEqual(got.body, document);
  assertEcho(got, '1710', key, 'GET 200');

  const merge = await call('PATCH', item, { last_seen: '2026-11-27T15:00:00.000Z', owner: null, labels: { role: 'db' } },
    { 'content-type': 'application/merge-patch+json' });
  assert.equal(merge.status, 204);
  assertEcho(merge, '1710', key, 'PATCH');
  assert.deepEqual((await call('GET', item)).body, {
    hostname: 'web-1', first_seen: '2026-11-27T14:00:00.000Z', last_seen: '2026-11-27T15:00:00.000Z',
    source_address: '10.3.12.102', protocol: 'syslog_tcp', labels: { role: 'db' },
  }, 'named fields replaced (labels whole), owner removed by null, the rest kept');

  const otherKey = randomKey();
  const created = await call('PATCH', `/host_metadata/1710/${otherKey}`, { last_seen: '2026-11-27T15:00:00.000Z' });
  assert.equal(created.status, 204, 'PATCH creates a missing document');
  assert.deepEqual((await call('GET', `/host_metadata/1710/${otherKey}`)).body, { last_seen: '2026-11-27T15:00:00.000Z' });

  const deleted = await call('DELETE', item);
  assert.equal(deleted.status, 204);
  assertEcho(deleted, '1710', key, 'DELETE 204');
  const again = await call('DELETE', item);
  assert.equal(again.status, 404);
  assertEcho(again, '1710', key, 'DELETE 404');
  assert.equal((await call('GET', item)).status, 404);
});

test('hostmeta http: PUT with If-None-Match: * creates only when absent, else 412 and the document stays', async (t) => {
  const { call } = await serve(t);
  const item = `/host_metadata/acme/${randomKey()}`;
  assert.equal((await call('PUT', item, { hostname: 'first' }, { 'if-none-match': '*' })).status, 204);
  const second = await call('PUT', item, { hostname: 'second' }, { 'if-none-match': '*' });
  assert.equal(second.status, 412);
  assert.deepEqual((await call('GET', item)).body, { hostname: 'first' });
  const other = await call('PUT', item, { hostname: 'x' }, { 'if-none-match': '"abc"' });
  assert.equal(other.status, 400);
  assert.equal((other.body as { part: string }).part, 'if-none-match');
});

test('hostmeta http: a bad tenant, key, JSON or document is a 400 that names the bad part', async (t) => {
  const { call } = await serve(t);
  const key = randomKey();
  const cases: [string, 'GET' | 'PUT' | 'PATCH' | 'DELETE', string, unknown, string][] = [
    ['uppercase tenant', 'GET', `/host_metadata/Acme/${key}`, undefined, 'tenant'],
    ['tenant starting with a dash', 'PUT', `/host_metadata/-acme/${key}`, { hostname: 'h' }, 'tenant'],
    ['tenant of 64 characters', 'GET', `/host_metadata/${'a'.repeat(64)}/${key}`, undefined, 'tenant'],
    ['tenant with a dot', 'DELETE', `/host_metadata/acme.com/${key}`, undefined, 'tenant'],
    ['key of 39 characters', 'GET', `/host_metadata/acme/${key.slice(1)}`, undefined, 'key'],
    ['key of 41 characters', 'PATCH', `/host_metadata/acme/${key}0`, { hostname: 'h' }, 'key'],
    ['uppercase key', 'GET', `/host_metadata/acme/${key.toUpperCase().replace(/^./, 'A')}`, undefined, 'key'],
    ['non-hex key', 'PUT', `/host_metadata/acme/${'g'.repeat(40)}`, { hostname: 'h' }, 'key'],
    ['truncated JSON', 'PUT', `/host_metadata/acme/${key}`, '{"hostname": "h"', 'body'],
    ['empty JSON body', 'PATCH', `/host_metadata/acme/${key}`, '', 'body'],
    ['an array, not an object', 'PUT', `/host_metadata/acme/${key}`, [1, 2], 'body'],
    ['a number hostname', 'PUT', `/host_metadata/acme/${key}`, { hostname: 5 }, 'body'],
    ['a label that is not a string', 'PUT', `/host_metadata/acme/${key}`, { labels: { rack: 7 } }, 'body'],
    ['a last_seen that is not a timestamp', 'PATCH', `/host_metadata/acme/${key}`, { last_seen: 'yesterday' }, 'body'],
    ['a __proto__ key', 'PUT', `/host_metadata/acme/${key}`, '{"__proto__": {"x": 1}}', 'body'],
  ];
  for (const [what, method, url, body, part] of cases) {
    const reply = await call(method, url, body === '' ? undefined : body, body === '' ? { 'content-type': 'application/json' } : {});
    assert.equal(reply.status, 400, what);
    assert.equal((reply.body as { part?: string }).part, part, what);
    assert.equal(typeof (reply.body as { message?: unknown }).message, 'string', what);
  }
  const labels = await call('PUT', `/host_metadata/acme/${key}`, { labels: { rack: 7 } });
  assert.match((labels.body as { message: string }).message, /body\.labels\.rack must be string/);
  const truncated = await call('PUT', `/host_metadata/acme/${key}`, '{"hostname":');
  assert.equal((truncated.body as { error: string }).error, 'invalid_json');
  assert.equal((await call('GET', `/host_metadata/acme/${key}`)).status, 404, 'nothing bad was stored');

  const undecodable = await call('GET', `/host_metadata/%zz/${key}`);
  assert.equal(undecodable.status, 400);
  assert.equal((undecodable.body as { part: string }).part, 'path');

  // An id that cannot be a header value is echoed percent-encoded, so the 400 still names what was asked.
  const newline = await call('GET', `/host_metadata/a%0Ab/${key}`);
  assert.equal(newline.status, 400);
  assertEcho(newline, 'a%0Ab', key, 'encoded echo');
});

test('hostmeta http: over 64 KiB is a 413, for a PUT body and for what a PATCH would make', async (t) => {
  const { call } = await serve(t);
  const item = `/host_metadata/acme/${randomKey()}`;
  const limit = DEFAULT_HOSTMETA_SERVICE_CONFIG.maxDocumentBytes;
  assert.equal(limit, 64 * 1024);
  const tooBig = await call('PUT', item, { hostname: 'h', blob: 'x'.repeat(limit) });
  assert.equal(tooBig.status, 413);
  assert.equal((tooBig.body as { error: string }).error, 'too_large');
  assertEcho(tooBig, 'acme', item.slice(-40), '413');
  assert.equal((await call('GET', item)).status, 404);

  const nearly = { hostname: 'h', blob: 'x'.repeat(limit - 100) };
  assert.equal((await call('PUT', item, nearly)).status, 204, 'just under the limit is fine');
  const grows = await call('PATCH', item, { more: 'y'.repeat(200) });
  assert.equal(grows.status, 413, 'the merged document would pass the limit');
  assert.deepEqual((await call('GET', item)).body, nearly, 'the refused merge changed nothing');
});

test('hostmeta http: a batch gets or creates many hosts in one request, answers in order, and refuses what is malformed or too large', async (t) => {
  const { call, store } = await serve(t, 1024);
  const existing = randomKey();
  await store.put('acme', existing, { hostname: 'known', labels: { owner: 'ops' } }, Date.now());
  const fresh = randomKey();
  const absent = randomKey();
  const batch = (hosts: unknown) => call('POST', '/host_metadata/acme', { hosts });

  const first = await batch([{ key: fresh, create: { hostname: 'new-1' } }, { key: existing, create: { hostname: 'overwrite?' }, update: { rack: 4 } }, { key: absent }]);
  assert.equal(first.status, 200);
  assert.equal(first.headers['x-hostmeta-tenant'], 'acme', 'the answer names its tenant');
  assert.deepEqual(first.body, {
    hosts: [
      { key: fresh, metadata: { hostname: 'new-1' }, created: true },
      { key: existing, metadata: { hostname: 'known', labels: { owner: 'ops' }, rack: 4 }, created: false },
      { key: absent, metadata: null, created: false },
    ],
  });
  assert.deepEqual((await store.get('acme', fresh))?.metadata, { hostname: 'new-1' });
  assert.deepEqual((await store.get('acme', existing))?.metadata, { hostname: 'known', labels: { owner: 'ops' }, rack: 4 }, 'an update merges into the present document');
  assert.equal(await store.get('acme', absent), null, 'a host without `create` is only read');
  const again = await batch([{ key: fresh, create: { hostname: 'new-2' } }]);
  assert.deepEqual(again.body, { hosts: [{ key: fresh, metadata: { hostname: 'new-1' }, created: false }] }, 'created once');

  const many = Array.from({ length: MAX_BATCH_HOSTS }, () => ({ key: randomKey(), create: { hostname: 'h' } }));
  const full = await batch(many);
  assert.equal(full.status, 200, `${MAX_BATCH_HOSTS} hosts in one batch`);
  assert.equal((full.body as { hosts: unknown[] }).hosts.length, MAX_BATCH_HOSTS);
  const tooMany = await batch([...many, { key: randomKey() }]);
  assert.equal(tooMany.status, 413);
  assert.equal((tooMany.body as { error: string }).error, 'too_large');

  for (const [what, body, status] of [
    ['no hosts', { hosts: [] }, 400],
    ['not an array', { hosts: { key: fresh } }, 400],
    ['an array body', [{ key: fresh }], 400],
    ['a bad key', { hosts: [{ key: 'XYZ' }] }, 400],
    ['a host that is not an object', { hosts: [7] }, 400],
    ['a key named twice', { hosts: [{ key: fresh }, { key: fresh }] }, 400],
    ['an invalid document', { hosts: [{ key: randomKey(), create: { hostname: 5 } }] }, 400],
    ['an invalid update', { hosts: [{ key: randomKey(), update: { last_seen: 'yesterday' } }] }, 400],
    ['an update over the limit', { hosts: [{ key: randomKey(), update: { blob: 'x'.repeat(2000) } }] }, 413],
    ['a document over the limit', { hosts: [{ key: randomKey(), create: { blob: 'x'.repeat(2000) } }] }, 413],
  ] as const) {
    const reply = await call('POST', '/host_metadata/acme', body);
    assert.equal(reply.status, status, what);
    assert.equal((reply.body as { part: string }).part, 'body', what);
  }
  assert.equal((await store.list('acme', null, 5000)).length, MAX_BATCH_HOSTS + 2, 'the refused batches wrote nothing');
});

test('hostmeta http: a tenant listing pages through 250 hosts by cursor, in key order', async (t) => {
  const { call } = await serve(t);
  const keys = Array.from({ length: 250 }, randomKey);
  for (const key of keys) assert.equal((await call('PUT', `/host_metadata/acme/${key}`, { hostname: key.slice(0, 8) })).status, 204);
  await call('PUT', `/host_metadata/other/${randomKey()}`, { hostname: 'elsewhere' });
  keys.sort();

  type Page = { hosts: { key: string; metadata: { hostname: string }; updated_at: string }[]; next_cursor: string | null };
  const seen: string[] = [];
  const sizes: number[] = [];
  let cursor: string | null = null;
  do {
    const reply: Reply = await call('GET', `/host_metadata/acme?limit=100${cursor === null ? '' : `&cursor=${cursor}`}`);
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['x-hostmeta-tenant'], 'acme');
    const page = reply.body as Page;
    sizes.push(page.hosts.length);
    for (const host of page.hosts) {
      assert.equal(host.metadata.hostname, host.key.slice(0, 8));
      assert.ok(!Number.isNaN(Date.parse(host.updated_at)));
    }
    seen.push(...page.hosts.map((h) => h.key));
    cursor = page.next_cursor;
  } while (cursor !== null);
  assert.deepEqual(sizes, [100, 100, 50]);
  assert.deepEqual(seen, keys);

  const byDefault = (await call('GET', '/host_metadata/acme')).body as Page;
  assert.equal(byDefault.hosts.length, 100, 'limit defaults to 100');
  const all = (await call('GET', '/host_metadata/acme?limit=1000')).body as Page;
  assert.equal(all.hosts.length, 250);
  assert.equal(all.next_cursor, null);
  assert.deepEqual(((await call('GET', '/host_metadata/nobody')).body as Page), { hosts: [], next_cursor: null });

  for (const [query, part] of [['limit=0', 'limit'], ['limit=1001', 'limit'], ['limit=ten', 'limit'], ['limit=5&limit=6', 'limit'],
    ['cursor=not-a-cursor', 'cursor'], [`cursor=${encodeCursor(keys[0]!)}x`, 'cursor']] as const) {
    const reply = await call('GET', `/host_metadata/acme?${query}`);
    assert.equal(reply.status, 400, query);
    assert.equal((reply.body as { part: string }).part, part, query);
  }
  assert.equal((await call('GET', '/host_metadata/ACME')).status, 400);
});

test('hostmeta http: cursors round-trip and refuse anything else', () => {
  const key = randomKey();
  assert.equal(decodeCursor(encodeCursor(key)), key);
  assert.equal(decodeCursor(''), null);
  assert.equal(decodeCursor(Buffer.from('hello').toString('base64url')), null);
});

test('hostmeta http: healthz answers with the store kind', async (t) => {
  const { call } = await serve(t);
  const reply = await call('GET', '/healthz');
  assert.equal(reply.status, 200);
  assert.deepEqual(reply.body, { status: 'ok', store: 'sqlite' });
});

test('hostmeta http: a failing store is a 500 that still names the request, logged; healthz says 503', async (t) => {
  const { call, store, lines } = await serve(t);
  const key = randomKey();
  await store.close();
  const failed = await call('GET', `/host_metadata/acme/${key}`);
  assert.equal(failed.status, 500);
  assert.deepEqual(failed.body, { error: 'internal', message: 'the request failed; see the service log' });
  assertEcho(failed, 'acme', key, '500');
  assert.ok(lines.some((l) => l.code === 'SLU0304E' && /not open/.test(String(l.error))));
  const health = await call('GET', '/healthz');
  assert.equal(health.status, 503);
  assert.equal((health.body as { status: string }).status, 'unavailable');
});

test('hostmeta service: starts, migrates only on first start, serves, and closes (twice safely)', async (t) => {
  const dataDir = tempDir(t, 'sluice-hostmeta-');
  const config = { ...DEFAULT_HOSTMETA_SERVICE_CONFIG, port: 0, dataDir };
  const key = randomKey();
  const { logger, lines } = memoryLogger();
  const telemetry = new Telemetry(logger);

  const first = await startHostmetaService(config, ACCESS, telemetry);
  assert.equal(first.address, '127.0.0.1');
  assert.ok(first.port > 0);
  assert.equal(first.url, `http://127.0.0.1:${first.port}`);
  const client = new Client(first.url);
  const put = await client.request({ method: 'PUT', path: `/host_metadata/acme/${key}`,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${readFileSync(first.tokenFile, 'utf8').trim()}` },
    body: JSON.stringify({ hostname: 'kept' }) });
  await put.body.dump();
  assert.equal(put.statusCode, 204);
  await client.close();
  await first.close();
  await first.close();

  const second = await startHostmetaService(config, ACCESS, telemetry);
  t.after(() => second.close());
  assert.deepEqual(await second.store.get('acme', key).then((h) => h?.metadata), { hostname: 'kept' });
  const codes = lines.map((l) => l.code);
  assert.deepEqual(codes, ['SLU0701I', 'SLU0307I', 'SLU0302I', 'SLU0300I', 'SLU0301I', 'SLU0300I'],
    'tokens written and store migrated once, listened twice, stopped once');
});

test('hostmeta service: a port in use fails the start and closes the store', async (t) => {
  const dataDir = tempDir(t, 'sluice-hostmeta-');
  const telemetry = new Telemetry(pino({ level: 'silent' }));
  const running = await startHostmetaService({ ...DEFAULT_HOSTMETA_SERVICE_CONFIG, port: 0, dataDir }, ACCESS, telemetry);
  t.after(() => running.close());
  const store = new SqliteHostmetaStore(path.join(dataDir, 'second.sqlite'));
  await assert.rejects(startHostmetaService({ ...DEFAULT_HOSTMETA_SERVICE_CONFIG, port: running.port, dataDir }, ACCESS, telemetry, store),
    /EADDRINUSE/);
  await assert.rejects(store.get('acme', randomKey()), /not open/, 'the store was closed');
});

test('docs/hostmeta.md shows the document schema exactly as the service applies it', () => {
  const docs = readFileSync(path.join(ROOT, 'docs', 'hostmeta.md'), 'utf8');
  assert.ok(docs.includes(`\`\`\`json\n${JSON.stringify(HOST_METADATA_SCHEMA, null, 2)}\n\`\`\``),
    'paste JSON.stringify(HOST_METADATA_SCHEMA, null, 2) into docs/hostmeta.md');
});

test('hostmeta service: pruneUnseen deletes every host unseen for the given time, in batches, and logs the count', async (t) => {
  const dataDir = tempDir(t, 'sluice-hostmeta-');
  const { logger, lines } = memoryLogger();
  const running = await startHostmetaService({ ...DEFAULT_HOSTMETA_SERVICE_CONFIG, port: 0, dataDir }, ACCESS, new Telemetry(logger));
  t.after(() => running.close());
  const now = Date.now();
  const stale = Math.floor(PRUNE_BATCH * 2.5);
  const iso = (ms: number) => new Date(ms).toISOString();
  for (let i = 0; i < stale; i++) await running.store.put(i % 2 === 0 ? 'acme' : 'globex', randomKey(), { last_seen: iso(now - 8 * 86_400_000 - i) }, now);
  const fresh = Array.from({ length: 3 }, randomKey);
  for (const key of fresh) await running.store.put('acme', key, { last_seen: iso(now - 86_400_000) }, now);

  assert.equal(await running.pruneUnseen(7 * 86_400_000), stale);
  for (const key of fresh) assert.notEqual(await running.store.get('acme', key), null);
  const pruned = lines.filter((l) => l.code === 'SLU0951I');
  assert.equal(pruned.length, 1, 'one line per call, not per batch');
  assert.equal(pruned[0]!.hosts, stale);
  assert.equal(pruned[0]!.batches, 3);
  assert.equal(await running.pruneUnseen(7 * 86_400_000), 0);
  await assert.rejects(running.pruneUnseen(0), /positive/);

  await running.close();
  assert.equal(await running.pruneUnseen(1), 0, 'a closing service prunes nothing');
});
