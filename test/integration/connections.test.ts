/**
 * Connection hygiene for 10,000+ agents: a frame left incomplete (slowloris)
 * and, when configured, an idle connection are closed and counted, without
 * touching agents that are merely quiet; connection caps per listener and per
 * tenant refuse the excess, counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { closed, connect, startTestNode, waitFor } from '../helpers.js';

const isOpen = (socket: net.Socket): boolean => !socket.destroyed && socket.readyState === 'open';

test('connections: an incomplete frame past frame_timeout closes its connection; a quiet agent stays', async (t) => {
  const { node, tcpPort } = await startTestNode(t, 'sources:\n  syslog_tcp: { frame_timeout: 500ms }');
  const slow = await connect(tcpPort);
  const quiet = await connect(tcpPort);
  slow.write('<13>1 - host app - - - this frame never ends');
  await closed(slow);
  assert.equal(await node.telemetry.value('sluice_source_closed_connections_total', { reason: 'frame_timeout' }), 1);
  await new Promise((resolve) => setTimeout(resolve, 700));
  assert.ok(isOpen(quiet), 'a connection with nothing half-sent is not a slowloris');
  quiet.destroy();
});

test('connections: idle_timeout closes a silent connection and counts it', async (t) => {
  const { node, tcpPort } = await startTestNode(t, 'sources:\n  syslog_tcp: { idle_timeout: 500ms }');
  const idle = await connect(tcpPort);
  await closed(idle);
  assert.equal(await node.telemetry.value('sluice_source_closed_connections_total', { reason: 'idle_timeout' }), 1);
});

test('connections: caps per listener and per tenant refuse the excess, counted, and spare other tenants', async (t) => {
  const yaml = [
    'sources:',
    '  syslog_tcp: { max_connections: 4 }',
    'tenants:',
    '  capped: { networks: [127.0.1.0/24], limits: { max_connections: 2 } }',
    '  other: { networks: [127.0.2.0/24] }',
  ].join('\n');
  const { node, tcpPort } = await startTestNode(t, yaml);
  const refused = (reason: string) => node.telemetry.value('sluice_source_refused_total', { source: 'syslog_tcp', reason });
  const capped = [await connect(tcpPort, '127.0.1.1'), await connect(tcpPort, '127.0.1.2')];
  const third = await connect(tcpPort, '127.0.1.3');
  await closed(third);
  assert.equal(await refused('tenant_connection_limit'), 1);
  const others = [await connect(tcpPort, '127.0.2.1'), await connect(tcpPort, '127.0.2.2')];
  await waitFor('four sessions', async () => (await node.telemetry.value('sluice_source_connections', { source: 'syslog_tcp' })) === 4);
  const fifth = await connect(tcpPort, '127.0.2.3');
  await closed(fifth);
  assert.equal(await refused('connection_limit'), 1);
  // A tenant's slot frees when its connection closes.
  capped[0]!.destroy();
  await waitFor('slot freed', async () => (await node.telemetry.value('sluice_source_connections', { source: 'syslog_tcp' })) === 3);
  const again = await connect(tcpPort, '127.0.1.4');
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.ok(isOpen(again));
  for (const s of [...capped, ...others, again]) s.destroy();
});

test('connections: RELP listeners apply the same caps and frame timeout', async (t) => {
  const yaml = [
    'sources:',
    '  relp: { max_connections: 3, frame_timeout: 500ms }',
    'tenants:',
    '  capped: { networks: [127.0.1.0/24], limits: { max_connections: 1 } }',
    '  other: { networks: [127.0.2.0/24] }',
  ].join('\n');
  const { node } = await startTestNode(t, yaml);
  const relpPort = node.addresses().relp!.port;
  const refused = (reason: string) => node.telemetry.value('sluice_source_refused_total', { source: 'relp', reason });
  const open = (count: number) => waitFor(`${count} RELP sessions`,
    async () => (await node.telemetry.value('sluice_source_connections', { source: 'relp' })) === count);

  const capped = await connect(relpPort, '127.0.1.1');
  await open(1);
  const second = await connect(relpPort, '127.0.1.2');
  await closed(second);
  assert.equal(await refused('tenant_connection_limit'), 1);

  const others = [await connect(relpPort, '127.0.2.1'), await connect(relpPort, '127.0.2.2')];
  await open(3);
  const fourth = await connect(relpPort, '127.0.2.3');
  await closed(fourth);
  assert.equal(await refused('connection_limit'), 1);

  // Half a RELP frame (the DATALEN promises more than ever comes): a slowloris.
  others[0]!.write('1 open 85 relp_version=0');
  await closed(others[0]!);
  assert.equal(await node.telemetry.value('sluice_source_closed_connections_total', { source: 'relp', reason: 'frame_timeout' }), 1);
  assert.ok(isOpen(capped) && isOpen(others[1]!), 'quiet sessions stay');
  capped.destroy();
  others[1]!.destroy();
});

test('connections: the HTTP listener caps connections and times out a request that never finishes', async (t) => {
  const { node } = await startTestNode(t, 'sources:\n  http: { max_connections: 2, request_timeout: 500ms }');
  const httpPort = node.addresses().http!.port;
  const slow = await connect(httpPort);
  // Headers promise 100 bytes of body; 10 come.
  slow.write('POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: 100\r\n\r\n{"msg":"a"');
  const answer: Buffer[] = [];
  slow.on('data', (chunk: Buffer) => answer.push(chunk));
  const idle = await connect(httpPort);
  const third = await connect(httpPort);
  await closed(third);
  assert.equal(await node.telemetry.value('sluice_source_refused_total', { source: 'http', reason: 'connection_limit' }), 1);
  await closed(slow);
  assert.match(Buffer.concat(answer).toString(), /^HTTP\/1\.1 408/);
  idle.destroy();
});
