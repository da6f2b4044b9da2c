/**
 * Zero-downtime operations on a real `sluice start` (primary and workers):
 * reload refused and accepted, rolling restarts during 200,000 messages from
 * the real rsyslog over RELP with zero loss, SIGTERM drains and exits 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { connect, jsonLines, readTenantRecords, requireProgram, ROOT, tempDir, waitFor } from '../helpers.js';

const CLI = path.join(ROOT, 'dist', 'src', 'ops', 'cli.js');
const TOTAL = 200_000;
const noRsyslog = requireProgram('rsyslogd', 'Debian packages rsyslog and rsyslog-relp');
const omrelp = ['/usr/lib/x86_64-linux-gnu/rsyslog/omrelp.so', '/usr/lib/rsyslog/omrelp.so'].some((p) => existsSync(p));
if (!noRsyslog && !omrelp && process.env.CI === 'true') throw new Error('rsyslog-relp is required under CI=true');
const skipRsyslog = noRsyslog || (omrelp ? false : 'rsyslog-relp not installed');

interface RunningNode { child: ChildProcess; lines: Record<string, unknown>[]; exited: Promise<number | null> }

function startNode(config: string, cwd: string): RunningNode {
  const child = spawn(process.execPath, [CLI, 'start', '-c', config], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  const lines = jsonLines(child.stderr!);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, lines, exited };
}

/** Run a sluice command to its end. */
function sluice(args: string[], cwd: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function nodeYaml(dir: string, extra: string[]): string {
  return [
    `data_dir: ${JSON.stringify(path.join(dir, 'node'))}`,
    'workers: 2',
    'log: { level: info }',
    ...extra,
    'hostmeta: { service: { port: 0 } }',
    'admin: { port: 0 }',
  ].join('\n');
}

test('operations: reload refuses a bad file with its reasons and the old config serves; a good file is applied with no downtime; SIGTERM drains and exits 0', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t);
  const config = path.join(dir, 'sluice.yaml');
  const sources = 'sources: { syslog_udp: { enabled: false }, syslog_tcp: { port: 0 }, relp: { enabled: false }, http: { enabled: false } }';
  const withPath = (logs: string) => nodeYaml(dir, [sources, `sinks: { files: { type: file, path: ${JSON.stringify(path.join(dir, logs))} } }`]);
  writeFileSync(config, withPath('logs-a'));
  const node = startNode(config, dir);
  t.after(() => { node.child.kill('SIGKILL'); });
  await waitFor('node ready', () => node.lines.some((l) => l.code === 'SLU0003I' && l.workers === 2), 30_000);
  const port = Number(node.lines.find((l) => l.code === 'SLU0002I' && l.source === 'syslog_tcp')!.port);
  const send = async (msg: string): Promise<void> => {
    const socket = await connect(port);
    await new Promise<void>((resolve) => socket.end(`<13>1 - host app - - - ${msg}\n`, resolve));
  };
  const messages = (logs: string) => readTenantRecords(path.join(dir, logs), 'default').map((r) => r.msg);

  writeFileSync(config, `${withPath('logs-b')}\nshutdown_timeout: soon\nsinks_typo: 1\n`);
  const refused = await sluice(['reload', '-c', config], dir);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /shutdown_timeout: got "soon"; expected a duration/);
  assert.match(refused.stderr, /unknown key "sinks_typo"/);
  assert.ok(node.lines.some((l) => l.code === 'SLU0806E'), 'the refusal is logged');
  await send('after the refused reload');
  await waitFor('served by the old config', () => messages('logs-a').includes('after the refused reload'));

  writeFileSync(config, withPath('logs-b'));
  const accepted = await sluice(['reload', '-c', config], dir);
  assert.equal(accepted.status, 0, accepted.stderr);
  assert.match(accepted.stdout, /configuration accepted/);
  await send('after the accepted reload');
  await waitFor('served by the new config', () => messages('logs-b').includes('after the accepted reload'));
  assert.ok(!messages('logs-a').includes('after the accepted reload'));

  const stoppingAt = Date.now();
  node.child.kill('SIGTERM');
  assert.equal(await node.exited, 0);
  assert.ok(Date.now() - stoppingAt < 10_000, 'within shutdown_timeout');
  assert.ok(node.lines.some((l) => l.code === 'SLU0811I' && l.complete === true));
});

/** Every `seq N` in the tenant's files (every worker's), in file order. */
function delivered(logsDir: string): number[] {
  const dir = path.join(logsDir, 'default');
  if (!existsSync(dir)) return [];
  const seqs: number[] = [];
  for (const name of readdirSync(dir)) {
    const text = readFileSync(path.join(dir, name), 'utf8');
    let at = 0;
    for (;;) {
      at = text.indexOf('"msg":"seq ', at);
      if (at < 0) break;
      at += 11;
      seqs.push(Number.parseInt(text.slice(at, text.indexOf('"', at)), 10));
    }
  }
  return seqs;
}

test('operations: two rolling restarts during 200,000 messages from rsyslog over RELP lose nothing', { skip: skipRsyslog, timeout: 240_000 }, async (t) => {
  const dir = tempDir(t);
  const relpPort = await freePort();
  const inputPort = await freePort();
  const config = path.join(dir, 'sluice.yaml');
  writeFileSync(config, nodeYaml(dir, [
    'sources:',
    '  syslog_udp: { enabled: false }',
    '  syslog_tcp: { enabled: false }',
    '  http: { enabled: false }',
    `  relp: { port: ${relpPort}, window: 1024 }`,
  ]));
  const logsDir = path.join(dir, 'node', 'logs');
  const node = startNode(config, dir);
  t.after(() => { node.child.kill('SIGKILL'); });
  await waitFor('node ready', () => node.lines.some((l) => l.code === 'SLU0003I' && l.workers === 2), 30_000);

  const rsyslogConf = path.join(dir, 'rsyslog.conf');
  writeFileSync(rsyslogConf, `
global(workDirectory="${dir}")
module(load="imtcp")
module(load="omrelp")
input(type="imtcp" address="127.0.0.1" port="${inputPort}")
action(type="omrelp" target="127.0.0.1" port="${relpPort}" windowSize="1024" template="RSYSLOG_SyslogProtocol23Format"
  queue.type="LinkedList" queue.size="400000" action.resumeRetryCount="-1" action.resumeInterval="1")
`);
  const rsyslog = spawn('rsyslogd', ['-n', '-f', rsyslogConf, '-i', path.join(dir, 'rsyslog.pid')], { stdio: 'ignore' });
  t.after(() => { rsyslog.kill('SIGKILL'); });

  const feeder = await waitFor('rsyslog input', () => new Promise<net.Socket | undefined>((resolve) => {
    const socket = net.connect(inputPort, '127.0.0.1', () => resolve(socket));
    socket.once('error', () => resolve(undefined));
  }), 20_000);
  const sent = new Promise<void>((resolve) => {
    let i = 0;
    const pump = (): void => {
      while (i < TOTAL) {
        let chunk = '';
        for (let k = 0; k < 1000 && i < TOTAL; k++, i++) chunk += `<14>1 2026-11-27T00:00:00Z agent app - - - seq ${i}\n`;
        if (!feeder.write(chunk)) {
          feeder.once('drain', pump);
          return;
        }
      }
      feeder.end(resolve);
    };
    pump();
  });

  for (const restartAt of [50_000, 120_000]) {
    await waitFor(`${restartAt} delivered`, () => delivered(logsDir).length >= restartAt, 120_000);
    const restart = await sluice(['restart', '--rolling', '-c', config], dir);
    assert.equal(restart.status, 0, restart.stderr);
    assert.match(restart.stdout, /rolling restart done/);
  }
  await sent;
  const seqs = await waitFor('every message', () => {
    const s = delivered(logsDir);
    return new Set(s).size >= TOTAL ? s : undefined;
  }, 150_000);
  const unique = new Set(seqs);
  for (let i = 0; i < TOTAL; i++) assert.ok(unique.has(i), `message ${i} is missing`);
  const duplicates = seqs.length - unique.size;
  const drained = node.lines.filter((l) => l.code === 'SLU0809I').length;
  t.diagnostic(`rolling restarts: ${TOTAL} sent, ${unique.size} delivered, ${duplicates} duplicates, ${drained} workers drained`);
  assert.equal(drained, 4, 'two workers replaced per rolling restart');
  assert.equal(node.lines.filter((l) => l.code === 'SLU0802W').length, 0, 'no worker crashed');
  node.child.kill('SIGTERM');
  assert.equal(await node.exited, 0);
});
