/**
 * The collector's client and cache against the real service (fastify +
 * SQLite on loopback) and against small node:http / net servers that
 * misbehave on purpose: never answer, answer for another request, drop
 * connections, hold requests. TTLs are stepped with the cache's clock, not
 * waited for.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import pino from 'pino';
import { AccessTokens, sha256Hex } from '../../../src/core/access-tokens.js';
import { HostMetadataCache } from '../../../src/services/hostmeta/cache.js';
import { HostmetaClient, HostmetaRequestError } from '../../../src/services/hostmeta/client.js';
import { LocalHostmetaClient } from '../../../src/services/hostmeta/local-client.js';
import { DEFAULT_HOSTMETA_CLIENT_CONFIG, type HostmetaClientConfig } from '../../../src/services/hostmeta/config.js';
import { buildHostmetaApp } from '../../../src/services/hostmeta/server.js';
import { SqliteHostmetaStore } from '../../../src/services/hostmeta/sqlite-store.js';
import { Telemetry } from '../../../src/telemetry/telemetry.js';
import { memoryLogger, tempDir, waitFor } from '../../helpers.js';

type Cleanup = { after(fn: () => void | Promise<void>): void };

const T0 = Date.parse('2026-11-27T14:00:00.000Z');
const HOSTNAME = 'web-1';

function randomKey(): string {
  return randomBytes(20).toString('hex');
}

/** The credential the clients of these tests send (the real service knows it as a whole-node token). */
const CLIENT_TOKEN = 'hostmeta-client-token-0123456789';

/**
 * The real service on loopback, counting the requests it receives as "METHOD /path"; a batch
 * (POST /host_metadata/:tenant) counts once per host it names, as "LOOKUP" (only read) or
 * "REGISTER" (with a document to create), and its size is kept in `batches`.
 */
async function realService(t: Cleanup) {
  const store = new SqliteHostmetaStore(path.join(tempDir(t, 'sluice-hostmeta-'), 'hostmeta.sqlite'));
  await store.open();
  const callers = { tokens: new AccessTokens([{ tokenHash: sha256Hex(CLIENT_TOKEN), tenant: null }]), tenants: new Set(['acme']) };
  const app = buildHostmetaApp(store, { maxDocumentBytes: 65536, callers, telemetry: new Telemetry(pino({ level: 'silent' })) });
  const received: string[] = [];
  const batches: number[] = [];
  app.addHook('preHandler', async (request) => {
    const hosts = (request.body as { hosts?: { key: string; create?: unknown }[] } | undefined)?.hosts;
    if (request.method !== 'POST' || !Array.isArray(hosts)) {
      received.push(`${request.method} ${request.url}`);
      return;
    }
    batches.push(hosts.length);
    for (const host of hosts) received.push(`${host.create === undefined ? 'LOOKUP' : 'REGISTER'} ${request.url}/${host.key}`);
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await app.close();
    await store.close();
  };
  t.after(stop);
  const count = (method: string, tenant: string, key: string) => received.filter((r) => r === `${method} /host_metadata/${tenant}/${key}`).length;
  return { url: `http://127.0.0.1:${port}`, store, received, batches, count, stop };
}

/** A node:http server whose handler the test writes; every socket is destroyed when the test ends. */
async function customServer(t: Cleanup, handler: http.RequestListener) {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

function clientConfig(url: string, overrides: Partial<HostmetaClientConfig> = {}): HostmetaClientConfig {
  return { ...DEFAULT_HOSTMETA_CLIENT_CONFIG, url, token: CLIENT_TOKEN, retryBackoff: { initialMs: 5, maxMs: 20 }, ...overrides };
}

/** A client and a cache with a clock the test moves; closed (or destroyed, when asked) at the end. */
function cacheFor(t: Cleanup, url: string, overrides: Partial<HostmetaClientConfig> = {}, teardown: 'close' | 'destroy' = 'close') {
  const { logger, lines } = memoryLogger();
  const telemetry = new Telemetry(logger);
  const config = clientConfig(url, overrides);
  const client = new HostmetaClient(config, telemetry);
  const clock = { now: T0 };
  const cache = new HostMetadataCache(client, config, telemetry, { now: () => clock.now });
  t.after(() => (teardown === 'close' ? cache.close() : client.destroy()));
  const lookups = (result: string) => telemetry.value('sluice_hostmeta_cache_lookups_total', { result });
  return { client, cache, clock, config, telemetry, lines, lookups };
}

/** Path parts of a /host_metadata/:tenant/:key request. */
function itemOf(request: http.IncomingMessage): { tenant: string; key: string } {
  const [, , tenant = '', key = ''] = (request.url ?? '').split('/');
  return { tenant, key };
}

test('hostmeta client: get, put, create, patch, delete against the service; results name their tenant and key', async (t) => {
  const service = await realService(t);
  const { client } = cacheFor(t, service.url);
  const key = randomKey();
  assert.deepEqual(await client.get('acme', key), { tenant: 'acme', key, metadata: null });
  assert.deepEqual(await client.create('acme', key, { hostname: 'a' }), { tenant: 'acme', key, created: true });
  assert.deepEqual(await client.create('acme', key, { hostname: 'b' }), { tenant: 'acme', key, created: false });
  assert.deepEqual(await client.put('acme', key, { hostname: 'c', labels: { x: 'y' } }), { tenant: 'acme', key });
  assert.deepEqual(await client.patch('acme', key, { labels: null, rack: 4 }), { tenant: 'acme', key });
  assert.deepEqual(await client.get('acme', key), { tenant: 'acme', key, metadata: { hostname: 'c', rack: 4 } });
  assert.deepEqual(await client.delete('acme', key), { tenant: 'acme', key, deleted: true });
  assert.deepEqual(await client.delete('acme', key), { tenant: 'acme', key, deleted: false });

  const other = randomKey();
  assert.deepEqual(await client.getOrCreateMany('acme', [{ key: other, create: { hostname: 'o' } }, { key }]), [
    { key: other, metadata: { hostname: 'o' }, created: true },
    { key, metadata: null, created: false },
  ], 'a batch: created, and only read');
  await assert.rejects(client.get('ACME', key), (err: HostmetaRequestError) => err.reason === 'invalid_id');
  await assert.rejects(client.getOrCreateMany('acme', [{ key: 'short' }]), (err: HostmetaRequestError) => err.reason === 'invalid_id');
  await assert.rejects(client.put('acme', key, { hostname: 5 as unknown as string }),
    (err: HostmetaRequestError) => err.reason === 'status' && err.status === 400, 'a refused document surfaces its 400');
  assert.equal(service.count('GET', 'ACME', key), 0, 'invalid ids are refused before sending');
});

test('hostmeta cache: a document is served from memory for the TTL, then fetched again', async (t) => {
  const service = await realService(t);
  const { client, cache, clock, config, lookups } = cacheFor(t, service.url);
  const key = randomKey();
  await client.put('acme', key, { hostname: 'v1' });

  assert.deepEqual(await cache.get('acme', key), { hostname: 'v1' });
  for (let i = 0; i < 3; i++) assert.deepEqual(await cache.get('acme', key), { hostname: 'v1' });
  assert.deepEqual(cache.peek('acme', key), { hostname: 'v1' });
  assert.equal(service.count('LOOKUP', 'acme', key), 1);
  assert.equal(await lookups('miss'), 1);
  assert.equal(await lookups('hit'), 3);

  await client.put('acme', key, { hostname: 'v2' });
  clock.now += config.cacheTtlMs - 1;
  assert.deepEqual(await cache.get('acme', key), { hostname: 'v1' }, 'still fresh one ms before the TTL');
  clock.now += 1;
  assert.deepEqual(await cache.get('acme', key), { hostname: 'v2' }, 'expired: asked again');
  assert.equal(service.count('LOOKUP', 'acme', key), 2);
  assert.ok(Object.isFrozen(cache.peek('acme', key)), 'cached documents cannot be changed by a caller');
});

test('hostmeta cache: a 404 is believed for the shorter negative TTL', async (t) => {
  const service = await realService(t);
  const { client, cache, clock, config, lookups } = cacheFor(t, service.url);
  assert.ok(config.cacheNegativeTtlMs < config.cacheTtlMs);
  const key = randomKey();

  assert.equal(await cache.get('acme', key), null);
  assert.equal(await cache.get('acme', key), null);
  assert.equal(cache.peek('acme', key), null, 'peek tells "known absent" (null) from "unknown" (undefined)');
  assert.equal(service.count('LOOKUP', 'acme', key), 1);
  assert.equal(await lookups('negative_hit'), 1);

  await client.put('acme', key, { hostname: HOSTNAME });
  clock.now += config.cacheNegativeTtlMs;
  assert.deepEqual(await cache.get('acme', key), { hostname: HOSTNAME }, 'after the negative TTL the new document shows');
  assert.equal(service.count('LOOKUP', 'acme', key), 2);
});

test('hostmeta cache: 100 concurrent gets of one key make exactly one request (missing and present keys)', async (t) => {
  const service = await realService(t);
  const { client, cache } = cacheFor(t, service.url);
  const missing = randomKey();
  const answers = await Promise.all(Array.from({ length: 100 }, () => cache.get('acme', missing, { timeoutMs: 5_000 })));
  assert.ok(answers.every((a) => a === null));
  assert.equal(service.count('LOOKUP', 'acme', missing), 1);

  const present = randomKey();
  await client.put('acme', present, { hostname: HOSTNAME });
  const found = await Promise.all(Array.from({ length: 100 }, () => cache.get('acme', present, { timeoutMs: 5_000 })));
  assert.ok(found.every((a) => typeof a === 'object' && a?.hostname === HOSTNAME));
  assert.equal(service.count('LOOKUP', 'acme', present), 1);
});

test('hostmeta cache: with the service stopped, the last known value is served and counted as stale', async (t) => {
  const service = await realService(t);
  const { client, cache, clock, config, lookups, lines } = cacheFor(t, service.url);
  const known = randomKey();
  await client.put('acme', known, { hostname: HOSTNAME });
  assert.deepEqual(await cache.get('acme', known), { hostname: HOSTNAME });

  await service.stop();
  clock.now += config.cacheTtlMs + 1;
  assert.deepEqual(await cache.get('acme', known, { timeoutMs: 5_000 }), { hostname: HOSTNAME }, 'stale, after the lookup failed');
  assert.equal(await lookups('stale'), 1);
  assert.deepEqual(await cache.get('acme', known, { timeoutMs: 5_000 }), { hostname: HOSTNAME });
  assert.equal(await lookups('stale'), 2, 'served at once: no new lookup before retryAfterErrorMs');
  assert.deepEqual(cache.peek('acme', known), { hostname: HOSTNAME });

  assert.equal(await cache.get('acme', randomKey(), { timeoutMs: 5_000 }), 'unavailable', 'nothing known: says so, never a rejection');
  assert.equal(await lookups('unavailable'), 1);
  assert.ok(lines.some((l) => l.code === 'SLU0310W' && l.reason === 'network'), 'the failure is logged');
});

test('hostmeta cache: a service that never answers — get resolves at its timeout; the client times out on its own', async (t) => {
  const held: net.Socket[] = [];
  const silent = net.createServer((socket) => held.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    for (const socket of held) socket.destroy();
    silent.close(() => resolve());
  }));
  const url = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;

  // The client's own timeouts are far longer than the wait asked of get(): only get()'s bound can end it.
  const { cache, lookups } = cacheFor(t, url, { headersTimeoutMs: 120_000 }, 'destroy');
  const started = Date.now();
  assert.equal(await cache.get('acme', randomKey(), { timeoutMs: 100 }), 'timeout');
  assert.ok(Date.now() - started < 30_000, 'get() did not wait for the client\'s 120 s headers timeout');
  assert.equal(await lookups('timeout'), 1);
  await waitFor('the request to reach the server', () => held.length > 0);

  const { client } = cacheFor(t, url, { headersTimeoutMs: 200, getRetries: 0 }, 'destroy');
  await assert.rejects(client.get('acme', randomKey()), (err: HostmetaRequestError) => err.reason === 'timeout');
});

test('hostmeta client: a response that names another request is discarded and counted, never used', async (t) => {
  const other = randomKey();
  let gets = 0;
  const url = await customServer(t, (request, response) => {
    const { tenant } = itemOf(request);
    request.resume().on('end', () => {
      if (request.method === 'GET') gets++;
      if (request.method === 'POST') {
        // A batch's answer that names the tenant but lists another host than the one asked.
        response.writeHead(200, { 'content-type': 'application/json', 'x-hostmeta-tenant': tenant });
        response.end(JSON.stringify({ hosts: [{ key: other, metadata: { hostname: 'someone else' }, created: false }] }));
      } else if (request.method === 'GET' && tenant === 'acme') {
        // The seed's bug from the server's side: another request's answer.
        response.writeHead(200, { 'content-type': 'application/json', 'x-hostmeta-tenant': tenant, 'x-hostmeta-key': other });
        response.end(JSON.stringify({ hostname: 'someone else' }));
      } else if (request.method === 'PUT') {
        response.writeHead(204, { 'x-hostmeta-tenant': '1712', 'x-hostmeta-key': itemOf(request).key });
        response.end();
      } else {
        // A 404 that names no request must not be taken for "no document".
        response.writeHead(404, { 'content-type': 'text/plain' });
        response.end('No metadata for key');
      }
    });
  });
  const { client, cache, telemetry, lines, lookups } = cacheFor(t, url);
  const key = randomKey();
  const isMismatch = (err: HostmetaRequestError) => err.reason === 'mismatch';
  await assert.rejects(client.get('acme', key), isMismatch);
  assert.equal(gets, 1, 'a mismatch is not retried');
  await assert.rejects(client.create('1710', key, { hostname: HOSTNAME }), isMismatch);
  await assert.rejects(client.get('beta', key), isMismatch);
  assert.equal(await telemetry.value('sluice_hostmeta_client_mismatches_total'), 3);
  assert.equal(await telemetry.value('sluice_hostmeta_client_requests_total', { outcome: 'mismatch' }), 3);
  assert.ok(lines.some((l) => l.code === 'SLU0311E'));

  assert.equal(await cache.get('acme', key, { timeoutMs: 5_000 }), 'unavailable');
  assert.equal(await lookups('unavailable'), 1, 'the batch answer listing another host was not taken');
  assert.equal(await telemetry.value('sluice_hostmeta_client_mismatches_total', { method: 'POST' }), 1);
  assert.equal(cache.peek('acme', key), undefined);
});

test('hostmeta client: GET and the batch are retried after dropped connections and 5xx; PUT, PATCH and DELETE never are', async (t) => {
  const batchKey = randomKey();
  const seen = new Map<string, number>();
  const url = await customServer(t, (request, response) => {
    const { tenant, key } = itemOf(request);
    const id = `${request.method} ${key}`;
    const attempt = (seen.get(id) ?? 0) + 1;
    seen.set(id, attempt);
    request.resume().on('end', () => {
      const echo = { 'x-hostmeta-tenant': tenant, 'x-hostmeta-key': key };
      if (tenant === 'unavailable') {
        response.writeHead(503, echo).end();
      } else if (request.method === 'POST' && attempt > 2) {
        response.writeHead(200, { 'x-hostmeta-tenant': tenant, 'content-type': 'application/json' })
          .end(JSON.stringify({ hosts: [{ key: batchKey, metadata: { hostname: 'third time' }, created: true }] }));
      } else if (request.method === 'GET' && attempt > 2) {
        response.writeHead(200, { ...echo, 'content-type': 'application/json' }).end('{"hostname":"third time"}');
      } else {
        request.socket.destroy();
      }
    });
  });
  const { client, telemetry } = cacheFor(t, url, { getRetries: 2 });
  const key = randomKey();
  assert.deepEqual((await client.get('acme', key)).metadata, { hostname: 'third time' });
  assert.equal(seen.get(`GET ${key}`), 3);
  assert.equal(await telemetry.value('sluice_hostmeta_client_requests_total', { method: 'GET', outcome: 'network_error' }), 2);
  assert.deepEqual(await client.getOrCreateMany('acme', [{ key: batchKey, create: { hostname: 'third time' } }]),
    [{ key: batchKey, metadata: { hostname: 'third time' }, created: true }]);
  assert.equal(seen.get('POST '), 3, 'get-or-create changes nothing when repeated: retried as a GET is');

  const isNetwork = (err: HostmetaRequestError) => err.reason === 'network';
  await assert.rejects(client.put('acme', key, { hostname: HOSTNAME }), isNetwork);
  await assert.rejects(client.patch('acme', key, { hostname: HOSTNAME }), isNetwork);
  await assert.rejects(client.delete('acme', key), isNetwork);
  assert.deepEqual([seen.get(`PUT ${key}`), seen.get(`PATCH ${key}`), seen.get(`DELETE ${key}`)], [1, 1, 1]);

  await assert.rejects(client.get('unavailable', key), (err: HostmetaRequestError) => err.reason === 'status' && err.status === 503);
  assert.equal(seen.get(`GET ${key}`), 3 + 3, 'a 503 is retried getRetries times too');
});

test('hostmeta cache: touch registers new hosts with their lookups (the hosts of a turn in batches of lookupBatchHosts), then PATCHes last_seen at most once per interval', async (t) => {
  const service = await realService(t);
  const { cache, clock, config } = cacheFor(t, service.url);
  const keys = Array.from({ length: 1200 }, randomKey);
  const key = keys[0]!;
  const sighting = { hostname: HOSTNAME, sourceAddress: '10.3.12.102', protocol: 'syslog_tcp' };
  const requests = () => [service.count('REGISTER', 'acme', key), service.count('PATCH', 'acme', key)];

  for (const k of keys) for (let i = 0; i < 5; i++) cache.touch('acme', k, sighting);
  const registered = new Date(T0).toISOString();
  const registration = { hostname: HOSTNAME, first_seen: registered, last_seen: registered, source_address: '10.3.12.102', protocol: 'syslog_tcp' };
  const answers = await Promise.all(keys.map((k) => cache.get('acme', k, { timeoutMs: 10_000 })));
  for (const answer of answers) assert.deepEqual(answer, registration, 'every host\'s lookup answers with its registration');
  assert.deepEqual(service.batches, [500, 500, 200], '1,200 new hosts of one turn: three requests, none over lookupBatchHosts');
  await cache.whenTouchesSettled();
  assert.deepEqual(requests(), [1, 0]);
  assert.deepEqual((await service.store.get('acme', key))?.metadata, registration);
  assert.deepEqual(cache.peek('acme', key)?.first_seen, registered, 'the registration is cached: no lookup needed');

  clock.now += config.touchIntervalMs - 1;
  for (let i = 0; i < 50; i++) cache.touch('acme', key, sighting);
  await cache.whenTouchesSettled();
  assert.deepEqual(requests(), [1, 0], 'nothing within the interval');

  clock.now += 1;
  for (let i = 0; i < 50; i++) cache.touch('acme', key, { ...sighting, sourceAddress: '10.3.12.103' });
  await cache.whenTouchesSettled();
  assert.deepEqual(requests(), [1, 1]);
  const refreshed = new Date(T0 + config.touchIntervalMs).toISOString();
  assert.deepEqual((await service.store.get('acme', key))?.metadata, {
    hostname: HOSTNAME, first_seen: registered, last_seen: refreshed, source_address: '10.3.12.103', protocol: 'syslog_tcp',
  });

  clock.now += config.touchIntervalMs;
  for (let i = 0; i < 50; i++) cache.touch('acme', key, sighting);
  await cache.whenTouchesSettled();
  assert.deepEqual(requests(), [1, 2]);
  assert.equal(service.count('LOOKUP', 'acme', key), 0, 'the registration was the lookup');
});

test('hostmeta cache: touching a host that already has a document keeps its labels (the batch merges the sighting in: no request of its own)', async (t) => {
  const service = await realService(t);
  const { client, cache } = cacheFor(t, service.url);
  const key = randomKey();
  await client.put('acme', key, { hostname: 'old-name', first_seen: '2020-01-01T00:00:00Z', labels: { owner: 'ops' } });
  cache.touch('acme', key, { hostname: HOSTNAME, sourceAddress: '10.0.0.9', protocol: 'syslog_udp' });
  const merged = {
    hostname: HOSTNAME, first_seen: '2020-01-01T00:00:00Z', labels: { owner: 'ops' },
    last_seen: new Date(T0).toISOString(), source_address: '10.0.0.9', protocol: 'syslog_udp',
  };
  assert.deepEqual(await cache.get('acme', key, { timeoutMs: 5_000 }), merged, 'the lookup answers with the real document, the sighting merged in');
  await cache.whenTouchesSettled();
  assert.deepEqual([service.count('PUT', 'acme', key), service.count('REGISTER', 'acme', key), service.count('PATCH', 'acme', key)], [1, 1, 0],
    'the test\'s PUT, the registration; no PATCH');
  assert.deepEqual((await service.store.get('acme', key))?.metadata, merged);
});

test('hostmeta cache: refreshes past the in-flight bound are dropped and counted, and the host is tried again on its next message', async (t) => {
  const held: { request: http.IncomingMessage; response: http.ServerResponse }[] = [];
  const url = await customServer(t, (request, response) => {
    let body = '';
    request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk)).on('end', () => {
      if (request.method !== 'POST') {
        held.push({ request, response });
        return;
      }
      const { hosts } = JSON.parse(body) as { hosts: { key: string; create: Record<string, unknown> }[] };
      response.writeHead(200, { 'content-type': 'application/json', 'x-hostmeta-tenant': 'acme' })
        .end(JSON.stringify({ hosts: hosts.map((h) => ({ key: h.key, metadata: h.create, created: true })) }));
    });
  });
  const { cache, clock, config, telemetry, lines } = cacheFor(t, url, { maxTouchesInFlight: 2 });
  const keys = Array.from({ length: 5 }, randomKey);
  const sighting = { hostname: HOSTNAME, sourceAddress: '10.0.0.1', protocol: 'syslog_tcp' };
  for (const key of keys) cache.touch('acme', key, sighting);
  await cache.get('acme', keys[4]!, { timeoutMs: 5_000 });
  clock.now += config.touchIntervalMs;
  for (const key of keys) cache.touch('acme', key, sighting);
  assert.equal(await telemetry.value('sluice_hostmeta_touches_dropped_total'), 3);
  assert.equal(lines.filter((l) => l.code === 'SLU0313W').length, 1, 'logged once, throttled');

  await waitFor('two refreshes to arrive', () => held.length === 2);
  for (const { request, response } of held.splice(0)) {
    const { tenant, key } = itemOf(request);
    assert.equal(request.method, 'PATCH');
    response.writeHead(204, { 'x-hostmeta-tenant': tenant, 'x-hostmeta-key': key }).end();
  }
  await cache.whenTouchesSettled();
  cache.touch('acme', keys[4]!, sighting);
  await waitFor('the dropped host to be refreshed on its next message', () => held.length === 1);
  const { request, response } = held[0]!;
  assert.equal(request.method, 'PATCH');
  assert.equal(itemOf(request).key, keys[4]);
  response.writeHead(204, { 'x-hostmeta-tenant': 'acme', 'x-hostmeta-key': itemOf(request).key }).end();
});

test('hostmeta cache: bounded; the least recently used host is evicted first', async (t) => {
  const service = await realService(t);
  const { client, cache, telemetry } = cacheFor(t, service.url, { cacheMaxEntries: 3 });
  const [a, b, c, d] = [randomKey(), randomKey(), randomKey(), randomKey()];
  for (const key of [a, b, c]) await client.put('acme', key, { hostname: key });
  for (const key of [a, b, c]) await cache.get('acme', key);
  assert.deepEqual(cache.peek('acme', a), { hostname: a }, 'a is now the most recently used');
  await cache.get('acme', d);
  assert.equal(cache.entryCount(), 3);
  assert.equal(await telemetry.value('sluice_hostmeta_cache_entries'), 3);
  assert.deepEqual(cache.peek('acme', a), { hostname: a });
  assert.deepEqual(cache.peek('acme', c), { hostname: c });
  assert.equal(cache.peek('acme', b), undefined, 'b, the least recently used, was evicted');
});

test('hostmeta cache: the least recently used host goes first whatever its tenant', async (t) => {
  const store = new SqliteHostmetaStore(path.join(tempDir(t, 'sluice-hostmeta-'), 'hostmeta.sqlite'));
  await store.open();
  t.after(() => store.close());
  const telemetry = new Telemetry(pino({ level: 'silent' }));
  const cache = new HostMetadataCache(new LocalHostmetaClient(store, 65536), clientConfig('http://127.0.0.1:1', { cacheMaxEntries: 3 }), telemetry);
  t.after(() => cache.close());
  const [a, b, c, d] = [randomKey(), randomKey(), randomKey(), randomKey()];
  for (const [tenant, key] of [['acme', a], ['beta', b], ['acme', c]] as const) {
    await store.getOrCreateMany(tenant, [{ key, create: { hostname: key } }], Date.now(), 65536);
    assert.deepEqual(await cache.get(tenant, key), { hostname: key });
  }
  // a is the oldest, more than half the cache behind: using it moves it to the end (b becomes the oldest).
  assert.deepEqual(cache.peek('acme', a), { hostname: a });
  assert.equal(await cache.get('gamma', d), null, 'gamma has no document for d');
  assert.equal(cache.entryCount(), 3);
  assert.deepEqual(cache.peek('acme', a), { hostname: a });
  assert.deepEqual(cache.peek('acme', c), { hostname: c });
  // Last: a peek of a host the cache does not hold makes its entry again (and looks it up).
  assert.equal(cache.peek('beta', b), undefined, 'b (tenant beta), the least recently used, was evicted');
});

test('hostmeta cache: get never rejects and peek never throws, whatever it is given; closed, nothing more is sent', async (t) => {
  const service = await realService(t);
  const { cache, client } = cacheFor(t, service.url);
  assert.equal(await cache.get('NOT A TENANT', randomKey()), 'unavailable');
  assert.equal(await cache.get('acme', 'short'), 'unavailable');
  assert.equal(cache.peek('acme', '../../etc/passwd'), undefined);
  cache.touch('acme', 'short', { hostname: HOSTNAME, sourceAddress: '10.0.0.1', protocol: 'syslog_tcp' });
  await cache.close();
  await cache.close();
  const key = randomKey();
  assert.equal(await cache.get('acme', key), 'unavailable');
  cache.touch('acme', key, { hostname: HOSTNAME, sourceAddress: '10.0.0.1', protocol: 'syslog_tcp' });
  await assert.rejects(client.get('acme', key), (err: HostmetaRequestError) => err.reason === 'closed');
  assert.deepEqual(service.received, [], 'nothing reached the service');
});

test('hostmeta cache: batches are taken per tenant in turn, so a burst of new hosts from one tenant does not hold up another', async (t) => {
  const arrived: string[] = [];
  const held: { tenant: string; keys: string[]; response: http.ServerResponse }[] = [];
  const url = await customServer(t, (request, response) => {
    let body = '';
    request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk)).on('end', () => {
      const { tenant } = itemOf(request);
      const keys = (JSON.parse(body) as { hosts: { key: string }[] }).hosts.map((h) => h.key);
      arrived.push(`${tenant} ${keys.length}`);
      held.push({ tenant, keys, response });
    });
  });
  const { cache } = cacheFor(t, url, { lookupBatchesInFlight: 1, lookupBatchHosts: 5 }, 'destroy');
  for (let i = 0; i < 20; i++) cache.peek('flood', randomKey());
  cache.peek('light', randomKey());
  const answer = (): void => {
    const { tenant, keys, response } = held.shift()!;
    response.writeHead(200, { 'content-type': 'application/json', 'x-hostmeta-tenant': tenant })
      .end(JSON.stringify({ hosts: keys.map((key) => ({ key, metadata: null, created: false })) }));
  };
  for (let n = 1; n <= 5; n++) {
    await waitFor(`batch ${n}`, () => arrived.length === n);
    answer();
  }
  assert.deepEqual(arrived, ['flood 5', 'light 1', 'flood 5', 'flood 5', 'flood 5'], "the light tenant's host goes in the second batch, not the fifth");
});
