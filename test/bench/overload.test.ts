/**
 * CI smoke of bench/overload.js: a few seconds of senders at 10x a slow
 * receiver's drain rate, with a tiny budget so the governor acts. Asserts
 * only that nothing acknowledged was lost and the governor engaged; the
 * numbers belong to docs/benchmarks.md.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../helpers.js';

test('bench overload (smoke): nothing acknowledged is lost while the governor holds the node to its budget', async () => {
  const { stdout } = await promisify(execFile)(process.execPath,
    [path.join(ROOT, 'dist/bench/overload.js'), '--seconds', '4', '--budget', '4MiB', '--clients', '4'], { timeout: 200_000 });
  const result = JSON.parse(stdout) as { acknowledged: number; acknowledgedLost: number; governorEvents: { rising: number } };
  assert.ok(result.acknowledged > 0, 'some requests were acknowledged');
  assert.equal(result.acknowledgedLost, 0);
  assert.ok(result.governorEvents.rising > 0, 'the governor engaged');
});
