/**
 * The directory lock across processes: contenders released at the same
 * moment on a lock whose holder was killed never both take it, and one does.
 * (Taking over a single pid file lets two contenders both remove the stale
 * file and the slower one remove the faster one's fresh lock.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DirectoryBusyError, DirectoryLock } from '../../../src/sinks/buffer/lock.js';
import { tempDir } from '../../helpers.js';
import { LOCK_CHILD_FLAG, type LockChildReport } from './lock-child.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lock-child.js');
const ROUNDS = 8;
const CONTENDERS = 4;

interface Contender { child: ChildProcess; exited: Promise<unknown>; report: Promise<LockChildReport> }

function contender(dir: string, ready: Promise<void>[]): Contender {
  const child = fork(CHILD, [LOCK_CHILD_FLAG, 'race', dir, '10'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  let isReady: () => void = () => undefined;
  ready.push(new Promise((resolve) => { isReady = resolve; }));
  const report = new Promise<LockChildReport>((resolve, reject) => {
    child.on('message', (message: LockChildReport) => {
      if (message.kind === 'ready') isReady();
      else resolve(message);
    });
    void exited.then(() => reject(new Error('lock child exited before reporting')));
  });
  return { child, exited, report };
}

test('lock: contenders racing for a lock whose holder was killed: exactly one takes it, every round', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t, 'sluice-lock-');
  // The first round takes over a lock in the format of earlier versions and a claim, both of a process that is gone.
  const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;
  writeFileSync(path.join(dir, 'lock'), `${deadPid}\n`);
  writeFileSync(path.join(dir, `lock.${deadPid}`), `${deadPid}\n`);
  for (let round = 0; round < ROUNDS; round++) {
    const ready: Promise<void>[] = [];
    const contenders = Array.from({ length: CONTENDERS }, () => contender(dir, ready));
    t.after(() => { for (const c of contenders) c.child.kill('SIGKILL'); });
    await Promise.all(ready);
    for (const c of contenders) c.child.send('go');
    const reports = await Promise.all(contenders.map((c) => c.report));
    const holders = reports.filter((r) => r.kind === 'held').length;
    assert.equal(holders, 1, `round ${round}: ${JSON.stringify(reports)}`);
    // The holder is killed with its claim in place: the next round takes over a stale claim.
    for (const c of contenders) c.child.kill('SIGKILL');
    await Promise.all(contenders.map((c) => c.exited));
  }
  assert.ok(!existsSync(path.join(dir, 'lock')), 'the old-format lock of a process that is gone was removed');
});

test('lock: a live holder in another process makes acquire() fail with its pid; released, the directory is free; in this process twice is refused', async (t) => {
  const dir = tempDir(t, 'sluice-lock-');
  writeFileSync(path.join(dir, `lock.${process.ppid}`), `${process.ppid}\n`); // alive, and not this process
  await assert.rejects(DirectoryLock.acquire(dir, 2), (err: Error) => err instanceof DirectoryBusyError && err.pid === process.ppid);
  assert.deepEqual(readdirSync(dir), [`lock.${process.ppid}`], 'a contender that gave up leaves no claim behind');

  const other = tempDir(t, 'sluice-lock-');
  const lock = await DirectoryLock.acquire(other);
  assert.deepEqual(readdirSync(other), [`lock.${process.pid}`]);
  await assert.rejects(DirectoryLock.acquire(other), /already open in this process/);
  await lock.release();
  assert.deepEqual(readdirSync(other), []);
  // A claim with this process's pid left by an earlier process (a container restarted as pid 1 again) is reused.
  writeFileSync(path.join(other, `lock.${process.pid}`), 'left over\n');
  const again = await DirectoryLock.acquire(other, 1);
  assert.equal(again.tookOverFromPid, null);
  await again.removeDirectory();
  assert.ok(!existsSync(other), 'removeDirectory deletes the directory');
  assert.deepEqual(readdirSync(path.dirname(other)).filter((n) => n.startsWith(`.removing-${path.basename(other)}`)), []);
});
