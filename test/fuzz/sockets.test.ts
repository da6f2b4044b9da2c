/**
 * Random and mutated byte streams over real loopback sockets against a real
 * node: syslog TCP, RELP and HTTP. Each bad connection must be closed (or
 * answered with an error) and counted exactly as the parsers, run offline on
 * the same bytes, say it should; a well-behaved connection alongside keeps
 * delivering; the node survives and its heap stays bounded.
 *
 * The streams come from the fuzz targets' arbitraries with a fresh seed,
 * printed as a diagnostic; SLUICE_FUZZ_SEED=<seed> replays a run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import fc from 'fast-check';
import { request } from 'undici';
import { SourceInfo } from '../../src/core/record.js';
import { SyslogFramer } from '../../src/sources/syslog/framing.js';
import { decodeSyslogFrame } from '../../src/sources/syslog/decode.js';
import { formatFrame, nextTxnr, RelpCommand, RelpFrameParser } from '../../src/sources/relp/framing.js';
import { answerOpen } from '../../src/sources/relp/offers.js';
import { BadBodyError, decodeBody } from '../../src/sources/http/decode.js';
import { closed, connect, readTenantRecords, startTestNode, waitFor } from '../helpers.js';
import { noisyBytes, split } from './common.js';
import { framingCases } from './syslog-framing.js';
import { relpCases } from './relp.js';
import { otlpJsonCases, otlpProtobufCases } from './otlp.js';
import { ndjsonCases } from './ndjson.js';

const SEED = Number(process.env.SLUICE_FUZZ_SEED ?? (Date.now() % 2 ** 31));
const BAD_CONNECTIONS = 24;
const GOOD_RECORDS = 60;
/** Heap the whole exercise may add (after the node's own start-up): far below what unbounded buffering would take. */
const HEAP_GROWTH_LIMIT = 128 * 1024 * 1024;
const SOURCE = new SourceInfo('tcp', '127.0.0.1', 1);
const CLOSE_TIMEOUT_MS = 10_000;

/** Streams from an arbitrary, reproducible from the seed; a few raw ones of 64 KiB to make memory matter. */
function sample<T>(arbitrary: fc.Arbitrary<T>, salt: number): T[] {
  return fc.sample(arbitrary, { seed: SEED + salt, numRuns: BAD_CONNECTIONS });
}

const bigNoise = (salt: number): Buffer[] => fc.sample(noisyBytes([], 64 * 1024).map((b) => Buffer.concat([b, b, b, b])), { seed: SEED + salt, numRuns: 3 });

/** Write `chunks` as separate writes, then end our side; resolves once the node has closed the connection. */
async function play(port: number, chunks: readonly Buffer[]): Promise<void> {
  const socket = await connect(port);
  socket.on('error', () => undefined); // the node may close first: EPIPE/ECONNRESET are expected
  socket.on('data', () => undefined); // replies, if any, are not judged here
  for (const chunk of chunks) {
    if (socket.destroyed) break;
    socket.write(chunk);
  }
  socket.end();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), CLOSE_TIMEOUT_MS); });
  const done = await Promise.race([closed(socket).then(() => true), timedOut]);
  clearTimeout(timer);
  socket.destroy();
  assert.ok(done, `the node left a connection open after its peer ended: ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 300))}`);
}

function heapUsed(): number {
  return v8.getHeapStatistics().used_heap_size;
}

function octetFrame(msg: string): string {
  return `${Buffer.byteLength(msg)} ${msg}`;
}

test(`fuzz over sockets: syslog TCP survives random streams, counts each bad one, delivers the good one (seed ${SEED})`, async (t) => {
  t.diagnostic(`seed ${SEED}`);
  const { node, logs, tcpPort } = await startTestNode(t, 'sources:\n  syslog_tcp: { port: 0, max_frame: 1KiB }');
  const heapBefore = heapUsed();
  const streams = [...sample(framingCases, 1).map((c) => split(c.stream, c.cuts)), ...bigNoise(2).map((b) => [b])];
  // Oracle: the same parsers offline give what the node must count.
  let badFrames = 0;
  let frames = 0;
  let parseErrors = 0;
  for (const chunks of streams) {
    const framer = new SyslogFramer(1024, (buf, start, end) => {
      frames++;
      if (decodeSyslogFrame(buf, start, end, SOURCE, '', 0).parseError) parseErrors++;
    });
    if (!framer.push(Buffer.concat(chunks)) || !framer.finish()) badFrames++;
  }
  const good = await connect(tcpPort);
  const sendGood = (async () => {
    for (let i = 0; i < GOOD_RECORDS; i++) {
      good.write(octetFrame(`<14>1 2026-11-27T00:00:00Z host app - - - good ${i}`));
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  await Promise.all([sendGood, ...streams.map((chunks) => play(tcpPort, chunks))]);
  good.end();
  await closed(good);
  const records = await waitFor('the good records', () => {
    const r = readTenantRecords(logs, 'default').filter((x) => /^good \d+$/.test(String(x.msg)));
    return r.length >= GOOD_RECORDS ? r : undefined;
  });
  assert.deepEqual(records.map((r) => r.msg), Array.from({ length: GOOD_RECORDS }, (_, i) => `good ${i}`));
  const value = (metric: string, labels: Record<string, string> = {}) => node.telemetry.value(metric, { source: 'syslog_tcp', ...labels });
  await waitFor('every record counted', async () => (await value('sluice_source_received_records_total')) === frames + GOOD_RECORDS);
  assert.equal(await value('sluice_source_bad_frames_total'), badFrames, 'each stream with a bad frame counted once');
  assert.equal(await value('sluice_source_parse_errors_total'), parseErrors);
  assert.equal(await value('sluice_source_connections'), 0, 'every connection closed');
  assert.ok(heapUsed() - heapBefore < HEAP_GROWTH_LIMIT, `heap grew by ${heapUsed() - heapBefore} bytes`);
});

/**
 * What a RELP session does with a stream, modelled from its documented rules:
 * whether it ends in a counted error (framing, truncation, or protocol violation).
 */
function relpStreamIsBad(stream: Buffer, maxData: number): boolean {
  let expected = 1;
  let opened = false;
  let stop: 'error' | 'close' | null = null;
  const parser: RelpFrameParser = new RelpFrameParser(maxData, (txnr, command, data, start, end) => {
    if (txnr === 0) return;
    if (txnr !== expected) stop = 'error';
    else {
      expected = nextTxnr(txnr);
      if (command === RelpCommand.Syslog) {
        if (!opened) stop = 'error';
      } else if (command === RelpCommand.Open) {
        if (!opened) {
          opened = answerOpen(data.toString('utf8', start, end)).accepted;
          if (!opened) stop = 'error';
        }
      } else if (command === RelpCommand.Close) {
        stop = 'close';
      } else {
        stop = 'error';
      }
    }
    if (stop !== null) parser.halt();
  });
  const ok = parser.push(stream);
  if (stop !== null) return stop === 'error';
  return !ok || !parser.finish();
}

test(`fuzz over sockets: RELP survives random streams, counts each bad one, answers the good one (seed ${SEED})`, async (t) => {
  t.diagnostic(`seed ${SEED}`);
  const maxData = 1024;
  const { node } = await startTestNode(t, `sources:\n  relp: { port: 0, max_frame: ${maxData} }`);
  const port = node.addresses().relp!.port;
  const heapBefore = heapUsed();
  const opening = Buffer.from(formatFrame(1, 'open', 'relp_version=0\nrelp_software=fuzz\ncommands=syslog'));
  const streams = [...sample(relpCases, 3).map((c) => split(c.stream, c.cuts)), ...bigNoise(4).map((b) => [b])];
  const bad = streams.filter((chunks) => relpStreamIsBad(Buffer.concat(chunks), maxData)).length;
  // The well-behaved session: every syslog transaction answered 200 OK.
  const good = await connect(port);
  let replies = '';
  good.on('data', (chunk: Buffer) => { replies += chunk.toString('latin1'); });
  good.write(opening);
  const sendGood = (async () => {
    for (let i = 0; i < GOOD_RECORDS; i++) {
      const msg = `<14>1 2026-11-27T00:00:00Z host app - - - relp ${i}`;
      good.write(`${i + 2} syslog ${Buffer.byteLength(msg)} ${msg}\n`);
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  await Promise.all([sendGood, ...streams.map((chunks) => play(port, chunks))]);
  await waitFor('every good transaction answered', () => (replies.match(/ rsp 6 200 OK\n/g) ?? []).length === GOOD_RECORDS);
  good.end();
  await closed(good);
  assert.equal(await node.telemetry.value('sluice_source_bad_frames_total', { source: 'relp' }), bad, 'each bad stream counted once');
  assert.equal(await node.telemetry.value('sluice_source_connections', { source: 'relp' }), 0);
  assert.ok(heapUsed() - heapBefore < HEAP_GROWTH_LIMIT, `heap grew by ${heapUsed() - heapBefore} bytes`);
});

test(`fuzz over sockets: HTTP answers random bodies 400 or 200 as decodeBody says, and counts raw garbage (seed ${SEED})`, async (t) => {
  t.diagnostic(`seed ${SEED}`);
  const { node, logs } = await startTestNode(t);
  const port = node.addresses().http!.port;
  const heapBefore = heapUsed();
  const bodies: { path: string; type: string; body: Buffer }[] = [
    ...sample(otlpJsonCases, 5).slice(0, 8).map((c) => ({ path: '/v1/logs', type: 'application/json', body: c.body })),
    ...sample(otlpProtobufCases, 6).slice(0, 8).map((c) => ({ path: '/v1/logs', type: 'application/x-protobuf', body: c.body })),
    ...sample(ndjsonCases, 7).slice(0, 8).map((c) => ({ path: '/v1/ingest', type: 'application/x-ndjson', body: c.body })),
  ];
  let expected400 = 0;
  const expectedStatus = bodies.map(({ path, type, body }) => {
    try {
      decodeBody(path === '/v1/logs' ? 'otlp' : 'ndjson', body, type === 'application/x-protobuf', SOURCE, '');
      return 200;
    } catch (err) {
      if (!(err instanceof BadBodyError)) throw err;
      expected400++;
      return 400;
    }
  });
  // Bytes that are not HTTP at all, each on its own connection.
  const garbage = sample(noisyBytes(['GET / HTTP/1.1\r\n', 'POST /v1/logs HTTP/1.1\r\n', 'Content-Length: 99999999\r\n', '\r\n\r\n', 'Transfer-Encoding: chunked\r\n']), 8).slice(0, 8);
  let goodDone = 0;
  const sendGood = (async () => {
    for (let i = 0; i < 10; i++) {
      const res = await request(`http://127.0.0.1:${port}/v1/ingest`, { method: 'POST', body: `http good ${i}\n`, headers: { 'content-type': 'application/x-ndjson' } });
      await res.body.text();
      assert.equal(res.statusCode, 200);
      goodDone++;
    }
  })();
  const statuses = await Promise.all(bodies.map(async ({ path, type, body }) => {
    const res = await request(`http://127.0.0.1:${port}${path}`, { method: 'POST', body, headers: { 'content-type': type } });
    await res.body.text();
    return res.statusCode;
  }));
  // Each must be closed by the node once it has what it could read (play asserts it within 10 s).
  await Promise.all(garbage.map((bytes) => play(port, [bytes])));
  await sendGood;
  assert.deepEqual(statuses, expectedStatus, 'each body answered as decodeBody judges it');
  assert.equal(goodDone, 10);
  assert.ok((await node.telemetry.value('sluice_http_refused_requests_total', { status: '400' })) >= expected400, 'bad bodies counted');
  assert.equal(await node.telemetry.value('sluice_http_refused_requests_total', { status: '500' }), 0, 'no body makes the node fail');
  await waitFor('good records', () => readTenantRecords(logs, 'default').filter((r) => String(r.msg).startsWith('http good')).length === 10);
  assert.ok(heapUsed() - heapBefore < HEAP_GROWTH_LIMIT, `heap grew by ${heapUsed() - heapBefore} bytes`);
});
