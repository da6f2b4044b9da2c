/**
 * The seed's bug as a test. Its collector's HTTP client (Erlang httpc), under
 * load, handed one request's response to another: a GET received a PUT's
 * 204, a PUT received a 404 meant for someone else.
 *
 * Here thousands of concurrent GET/PUT/PATCH/DELETE requests and batches
 * (POST, several hosts each) go through the client to a server that delays
 * answers at random, answers 200/204/404/412 (a batch: each host found or not) at random, drops connections before answering or in the middle of a
 * response, and closes keep-alive connections after answering. Every answer
 * names its request (echo headers, and for a 200 the body too). The test
 * checks each result against the request it made — independently of the
 * client's own check — and fails on a single mismatch.
 *
 * A second test proves the check can fail: a server that does swap answers
 * is caught every time, exactly as often as it lies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import pino from 'pino';
import { HostmetaClient, HostmetaRequestError } from '../../../src/services/hostmeta/client.js';
import { DEFAULT_HOSTMETA_CLIENT_CONFIG } from '../../../src/services/hostmeta/config.js';
import { Telemetry } from '../../../src/telemetry/telemetry.js';

type Cleanup = { after(fn: () => void | Promise<void>): void };
type Operation = 'get' | 'put' | 'create' | 'patch' | 'delete' | 'batch';
const OPERATIONS: readonly Operation[] = ['get', 'put', 'create', 'patch', 'delete', 'batch'];
const TENANTS = ['1710', '1712', 'acme'] as const;

interface ChaosStats {
  requests: number;
  /** PUT/PATCH bodies that named another request than their URL: a mix-up on the way in. */
  foreignBodies: number;
  droppedBeforeAnswer: number;
  droppedMidResponse: number;
  closedAfterAnswer: number;
  /** Answers deliberately sent with another request's tenant and key (the lying server only). */
  lies: number;
}

/**
 * What a request names, from its path and (for writes) its `probe` field; a
 * batch names its tenant and its hosts' keys (joined by commas), and is foreign
 * when a host's `create` carries another host's probe.
 */
function parseRequest(request: http.IncomingMessage, body: string): { tenant: string; key: string; foreign: boolean } {
  const [, , tenant = '', key = ''] = (request.url ?? '').split('/');
  if (body === '') return { tenant, key, foreign: false };
  const parsed = JSON.parse(body) as { probe?: unknown; hosts?: { key: string; create: { probe: unknown } }[] };
  if (parsed.hosts !== undefined) {
    return { tenant, key: parsed.hosts.map((h) => h.key).join(','), foreign: parsed.hosts.some((h) => h.create.probe !== `${tenant}/${h.key}`) };
  }
  return { tenant, key, foreign: parsed.probe !== `${tenant}/${key}` };
}

/** The echo headers of an answer: a batch's names its tenant only (its hosts are in the body). */
function echoHeaders(request: http.IncomingMessage, named: { tenant: string; key: string }): Record<string, string> {
  return request.method === 'POST' ? { 'x-hostmeta-tenant': named.tenant } : { 'x-hostmeta-tenant': named.tenant, 'x-hostmeta-key': named.key };
}

/** Each status the method can have, picked at random: the answers differ, so a swapped one would show. */
function randomStatus(request: http.IncomingMessage): number {
  const coin = randomInt(2) === 0;
  switch (request.method) {
    case 'GET': return coin ? 200 : 404;
    case 'DELETE': return coin ? 204 : 404;
    case 'PUT': return request.headers['if-none-match'] === '*' && coin ? 412 : 204;
    default: return 204;
  }
}

/**
 * A host metadata look-alike that misbehaves. With `lieEvery` set, about one
 * answer in `lieEvery` names the previous request instead of its own — the
 * seed's symptom, produced on purpose.
 */
async function chaosServer(t: Cleanup, stats: ChaosStats, lieEvery = 0): Promise<string> {
  let previous = { tenant: '1710', key: 'e1924d5bfc58ac9576d6b31f261e0d137d56e142' };
  // A batch lies with the previous batch's answer.
  let previousBatch = { tenant: '1710', key: 'e1924d5bfc58ac9576d6b31f261e0d137d56e142' };
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      stats.requests++;
      const { tenant, key, foreign } = parseRequest(request, Buffer.concat(chunks).toString('utf8'));
      if (foreign) stats.foreignBodies++;
      const batch = request.method === 'POST';
      const last = batch ? previousBatch : previous;
      const named = lieEvery > 0 && randomInt(lieEvery) === 0 ? last : { tenant, key };
      if (named !== last) {
        if (batch) previousBatch = { tenant, key };
        else previous = { tenant, key };
      }
      setTimeout(() => answer(request, response, tenant, key, named), randomInt(4));
    });
  });

  function answer(request: http.IncomingMessage, response: http.ServerResponse, tenant: string, key: string,
    named: { tenant: string; key: string }): void {
    const socket = request.socket as net.Socket;
    const dice = randomInt(100);
    if (dice < 4) {
      stats.droppedBeforeAnswer++;
      socket.destroy();
      return;
    }
    if (dice < 8) {
      // Headers that name this request and half a body, then the connection is gone.
      stats.droppedMidResponse++;
      const echo = Object.entries(echoHeaders(request, { tenant, key })).map(([name, value]) => `${name}: ${value}\r\n`).join('');
      socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 400\r\n${echo}\r\n{"probe":"${tenant}/${key}","hostn`);
      socket.destroy();
      return;
    }
    if (named.key !== key || named.tenant !== tenant) stats.lies++;
    const status = randomStatus(request);
    const headers: http.OutgoingHttpHeaders = echoHeaders(request, named);
    if (dice < 20) {
      stats.closedAfterAnswer++;
      headers.connection = 'close';
    }
    if (request.method === 'POST') {
      // Each host found (its document names it) or created, at random.
      const hosts = named.key.split(',').map((k) => (randomInt(2) === 0
        ? { key: k, metadata: { probe: `${named.tenant}/${k}`, hostname: `host-${k.slice(0, 8)}` }, created: false }
        : { key: k, metadata: null, created: false }));
      response.writeHead(200, { ...headers, 'content-type': 'application/json' });
      response.end(JSON.stringify({ hosts }));
    } else if (status === 200) {
      response.writeHead(200, { ...headers, 'content-type': 'application/json' });
      response.end(JSON.stringify({ probe: `${named.tenant}/${named.key}`, hostname: `host-${named.key.slice(0, 8)}` }));
    } else if (status === 404) {
      response.writeHead(404, { ...headers, 'content-type': 'text/plain' });
      response.end('No metadata for key');
    } else {
      response.writeHead(status, headers);
      response.end();
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

interface Tally {
  succeeded: number;
  /** Results that named another request than the one made: must stay 0. */
  wrongAnswers: string[];
  mismatchErrors: number;
  /** Failures other than mismatches, by reason. */
  failures: Map<string, number>;
  statuses: Map<string, number>;
}

/** Fire `count` random operations at once; check each result against its own request. */
async function hammer(client: HostmetaClient, count: number): Promise<Tally> {
  const keys = Array.from({ length: 300 }, () => randomBytes(20).toString('hex'));
  const tally: Tally = { succeeded: 0, wrongAnswers: [], mismatchErrors: 0, failures: new Map(), statuses: new Map() };
  const bump = (map: Map<string, number>, name: string) => map.set(name, (map.get(name) ?? 0) + 1);

  async function one(operation: Operation, tenant: string, key: string): Promise<void> {
    const asked = `${tenant}/${key}`;
    const document = { hostname: `host-${key.slice(0, 8)}`, probe: asked };
    try {
      let named: string;
      let status: string;
      switch (operation) {
        case 'get': {
          const found = await client.get(tenant, key);
          named = `${found.tenant}/${found.key}`;
          if (found.metadata !== null && found.metadata.probe !== asked) tally.wrongAnswers.push(`GET ${asked} got a body for ${String(found.metadata.probe)}`);
          status = found.metadata === null ? 'get 404' : 'get 200';
          break;
        }
        case 'put': {
          const written = await client.put(tenant, key, document);
          named = `${written.tenant}/${written.key}`;
          status = 'put 204';
          break;
        }
        case 'create': {
          const created = await client.create(tenant, key, document);
          named = `${created.tenant}/${created.key}`;
          status = created.created ? 'create 204' : 'create 412';
          break;
        }
        case 'patch': {
          const patched = await client.patch(tenant, key, { probe: asked });
          named = `${patched.tenant}/${patched.key}`;
          status = 'patch 204';
          break;
        }
        case 'delete': {
          const deleted = await client.delete(tenant, key);
          named = `${deleted.tenant}/${deleted.key}`;
          status = deleted.deleted ? 'delete 204' : 'delete 404';
          break;
        }
        case 'batch': {
          // This key and a few others, each once.
          const batchKeys = [...new Set([key, ...Array.from({ length: randomInt(4) }, () => keys[randomInt(keys.length)]!)])];
          const answers = await client.getOrCreateMany(tenant, batchKeys.map((k) => ({ key: k, create: { hostname: `host-${k.slice(0, 8)}`, probe: `${tenant}/${k}` } })));
          named = asked;
          answers.forEach((answer, i) => {
            const own = `${tenant}/${batchKeys[i]}`;
            if (answer.key !== batchKeys[i] || (answer.metadata !== null && answer.metadata.probe !== own)) {
              tally.wrongAnswers.push(`batch ${own} got the answer for ${answer.key}: ${JSON.stringify(answer.metadata)}`);
            }
          });
          status = 'batch 200';
          break;
        }
      }
      if (named !== asked) tally.wrongAnswers.push(`${operation} ${asked} got the answer for ${named}`);
      tally.succeeded++;
      bump(tally.statuses, status);
    } catch (err) {
      if (!(err instanceof HostmetaRequestError)) throw err;
      if (err.reason === 'mismatch') tally.mismatchErrors++;
      else bump(tally.failures, err.reason);
    }
  }

  await Promise.all(Array.from({ length: count }, () =>
    one(OPERATIONS[randomInt(OPERATIONS.length)]!, TENANTS[randomInt(TENANTS.length)]!, keys[randomInt(keys.length)]!)));
  return tally;
}

function newStats(): ChaosStats {
  return { requests: 0, foreignBodies: 0, droppedBeforeAnswer: 0, droppedMidResponse: 0, closedAfterAnswer: 0, lies: 0 };
}

function newClient(t: Cleanup, url: string) {
  const telemetry = new Telemetry(pino({ level: 'silent' }));
  const client = new HostmetaClient({
    ...DEFAULT_HOSTMETA_CLIENT_CONFIG, url, connections: 32, getRetries: 2, retryBackoff: { initialMs: 1, maxMs: 10 },
  }, telemetry);
  t.after(() => client.destroy());
  return { client, telemetry };
}

test('hostmeta client: 5,000 concurrent mixed requests through delays, drops and closes — no response is ever matched to another request',
  { timeout: 60_000 }, async (t) => {
    const stats = newStats();
    const { client, telemetry } = newClient(t, await chaosServer(t, stats));
    const operations = 5_000;
    const tally = await hammer(client, operations);
    t.diagnostic(`server ${JSON.stringify(stats)}; client ${tally.succeeded} succeeded, failures ${JSON.stringify([...tally.failures])}`);

    assert.deepEqual(tally.wrongAnswers, [], 'every result named the request that was made');
    assert.equal(tally.mismatchErrors, 0, 'the client never saw an answer naming another request');
    assert.equal(await telemetry.value('sluice_hostmeta_client_mismatches_total'), 0);
    assert.equal(stats.foreignBodies, 0, 'no request body reached the server under another request\'s path');

    // The chaos did happen, and the client still got through most of it.
    assert.ok(stats.requests >= operations * 0.9, `${stats.requests} requests`);
    assert.ok(stats.droppedBeforeAnswer > 0 && stats.droppedMidResponse > 0 && stats.closedAfterAnswer > 0, JSON.stringify(stats));
    assert.ok(tally.succeeded >= operations * 0.8, `${tally.succeeded} of ${operations} succeeded; failures ${JSON.stringify([...tally.failures])}`);
    assert.deepEqual([...tally.failures.keys()].filter((reason) => reason !== 'network' && reason !== 'timeout'), [],
      'the only failures are dropped connections (or, on a starved machine, timeouts)');
    for (const status of ['get 200', 'get 404', 'put 204', 'create 204', 'create 412', 'patch 204', 'delete 204', 'delete 404', 'batch 200']) {
      assert.ok((tally.statuses.get(status) ?? 0) > 0, `saw ${status}`);
    }
  });

test('hostmeta client: against a server that does swap answers, every swapped answer is caught and none is used',
  { timeout: 60_000 }, async (t) => {
    const stats = newStats();
    const { client, telemetry } = newClient(t, await chaosServer(t, stats, 20));
    const tally = await hammer(client, 2_000);
    t.diagnostic(`server ${JSON.stringify(stats)}; client ${tally.succeeded} succeeded, ${tally.mismatchErrors} mismatches refused`);

    assert.ok(stats.lies > 0, 'the server lied');
    assert.deepEqual(tally.wrongAnswers, [], 'no swapped answer was returned as a result');
    assert.equal(tally.mismatchErrors, stats.lies, 'each lie was refused as a mismatch: none retried, none missed');
    assert.equal(await telemetry.value('sluice_hostmeta_client_mismatches_total'), stats.lies);
  });
