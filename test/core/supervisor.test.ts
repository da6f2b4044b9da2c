import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Supervisor } from '../../src/core/supervisor.js';
import { waitFor } from '../helpers.js';

const fast = { backoff: { initialMs: 5, maxMs: 80 }, stableMs: 10_000, crashLoopAfter: 4 };

test('supervisor: a child that keeps failing is restarted with growing backoff and reported as a crash loop, never given up', async () => {
  const delays: number[] = [];
  const loops: number[] = [];
  let runs = 0;
  const supervisor = new Supervisor(fast, {
    restarting: (_child, info) => delays.push(info.delayMs),
    crashLoop: (_child, info) => loops.push(info.failures),
  }, () => 1);
  supervisor.add('w1', async () => {
    runs++;
    throw new Error('boom');
  });
  await waitFor('8 runs', () => runs >= 8, 5000);
  await supervisor.stopAll();
  assert.deepEqual(delays.slice(0, 6), [5, 10, 20, 40, 80, 80]);
  assert.deepEqual(loops, [4], 'entering the crash loop is reported once');
  assert.equal(supervisor.has('w1'), false);
});

test('supervisor: a run that lasts the stable period resets the failure count and ends the crash loop', async () => {
  const recovered: number[] = [];
  let runs = 0;
  let release: () => void = () => undefined;
  const supervisor = new Supervisor({ ...fast, stableMs: 100, crashLoopAfter: 2 }, { recovered: (_c, info) => recovered.push(info.failures) }, () => 1);
  supervisor.add('c', async () => {
    runs++;
    if (runs <= 3) throw new Error('early');
    await new Promise<void>((resolve) => { release = resolve; });
  });
  await waitFor('crash loop then a lasting run', () => runs === 4 && supervisor.state('c')?.running);
  assert.equal(supervisor.state('c')!.crashLoop, true);
  await waitFor('recovered', () => recovered.length === 1, 2000);
  assert.deepEqual(recovered, [3]);
  assert.equal(supervisor.state('c')!.crashLoop, false);
  assert.equal(supervisor.state('c')!.failures, 0);
  const removed = supervisor.remove('c');
  release();
  await removed;
  assert.equal(runs, 4, 'a removed child is not started again');
});

test('supervisor: a child that ends cleanly on its own still counts as gone and is restarted', async () => {
  let runs = 0;
  const supervisor = new Supervisor(fast, {}, () => 0);
  supervisor.add('x', async () => { runs++; });
  await waitFor('restarted', () => runs >= 3, 2000);
  assert.equal(supervisor.state('x')!.lastError, 'exited');
  await supervisor.stopAll();
});
