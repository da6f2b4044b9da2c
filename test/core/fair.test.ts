import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DeficitRoundRobin, DrrFlow, FairShares, HARD_BOUND } from '../../src/core/fair.js';

interface Item {
  session: number;
  seq: number;
  cost: number;
}

class Flow extends DrrFlow {
  readonly items: Item[] = [];
  served = 0;
  constructor(readonly id: number) {
    super();
  }
}

const headCost = (flow: Flow): number => flow.items[0]?.cost ?? 0;

const QUANTUM = 100;

/** An operation: an item arrives for (flow, session), or the scheduler serves one item. */
const operation = fc.oneof(
  fc.record({ kind: fc.constant('arrive' as const), flow: fc.integer({ min: 0, max: 4 }), session: fc.integer({ min: 0, max: 2 }), cost: fc.integer({ min: 1, max: QUANTUM }) }),
  fc.record({ kind: fc.constant('serve' as const) }),
);

test('drr property: under any arrivals, two flows backlogged over an interval get service within quantum + largest item of each other; sessions keep their order', () => {
  fc.assert(fc.property(fc.array(operation, { maxLength: 400 }), (ops) => {
    const flows = Array.from({ length: 5 }, (_, i) => new Flow(i));
    const drr = new DeficitRoundRobin<Flow>(QUANTUM, headCost);
    const nextSeq = new Map<string, number>();
    const lastServed = new Map<string, number>();
    // For each flow: the service of every flow when it last became backlogged.
    const baseline: (number[] | null)[] = flows.map(() => null);
    let maxCost = 0;
    for (const op of ops) {
      if (op.kind === 'arrive') {
        const flow = flows[op.flow]!;
        const key = `${op.flow}/${op.session}`;
        const seq = nextSeq.get(key) ?? 0;
        nextSeq.set(key, seq + 1);
        if (flow.items.length === 0) baseline[op.flow] = flows.map((f) => f.served);
        flow.items.push({ session: op.session, seq, cost: op.cost });
        maxCost = Math.max(maxCost, op.cost);
        drr.activate(flow);
        continue;
      }
      const flow = drr.pick();
      const backlogged = flows.filter((f) => f.items.length > 0);
      if (flow === null) {
        assert.equal(backlogged.length, 0, 'pick() finds a flow whenever one has work');
        continue;
      }
      const item = flow.items.shift()!;
      flow.served += item.cost;
      drr.served(flow, item.cost);
      const key = `${flow.id}/${item.session}`;
      assert.ok(item.seq > (lastServed.get(key) ?? -1), 'a session is served in order');
      lastServed.set(key, item.seq);
      // Pairs backlogged since the later of their two starts, and still backlogged (or just emptied by this serve).
      for (const a of backlogged) {
        for (const b of backlogged) {
          if (a.id >= b.id) continue;
          const baseA = baseline[a.id]!;
          const baseB = baseline[b.id]!;
          // The later start: whichever snapshot shows more service in total.
          const base = baseA.reduce((x, y) => x + y, 0) >= baseB.reduce((x, y) => x + y, 0) ? baseA : baseB;
          const gotA = a.served - base[a.id]!;
          const gotB = b.served - base[b.id]!;
          assert.ok(Math.abs(gotA - gotB) <= QUANTUM + maxCost, `flows ${a.id} and ${b.id}: ${gotA} vs ${gotB}`);
        }
      }
    }
  }), { numRuns: 300 });
});

test('drr: a flow with a deep backlog takes one quantum per turn, so a light flow waits at most one turn', () => {
  const heavy = new Flow(0);
  const light = new Flow(1);
  const drr = new DeficitRoundRobin<Flow>(QUANTUM, headCost);
  for (let i = 0; i < 1000; i++) heavy.items.push({ session: 0, seq: i, cost: 50 });
  drr.activate(heavy);
  const order: number[] = [];
  const serve = (): void => {
    const flow = drr.pick()!;
    const item = flow.items.shift()!;
    drr.served(flow, item.cost);
    order.push(flow.id);
  };
  serve();
  light.items.push({ session: 0, seq: 0, cost: 10 });
  drr.activate(light);
  serve();
  serve();
  assert.deepEqual(order, [0, 0, 1], 'the light item goes right after the heavy flow spends its quantum, not after its backlog');
  assert.equal(drr.size, 1, 'the emptied flow left the round');
});

test('drr: an item larger than the quantum is served once enough turns have added up', () => {
  const flow = new Flow(0);
  const drr = new DeficitRoundRobin<Flow>(10, headCost);
  flow.items.push({ session: 0, seq: 0, cost: 35 });
  drr.activate(flow);
  assert.equal(drr.pick(), flow);
  assert.ok(flow.deficit >= 35);
  drr.served(flow, 35);
  flow.items.shift();
  assert.equal(drr.pick(), null);
});

test('drr: remove() takes a flow out of the round wherever it is', () => {
  const flows = [new Flow(0), new Flow(1), new Flow(2)];
  const drr = new DeficitRoundRobin<Flow>(QUANTUM, headCost);
  for (const f of flows) {
    f.items.push({ session: 0, seq: 0, cost: 1 });
    drr.activate(f);
  }
  drr.remove(flows[1]!);
  drr.remove(flows[2]!);
  assert.equal(drr.size, 1);
  assert.equal(drr.pick(), flows[0]);
});

test('fair shares: past the mark only tenants over their share are told to slow down; each is resumed when under half its share', () => {
  const resumed: (string | null)[] = [];
  const shares = new FairShares(1000, (t) => resumed.push(t));
  const flood = shares.share('flood');
  const light = shares.share('light');
  assert.equal(shares.add(flood, 900), true, 'below the mark nobody is slowed');
  assert.equal(shares.add(flood, 200), false, 'alone past the mark: over its share');
  assert.equal(shares.add(light, 400), true, 'the light tenant is under its share (500 of 1000)');
  assert.equal(shares.congested('flood'), true);
  assert.equal(shares.congested('light'), false);
  assert.equal(shares.congested('unknown'), false);
  shares.remove(flood, 800);
  assert.deepEqual(resumed, [], 'at 300 of a 500 share: still held (hysteresis)');
  shares.remove(flood, 100);
  assert.deepEqual(resumed, ['flood'], 'at 200, under half its share');
  assert.equal(shares.congested('flood'), false);
});

test('fair shares: at the hard bound everybody is told to slow down; under half the mark everybody goes on', () => {
  const resumed: (string | null)[] = [];
  const shares = new FairShares(100, (t) => resumed.push(t));
  const a = shares.share('a');
  const b = shares.share('b');
  const c = shares.share('c');
  assert.equal(shares.add(a, 60), true);
  assert.equal(shares.add(b, 39), true);
  assert.equal(shares.add(c, 1), true, 'at the mark, but far under its share');
  assert.equal(shares.add(c, 100 * HARD_BOUND - 100), false, 'at the hard bound: everybody');
  assert.equal(shares.congested('a'), true);
  assert.equal(shares.congested('d'), true, 'even a tenant with nothing queued');
  shares.remove(a, 60);
  assert.deepEqual(resumed, ['a'], 'a tenant found congested is told when it may go on');
  shares.remove(c, 100 * HARD_BOUND - 99);
  assert.deepEqual(resumed, ['a', null]);
  assert.equal(shares.anyPaused, false);
});

test('fair shares property: tenants that honour the answer keep the total under the hard bound plus one batch, and all are resumed once drained', () => {
  const HIGH = 10_000;
  const MAX_BATCH = 500;
  fc.assert(fc.property(
    fc.array(fc.record({ tenant: fc.integer({ min: 0, max: 7 }), bytes: fc.integer({ min: 1, max: MAX_BATCH }), drain: fc.boolean() }), { maxLength: 500 }),
    (steps) => {
      const held = new Set<string>();
      const shares = new FairShares(HIGH, (t) => {
        if (t === null) held.clear();
        else held.delete(t);
      });
      const queued = new Map<string, number[]>();
      for (const step of steps) {
        const name = `t${step.tenant}`;
        const share = shares.share(name);
        const batches = queued.get(name) ?? [];
        queued.set(name, batches);
        if (step.drain) {
          const bytes = batches.shift();
          if (bytes !== undefined) shares.remove(share, bytes);
        } else if (!held.has(name)) {
          batches.push(step.bytes);
          if (!shares.add(share, step.bytes)) held.add(name);
        }
        assert.ok(shares.total < HARD_BOUND * HIGH + MAX_BATCH, `total ${shares.total}`);
        assert.equal(shares.total, [...queued.values()].flat().reduce((x, y) => x + y, 0));
      }
      for (const [name, batches] of queued) for (const bytes of batches) shares.remove(shares.share(name), bytes);
      assert.equal(held.size, 0, 'nobody is left waiting once everything drained');
      assert.equal(shares.anyPaused, false);
    },
  ), { numRuns: 300 });
});

test('fair shares: a tenant found congested without writing (its share shrank, or the hard bound) is still told when to go on', () => {
  const resumed: (string | null)[] = [];
  const shares = new FairShares(100, (t) => resumed.push(t));
  const a = shares.share('a');
  const b = shares.share('b');
  assert.equal(shares.add(a, 60), true);
  assert.equal(shares.add(b, 45), true, 'past the mark, under its share');
  assert.equal(shares.congested('a'), true, 'over its share of 50 with two tenants queued');
  shares.remove(b, 45);
  shares.remove(a, 20);
  assert.deepEqual(resumed, [null], 'back under half the mark: told to go on');
  shares.add(b, 4 * 100);
  assert.equal(shares.congested('c'), true, 'at the hard bound, even a tenant that never wrote');
  shares.remove(b, 400);
  assert.deepEqual(resumed, [null, null]);
});
