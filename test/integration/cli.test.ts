/**
 * The `sluice` command as an operator runs it: help, version, validate, and
 * a started node that drains and flushes on SIGTERM.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { closed, connect, jsonLines, readTenantRecords, requirePresent, ROOT, startTestNode, tempDir, waitFor } from '../helpers.js';

const CLI = path.join(ROOT, 'dist', 'src', 'ops', 'cli.js');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };

function run(args: string[], cwd = ROOT): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Start `sluice start` and collect its JSON log lines. */
function startNode(args: string[], cwd: string): { child: ChildProcess; lines: Record<string, unknown>[]; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [CLI, 'start', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = jsonLines(child.stderr!);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, lines, exited };
}

test('cli: --help lists the commands; --version prints the package version', () => {
  const help = run(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /start/);
  assert.match(help.stdout, /validate/);
  const version = run(['--version']);
  assert.equal(version.status, 0);
  assert.equal(version.stdout.trim(), pkg.version);
});

test('cli: validate accepts a good file and lists every problem of a bad one, exiting 1', (t) => {
  const dir = tempDir(t);
  const good = path.join(dir, 'good.yaml');
  writeFileSync(good, 'sources:\n  syslog_tcp:\n    port: 6000\n');
  const ok = run(['validate', '-c', good]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /valid/);

  const bad = path.join(dir, 'bad.yaml');
  writeFileSync(bad, 'sources:\n  syslog_tcp:\n    port: 70000\n  syslog_udp:\n    colour: blue\nlog:\n  level: loud\n');
  const result = run(['validate', '-c', bad]);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /bad\.yaml:3:\d+: sources\.syslog_tcp\.port: got 70000; expected an integer from 0 to 65535/);
  assert.match(result.stderr, /colour/);
  assert.match(result.stderr, /log\.level: got "loud"/);
  assert.match(result.stderr, /3 problems/);

  const missing = run(['validate', '-c', path.join(dir, 'nope.yaml')]);
  assert.equal(missing.status, 1);
});

test('cli: start refuses a bad config file with its problems', (t) => {
  const dir = tempDir(t);
  const bad = path.join(dir, 'bad.yaml');
  writeFileSync(bad, 'shutdown_timeout: soon\n');
  const result = run(['start', '-c', bad]);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /shutdown_timeout: got "soon"; expected a duration/);
  const coded = result.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(coded.map((l) => [l.code, l.level, l.file, l.problems]), [['SLU0007E', 50, bad, 1]]);
});

test('cli: with log.output syslog, the node logs to the receiver (down to its last line at SIGTERM) and says so once on stderr', async (t) => {
  const receiver = await startTestNode(t);
  const dir = tempDir(t);
  const config = path.join(dir, 'sluice.yaml');
  writeFileSync(config, [
    `data_dir: ${JSON.stringify(dir)}`,
    'workers: 1',
    'log:', '  output: syslog', `  syslog: { protocol: tcp, port: ${receiver.tcpPort}, facility: local0 }`,
    'sources:', '  syslog_udp: { port: 0 }', '  syslog_tcp: { port: 0 }', '  http: { port: 0 }', '  relp: { port: 0 }',
    'hostmeta: { service: { port: 0 } }',
    'admin: { port: 0 }',
  ].join('\n'));
  const { child, lines, exited } = startNode(['-c', config], dir);
  t.after(() => child.kill('SIGKILL'));
  const codes = () => readTenantRecords(receiver.logs, 'default').map((r) => r.msgid);
  await waitFor('node ready, at the receiver', () => codes().includes('SLU0003I'));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  await waitFor('node stopped, at the receiver', () => codes().includes('SLU0005I') && codes().includes('SLU0811I'));
  const records = readTenantRecords(receiver.logs, 'default');
  const received = records.map((r) => r.msgid);
  // The primary and its worker log over connections of their own: their lines interleave at the receiver.
  const primary = records.filter((r) => String(r.procid) === String(child.pid)).map((r) => r.msgid);
  assert.equal(primary[0], 'SLU0800I', 'from the primary\'s first line');
  assert.equal(primary.at(-1), 'SLU0811I', 'to its last, written just before exit');
  const worker = records.filter((r) => String(r.procid) !== String(child.pid)).map((r) => r.msgid);
  assert.equal(worker[0], 'SLU0001I', 'from the worker\'s first line');
  assert.equal(worker.at(-1), 'SLU0005I', 'the worker\'s last line, written before it exits');
  for (const code of ['SLU0001I', 'SLU0002I', 'SLU0003I', 'SLU0004I', 'SLU0801I']) assert.ok(received.includes(code), code);
  assert.ok(records.every((r) => r.facility === 16 && r.app === 'sluice'));
  // Each process (the primary, its one worker) says once on stderr where its log went, and nothing else.
  assert.deepEqual(lines.map((l) => [l.code, l.receiver]), [1, 2].map(() => ['SLU0600I', `tcp://127.0.0.1:${receiver.tcpPort}`]), 'stderr has only the lines saying where the log went');
});

test('cli: SIGTERM stops accepting, drains, flushes everything and exits 0', async (t) => {
  const dir = tempDir(t);
  const config = path.join(dir, 'sluice.yaml');
  writeFileSync(config, [
    `data_dir: ${JSON.stringify(dir)}`,
    'sources:', '  syslog_udp: { port: 0 }', '  syslog_tcp: { port: 0 }', '  http: { port: 0 }', '  relp: { port: 0 }',
    'hostmeta: { service: { port: 0 } }',
    'admin: { port: 0 }',
    // A long batch delay: only the shutdown flush can write these records.
    'sinks:', '  files:', '    type: file', '    batch_delay: 60s', '    batch_size: 64MiB',
  ].join('\n'));
  const { child, lines, exited } = startNode(['-c', config], dir);
  t.after(() => child.kill('SIGKILL'));
  const listening = await waitFor('listening', () => lines.find((l) => l.code === 'SLU0002I' && l.source === 'syslog_tcp'));
  const socket = await connect(Number(listening.port));
  const count = 5000;
  for (let i = 0; i < count; i++) socket.write(`<13>1 - host app - - - msg ${i}\n`);
  await new Promise<void>((resolve) => socket.end(resolve));
  await closed(socket);
  const sentAt = Date.now();
  child.kill('SIGTERM');
  const code = await exited;
  assert.equal(code, 0);
  t.diagnostic(`stopped ${Date.now() - sentAt} ms after SIGTERM`);
  assert.ok(lines.some((l) => l.code === 'SLU0005I'), 'logs that it stopped');
  const recs = readTenantRecords(path.join(dir, 'logs'), 'default');
  assert.equal(recs.length, count);
  assert.deepEqual(recs.map((r) => r.msg), Array.from({ length: count }, (_, i) => `msg ${i}`));
});

// The zero-config node binds the default ports (5514, 2514, 4318, 8080, …), which another
// program on the machine may hold: it runs in a network namespace of its own, where they are free.
test('cli: zero configuration — `sluice start` in an empty folder takes syslog on 5514 into ./data', (t) => {
  const missing = requirePresent(spawnSync('unshare', ['-n', 'true']).status === 0, 'unshare -n', 'util-linux, run as root: a network namespace of the test\'s own');
  if (missing) return t.skip(missing);
  const dir = tempDir(t);
  const probe = path.join(ROOT, 'dist', 'test', 'integration', 'zero-config-probe.js');
  const run = spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec "$0" "$1" "$2"', process.execPath, probe, dir],
    { encoding: 'utf8', timeout: 180_000 });
  assert.equal(run.status, 0, `probe failed: ${run.stdout}${run.stderr}`);
  const seen = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { code: number; listening: string[]; messages: string[] };
  t.diagnostic(`listening: ${seen.listening.join(', ')}`);
  assert.ok(seen.listening.includes('syslog_tcp 127.0.0.1:5514'), 'TCP syslog on 127.0.0.1:5514');
  assert.ok(seen.listening.includes('syslog_udp 127.0.0.1:5514'), 'UDP syslog on 127.0.0.1:5514');
  assert.equal(seen.code, 0, 'SIGTERM: exit 0');
  assert.deepEqual(seen.messages.sort(), ['over tcp', 'over udp']);
});
