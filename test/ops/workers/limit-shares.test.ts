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
  const first = sent.get(2)!.seq;
  assert.equal(sent.get(1)!.allotments.t!.connections! + sent.get(2)!.allotments.t!.connections!, 9, 'a tenth of the cap kept back for workers that start');
  // Worker 1 filled its allowance and refuses; worker 2 holds nothing: the cut to 2 goes out, 1 grows only once 2 has applied it.
  shares.report(1, { t: use({ maxConnections: 10, connections: 5, allowance: 5, connectionsRefused: true }) }, sent.get(1)!.seq);
  sent = shares.allot([1, 2]);
  const cut = sent.get(2)!;
  assert.equal(cut.allotments.t!.connections, 1);
  assert.equal(sent.get(1)!.allotments.t!.connections, 6, 'only the one kept back, while worker 2 may still hold 4');
  shares.report(1, { t: use({ maxConnections: 10, connections: 5, allowance: 6, connectionsRefused: true }) }, sent.get(1)!.seq);
  shares.report(2, { t: use({ maxConnections: 10, allowance: 4 }) }, first);
  assert.equal(shares.allot([1, 2]).size, 0, 'a report from before the cut landed: still no growth');
  shares.report(2, { t: use({ maxConnections: 10, allowance: 1 }) }, cut.seq);
  sent = shares.allot([1, 2]);
  assert.equal(sent.get(1)!.allotments.t!.connections, 9);
  // Worker 1 drains (not serving) and exits: what it held is free again.
  shares.forget(1);
  sent = shares.allot([2]);
  assert.equal(sent.get(2)!.allotments.t!.connections, 9);
  // A worker that starts gets its part of what is kept back at once, though worker 2 holds all it was given.
  shares.report(3, { t: use({ maxConnections: 10 }) });
  assert.equal(shares.allot([2, 3]).get(3)!.allotments.t!.connections, 1);
  assert.equal(shares.allot([]).size, 0, 'every worker draining: nothing to hand out');
});

test('connection allowances: a growth still on its way counts, even when a cut was sent after it', () => {
  const shares = new LimitShares();
  shares.report(1, { t: use({ maxConnections: 4 }) });
  shares.report(2, { t: use({ maxConnections: 4 }) });
  const initial = shares.allot([1, 2]); // 2 and 2
  shares.report(1, { t: use({ maxConnections: 4, allowance: 2 }) }, initial.get(1)!.seq);
  shares.report(2, { t: use({ maxConnections: 4, allowance: 2 }) }, initial.get(2)!.seq);
  // Worker 1 refuses: 2 is cut to 0, then 1 grows to 4 once 2 confirms; then 2 refuses and 1 is cut back.
  shares.report(1, { t: use({ maxConnections: 4, allowance: 2, connectionsRefused: true }) }, initial.get(1)!.seq);
  const cutTwo = shares.allot([1, 2]).get(2)!;
  shares.report(2, { t: use({ maxConnections: 4, allowance: cutTwo.allotments.t!.connections! }) }, cutTwo.seq);
  const growOne = shares.allot([1, 2]).get(1)!;
  assert.equal(growOne.allotments.t!.connections, 4);
  // Before worker 1 applied its growth, worker 2 refuses: worker 1 may hold 4 once it lands, so 2 cannot grow yet.
  shares.report(2, { t: use({ maxConnections: 4, allowance: 0, connectionsRefused: true }) }, cutTwo.seq);
  const after = shares.allot([1, 2]);
  assert.equal(after.get(1)?.allotments.t?.connections, 2, 'worker 1 is cut back');
  assert.equal(after.get(2)?.allotments.t?.connections ?? 0, 0, 'worker 2 does not grow while 4 may still land at worker 1');
});

test('a report names only the tenants whose use changed: the others stand; only their parts are recomputed', () => {
  const shares = new LimitShares();
  shares.report(1, { a: use({ starved: true }), b: use({ load: 0.5 }) });
  shares.report(2, { a: use({}), b: use({}) });
  shares.allot([1, 2]);
  shares.report(2, { b: use({ starved: true }) });
  const sent = shares.allot([1, 2], ['b']);
  assert.deepEqual([...sent.values()].flatMap((m) => Object.keys(m.allotments)), ['b', 'b'], 'only tenant b recomputed');
  // Worker 1 used half of b's rate without running short: it keeps that and headroom; worker 2, now short, gets the rest.
  const share = (w: number) => sent.get(w)!.allotments.b!.share;
  assert.ok(Math.abs(share(1) - 0.625) < 1e-9 && Math.abs(share(2) - 0.375) < 1e-9, JSON.stringify([...sent]));
  assert.equal(shares.allot([1, 2]).size, 0, 'tenant a stands as reported: nothing changed');
});

test('connection allowances: connections a worker accepted before its cut landed count as held', () => {
  const shares = new LimitShares();
  shares.report(1, { t: use({ maxConnections: 6 }) });
  shares.report(2, { t: use({ maxConnections: 6 }) });
  const initial = shares.allot([1, 2]); // 3 and 3
  shares.report(1, { t: use({ maxConnections: 6, allowance: 3 }) }, initial.get(1)!.seq);
  shares.report(2, { t: use({ maxConnections: 6, allowance: 3 }) }, initial.get(2)!.seq);
  // Worker 1 is full and refuses: worker 2 (idle as far as the primary knows) is cut to 0...
  shares.report(1, { t: use({ maxConnections: 6, connections: 3, allowance: 3, connectionsRefused: true }) }, initial.get(1)!.seq);
  const cut = shares.allot([1, 2]).get(2)!;
  assert.equal(cut.allotments.t!.connections, 0);
  // ...but it had accepted 3 before the cut landed: it holds 3, so worker 1 cannot grow.
  shares.report(2, { t: use({ maxConnections: 6, connections: 3, allowance: 0 }) }, cut.seq);
  const after = shares.allot([1, 2]);
  assert.equal(after.get(1)?.allotments.t?.connections ?? 3, 3, 'worker 1 stays at 3: 3 + 3 open is the cap');
});
