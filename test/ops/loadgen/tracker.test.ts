/**
 * The delivery tracker's latency of the steady part: only messages SENT at or
 * after --steady-after past the start of sending count, whenever they became
 * visible. Synthetic deliveries with chosen times: no clock is read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RunLatencies } from '../../../src/ops/loadgen/histogram.js';
import { DeliveryTracker } from '../../../src/ops/loadgen/tracker.js';

const GO_MICROS = 5_000_000;
const STEADY_AFTER_MS = 10_000;
const CUT_MICROS = GO_MICROS + STEADY_AFTER_MS * 1000;

test('tracker: the steady histograms hold the messages sent at or after the cut, t0 apart from the other tenants', () => {
  // Agents 0 and 2 are tenant t0's, 1 and 3 tenant t1's.
  const tracker = new DeliveryTracker(4, 2, STEADY_AFTER_MS);
  tracker.begin(GO_MICROS);
  tracker.record(0, 0, GO_MICROS, GO_MICROS + 300_000, 't0');
  // Sent a microsecond before the cut, visible after it: the send time decides.
  tracker.record(1, 0, CUT_MICROS - 1, CUT_MICROS + 200_000, 't1');
  tracker.record(2, 0, CUT_MICROS, CUT_MICROS + 2000, 't0');
  tracker.record(1, 1, CUT_MICROS + 1_000_000, CUT_MICROS + 1_003_000, 't1');
  tracker.record(3, 0, CUT_MICROS + 2_000_000, CUT_MICROS + 2_004_000, 't1');
  // A duplicate is not a second delivery, in the steady part either.
  tracker.record(1, 1, CUT_MICROS + 1_000_000, CUT_MICROS + 1_009_000, 't1');

  assert.equal(tracker.delivered, 5);
  assert.equal(tracker.duplicates, 1);
  const { byTenant, steadyFirstTenant, steadyOtherTenants } = tracker.latency;
  assert.deepEqual(byTenant.map((h) => h.totalCount), [2, 3], 'the whole run has every message');
  assert.equal(byTenant[0]!.maxValue, 300_000);
  assert.equal(steadyFirstTenant.totalCount, 1, 't0: the one sent at the cut');
  assert.equal(steadyFirstTenant.maxValue, 2000);
  assert.equal(steadyOtherTenants.totalCount, 2, 't1: the two sent after it');
  assert.equal(steadyOtherTenants.minNonZeroValue, 3000);
  assert.equal(steadyOtherTenants.maxValue, 4000);
});

test('run latencies: nothing is steady before sending began; with no cut, everything sent from the start is', () => {
  const noCut = new RunLatencies(1, 0);
  noCut.record(0, GO_MICROS, 1000);
  assert.equal(noCut.steadyFirstTenant.totalCount, 0, 'before begin()');
  noCut.begin(GO_MICROS);
  noCut.record(0, GO_MICROS, 1000);
  noCut.record(0, GO_MICROS + 1, 1000);
  assert.equal(noCut.steadyFirstTenant.totalCount, 2);
  assert.equal(noCut.byTenant[0]!.totalCount, 3);
  assert.equal(noCut.steadyOtherTenants.totalCount, 0, 'one tenant: no other');
});
