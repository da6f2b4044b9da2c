import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LimitShares, rateShares, type TenantUse } from '../../../src/ops/workers/limit-shares.js';

const use = (over: Partial<TenantUse>): TenantUse => ({ load: 0, starved: false, connections: 0, allowance: 0, connectionsRefused: false, maxConnections: 0, ...over });
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

test('rate shares add up to 1: idle workers keep a little, what is left goes to the workers short of tokens', () => {
  const idle = rateShares([undefined, undefined]);
  assert.deepEqual(idle, [0.5, 0.5]);
  const oneBusy = rateShares([use({ starved: true, load: 0.5 }), use({})]);
  assert.ok(Math.abs(sum(oneBusy) - 1) < 1e-9);
  assert.ok(oneBusy[0]! >= 0.97, `the busy worker gets nearly all (${oneBusy[0]})`);
  const both = rateShares([use({ starved: true }), use({ starved: true }), use({ load: 0.1 })]);
  assert.ok(Math.abs(sum(both) - 1) < 1e-9);
  assert.equal(both[0], both[1]);
  assert.ok(Math.abs(both[2]! - 0.1 * 1.25) < 1e-9, 'a worker not short gets what it used and headroom');
});

test('connection allowances: never more than the cap in all, growth only from what no worker may hold', () => {
  const shares = new LimitShares();
  shares.report(1, { t: use({ maxConnections: 10 }) });
  shares.report(2, { t: use({ maxConnections: 10 }) });
  let sent = shares.allot([1, 2]);
  assert.equal(sent.get(1)!.t!.connections! + sent.get(2)!.t!.connections!, 10);
  // Worker 1 filled its allowance and refuses; worker 2 holds nothing: the cut to 2 goes out, 1 grows only once 2 has applied it.
  shares.report(1, { t: use({ maxConnections: 10, connections: 5, allowance: 5, connectionsRefused: true }) });
  sent = shares.allot([1, 2]);
  assert.equal(sent.get(2)!.t!.connections, 1);
  assert.equal(sent.get(1), undefined, 'no growth while worker 2 may still hold 5');
  shares.report(2, { t: use({ maxConnections: 10, allowance: 1 }) });
  sent = shares.allot([1, 2]);
  assert.equal(sent.get(1)!.t!.connections, 9);
  // Worker 1 drains (not serving) and exits: what it held is free again.
  shares.forget(1);
  sent = shares.allot([2]);
  assert.equal(sent.get(2)!.t!.connections, 10);
  assert.equal(shares.allot([]).size, 0, 'every worker draining: nothing to hand out');
});
