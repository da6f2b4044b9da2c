import { test } from 'node:test';
import assert from 'node:assert/strict';
import { settlesBefore, timerDelay } from '../../src/core/clock.js';

test('clock: settlesBefore says whether work settled, either way, before the deadline', async () => {
  assert.equal(await settlesBefore(Promise.resolve('done'), Date.now() + 60_000), true);
  assert.equal(await settlesBefore(Promise.reject(new Error('failed')), Date.now() + 60_000), true, 'a rejection is settled, not thrown');
  // Already settled work wins over a deadline already past.
  assert.equal(await settlesBefore(Promise.resolve(), Date.now() - 1000), true);
  const never = new Promise<void>(() => undefined);
  assert.equal(await settlesBefore(never, Date.now() + 20), false);
  assert.equal(await settlesBefore(never, Date.now() - 1000), false);
});

test('clock: a deadline past 2^31 ms away does not expire at once (the timer is clamped)', async () => {
  assert.equal(timerDelay(2 ** 40), 0x7fffffff);
  assert.equal(timerDelay(-5), 0);
  let finish!: () => void;
  const work = new Promise<void>((resolve) => { finish = resolve; });
  const settled = settlesBefore(work, Date.now() + 2 ** 40);
  // Without the clamp setTimeout fires at once and the answer would be false.
  setTimeout(finish, 50);
  assert.equal(await settled, true);
});
