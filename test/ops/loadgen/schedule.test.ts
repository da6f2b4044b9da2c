/**
 * Sending schedules are arithmetic on the clock: checked here without timers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeriodicSchedule, SpreadSchedule } from '../../../src/ops/loadgen/schedule.js';

const SECOND = 1_000_000;

test('schedule: spread agents each keep their period, and together send at an even pace', () => {
  const start = 5 * SECOND;
  const schedule = new SpreadSchedule(4, SECOND, start, start + 10 * SECOND);
  const times: number[][] = [[], [], [], []];
  // Asked every 10 ms, as the worker's timer does.
  for (let now = start; now <= start + 12 * SECOND; now += 10_000) schedule.due(now, (agent) => times[agent]!.push(now));
  for (const agentTimes of times) {
    assert.equal(agentTimes.length, 10, 'rate × duration, nothing after the end');
    for (let i = 1; i < agentTimes.length; i++) assert.equal(agentTimes[i]! - agentTimes[i - 1]!, SECOND);
  }
  // Agent j starts j/4 of a period in: the aggregate is one message every 250 ms.
  assert.deepEqual(times.map((t) => t[0]! - start), [0, 250_000, 500_000, 750_000]);
});

test('schedule: a late timer catches up instead of sending less', () => {
  const schedule = new SpreadSchedule(10, SECOND / 5, 0, 10 * SECOND);
  let fired = 0;
  schedule.due(3 * SECOND - 1, () => fired++);
  assert.equal(fired, 150, '3 s of 10 agents at 5/s, all at once after a stall');
  schedule.due(100 * SECOND, () => fired++);
  assert.equal(fired, 500);
});

test('schedule: an offset shifts a worker\'s agents between another worker\'s', () => {
  const first = new SpreadSchedule(2, SECOND, 0, SECOND, 0);
  const second = new SpreadSchedule(2, SECOND, 0, SECOND, 0.5);
  const at = (s: SpreadSchedule): number[] => {
    const out: number[] = [];
    for (let now = 0; now < SECOND; now += 1000) s.due(now, () => out.push(now));
    return out;
  };
  assert.deepEqual(at(first), [0, 500_000]);
  assert.deepEqual(at(second), [250_000, 750_000]);
});

test('schedule: periodic events, from a chosen first occurrence, none at or after the end', () => {
  const bursts = new PeriodicSchedule(500_000, SECOND, 3 * SECOND);
  assert.equal(bursts.due(SECOND), 1, 'the first at the start');
  assert.equal(bursts.due(SECOND + 499_999), 0);
  assert.equal(bursts.due(10 * SECOND), 3, '1.5, 2.0 and 2.5 s');
  const reconnects = new PeriodicSchedule(SECOND, 0, 3 * SECOND, 1);
  assert.equal(reconnects.due(0), 0, 'not at the start');
  assert.equal(reconnects.due(5 * SECOND), 2);
});
