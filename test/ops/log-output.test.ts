/**
 * The node's own log sent to syslog: the RFC 5424 message it becomes, real
 * receivers (a sluice node over UDP and TCP, rsyslog over UDP and TCP), and
 * receivers that are down or never read — the logger never waits or throws,
 * holds at most max_queue bytes, and counts every line it drops.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { DEFAULT_LOG_CONFIG, createNodeLogger, flushLogger, syslogOutputOf, type SyslogLogOutput, type LogConfig, type LogSyslogConfig } from '../../src/ops/log-output.js';
import { Telemetry } from '../../src/telemetry/telemetry.js';
import { lateBoundPort, readTenantRecords, requireProgram, startTestNode, tempDir, waitFor } from '../helpers.js';

function syslogConfig(overrides: Partial<LogSyslogConfig>): LogConfig {
  return { ...DEFAULT_LOG_CONFIG, output: 'syslog', syslog: { ...DEFAULT_LOG_CONFIG.syslog, ...overrides } };
}

/** A syslog logger whose standard-error lines are kept; closed when the test ends. */
function syslogLogger(t: { after(fn: () => void): void }, overrides: Partial<LogSyslogConfig>):
{ logger: Logger; output: SyslogLogOutput; stderr: Record<string, unknown>[] } {
  const stderr: Record<string, unknown>[] = [];
  const logger = createNodeLogger(syslogConfig(overrides), { write: (s: string) => { stderr.push(JSON.parse(s) as Record<string, unknown>); } });
  const output = syslogOutputOf(logger)!;
  t.after(() => output.close());
  return { logger, output, stderr };
}

/** Octet-counted frames read by a plain TCP server (`LEN SP MSG`). */
function frames(buffer: Buffer): string[] {
  const out: string[] = [];
  let p = 0;
  while (p < buffer.length) {
    const space = buffer.indexOf(0x20, p);
    const length = Number(buffer.toString('latin1', p, space));
    out.push(buffer.toString('utf8', space + 1, space + 1 + length));
    p = space + 1 + length;
  }
  return out;
}

test('log output: one pino line becomes <PRI>1 TIME HOST APP PID CODE - <the same JSON>', (t) => {
  const { output } = syslogLogger(t, { facility: 16, appName: 'edge' });
  const line = '{"level":40,"time":"2026-11-27T14:20:00.123Z","pid":7,"code":"SLU0502W","sink":"s","msg":"sink send failed; retrying with backoff"}\n';
  assert.equal(output.encode(line),
    `<132>1 2026-11-27T14:20:00.123Z ${hostname()} edge ${process.pid} SLU0502W - ${line.trimEnd()}`);
  const severities = [[10, 7], [20, 7], [30, 6], [40, 4], [50, 3], [60, 2]];
  for (const [level, severity] of severities) {
    assert.match(output.encode(`{"level":${level},"time":"2026-11-27T14:20:00Z","msg":"x"}\n`), new RegExp(`^<${128 + severity!}>1 .* - - \\{`));
  }
  // No code: MSGID is the NILVALUE. Too long: cut at max_message, on a character boundary.
  const long = output.encode(`{"level":30,"time":"2026-11-27T14:20:00Z","msg":"${'é'.repeat(10_000)}"}\n`);
  assert.ok(Buffer.byteLength(long) <= 8192 && Buffer.byteLength(long) > 8100);
  assert.ok(!long.includes('\uFFFD'));
});

for (const protocol of ['udp', 'tcp'] as const) {
  test(`log output: a sluice node receives our log over ${protocol} as records with the code as msgid`, async (t) => {
    const receiver = await startTestNode(t);
    const { logger, stderr } = syslogLogger(t, { protocol, port: protocol === 'udp' ? receiver.udpPort : receiver.tcpPort });
    assert.deepEqual(stderr.map((l) => [l.code, l.receiver]),
      [['SLU0600I', `${protocol}://127.0.0.1:${protocol === 'udp' ? receiver.udpPort : receiver.tcpPort}`]]);
    const telemetry = new Telemetry(logger);
    telemetry.emit('nodeStarting', { version: 'test' });
    telemetry.emit('sinkSendFailed', { sink: 'far', error: 'connection refused' });
    telemetry.emit('shutdownDeadline', { error: 'a "quoted" ] error' });
    assert.equal(await flushLogger(logger, 5000), true);
    const records = await waitFor('3 records', () => {
      const r = readTenantRecords(receiver.logs, 'default');
      return r.length >= 3 ? r : undefined;
    });
    assert.deepEqual(records.map((r) => [r.msgid, r.facility, r.severity, r.app, r.procid, r.hostname]), [
      ['SLU0001I', 3, 6, 'sluice', String(process.pid), hostname()],
      ['SLU0502W', 3, 4, 'sluice', String(process.pid), hostname()],
      ['SLU0006E', 3, 3, 'sluice', String(process.pid), hostname()],
    ]);
    const lines = records.map((r) => JSON.parse(r.msg as string) as Record<string, unknown>);
    assert.deepEqual(lines.map((l) => [l.code, l.msg, l.pid]), [
      ['SLU0001I', 'node starting', process.pid],
      ['SLU0502W', 'sink send failed; retrying with backoff', process.pid],
      ['SLU0006E', 'shutdown deadline passed before everything was flushed', process.pid],
    ]);
    assert.equal(lines[2]!.error, 'a "quoted" ] error');
    assert.equal(records[0]!.ts, lines[0]!.time);
  });
}

const noRsyslog = requireProgram('rsyslogd', 'Debian package rsyslog');

test('log output: rsyslog (imudp and imtcp) files our lines with severity, MSGID and the JSON intact', { skip: noRsyslog }, async (t) => {
  const dir = tempDir(t);
  const udpPort = await lateBoundPort();
  const tcpPort = await lateBoundPort();
  const out = path.join(dir, 'received.log');
  const conf = path.join(dir, 'rsyslog.conf');
  writeFileSync(conf, `global(workDirectory="${dir}")
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port="${udpPort}")
input(type="imtcp" address="127.0.0.1" port="${tcpPort}")
template(name="fields" type="string" string="%inputname%|%pri%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%\\n")
action(type="omfile" file="${out}" template="fields")
`);
  const rsyslog = spawn('rsyslogd', ['-n', '-f', conf, '-i', path.join(dir, 'rsyslog.pid')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let said = '';
  rsyslog.stdout.on('data', (d: Buffer) => { said += d.toString(); });
  rsyslog.stderr.on('data', (d: Buffer) => { said += d.toString(); });
  t.after(() => { rsyslog.kill('SIGKILL'); });
  await waitFor('rsyslog listening', () => new Promise<boolean>((resolve) => {
    const probe = net.connect(tcpPort, '127.0.0.1', () => { probe.destroy(); resolve(true); });
    probe.on('error', () => resolve(false));
  })).catch((err: Error) => { throw new Error(`${err.message}; rsyslog said: ${said}`); });

  for (const [protocol, port] of [['udp', udpPort], ['tcp', tcpPort]] as const) {
    const { logger } = syslogLogger(t, { protocol, port, facility: 23, appName: 'sluice-test' });
    const telemetry = new Telemetry(logger);
    telemetry.emit('nodeReady', { protocol });
    telemetry.emit('bufferEntriesLost', { buffer: 'b', entries: 2, records: 9 });
    assert.equal(await flushLogger(logger, 5000), true);
  }
  const lines = await waitFor('4 lines', () => {
    const l = existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter((x) => x !== '') : [];
    return l.length >= 4 ? l : undefined;
  });
  const parsed = lines.map((line) => {
    const [input, pri, app, procid, msgid, sd, ...msg] = line.split('|');
    return { input, pri, app, procid, msgid, sd, json: JSON.parse(msg.join('|')) as Record<string, unknown> };
  }).sort((a, b) => a.input!.localeCompare(b.input!));
  assert.deepEqual(parsed.map((p) => [p.input, p.pri, p.app, p.procid, p.msgid, p.sd, p.json.code]), [
    ['imtcp', String(23 * 8 + 6), 'sluice-test', String(process.pid), 'SLU0003I', '-', 'SLU0003I'],
    ['imtcp', String(23 * 8 + 3), 'sluice-test', String(process.pid), 'SLU0453E', '-', 'SLU0453E'],
    ['imudp', String(23 * 8 + 6), 'sluice-test', String(process.pid), 'SLU0003I', '-', 'SLU0003I'],
    ['imudp', String(23 * 8 + 3), 'sluice-test', String(process.pid), 'SLU0453E', '-', 'SLU0453E'],
  ]);
  assert.equal(parsed[1]!.json.records, 9);
});

test('log output: over TCP, lines wait (bounded) for a receiver that is down, the rest are dropped and counted, and it reconnects', async (t) => {
  const port = await lateBoundPort();
  const { logger, output, stderr } = syslogLogger(t, { protocol: 'tcp', port, maxQueueBytes: 64 * 1024 });
  const telemetry = new Telemetry(logger);
  const total = 2000;
  for (let i = 0; i < total; i++) telemetry.logger.info({ code: 'SLU0003I', i, pad: 'x'.repeat(100) }, 'node ready');
  // About 300 bytes a line: 64 KiB holds some two hundred; the rest never waited for anything.
  assert.ok(output.dropped.queue_full > total / 2, `dropped ${output.dropped.queue_full}`);
  assert.ok(output.queuedBytes() <= 64 * 1024, `${output.queuedBytes()} bytes queued`);
  assert.equal(await telemetry.value('sluice_log_dropped_lines_total', { reason: 'queue_full' }), output.dropped.queue_full);
  assert.equal(await flushLogger(logger, 50), false, 'nothing can leave while the receiver is down');
  const notice = stderr.find((l) => l.code === 'SLU0601W');
  assert.ok(notice, 'the drops are reported on standard error');
  assert.equal(notice.reason, 'queue_full');

  const received: Buffer[] = [];
  const server = net.createServer((socket) => socket.on('data', (d: Buffer) => received.push(d)));
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  t.after(() => server.close());
  assert.equal(await flushLogger(logger, 20_000), true, 'the queue drains once the receiver is back');
  const lines = await waitFor('every queued line', () => {
    const got = frames(Buffer.concat(received));
    return got.length >= total - output.dropped.queue_full ? got : undefined;
  });
  assert.equal(lines.length + output.dropped.queue_full, total, 'every line was either delivered or counted');
  const numbers = lines.map((l) => (JSON.parse(l.slice(l.indexOf(' - ') + 3)) as { i: number }).i);
  assert.deepEqual(numbers, Array.from({ length: numbers.length }, (_, k) => k), 'the first lines waited, in order');
});

test('log output: a TCP receiver that never reads costs at most max_queue; reading again delivers the rest, every line accounted for', async (t) => {
  const sockets: net.Socket[] = [];
  const received: Buffer[] = [];
  const server = net.createServer((socket) => {
    socket.pause();
    socket.on('data', (d: Buffer) => received.push(d));
    sockets.push(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const { port } = server.address() as net.AddressInfo;
  const { logger, output } = syslogLogger(t, { protocol: 'tcp', port, maxQueueBytes: 256 * 1024 });
  // The connection is made for the first line.
  logger.info({ code: 'SLU0003I' }, 'node ready');
  await waitFor('connected', () => sockets.length === 1);
  const total = 50_000;
  const pad = 'y'.repeat(1000);
  // 50 MB of log against a receiver that reads nothing: the kernel's buffers plus 256 KiB, the rest dropped.
  let mostQueued = 0;
  for (let i = 0; i < total; i++) {
    logger.warn({ code: 'SLU0502W', i, pad }, 'sink send failed; retrying with backoff');
    mostQueued = Math.max(mostQueued, output.queuedBytes());
    if (i % 1000 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  assert.ok(mostQueued <= 256 * 1024, `at most ${mostQueued} bytes queued`);
  assert.ok(output.dropped.queue_full > total / 2, `dropped ${output.dropped.queue_full}`);
  sockets[0]!.resume();
  assert.equal(await flushLogger(logger, 20_000), true);
  const delivered = await waitFor('the rest', () => {
    const n = frames(Buffer.concat(received)).length;
    return n + output.dropped.queue_full >= total + 1 ? n : undefined;
  });
  assert.equal(delivered + output.dropped.queue_full + output.dropped.send_error, total + 1);
  assert.equal(output.dropped.send_error, 0);
});

test('log output: over UDP to a port nobody listens on, sends fail and are counted, and logging goes on', async (t) => {
  const port = await lateBoundPort();
  const { logger, output } = syslogLogger(t, { protocol: 'udp', port });
  let sent = 0;
  await waitFor('a refused send counted', async () => {
    logger.error({ code: 'SLU0006E', n: sent++ }, 'shutdown deadline passed before everything was flushed');
    await new Promise((resolve) => setTimeout(resolve, 10));
    return output.dropped.send_error > 0;
  });
  assert.ok(sent < 1000);
  for (let i = 0; i < 100; i++) logger.info({ code: 'SLU0003I' }, 'node ready');
  assert.equal(await flushLogger(logger, 5000), true, 'nothing is left waiting: UDP never waits for a receiver');
});
