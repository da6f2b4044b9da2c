/**
 * Who may call the host metadata API, through a running service on loopback
 * (real fastify, real SQLite): the admin token reaches every tenant, a
 * tenant-scoped token only its tenant, the service's own client credential
 * every tenant; no token is a 401, another tenant a 403, an unknown tenant a
 * 404 that stores nothing. Hostile bodies and headers are 4xx, never 500, and
 * every refusal is counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Client } from 'undici';
import { DEFAULT_HOSTMETA_SERVICE_CONFIG } from '../../../src/services/hostmeta/config.js';
import { MAX_DOCUMENT_DEPTH } from '../../../src/services/hostmeta/schema.js';
import { startHostmetaService, type RunningHostmetaService } from '../../../src/services/hostmeta/server.js';
import { Telemetry } from '../../../src/telemetry/telemetry.js';
import { memoryLogger, tempDir } from '../../helpers.js';

type Cleanup = { after(fn: () => void | Promise<void>): void };
type Method = 'GET' | 'PUT' | 'PATCH' | 'DELETE' | 'POST';

const ADMIN_TOKEN = 'hostmeta-admin-token-0123456789';
const ACME_TOKEN = 'hostmeta-acme-token-0123456789';
const GLOBEX_TOKEN = 'hostmeta-globex-token-0123456789';
const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const ACCESS = {
  tenants: ['acme', 'globex'],
  tokens: [
    { tokenHash: sha256(ADMIN_TOKEN), tenant: null },
    { tokenHash: sha256(ACME_TOKEN), tenant: 'acme' },
    { tokenHash: sha256(GLOBEX_TOKEN), tenant: 'globex' },
  ],
};

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: { error?: string; part?: string; message?: string } & Record<string, unknown>;
}

const randomKey = (): string => randomBytes(20).toString('hex');

async function startService(t: Cleanup, access = ACCESS) {
  const dataDir = tempDir(t, 'sluice-hostmeta-access-');
  const { logger, lines } = memoryLogger();
  const telemetry = new Telemetry(logger);
  const service = await startHostmetaService({ ...DEFAULT_HOSTMETA_SERVICE_CONFIG, port: 0, dataDir }, access, telemetry);
  const client = new Client(service.url);
  t.after(async () => {
    await client.close();
    await service.close();
  });
  async function call(method: Method, url: string, token: string | null, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    const sent: Record<string, string> = { ...headers };
    if (token !== null) sent.authorization = `Bearer ${token}`;
    const raw = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    if (raw !== undefined) sent['content-type'] ??= 'application/json';
    const response = await client.request({ method, path: url, headers: sent, body: raw });
    const text = await response.body.text();
    return { status: response.statusCode, headers: response.headers, body: text === '' ? {} : JSON.parse(text) as Reply['body'] };
  }
  const refused = (error?: string) => telemetry.value('sluice_hostmeta_refused_requests_total', error === undefined ? {} : { error });
  return { service, call, lines, telemetry, refused, dataDir };
}

/** One request written as raw bytes (so headers can repeat or be malformed); resolves with the whole answer once the server closes. */
function rawRequest(service: RunningHostmetaService, text: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(service.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.end(text);
  });
}

const statusOf = (answer: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);

test('hostmeta access: without a token, or with an unknown one, every route but /healthz is a 401 that names its request and changes nothing', async (t) => {
  const { service, call, lines, refused } = await startService(t);
  const key = randomKey();
  const item = `/host_metadata/acme/${key}`;
  const attempts: [Method, string, unknown?][] = [
    ['GET', item], ['PUT', item, { labels: { owner: 'ATTACKER' } }], ['PATCH', item, { labels: { owner: 'ATTACKER' } }],
    ['DELETE', item], ['GET', '/host_metadata/acme'], ['GET', '/no/such/route'],
    ['POST', '/host_metadata/acme', { hosts: [{ key, create: { labels: { owner: 'ATTACKER' } } }] }],
  ];
  for (const token of [null, 'not-a-token-of-this-service', ACME_TOKEN.slice(0, -1)]) {
    for (const [method, url, body] of attempts) {
      const reply = await call(method, url, token, body);
      const what = `${method} ${url} with ${token === null ? 'no token' : 'a bad token'}`;
      assert.equal(reply.status, 401, what);
      assert.equal(reply.body.error, 'unauthorized', what);
      assert.equal(reply.headers['www-authenticate'], 'Bearer realm="sluice-hostmeta"', what);
      if (url === item) {
        assert.equal(reply.headers['x-hostmeta-tenant'], 'acme', `${what}: even a refusal names its request`);
        assert.equal(reply.headers['x-hostmeta-key'], key, what);
      }
    }
  }
  // Another scheme than Bearer is no token at all.
  const basic = await call('GET', item, null, undefined, { authorization: `Basic ${Buffer.from(`x:${ADMIN_TOKEN}`).toString('base64')}` });
  assert.equal(basic.status, 401);
  assert.equal(await service.store.get('acme', key), null, 'nothing was written');
  assert.equal(await refused('unauthorized'), attempts.length * 3 + 1, 'each refusal counted');
  assert.ok(lines.some((l) => l.code === 'SLU0306W' && l.status === 401), 'logged (throttled)');

  const health = await call('GET', '/healthz', null);
  assert.equal(health.status, 200, 'health probes need no token');
});

test('hostmeta access: the admin token and the service\'s own credential reach every tenant; a scoped token only its own (403 elsewhere)', async (t) => {
  const { service, call, refused } = await startService(t);
  const ownToken = readFileSync(service.tokenFile, 'utf8').trim();
  assert.equal(service.tokenFile, path.join(path.dirname(service.tokenFile), 'hostmeta-token'));
  assert.equal(statSync(service.tokenFile).mode & 0o777, 0o600, 'the credential file is readable by its owner only');
  assert.ok(ownToken.length >= 32);

  for (const [who, token] of [['admin token', ADMIN_TOKEN], ['own credential', ownToken]] as const) {
    for (const tenant of ['acme', 'globex']) {
      const item = `/host_metadata/${tenant}/${randomKey()}`;
      assert.equal((await call('PUT', item, token, { hostname: 'h' })).status, 204, `${who} PUT ${tenant}`);
      assert.equal((await call('PATCH', item, token, { labels: { role: 'web' } })).status, 204, `${who} PATCH ${tenant}`);
      assert.equal((await call('GET', item, token)).status, 200, `${who} GET ${tenant}`);
      assert.equal((await call('GET', `/host_metadata/${tenant}`, token)).status, 200, `${who} list ${tenant}`);
      assert.equal((await call('POST', `/host_metadata/${tenant}`, token, { hosts: [{ key: randomKey(), create: { hostname: 'h' } }] })).status, 200,
        `${who} batch ${tenant}`);
      assert.equal((await call('DELETE', item, token)).status, 204, `${who} DELETE ${tenant}`);
    }
  }

  const acmeKey = randomKey();
  const globexKey = randomKey();
  await service.store.put('globex', globexKey, { hostname: 'g', labels: { owner: 'globex-ops' } }, Date.now());
  const acmeItem = `/host_metadata/acme/${acmeKey}`;
  const globexItem = `/host_metadata/globex/${globexKey}`;
  assert.equal((await call('PUT', acmeItem, ACME_TOKEN, { hostname: 'a', labels: { owner: 'acme-ops' } })).status, 204);
  assert.equal((await call('GET', acmeItem, ACME_TOKEN)).status, 200);
  assert.equal((await call('GET', '/host_metadata/acme', ACME_TOKEN)).status, 200);
  assert.equal((await call('POST', '/host_metadata/acme', ACME_TOKEN, { hosts: [{ key: acmeKey }] })).status, 200, 'a scoped token batches its own tenant');

  const before = await refused('forbidden');
  const attempts: [Method, string, unknown?][] = [
    ['GET', globexItem], ['PUT', globexItem, { labels: { owner: 'ATTACKER' } }], ['PATCH', globexItem, { labels: { owner: 'ATTACKER' } }],
    ['DELETE', globexItem], ['GET', '/host_metadata/globex'],
    ['POST', '/host_metadata/globex', { hosts: [{ key: globexKey }, { key: randomKey(), create: { hostname: 'planted' } }] }],
    // A tenant the service does not have is "not yours" to a scoped token: it learns nothing of which tenants exist.
    ['PUT', `/host_metadata/fake123/${randomKey()}`, { hostname: 'x' }],
  ];
  for (const [method, url, body] of attempts) {
    const reply = await call(method, url, ACME_TOKEN, body);
    assert.equal(reply.status, 403, `${method} ${url} with acme's token`);
    assert.equal(reply.body.error, 'forbidden');
    assert.match(String(reply.body.message), /scoped to tenant acme/);
  }
  assert.equal(await refused('forbidden'), before + attempts.length);
  assert.deepEqual((await service.store.get('globex', globexKey))?.metadata, { hostname: 'g', labels: { owner: 'globex-ops' } }, 'globex\'s document untouched');
});

test('hostmeta access: an unknown tenant is a 404 and never created — the database does not grow', async (t) => {
  const { service, call, refused } = await startService(t);
  const key = randomKey();
  for (const [method, url, body] of [
    ['PUT', `/host_metadata/fake123/${key}`, { labels: { owner: 'ATTACKER' } }],
    ['PUT', `/host_metadata/fake123/${key}`, { hostname: 'x' }, { 'if-none-match': '*' }],
    ['PATCH', `/host_metadata/fake123/${key}`, { hostname: 'x' }],
    ['GET', `/host_metadata/fake123/${key}`],
    ['DELETE', `/host_metadata/fake123/${key}`],
    ['GET', '/host_metadata/fake123'],
    ['POST', '/host_metadata/fake123', { hosts: [{ key, create: { hostname: 'x' } }] }],
  ] as [Method, string, unknown?, Record<string, string>?][]) {
    const reply = await call(method, url, ADMIN_TOKEN, body);
    assert.equal(reply.status, 404, `${method} ${url}`);
    assert.equal(reply.body.error, 'unknown_tenant');
    assert.equal(reply.body.part, 'tenant');
  }
  assert.deepEqual(await service.store.list('fake123', null, 10), []);
  assert.equal(await service.pruneUnseen(1), 0, 'no row of any tenant exists');
  assert.equal(await refused('unknown_tenant'), 7);

  // A reload that adds the tenant: from then on it is served.
  service.setAccess({ ...ACCESS, tenants: [...ACCESS.tenants, 'fake123'] });
  assert.equal((await call('PUT', `/host_metadata/fake123/${key}`, ADMIN_TOKEN, { hostname: 'now-known' })).status, 204);
  service.setAccess(ACCESS);
  assert.equal((await call('GET', `/host_metadata/fake123/${key}`, ADMIN_TOKEN)).status, 404, 'removed again: its hosts are out of reach');
});

test('hostmeta access: two Authorization headers are refused as ambiguous (400), whichever comes first, even two good ones', async (t) => {
  const { service, refused, lines } = await startService(t);
  const key = randomKey();
  const put = (first: string, second: string): string => {
    const body = JSON.stringify({ labels: { owner: 'ATTACKER' } });
    return [`PUT /host_metadata/acme/${key} HTTP/1.1`, 'Host: 127.0.0.1', `Authorization: Bearer ${first}`, `Authorization: Bearer ${second}`,
      'Content-Type: application/json', `Content-Length: ${body.length}`, 'Connection: close', '', body].join('\r\n');
  };
  for (const [first, second] of [[ACME_TOKEN, GLOBEX_TOKEN], [GLOBEX_TOKEN, ACME_TOKEN], [ADMIN_TOKEN, ADMIN_TOKEN], [ADMIN_TOKEN, 'unknown-token-000000']]) {
    const answer = await rawRequest(service, put(first!, second!));
    assert.equal(statusOf(answer), 400, answer);
    assert.match(answer, /"error":"ambiguous_credentials"/);
    assert.match(answer, new RegExp(`x-hostmeta-key: ${key}`, 'i'));
  }
  assert.equal(await service.store.get('acme', key), null);
  assert.equal(await refused('ambiguous_credentials'), 4);
  assert.ok(lines.some((l) => l.code === 'SLU0306W' && l.reason === 'ambiguous_credentials'));
});

test('hostmeta access: a body nested 5,000 deep is a 400 (not a 500), for PUT and PATCH; 32 levels are accepted', async (t) => {
  const { call, lines, refused } = await startService(t);
  const key = randomKey();
  const item = `/host_metadata/acme/${key}`;
  const objects = (depth: number): string => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
  const arrays = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;
  for (const [method, body, contentType] of [
    ['PUT', objects(5000), 'application/json'],
    ['PATCH', objects(5000), 'application/json'],
    ['PATCH', objects(5000), 'application/merge-patch+json'],
    ['PUT', `{"labels":{},"x":${arrays(4999)}}`, 'application/json'],
    ['PUT', objects(MAX_DOCUMENT_DEPTH + 1), 'application/json'],
  ] as const) {
    const reply = await call(method, item, ADMIN_TOKEN, body, { 'content-type': contentType });
    assert.equal(reply.status, 400, `${method} ${body.slice(0, 20)}… (${body.length} bytes)`);
    assert.equal(reply.body.part, 'body');
    assert.match(String(reply.body.message), /deeper than 32 levels/);
  }
  // Brackets inside strings are text, not nesting.
  const inString = await call('PUT', item, ADMIN_TOKEN, { hostname: 'h', note: '[[[[{{{{'.repeat(100), quoted: '\\"[[[' });
  assert.equal(inString.status, 204);
  assert.equal((await call('PUT', item, ADMIN_TOKEN, objects(MAX_DOCUMENT_DEPTH))).status, 204, 'the limit itself is fine');
  assert.equal((await call('GET', item, ADMIN_TOKEN)).status, 200);
  assert.ok(!lines.some((l) => l.code === 'SLU0304E'), 'no request failed inside the service');
  assert.equal(await refused('bad_request'), 5);
});

test('hostmeta access: hostile bodies and headers get a 4xx, never a 500, and each is counted', async (t) => {
  const { service, call, lines, refused } = await startService(t);
  const item = `/host_metadata/acme/${randomKey()}`;
  const auth = `Bearer ${ADMIN_TOKEN}`;
  const replies: [string, number][] = [];
  const viaClient: [string, Method, string, string | undefined, Record<string, string>][] = [
    ['truncated JSON', 'PUT', item, '{"hostname":', {}],
    ['prototype poisoning', 'PUT', item, '{"__proto__":{"admin":true}}', {}],
    ['constructor poisoning', 'PUT', item, '{"constructor":{"prototype":{"admin":true}}}', {}],
    ['a body over the limit', 'PUT', item, JSON.stringify({ blob: 'x'.repeat(70_000) }), {}],
    ['text/plain', 'PUT', item, '{"hostname":"h"}', { 'content-type': 'text/plain' }],
    ['gzip that is not', 'PUT', item, '{"hostname":"h"}', { 'content-encoding': 'gzip' }],
    ['UTF-16 JSON', 'PUT', item, '{"hostname":"h"}', { 'content-type': 'application/json; charset=utf-16' }],
    ['an array of limits', 'GET', '/host_metadata/acme?limit=1&limit=2', undefined, {}],
    ['a cursor of garbage', 'GET', '/host_metadata/acme?cursor=%00%ff', undefined, {}],
    ['a tenant with a NUL', 'GET', `/host_metadata/ac%00me/${randomKey()}`, undefined, {}],
    ['an undecodable path', 'GET', '/host_metadata/%zz/x', undefined, {}],
    ['a 4 KiB token', 'GET', item, undefined, { authorization: `Bearer ${'t'.repeat(4096)}` }],
    ['If-None-Match of another kind', 'PUT', item, '{"hostname":"h"}', { 'if-none-match': 'W/"1"' }],
    ['a batch of poison', 'POST', '/host_metadata/acme', `{"hosts":[{"key":"${randomKey()}","create":{"__proto__":{"admin":true}}}]}`, {}],
    ['a batch whose hosts is a string', 'POST', '/host_metadata/acme', '{"hosts":"all of them"}', {}],
    ['a batch with a null update', 'POST', '/host_metadata/acme', `{"hosts":[{"key":"${randomKey()}","update":null}]}`, {}],
    ['a batch of 100,000 hosts', 'POST', '/host_metadata/acme', JSON.stringify({ hosts: Array.from({ length: 100_000 }, () => ({ key: 'a'.repeat(40) })) }), {}],
    ['a batch nested too deep', 'POST', '/host_metadata/acme', `{"hosts":[{"key":"${randomKey()}","create":${'{"a":'.repeat(40)}1${'}'.repeat(40)}}]}`, {}],
  ];
  for (const [what, method, url, body, headers] of viaClient) {
    const reply = await call(method, url, headers.authorization === undefined ? ADMIN_TOKEN : null, body, headers);
    replies.push([what, reply.status]);
  }
  const raw: [string, string | Buffer][] = [
    ['not HTTP at all', 'HELLO THERE\r\n\r\n'],
    ['headers over the limit', `GET ${item} HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`],
    ['a bad Content-Length', `PUT ${item} HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Length: -5\r\n\r\n`],
    ['invalid UTF-8 in the body', Buffer.concat([Buffer.from(`PUT ${item} HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Type: application/json\r\nContent-Length: 18\r\nConnection: close\r\n\r\n{"hostname":"`), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')])],
  ];
  for (const [what, text] of raw) replies.push([what, statusOf(await rawRequest(service, text))]);

  // Invalid UTF-8 inside a JSON string is read as replacement characters (as JSON parsers do): stored, not refused.
  const invalidUtf8 = replies.findIndex(([what]) => what === 'invalid UTF-8 in the body');
  assert.equal(replies.splice(invalidUtf8, 1)[0]![1], 204);
  for (const [what, status] of replies) assert.ok(status >= 400 && status < 500, `${what}: ${status}`);
  assert.ok(!lines.some((l) => l.code === 'SLU0304E'), `no 500: ${JSON.stringify(lines.filter((l) => l.code === 'SLU0304E'))}`);
  const refusals = replies.filter(([, status]) => status >= 400).length;
  assert.equal(await refused(), refusals, 'every refusal counted once');
  assert.ok(await refused('too_large') >= 2, 'the big body and the big headers');
  assert.equal(await service.store.get('acme', item.slice(-40)).then((h) => h?.metadata.admin), undefined, 'no poisoned field stored');
});
