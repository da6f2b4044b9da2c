import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AckStatus, AckToken } from '../../src/core/ack.js';

test('ack: settles once, after the last sink, with the worst status', () => {
  const seen: AckStatus[] = [];
  const ack = new AckToken((s) => seen.push(s));
  ack.retain();
  ack.retain();
  ack.retain();
  ack.seal();
  ack.commit();
  ack.fail();
  assert.deepEqual(seen, []);
  ack.drop();
  assert.deepEqual(seen, [AckStatus.Failed]);
});

test('ack: a sink that commits before the router seals does not settle early', () => {
  const seen: AckStatus[] = [];
  const ack = new AckToken((s) => seen.push(s));
  ack.retain();
  ack.commit();
  assert.deepEqual(seen, []);
  ack.retain();
  ack.seal();
  ack.commit();
  assert.deepEqual(seen, [AckStatus.Committed]);
});

test('ack: no sink at all settles as committed on seal; over-settling throws', () => {
  const seen: AckStatus[] = [];
  const ack = new AckToken((s) => seen.push(s));
  ack.seal();
  assert.deepEqual(seen, [AckStatus.Committed]);
  assert.throws(() => ack.commit(), /more times than it was retained/);
});
