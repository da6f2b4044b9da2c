/**
 * The package as an operator gets it: `npm pack` with its prepack build (in a
 * copy of the sources, so this checkout's dist/ stays as the other tests use
 * it), the tarball installed into an empty prefix (better-sqlite3's binary
 * offered as a local prebuild, as its download would be), and the installed
 * `sluice` run from an unrelated directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { closed, connect, jsonLines, readTenantRecords, requireProgram, ROOT, tempDir, waitFor } from '../helpers.js';

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };

/** What `npm pack` needs to build and pack: the sources, not dist/ or the tests. */
const PACK_INPUTS = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'src', 'docs', 'deploy', 'dashboard'];

/** Errors of an npm that cannot reach its registry (and has nothing cached for the request). */
const UNREACHABLE = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|ENOTCACHED/u;

interface Ran { status: number | null; stdout: string; stderr: string; ms: number }

/** Runs a program to its end (killed past `timeoutMs`) without blocking the event loop. */
function run(file: string, args: string[], cwd: string, timeoutMs: number, env = process.env): Promise<Ran> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(file, args, { cwd, env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      const status = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ status, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** The environment without what an outer `npm test` passes down, which would steer the inner npm. */
function cleanNpmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith('npm_')));
}

/** A started node's stderr, as parsed JSON lines. */
function startNode(command: string, args: string[], cwd: string):
{ lines: Record<string, unknown>[]; exited: Promise<number | null>; hasExited(): boolean; kill(): void } {
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  const lines = jsonLines(child.stderr!);
  let gone = false;
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    gone = true;
    resolve(code);
  }));
  return { lines, exited, hasExited: () => gone, kill: () => child.kill('SIGTERM') };
}

test('package: npm pack, install the tarball into an empty prefix, run sluice from elsewhere', { timeout: 600_000 }, async (t) => {
  for (const [program, hint] of [['npm', 'comes with Node.js'], ['make', 'builds better-sqlite3'], ['g++', 'builds better-sqlite3'], ['python3', 'node-gyp']]) {
    const missing = requireProgram(program!, hint!);
    if (missing) return t.skip(missing);
  }
  const work = tempDir(t, 'sluice-package-');
  const sources = path.join(work, 'sources');
  mkdirSync(sources);
  for (const entry of PACK_INPUTS) cpSync(path.join(ROOT, entry), path.join(sources, entry), { recursive: true });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(sources, 'node_modules'));
  const env = cleanNpmEnv();

  const packed = await run('npm', ['pack', '--json', '--pack-destination', work], sources, 180_000, env);
  assert.equal(packed.status, 0, packed.stderr);
  const [manifest] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string; files: { path: string; mode: number }[] }[];
  const shipped = manifest!.files.map((f) => f.path);
  t.diagnostic(`npm pack: ${packed.ms} ms, ${shipped.length} files`);
  for (const needed of ['dist/src/ops/cli.js', 'dist/src/ops/loadgen/worker.js', 'npm-shrinkwrap.json', 'deploy/systemd/sluice.service',
    'deploy/sluice.yaml', 'docs/deployment.md', 'docs/config.md', 'README.md', 'dashboard/index.html', 'dashboard/dashboard.js']) {
    assert.ok(shipped.includes(needed), `${needed} is in the package`);
  }
  const strays = shipped.filter((f) => /^(test|bench|src)\/|\.map$|\.ts$|tsbuildinfo/u.test(f));
  assert.deepEqual(strays, [], 'no tests, benchmarks, sources or source maps');
  assert.ok(!existsSync(path.join(sources, 'npm-shrinkwrap.json')), 'postpack removes the shrinkwrap it made');

  const prefix = path.join(work, 'prefix');
  // better-sqlite3 installs a prebuilt binary where it can download one, and compiles SQLite (minutes on two
  // busy cores) where it cannot. Here the download is offered locally: the binary this checkout's own
  // install built, of the same version, packed as prebuild-install names its downloads.
  const sqlite = JSON.parse(readFileSync(path.join(ROOT, 'node_modules', 'better-sqlite3', 'package.json'), 'utf8')) as { version: string };
  const prebuilds = path.join(work, 'prebuilds');
  mkdirSync(prebuilds);
  const prebuild = `better-sqlite3-v${sqlite.version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  const packedBinary = await run('tar', ['-czf', path.join(prebuilds, prebuild), '-C', path.join(ROOT, 'node_modules', 'better-sqlite3'),
    'build/Release/better_sqlite3.node'], work, 60_000);
  assert.equal(packedBinary.status, 0, packedBinary.stderr);
  const installed = await run('npm', ['install', '--prefix', prefix, path.join(work, manifest!.filename),
    '--prefer-offline', '--no-audit', '--no-fund'], work, 420_000, { ...env, npm_config_better_sqlite3_local_prebuilds: prebuilds });
  t.diagnostic(`npm install of the tarball (better-sqlite3 from the local prebuild): ${installed.ms} ms`);
  if (installed.status !== 0 && UNREACHABLE.test(installed.stderr) && process.env.CI !== 'true') {
    const reason = `the npm registry is unreachable and the cache lacks a dependency: ${UNREACHABLE.exec(installed.stderr)![0]}`;
    process.stderr.write(`skipping: ${reason}\n`);
    return t.skip(reason);
  }
  assert.equal(installed.status, 0, `npm install failed:\n${installed.stderr.slice(-4000)}`);

  const bin = path.join(prefix, 'node_modules', '.bin', 'sluice');
  const home = path.join(prefix, 'node_modules', pkg.name);
  assert.ok((statSync(bin).mode & 0o111) !== 0, 'the installed command is executable');
  const elsewhere = path.join(work, 'elsewhere');
  mkdirSync(elsewhere);

  const version = await run(bin, ['--version'], elsewhere, 30_000);
  assert.equal(version.status, 0, version.stderr);
  assert.equal(version.stdout.trim(), pkg.version);
  const sample = path.join(home, 'deploy', 'sluice.yaml');
  const validated = await run(bin, ['validate', '-c', sample], elsewhere, 30_000);
  assert.equal(validated.status, 0, `the shipped sample configuration: ${validated.stderr}`);

  await t.test('the shipped systemd unit verifies, pointed at this prefix', async (t) => {
    const missing = requireProgram('systemd-analyze', 'Debian package systemd');
    if (missing) return t.skip(missing);
    const unit = path.join(work, 'sluice.service');
    writeFileSync(unit, readFileSync(path.join(home, 'deploy', 'systemd', 'sluice.service'), 'utf8').replaceAll('/opt/sluice', prefix));
    const verified = await run('systemd-analyze', ['verify', unit], work, 60_000);
    assert.equal(verified.status, 0, verified.stderr);
    assert.equal(verified.stderr.trim(), '', 'no warnings either (systemd-analyze exits 0 on a bad value)');
  });

  // A relative data_dir resolves against the working directory, wherever the package lives.
  const config = path.join(work, 'node.yaml');
  writeFileSync(config, [
    'data_dir: data',
    'shutdown_timeout: 5s',
    'sources:',
    ...['syslog_udp', 'syslog_tcp', 'relp', 'http'].map((s) => `  ${s}: { port: 0 }`),
    'hostmeta: { service: { port: 0 } }',
    'admin: { port: 0 }',
    '',
  ].join('\n'));
  // An open-files limit below the listeners' default caps (50,000 each) is logged and warned about.
  const node = startNode('sh', ['-c', 'ulimit -Sn 4096 && ulimit -Hn 4096 && exec "$0" start -c "$1"', bin, config], elsewhere);
  t.after(() => node.kill());
  await waitFor('node ready (or gone)', () => node.lines.some((l) => l.code === 'SLU0003I') || node.hasExited(), 60_000);
  assert.ok(!node.hasExited(), `the node exited at start: ${JSON.stringify(node.lines)}`);
  const starting = node.lines.find((l) => l.code === 'SLU0001I');
  assert.equal(starting?.open_files_limit, 4096);
  assert.equal(starting?.data_dir, path.join(realpathSync(elsewhere), 'data'), 'logged resolved, so the operator sees where it is');
  assert.deepEqual(node.lines.find((l) => l.code === 'SLU0010W')?.wanted, 3 * 50_000 + 1024, 'TCP, RELP and HTTP at their caps');
  assert.ok(node.lines.some((l) => l.code === 'SLU0300I' && l.store === 'sqlite'), 'host metadata in SQLite: the native addon loads');

  const tcp = node.lines.find((l) => l.code === 'SLU0002I' && l.source === 'syslog_tcp');
  const socket = await connect(tcp!.port as number);
  const message = '<14>1 2026-11-27T12:00:00Z packed-host app - - - hello from the installed package';
  socket.end(`${Buffer.byteLength(message)} ${message}`);
  await closed(socket);
  const logs = path.join(elsewhere, 'data', 'logs');
  const record = await waitFor('the record in the file sink', () =>
    readTenantRecords(logs, 'default').find((r) => r.msg === 'hello from the installed package'), 30_000);
  assert.equal(record.hostname, 'packed-host');

  // The dashboard's assets come from the installed package (uPlot from its dependencies).
  // The workers say they are ready before the primary starts the admin server.
  const admin = await waitFor('admin server listening', () => node.lines.find((l) => l.code === 'SLU0700I'), 30_000);
  for (const asset of ['/', '/assets/dashboard.js', '/assets/uPlot.iife.min.js']) {
    const response = await fetch(`http://127.0.0.1:${admin!.port as number}${asset}`);
    assert.equal(response.status, 200, asset);
  }

  node.kill();
  assert.equal(await node.exited, 0, 'SIGTERM: drained and exited 0');
  assert.ok(node.lines.some((l) => l.code === 'SLU0005I'), 'node stopped');
});
