/**
 * `sluice top`, `sluice sessions` and `sluice tail` against a node started
 * with `sluice start`, as an operator on the same machine runs them: no
 * token given, so they find the one the node generated in its data dir.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, connect, tempDir, waitFor } from '../helpers.js';

const CLI = path.join(ROOT, 'dist', 'src', 'ops', 'cli.js');

/** Run a command without blocking this process (the test keeps sending meanwhile). */
function run(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

function frame(host: string, msg: string): string {
  const line = `<13>1 2026-11-27T10:00:00Z ${host} app - - - ${msg}`;
  return `${Buffer.byteLength(line)} ${line}`;
}

test('admin cli: top, sessions and tail against a running node', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const config = path.join(dir, 'sluice.yaml');
  writeFileSync(config, [
    `data_dir: ${JSON.stringify(path.join(dir, 'data'))}`,
    'sources:', '  syslog_udp: { port: 0 }', '  syslog_tcp: { port: 0 }', '  http: { port: 0 }', '  relp: { port: 0 }',
    'hostmeta: { service: { port: 0 } }',
    'admin: { port: 0 }',
  ].join('\n'));
  const node = spawn(process.execPath, [CLI, 'start', '-c', config], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  t.after(() => node.kill('SIGKILL'));
  let log = '';
  node.stderr.setEncoding('utf8').on('data', (s: string) => { log += s; });
  const find = (code: string, key: string) => {
    for (const line of log.split('\n')) if (line.includes(`"${code}"`)) return (JSON.parse(line) as Record<string, unknown>)[key];
    return undefined;
  };
  const adminPort = Number(await waitFor('admin listening', () => find('SLU0700I', 'port'), 20_000));
  const tcpPort = await waitFor('tcp listening', () => {
    for (const line of log.split('\n')) {
      if (line.includes('"SLU0002I"') && line.includes('"syslog_tcp"')) return Number((JSON.parse(line) as { port: number }).port);
    }
    return undefined;
  });
  const url = `http://127.0.0.1:${adminPort}`;
  const common = ['--url', url, '--data-dir', path.join(dir, 'data')];

  const agent = await connect(tcpPort);
  t.after(() => agent.destroy());
  agent.write(Array.from({ length: 10 }, (_, i) => frame('web-01', `before ${i}`)).join(''));

  // sessions: the agent's connection, with its host.
  const sessions = await waitFor('sessions lists the agent with its records', async () => {
    const r = await run(['sessions', '--sort', 'bytes', ...common]);
    return r.status === 0 && /syslog_tcp-1\s+default\s+web-01\s+127\.0\.0\.1:\d+\s+tcp\s+10\s/.test(r.stdout) ? r.stdout : undefined;
  });
  assert.match(sessions, /1 of 1 sessions/);

  // tail: follows what arrives from now on.
  const tail = spawn(process.execPath, [CLI, 'tail', '--tenant', 'default', '--host', 'web-01', ...common], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => tail.kill('SIGKILL'));
  let tailed = '';
  tail.stdout.setEncoding('utf8').on('data', (s: string) => { tailed += s; });
  let stopSending = false;
  t.after(() => { stopSending = true; });
  // Keep sending until the tail has seen a record (it may connect after the first writes).
  void (async () => {
    for (let i = 0; !stopSending && i < 400; i++) {
      agent.write(frame('web-01', `live ${i}`) + frame('db-09', `other host ${i}`));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  await waitFor('tail prints live records', () => /"msg":"live \d+"/.test(tailed), 20_000);
  assert.doesNotMatch(tailed, /other host/, 'the host filter holds');
  for (const line of tailed.trim().split('\n')) assert.equal((JSON.parse(line) as { tenant: string }).tenant, 'default');

  // top: two refreshes, the second with rates.
  const top = await run(['top', '--count', '2', ...common]);
  assert.equal(top.status, 0, top.stderr);
  const screens = top.stdout.split('sluice top').filter((s) => s.trim() !== '');
  assert.equal(screens.length, 2);
  assert.match(screens[1]!, /^default\s+\d+(\.\d)?k?\s/m, 'the tenant row');
  assert.match(screens[1]!, /^files\s+up\s/m, 'the sink row');
  const rate = Number(/^default\s+(\d+(?:\.\d)?)\s/m.exec(screens[1]!)?.[1] ?? 0);
  assert.ok(rate > 0, `a non-zero rate for the sending tenant:\n${screens[1]}`);

  // Without a token (none given, none found) a tail is refused with the reason.
  const refused = await run(['tail', '--url', url, '--data-dir', path.join(dir, 'nowhere')], { ...process.env, SLUICE_ADMIN_TOKEN: '' });
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /HTTP 401: a bearer token is required/);
  assert.ok(refused.stderr.includes(`no admin token found (looked in ${path.join(dir, 'nowhere', 'admin-token')})`), refused.stderr);
  assert.match(refused.stderr, /--token <token> or \$SLUICE_ADMIN_TOKEN/);

  // A stale token of an earlier node in the data dir is not sent to a read that needs none, and is named when a tail needs one.
  const stale = path.join(dir, 'stale');
  mkdirSync(stale);
  writeFileSync(path.join(stale, 'admin-token'), 'sla_0123456789abcdef0123456789abcdef\n', { mode: 0o600 });
  const staleCommon = ['--url', url, '--data-dir', stale];
  const read = await run(['sessions', ...staleCommon], { ...process.env, SLUICE_ADMIN_TOKEN: '' });
  assert.equal(read.status, 0, read.stderr);
  const staleTail = await run(['tail', ...staleCommon], { ...process.env, SLUICE_ADMIN_TOKEN: '' });
  assert.equal(staleTail.status, 2);
  assert.ok(staleTail.stderr.includes(`the token in ${path.join(stale, 'admin-token')} was refused`), staleTail.stderr);

  // A tail of a tenant the node does not have says so at once.
  const unknown = await run(['tail', '--tenant', 'nosuch', ...common]);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /HTTP 404: no tenant nosuch/);
});
