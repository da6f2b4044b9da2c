/**
 * `sluice hostmeta` as an operator runs it: starts, serves, stops cleanly on
 * SIGTERM (exit 0), keeps its data across restarts, refuses bad options.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
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

async function request(port: number, method: 'GET' | 'PUT', body?: unknown): Promise<{ status: number; body: string }> {
  const client = new Client(`http://127.0.0.1:${port}`);
  try {
    const response = await client.request({
      method, path: `/host_metadata/1710/${KEY}`,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? null : JSON.stringify(body),
    });
    return { status: response.statusCode, body: await response.body.text() };
  } finally {
    await client.close();
  }
}

test('cli: sluice hostmeta serves, stops on SIGTERM with exit 0, and keeps its data across restarts', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t, 'sluice-hostmeta-cli-');
  const first = startHostmeta(t, ['--data-dir', 'state'], dir);
  const listening = await waitFor('SLU0300I', () => first.lines.find((l) => l.code === 'SLU0300I'), 20_000);
  const port = listening.port as number;
  assert.equal(listening.address, '127.0.0.1');
  assert.equal(listening.store, 'sqlite');
  assert.equal((await request(port, 'PUT', { hostname: 'web-1' })).status, 204);
  first.child.kill('SIGTERM');
  assert.equal(await first.exited, 0);
  assert.ok(first.lines.some((l) => l.code === 'SLU0301I'), 'logged that it stopped');
  assert.ok(first.lines.some((l) => l.code === 'SLU0302I'), 'migrated the new database');

  const second = startHostmeta(t, ['--data-dir', 'state'], dir);
  const again = await waitFor('SLU0300I', () => second.lines.find((l) => l.code === 'SLU0300I'), 20_000);
  const got = await request(again.port as number, 'GET');
  assert.equal(got.status, 200);
  assert.deepEqual(JSON.parse(got.body), { hostname: 'web-1' });
  assert.ok(!second.lines.some((l) => l.code === 'SLU0302I'), 'nothing to migrate on a restart');
  second.child.kill('SIGINT');
  assert.equal(await second.exited, 0);
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
  for (const option of ['--address', '--port', '--data-dir', '--postgres-url', '--postgres-schema']) assert.match(help.stdout, new RegExp(option));
});
