/**
 * `sluice hostmeta` as an operator runs it: takes its tenants and tokens from
 * a node's configuration file, starts, serves, stops cleanly on SIGTERM
 * (exit 0), keeps its data across restarts, refuses bad options.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from 'undici';
import { jsonLines, tempDir, waitFor } from '../../helpers.js';

const CLI = fileURLToPath(new URL('../../../src/ops/cli.js', import.meta.url));
const KEY = 'e1924d5bfc58ac9576d6b31f261e0d137d56e142';

/** `sluice hostmeta` on a free port, its JSON log lines collected; killed if the test ends with it still running. */
function startHostmeta(t: { after(fn: () => void): void }, args: string[], cwd: string) {
  const child: ChildProcess = spawn(process.execPath, [CLI, 'hostmeta', '--port', '0', ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  const lines = jsonLines(child.stderr!);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return { child, lines, exited };
}

const ADMIN_TOKEN = 'hostmeta-cli-admin-token-0123456789';

async function request(port: number, method: 'GET' | 'PUT', token: string | null, body?: unknown, tenant = '1710'): Promise<{ status: number; body: string }> {
  const client = new Client(`http://127.0.0.1:${port}`);
  try {
    const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
    if (token !== null) headers.authorization = `Bearer ${token}`;
    const response = await client.request({ method, path: `/host_metadata/${tenant}/${KEY}`, headers, body: body === undefined ? null : JSON.stringify(body) });
    return { status: response.statusCode, body: await response.body.text() };
  } finally {
    await client.close();
  }
}

test('cli: sluice hostmeta -c takes tenants and tokens from a node\'s file, serves, stops on SIGTERM with exit 0, keeps its data', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t, 'sluice-hostmeta-cli-');
  writeFileSync(path.join(dir, 'sluice.yaml'), [
    'data_dir: elsewhere',
    'tenants:', '  "1710": { networks: [10.0.0.0/8] }',
    'admin:', `  tokens: [{ token: ${ADMIN_TOKEN} }]`,
    'hostmeta: { service: { port: 8090 } }',
  ].join('\n'));
  // --port and --data-dir given: they win over the file's.
  const first = startHostmeta(t, ['-c', 'sluice.yaml', '--data-dir', 'state'], dir);
  const listening = await waitFor('SLU0300I', () => first.lines.find((l) => l.code === 'SLU0300I'), 20_000);
  const port = listening.port as number;
  assert.notEqual(port, 8090);
  assert.equal(listening.address, '127.0.0.1');
  assert.equal(listening.store, 'sqlite');
  assert.equal((await request(port, 'PUT', null, { hostname: 'web-1' })).status, 401, 'no token');
  assert.equal((await request(port, 'PUT', ADMIN_TOKEN, { hostname: 'web-1' }, 'fake123')).status, 404, 'a tenant the file does not have');
  assert.equal((await request(port, 'PUT', ADMIN_TOKEN, { hostname: 'web-1' })).status, 204);
  const own = readFileSync(path.join(dir, 'state', 'hostmeta-token'), 'utf8').trim();
  assert.equal((await request(port, 'GET', own)).status, 200, 'the credential written for its clients');
  assert.ok(!existsSync(path.join(dir, 'state', 'admin-token')), 'admin tokens are configured: none generated');
  assert.ok(!existsSync(path.join(dir, 'elsewhere')), 'the file\'s data_dir was overridden');
  first.child.kill('SIGTERM');
  assert.equal(await first.exited, 0);
  assert.ok(first.lines.some((l) => l.code === 'SLU0301I'), 'logged that it stopped');
  assert.ok(first.lines.some((l) => l.code === 'SLU0302I'), 'migrated the new database');
  assert.ok(first.lines.some((l) => l.code === 'SLU0307I'), 'said where its clients\' credential is');

  const second = startHostmeta(t, ['-c', 'sluice.yaml', '--data-dir', 'state'], dir);
  const again = await waitFor('SLU0300I', () => second.lines.find((l) => l.code === 'SLU0300I'), 20_000);
  const got = await request(again.port as number, 'GET', ADMIN_TOKEN);
  assert.equal(got.status, 200);
  assert.deepEqual(JSON.parse(got.body), { hostname: 'web-1' });
  assert.ok(!second.lines.some((l) => l.code === 'SLU0302I'), 'nothing to migrate on a restart');
  assert.equal(readFileSync(path.join(dir, 'state', 'hostmeta-token'), 'utf8').trim(), own, 'the credential is kept across restarts');
  second.child.kill('SIGINT');
  assert.equal(await second.exited, 0);
});

test('cli: sluice hostmeta without -c serves tenant default only, with a generated admin token', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t, 'sluice-hostmeta-cli-');
  const service = startHostmeta(t, ['--data-dir', 'state'], dir);
  const port = (await waitFor('SLU0300I', () => service.lines.find((l) => l.code === 'SLU0300I'), 20_000)).port as number;
  const created = service.lines.find((l) => l.code === 'SLU0701I');
  assert.equal(created?.file, path.join(dir, 'state', 'admin-token'));
  const token = readFileSync(path.join(dir, 'state', 'admin-token'), 'utf8').trim();
  assert.equal((await request(port, 'PUT', token, { hostname: 'h' }, 'default')).status, 204);
  assert.equal((await request(port, 'PUT', token, { hostname: 'h' }, '1710')).status, 404);
  service.child.kill('SIGTERM');
  assert.equal(await service.exited, 0);
});

test('cli: sluice hostmeta refuses bad options and reports a failed start with exit 1', (t) => {
  const dir = tempDir(t, 'sluice-hostmeta-cli-');
  const run = (args: string[]) => spawnSync(process.execPath, [CLI, 'hostmeta', ...args], { cwd: dir, encoding: 'utf8', timeout: 30_000 });

  const badPort = run(['--port', '70000']);
  assert.equal(badPort.status, 1);
  assert.match(badPort.stderr, /--port.*expected an integer from 0 to 65535/);

  const badSchema = run(['--postgres-schema', 'Robert"; DROP']);
  assert.equal(badSchema.status, 1);
  assert.match(badSchema.stderr, /--postgres-schema/);

  const unreachable = run(['--postgres-url', 'postgres://127.0.0.1:1/nowhere']);
  assert.equal(unreachable.status, 1);
  assert.match(unreachable.stderr, /SLU0303E/);

  const help = run(['--help']);
  assert.equal(help.status, 0);
  for (const option of ['--config', '--address', '--port', '--data-dir', '--postgres-url', '--postgres-schema']) assert.match(help.stdout, new RegExp(option));

  const badFile = run(['-c', 'missing.yaml']);
  assert.equal(badFile.status, 1);
  assert.match(badFile.stderr, /missing\.yaml/);
});
