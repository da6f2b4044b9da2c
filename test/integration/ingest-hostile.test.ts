/**
 * Hostile input on the acknowledged ingest surfaces of a running node, as
 * issue 17 probed them (tenant A by network, tenant B by token): deep JSON,
 * a POST followed by pipelined garbage, two Authorization headers, RELP
 * records without credentials. Each is a counted 4xx (or RELP error) or a
 * closed connection; never a 500, never a record stored under a wrong or
 * empty address.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { hostKey } from '../../src/core/identity.js';
import { closed, connect, readTenantRecords, startTestNode, waitFor } from '../helpers.js';
import { RelpTestClient } from '../relp-client.js';

const A_TOKEN = 'tenanta-ingest-token-0123456789';
const B_TOKEN = 'tenantb-ingest-token-0123456789';
const TWO_TENANTS = `
tenants:
  tenanta: { networks: [127.0.0.1], tokens: [${A_TOKEN}] }
  tenantb: { tokens: [${B_TOKEN}] }
`;

/** Everything the server sends on `socket` until it closes it. */
function everything(socket: net.Socket): Promise<string> {
  let text = '';
  socket.setEncoding('latin1').on('data', (s: string) => { text += s; });
  return closed(socket).then(() => text);
}

test('http ingest: JSON nested 5,000 deep is a 400 on both endpoints, never a 500', async (t) => {
  const { node } = await startTestNode(t, TWO_TENANTS);
  const port = node.addresses().http!.port;
  const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
  const deepValue = `${'{"arrayValue":{"values":['.repeat(5000)}${']}}'.repeat(5000)}`;
  const bodies: [string, string, string][] = [
    ['/v1/logs', 'application/json', deep],
    ['/v1/logs', 'application/json', `{"resourceLogs":[{"resource":{"attributes":[{"key":"a","value":${deepValue}}]}}]}`],
    ['/v1/logs', 'application/json', `{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":${deepValue}}]}]}]}`],
    ['/v1/ingest', 'application/x-ndjson', `{"msg":${deep}}`],
    ['/v1/ingest', 'application/x-ndjson', `{"msg":"ok","sd":{"a":${deep}}}`],
  ];
  for (const [route, type, body] of bodies) {
    const response = await fetch(`http://127.0.0.1:${port}${route}`, { method: 'POST', headers: { 'content-type': type, authorization: `Bearer ${B_TOKEN}` }, body });
    const text = await response.text();
    assert.equal(response.status, 400, `${route} ${body.slice(0, 60)}: ${text}`);
    assert.match(text, /nested|not an object|deeper/);
  }
  assert.equal(await node.telemetry.value('sluice_http_refused_requests_total', { status: '400' }), bodies.length);
  assert.equal(await node.telemetry.value('sluice_http_refused_requests_total', { status: '500' }), 0);
});

test('http ingest: a POST followed by pipelined garbage gets its 200 (its record stored with its real address), then the connection closes; the garbage is counted', async (t) => {
  const { node, logs } = await startTestNode(t, TWO_TENANTS);
  const port = node.addresses().http!.port;
  const socket = await connect(port);
  const localPort = socket.localPort;
  const answer = everything(socket);
  socket.write(`POST /v1/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${B_TOKEN}\r\nContent-Length: 8\r\n\r\npiped1\n\nGARBAGE GARBAGE\r\n\r\n`);
  const text = await answer;
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/, text);
  assert.match(text, /\r\nconnection: close\r\n/i);
  assert.equal(text.match(/HTTP\/1\.1 /g)?.length, 1, 'one answer: the request\'s, none for the garbage');
  const [record] = await waitFor('the record', () => {
    const r = readTenantRecords(logs, 'tenantb');
    return r.length === 1 ? r : undefined;
  });
  const source = record!.source as { address: string; port: number };
  assert.equal(source.address, '127.0.0.1');
  assert.equal(source.port, localPort);
  assert.equal(record!.host, hostKey('tenantb', '127.0.0.1'), 'the host key of the address, not of an empty one');
  assert.equal(await node.telemetry.value('sluice_http_refused_requests_total', { status: '400' }), 1);

  // Garbage with nothing in flight is still answered 400 at once.
  const alone = await connect(port);
  const refused = everything(alone);
  alone.write('GARBAGE GARBAGE\r\n\r\n');
  assert.match(await refused, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.equal(await node.telemetry.value('sluice_http_refused_requests_total', { status: '400' }), 2);
});

test('http ingest: two Authorization headers are refused as ambiguous (400, counted), whichever tenant comes first, as syslog refuses two tokens', async (t) => {
  const { node, logs } = await startTestNode(t, TWO_TENANTS);
  const port = node.addresses().http!.port;
  for (const [first, second] of [[A_TOKEN, B_TOKEN], [B_TOKEN, A_TOKEN], [B_TOKEN, B_TOKEN]]) {
    const socket = await connect(port);
    const answer = everything(socket);
    socket.write(`POST /v1/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${first}\r\nAuthorization: Bearer ${second}\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n`);
    const text = await answer;
    assert.match(text, /^HTTP\/1\.1 400 /, text);
    assert.match(text, /ambiguous credentials/);
  }
  assert.equal(await node.telemetry.value('sluice_source_refused_total', { source: 'http', reason: 'ambiguous_credentials' }), 3);
  // One header still works, and nothing of the refused requests was stored.
  const ok = await fetch(`http://127.0.0.1:${port}/v1/ingest`, { method: 'POST', headers: { authorization: `Bearer ${B_TOKEN}` }, body: 'single\n' });
  assert.equal(ok.status, 200);
  assert.deepEqual(readTenantRecords(logs, 'tenantb').map((r) => r.msg), ['single']);
  assert.deepEqual(readTenantRecords(logs, 'tenanta'), []);
});

test('relp: records without credentials from a network no tenant claims get a RELP error, then serverclose, and the session is closed', async (t) => {
  // 127.0.0.2 belongs to no tenant; tenantb takes tokens, so the connection is let in to present one.
  const { node, logs } = await startTestNode(t, TWO_TENANTS);
  const client = await RelpTestClient.connect(node.addresses().relp!.port, '127.0.0.2');
  await client.open();
  const sent = [1, 2, 3].map((i) => client.send('syslog', `<13>1 2026-12-07T06:00:00Z h app - - - no credentials ${i}`));
  await closed(client.socket);
  assert.deepEqual(client.received.slice(1).map((f) => [f.txnr, f.command, f.data]), [
    [sent[0], 'rsp', '500 refused: no credentials name a tenant'],
    [0, 'serverclose', ''],
  ]);
  assert.equal(await node.telemetry.value('sluice_source_refused_total', { source: 'relp', reason: 'no_credentials' }), 1);
  assert.deepEqual(readTenantRecords(logs, 'tenanta'), []);
  assert.deepEqual(readTenantRecords(logs, 'tenantb'), []);
  await waitFor('no session left open', () => node.pipeline.sessions.views().length === 0);
});
