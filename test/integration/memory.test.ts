/**
 * The memory governor in a real node with a tiny budget and a sink whose
 * receiver stops reading: the heaviest sessions pause (never the idle one),
 * past the hard mark new connections are refused, HTTP answers 503 and UDP
 * drops, and everything recovers once the receiver reads again. Nothing
 * acknowledged is lost while the node is governed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import dgram from 'node:dgram';
import { request } from 'undici';
import { closed, connect, startTestNode, waitFor } from '../helpers.js';
import { SyslogFramer } from '../../src/sources/syslog/framing.js';
import { MemoryState } from '../../src/core/memory.js';
import type { SluiceNode } from '../../src/ops/node.js';
import { freePort } from '../../bench/ports.js';

const frame = (msg: string): string => `${Buffer.byteLength(msg)} ${msg}`;

/**
 * A syslog receiver over TCP that is not there until started: the sink's
 * connects are refused meanwhile, so its queue holds everything the node
 * read (no kernel buffer in between absorbs part of it).
 */
async function absentReceiver(t: { after(fn: () => void): void }) {
  const received: string[] = [];
  const sockets: net.Socket[] = [];
  const port = await freePort();
  const server = net.createServer((socket) => {
    const framer = new SyslogFramer(1024 * 1024, (buf, start, end) => received.push(buf.toString('utf8', start, end)));
    socket.on('data', (chunk) => framer.push(chunk));
    socket.on('error', () => {});
    sockets.push(socket);
  });
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return {
    port,
    received,
    start: () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve)),
  };
}

function nodeYaml(receiverPort: number): string {
  return [
    'memory: { budget: 1MiB, soft_mark: 0.5, hard_mark: 0.75, sample_interval: 20ms }',
    'hostmeta: { service: { enabled: false }, client: { enabled: false } }',
    'sinks:',
    '  forward:',
    '    type: syslog',
    '    queue_high_water: 256MiB',
    `    syslog: { protocol: tcp, port: ${receiverPort} }`,
  ].join('\n');
}

/** Writes `count` frames as fast as the socket takes them, then ends. */
function sendFrames(socket: net.Socket, name: string, count: number, padding: string): Promise<void> {
  return new Promise((resolve) => {
    let i = 0;
    const pump = (): void => {
      while (i < count) {
        const ok = socket.write(frame(`<14>1 - ${name} app - - - ${name} ${i++} ${padding}`));
        if (!ok) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end(resolve);
    };
    socket.on('error', () => resolve());
    pump();
  });
}

/** The node closes `socket` within `ms`, or the test fails (rather than hangs). */
async function closedWithin(socket: net.Socket, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`the node did not close the connection from port ${socket.localPort}`)), ms); });
  try {
    await Promise.race([closed(socket), late]);
  } finally {
    clearTimeout(timer);
  }
}

function sessionOf(node: SluiceNode, socket: net.Socket) {
  const peer = `127.0.0.1:${socket.localPort}`;
  for (const entry of node.pipeline.sessions.values()) if (entry.peer === peer) return entry;
  return undefined;
}

test('memory governor: heaviest sessions pause, hard mark refuses new work, all recovers, nothing lost', async (t) => {
  const receiver = await absentReceiver(t);
  const { node, tcpPort, udpPort } = await startTestNode(t, nodeYaml(receiver.port));
  const governor = node.pipeline.memory;
  const httpPort = node.addresses().http!.port;
  const relpPort = node.addresses().relp!.port;
  const padding = 'x'.repeat(900);
  const framesPerAgent = 6000; // about 5.5 MB each

  const quiet = await connect(tcpPort);
  await waitFor('the quiet session opens', () => sessionOf(node, quiet));
  const agents: { socket: net.Socket; done: Promise<void> }[] = [];
  // Heavy agents join one by one, each running until the governor pauses it (or it has sent everything),
  // until the sink's stalled queue takes the node past the hard mark.
  const MiB = 1024 * 1024;
  // The sink's queue alone past the hard mark: the node stays hard until the receiver reads.
  const stalledPastHard = () => (governor.latest?.components['sinks'] ?? 0) >= 0.8 * MiB;
  const refusedForMemory = () => node.telemetry.value('sluice_source_refused_total', { source: 'syslog_tcp', reason: 'memory' });
  for (let i = 0; i < 20 && !stalledPastHard(); i++) {
    // Under CPU load the governor may be past the hard mark before its sink share shows it: then this
    // agent is refused at accept (counted), sends nothing that is kept, and no agent follows it.
    const refusedBefore = await refusedForMemory();
    const socket = await connect(tcpPort);
    const done = sendFrames(socket, `agent${i}`, framesPerAgent, padding);
    const outcome = await waitFor(`agent ${i} accepted or refused`, async () => {
      if (sessionOf(node, socket) !== undefined) return 'accepted';
      return (await refusedForMemory()) > refusedBefore ? 'refused' : undefined;
    });
    if (outcome === 'refused') {
      socket.destroy();
      break;
    }
    agents.push({ socket, done });
    await waitFor(`agent ${i} paused or read to its end`, () => {
      const entry = sessionOf(node, socket);
      return entry === undefined || entry.governed || entry.records === framesPerAgent;
    }, 20_000);
  }
  // Under a loaded machine (the suite runs two files at once) the governor's samples come late: allow for it.
  await waitFor('the governor in the hard state', () => stalledPastHard() && governor.state === MemoryState.Hard, 30_000);
  assert.ok(governor.pausedSessions > 0, 'sessions were paused');
  assert.equal(sessionOf(node, quiet)!.governed, false, 'an idle session is never paused');
  assert.ok(await node.telemetry.value('sluice_memory_accounted_bytes', { component: 'sinks' }) > 0.75 * MiB);

  // Past the hard mark: a new TCP connection and a RELP connection are refused, HTTP answers 503, UDP drops.
  const late = await connect(tcpPort);
  await closedWithin(late, 5000);
  assert.ok(await node.telemetry.value('sluice_source_refused_total', { source: 'syslog_tcp', reason: 'memory' }) >= 1);
  const relp = await connect(relpPort);
  await closedWithin(relp, 5000);
  assert.ok(await node.telemetry.value('sluice_source_refused_total', { source: 'relp', reason: 'memory' }) >= 1);
  const refused = await request(`http://127.0.0.1:${httpPort}/v1/ingest`, { method: 'POST', body: 'refused line\n', headers: { 'content-type': 'application/x-ndjson' } });
  await refused.body.text();
  assert.equal(refused.statusCode, 503);
  assert.equal(refused.headers['retry-after'], '1');
  const udp = dgram.createSocket('udp4');
  t.after(() => udp.close());
  await waitFor('a datagram dropped for memory', async () => {
    udp.send('<14>1 - udp app - - - dropped past the hard mark', udpPort, '127.0.0.1');
    await new Promise((resolve) => setTimeout(resolve, 20));
    return await node.telemetry.value('sluice_dropped_records_total', { source: 'syslog_udp', reason: 'memory' }) >= 1;
  });

  // The receiver reads again: the queue drains, the state falls to normal, paused sessions resume.
  await receiver.start();
  await waitFor('back to normal', () => governor.state === MemoryState.Normal, 30_000);
  await Promise.all(agents.map((agent) => agent.done));
  const expected = agents.length * framesPerAgent;
  await waitFor(`all ${expected} records of the paused agents delivered`, () => receiver.received.length >= expected, 60_000);
  for (let i = 0; i < agents.length; i++) {
    const mine = receiver.received.filter((m) => m.includes(` agent${i} app `));
    assert.equal(mine.length, framesPerAgent, `agent ${i}: every record, once`);
  }
  await waitFor('every paused session resumed', () => governor.pausedSessions === 0);

  // New connections are accepted again.
  const after = await connect(tcpPort);
  after.end(frame('<14>1 - after app - - - accepted again'));
  await waitFor('the record of a connection made after recovery', () => receiver.received.some((m) => m.endsWith('accepted again')));
  quiet.destroy();
});

test('memory governor: over HTTP, every acknowledged record is delivered while the node is governed', async (t) => {
  const receiver = await absentReceiver(t);
  const { node } = await startTestNode(t, nodeYaml(receiver.port));
  const governor = node.pipeline.memory;
  const httpPort = node.addresses().http!.port;
  const acknowledged = new Set<string>();
  const statuses = new Map<number, number>();
  let next = 0;
  let stop = false;
  const padding = 'y'.repeat(400);

  // Eight clients post 500-line requests and retry what is refused, until told to stop.
  const client = async (): Promise<void> => {
    while (!stop) {
      const ids = Array.from({ length: 500 }, () => `r${next++}`);
      const body = ids.map((id) => JSON.stringify({ msg: `${id} ${padding}`, hostname: 'http-agent' })).join('\n');
      for (;;) {
        const res = await request(`http://127.0.0.1:${httpPort}/v1/ingest`, { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson' } });
        await res.body.text();
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        if (res.statusCode === 200) {
          for (const id of ids) acknowledged.add(id);
          break;
        }
        assert.equal(res.statusCode, 503, 'refused only as "come back later"');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  };
  const clients = Array.from({ length: 8 }, client);
  await waitFor('the node past its soft mark', () => governor.state !== MemoryState.Normal, 30_000);
  await new Promise((resolve) => setTimeout(resolve, 500));
  await receiver.start();
  await new Promise((resolve) => setTimeout(resolve, 500));
  stop = true;
  await Promise.all(clients);
  await waitFor('every acknowledged record at the receiver', () => {
    const got = new Set(receiver.received.map((m) => /(r\d+) /.exec(m)?.[1]));
    for (const id of acknowledged) if (!got.has(id)) return false;
    return true;
  }, 60_000);
  assert.ok(acknowledged.size > 0);
  assert.ok((statuses.get(200) ?? 0) > 0);
  // Once the receiver has drained the backlog the node is back to normal and takes requests at once.
  await waitFor('the governor back to normal', () => governor.state === MemoryState.Normal, 30_000);
  const after = await request(`http://127.0.0.1:${httpPort}/v1/ingest`, { method: 'POST', body: JSON.stringify({ msg: 'after', hostname: 'http-agent' }), headers: { 'content-type': 'application/x-ndjson' } });
  await after.body.text();
  assert.equal(after.statusCode, 200, 'accepted again');
});
