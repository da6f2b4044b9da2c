/**
 * The idle trim: when it collects (an idle process whose heap holds enough it
 * does not use), how often it tries, and that in a real process without
 * --expose-gc it gives back the heap that loading the node's modules reserved.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { IdleTrim, MAX_ATTEMPTS, TRIM_SLACK_BYTES, type IdleProbe } from '../../src/core/idle-trim.js';
import { ROOT } from '../helpers.js';

const MiB = 1024 ** 2;

interface FakeProcess {
  probe: IdleProbe;
  memory: { collectGarbage(kind?: 'major' | 'minor'): boolean };
  collections: string[];
  /** Busy fraction and heap; a major collection shrinks the heap total to `shrinksTo` (if given). */
  set(utilization: number, heapTotal: number, heapUsed: number, shrinksTo?: number): void;
}

function fakeProcess(): FakeProcess {
  let busy = 0;
  const heap = { heapTotal: 0, heapUsed: 0 };
  let shrinksTo: number | undefined;
  const collections: string[] = [];
  return {
    probe: { utilization: () => busy, heap: () => ({ ...heap }) },
    memory: {
      collectGarbage: (kind = 'major') => {
        collections.push(kind);
        if (kind === 'major' && shrinksTo !== undefined) heap.heapTotal = shrinksTo;
        return true;
      },
    },
    collections,
    set(utilization, heapTotal, heapUsed, shrink) {
      busy = utilization;
      heap.heapTotal = heapTotal;
      heap.heapUsed = heapUsed;
      shrinksTo = shrink;
    },
  };
}

test('idle trim: collects (full, then young) only when the process is idle and its heap holds the slack', () => {
  const p = fakeProcess();
  const freed: number[] = [];
  const trim = new IdleTrim(p.memory, (bytes) => freed.push(bytes), p.probe);
  p.set(0.5, 32 * MiB, 12 * MiB, 17 * MiB);
  assert.equal(trim.check(), false, 'busy: not collected');
  p.set(0.01, 14 * MiB, 12 * MiB, 13 * MiB);
  assert.equal(trim.check(), false, 'idle, but the heap holds less than the slack beyond its use');
  p.set(0.01, 32 * MiB, 12 * MiB, 17 * MiB);
  assert.equal(trim.check(), true);
  assert.deepEqual(p.collections, ['major', 'minor']);
  assert.deepEqual(freed, [15 * MiB]);
});

test('idle trim: a heap that does not shrink is tried at most MAX_ATTEMPTS times, until it grows again', () => {
  const p = fakeProcess();
  const trim = new IdleTrim(p.memory, () => undefined, p.probe);
  p.set(0.01, 32 * MiB, 12 * MiB);
  const tries = Array.from({ length: 5 }, () => trim.check());
  assert.deepEqual(tries, [...Array<boolean>(MAX_ATTEMPTS).fill(true), ...Array<boolean>(5 - MAX_ATTEMPTS).fill(false)]);
  p.set(0.01, 32 * MiB + TRIM_SLACK_BYTES, 12 * MiB);
  assert.equal(trim.check(), true, 'grown by the slack since the last attempt: tried again');
});

test('idle trim: in a process without --expose-gc, an idle process loaded with the node\'s modules gives back its reserved heap', () => {
  // A separate process: the test runner's own heap is not the one measured.
  const script = `
    const { IdleTrim } = await import(${JSON.stringify(path.join(ROOT, 'dist/src/core/idle-trim.js'))});
    const { PROCESS_MEMORY } = await import(${JSON.stringify(path.join(ROOT, 'dist/src/core/memory.js'))});
    await import(${JSON.stringify(path.join(ROOT, 'dist/src/ops/workers/worker.js'))});
    const before = process.memoryUsage().heapTotal;
    const trim = new IdleTrim(PROCESS_MEMORY, () => undefined);
    // V8 shrinks only after seconds of slow allocation: check as the timer would, every 5 s, at most four times.
    for (let i = 0; i < 4 && process.memoryUsage().heapTotal > before - 4 * 1024 * 1024; i++) {
      await new Promise((resolve) => setTimeout(resolve, 5000));
      trim.check();
    }
    process.stdout.write(JSON.stringify({ before, after: process.memoryUsage().heapTotal, gc: typeof globalThis.gc }));
  `;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 0, run.stderr);
  const { before, after, gc } = JSON.parse(run.stdout) as { before: number; after: number; gc: string };
  assert.equal(gc, 'undefined', 'the process\'s own global has no gc');
  assert.ok(before - after >= 4 * MiB, `heap total ${(before / MiB).toFixed(1)} → ${(after / MiB).toFixed(1)} MiB`);
});
