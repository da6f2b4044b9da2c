/**
 * HTTP ingestion end to end: the real OpenTelemetry JS SDK exporters (JSON
 * and protobuf) as clients; the newline-delimited endpoint with bearer
 * tokens and gzip; every refusal with its status; 200 only after commit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPLogExporter as OtlpJsonExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as OtlpProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { hostKey } from '../../src/core/identity.js';
import { TURN_WORK_BYTES } from '../../src/core/turn-shares.js';
import { closed, connect, readTenantRecords, startTestNode, waitFor } from '../helpers.js';

const TOKEN = 'http-tenant-token-0123456789';
const tenantsYaml = [
  'tenants:',
  '  default:',
  '    networks: [127.0.0.0/8]',
  '  acme:',
  `    tokens: [${TOKEN}]`,
  '    limits: { messages_per_second: 100, burst: 1s }',
].join('\n');

for (const [name, Exporter] of [['JSON', OtlpJsonExporter], ['protobuf', OtlpProtoExporter]] as const) {
  test(`http: the OpenTelemetry SDK's OTLP ${name} exporter delivers, mapped to record fields`, async (t) => {
    const { node, logs } = await startTestNode(t, tenantsYaml);
    const port = node.addresses().http!.port;
    const exporter = new Exporter({ url: `http://127.0.0.1:${port}/v1/logs`, headers: { Authorization: `Bearer ${TOKEN}` } });
    const provider = new LoggerProvider({
      resource: resourceFromAttributes({ 'service.name': 'checkout', 'host.name': 'web-7', 'process.pid': 4242, 'deployment.environment': 'prod' }),
      processors: [new SimpleLogRecordProcessor({ exporter })],
    });
    const logger = provider.getLogger('payments', '1.2.3');
    const when = Date.UTC(2026, 10, 27, 12, 0, 0, 123);
    logger.emit({ severityNumber: SeverityNumber.WARN, severityText: 'WARN', body: `card declined via ${name}`, timestamp: when, attributes: { order: 'A-17', attempt: 2 } });
    logger.emit({ severityNumber: SeverityNumber.ERROR, body: { code: 51, reason: 'insufficient funds' } });
    await provider.forceFlush();
    await provider.shutdown();
    const recs = await waitFor('records', () => {
      const r = readTenantRecords(logs, 'acme');
      return r.length === 2 ? r : undefined;
    });
    const [first, second] = recs;
    assert.equal(first?.msg, `card declined via ${name}`);
    assert.equal(first?.ts, new Date(when).toISOString());
    assert.equal(first?.severity, 4);
    assert.equal(first?.hostname, 'web-7');
    assert.equal(first?.app, 'checkout');
    assert.equal(first?.procid, '4242');
    assert.equal(first?.host, hostKey('acme', 'web-7'));
    assert.equal((first?.source as { protocol: string }).protocol, 'http');
    const sd = first?.sd as Record<string, Record<string, string>>;
    assert.equal(sd['otel-resource@32473']?.['deployment.environment'], 'prod');
    assert.deepEqual(sd['otel-log@32473'], { order: 'A-17', attempt: '2', 'otel.severity_text': 'WARN' });
    assert.deepEqual(sd['otel-scope@32473'], { name: 'payments', version: '1.2.3' });
    assert.equal(second?.severity, 3);
    assert.deepEqual(JSON.parse(String(second?.msg)), { code: 51, reason: 'insufficient funds' });
    assert.deepEqual(readTenantRecords(logs, 'default'), [], 'the token, not the loopback network, names the tenant');
  });
}

async function post(port: number, path: string, body: string | Buffer, headers: Record<string, string> = {}) {
  const res = await request(`http://127.0.0.1:${port}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson', ...headers } });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

test('http: newline-delimited JSON and text, bearer tokens, gzip; 200 only once the records are in the file', async (t) => {
  const { node, logs } = await startTestNode(t, tenantsYaml);
  const port = node.addresses().http!.port;
  const body = [
    JSON.stringify({ msg: 'structured', hostname: 'db-1', app: 'pg', severity: 'warning', ts: '2026-11-27T10:00:00.000Z', region: 'eu' }),
    'a plain line',
    '',
  ].join('\n');
  const ok = await post(port, '/v1/ingest', body, { authorization: `Bearer ${TOKEN}` });
  assert.equal(ok.status, 200, ok.text);
  // Answered after commit: the records are already in the file when the response arrives.
  const recs = readTenantRecords(logs, 'acme');
  assert.deepEqual(recs.map((r) => r.msg), ['structured', 'a plain line']);
  assert.equal(recs[0]?.severity, 4);
  assert.equal(recs[0]?.hostname, 'db-1');
  assert.deepEqual(recs[0]?.sd, { 'fields@32473': { region: 'eu' } });
  const zipped = await post(port, '/v1/ingest', gzipSync('{"msg":"zipped"}\n'), { authorization: `Bearer ${TOKEN}`, 'content-encoding': 'gzip' });
  assert.equal(zipped.status, 200, zipped.text);
  const fromNetwork = await post(port, '/v1/ingest', 'no token: the loopback tenant\n');
  assert.equal(fromNetwork.status, 200);
  assert.equal(readTenantRecords(logs, 'default')[0]?.msg, 'no token: the loopback tenant');
});

test('http: refusals — 401 bad token, 400 bad body naming the line, 413 too large (also once gunzipped), 415, 429 over the rate', async (t) => {
  const { node, logs } = await startTestNode(t, `${tenantsYaml}\nsources:\n  syslog_udp: { port: 0 }\n  syslog_tcp: { port: 0 }\n  http: { port: 0, max_body: 64KiB }`);
  const port = node.addresses().http!.port;
  const auth = { authorization: `Bearer ${TOKEN}` };
  assert.equal((await post(port, '/v1/ingest', 'x\n', { authorization: 'Bearer wrong-token-000000000' })).status, 401);
  const bad = await post(port, '/v1/ingest', '{"msg":"fine"}\n{"msg": nope}\n', auth);
  assert.equal(bad.status, 400);
  assert.match(bad.text, /line 2/);
  assert.equal((await post(port, '/v1/logs', 'not json', { ...auth, 'content-type': 'application/json' })).status, 400);
  assert.equal((await post(port, '/v1/logs', Buffer.from([0x0a, 0xff, 0xff]), { ...auth, 'content-type': 'application/x-protobuf' })).status, 400);
  assert.equal((await post(port, '/v1/ingest', 'x'.repeat(70_000), auth)).status, 413);
  const bomb = gzipSync(Buffer.alloc(1024 * 1024, 0x61));
  assert.ok(bomb.length < 64 * 1024);
  assert.equal((await post(port, '/v1/ingest', bomb, { ...auth, 'content-encoding': 'gzip' })).status, 413);
  assert.equal(await node.telemetry.value('sluice_http_refused_requests_total', { status: '413' }), 2, 'Fastify\'s own 413 is counted too');
  assert.equal((await post(port, '/v1/ingest', 'x\n', { ...auth, 'content-encoding': 'br' })).status, 415);
  // 100/s with a 1 s burst: 150 lines pass once (a full bucket), the next request waits.
  const lines = Array.from({ length: 150 }, (_, i) => `line ${i}`).join('\n');
  assert.equal((await post(port, '/v1/ingest', lines, auth)).status, 200);
  const limited = await post(port, '/v1/ingest', 'one more\n', auth);
  assert.equal(limited.status, 429);
  assert.ok(Number(limited.headers['retry-after']) >= 1);
  assert.equal(readTenantRecords(logs, 'acme').length, 150, 'refused requests store nothing');
  assert.ok((await node.telemetry.value('sluice_http_refused_requests_total', { status: '429' })) === 1);
});

test('http: 503 with Retry-After while the sinks are congested; the waiting request still gets its 200', async (t) => {
  const yaml = ['sinks:', '  files:', '    type: file', '    queue_high_water: 1KiB', '    batch_delay: 1s', '    batch_size: 16MiB'].join('\n');
  const { node, logs } = await startTestNode(t, yaml);
  const port = node.addresses().http!.port;
  const big = Array.from({ length: 50 }, (_, i) => `filler line number ${i} to pass the high-water mark`).join('\n');
  const first = post(port, '/v1/ingest', big);
  await waitFor('congestion', () => node.pipeline.congested());
  const second = await post(port, '/v1/ingest', 'while congested\n');
  assert.equal(second.status, 503);
  assert.equal(second.headers['retry-after'], '1');
  assert.equal((await first).status, 200);
  assert.equal(readTenantRecords(logs, 'default').length, 50);
});

test('http: bytes that are not HTTP get a 400, a closed connection and a count (found by fuzzing: they went uncounted)', async (t) => {
  const { node } = await startTestNode(t);
  const socket = await connect(node.addresses().http!.port);
  let answer = '';
  socket.on('data', (chunk: Buffer) => { answer += chunk.toString('latin1'); });
  socket.write('\x00\xff not http at all\r\n\r\n');
  await closed(socket);
  assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.equal(await node.telemetry.value('sluice_http_refused_requests_total', { status: '400' }), 1);
});

test('http: a large body is decoded and routed a slice per event-loop turn, in order, under one 200', async (t) => {
  // No host lookups: a slice waiting for one continues from an I/O callback, in the same loop iteration as
  // the next slice's setImmediate, and the turn probe below would count them as one turn.
  const { node, logs } = await startTestNode(t, `${tenantsYaml}\nhostmeta: { client: { enabled: false }, service: { enabled: false } }`);
  const port = node.addresses().http!.port;
  // Count event-loop turns with a setImmediate probe, and note in which turn each write reaches the sink.
  let turn = 0;
  let probing = true;
  const probe = (): void => {
    turn++;
    if (probing) setImmediate(probe);
  };
  setImmediate(probe);
  t.after(() => { probing = false; });
  const sink = node.pipeline.directory.tenants.get('default')!.sinks[0]!;
  const write = sink.write.bind(sink);
  const writeTurns: number[] = [];
  sink.write = (tenant, records, ack) => {
    writeTurns.push(turn);
    return write(tenant, records, ack);
  };
  const count = 10_000;
  const body = Array.from({ length: count }, (_, i) => JSON.stringify({ msg: `line ${i}`, n: i })).join('\n');
  const res = await post(port, '/v1/ingest', body);
  assert.equal(res.status, 200, res.text);
  probing = false;
  assert.ok(writeTurns.length >= 4, `${writeTurns.length} writes for ${count} records`);
  assert.equal(new Set(writeTurns).size, writeTurns.length, 'each slice in a turn of its own');
  const recs = readTenantRecords(logs, 'default');
  assert.deepEqual(recs.map((r) => r.msg), Array.from({ length: count }, (_, i) => `line ${i}`), 'all of them, in order');
});

test('http: a request with more records than max_records is answered 413 and stores none', async (t) => {
  const { node, logs } = await startTestNode(t, 'sources:\n  http: { max_records: 3 }');
  const port = node.addresses().http!.port;
  const res = await post(port, '/v1/ingest', 'one\ntwo\nthree\nfour\n');
  assert.equal(res.status, 413, res.text);
  assert.match(res.text, /more than 3 records/);
  assert.equal((await post(port, '/v1/ingest', 'one\ntwo\nthree\n')).status, 200);
  assert.deepEqual(readTenantRecords(logs, 'default').map((r) => r.msg), ['one', 'two', 'three']);
  assert.equal(await node.telemetry.value('sluice_http_refused_requests_total', { status: '413' }), 1);
});

test('http: a tenant whose bodies pass its share of an event-loop turn is decoded in later turns (counted), all of it committed; a small body of another tenant is not deferred', async (t) => {
  const FLOOD_TOKEN = 'http-flood-token-0123456789';
  const { node, logs } = await startTestNode(t, [
    'tenants:',
    '  default:',
    '    networks: [127.0.0.0/8]',
    '  flood:',
    `    tokens: [${FLOOD_TOKEN}]`,
  ].join('\n'));
  const port = node.addresses().http!.port;
  // Each body is larger than a whole turn's budget, so its tenant is over its share whoever else reads.
  const lines = 2000;
  const body = (n: number): string => Array.from({ length: lines }, (_, i) => `flood ${n} ${i} ${'z'.repeat(100)}`).join('\n') + '\n';
  assert.ok(Buffer.byteLength(body(0)) > TURN_WORK_BYTES);
  const [first, second, small] = await Promise.all([
    post(port, '/v1/ingest', body(0), { authorization: `Bearer ${FLOOD_TOKEN}` }),
    post(port, '/v1/ingest', body(1), { authorization: `Bearer ${FLOOD_TOKEN}` }),
    post(port, '/v1/ingest', 'a small one\n'),
  ]);
  assert.deepEqual([first.status, second.status, small.status], [200, 200, 200], `${first.text} ${second.text} ${small.text}`);
  assert.ok((await node.telemetry.value('sluice_tenant_turn_deferred_total', { tenant: 'flood' })) >= 2, 'each large body waited for a share');
  assert.equal(await node.telemetry.value('sluice_tenant_turn_deferred_total', { tenant: 'default' }), 0);
  const flood = readTenantRecords(logs, 'flood').map((r) => String(r.msg));
  assert.equal(flood.length, 2 * lines);
  for (const n of [0, 1]) {
    const mine = flood.filter((m) => m.startsWith(`flood ${n} `)).map((m) => Number(m.split(' ')[2]));
    assert.ok(mine.every((v, i) => v === i), `body ${n} in order`);
  }
  assert.deepEqual(readTenantRecords(logs, 'default').map((r) => r.msg), ['a small one']);
});
