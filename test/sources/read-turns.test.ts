import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TenantDirectory } from '../../src/core/identity.js';
import { UNLIMITED } from '../../src/core/limits.js';
import { ReadTurns, TENANT_TURN_BYTES, READ_TURN_BYTES } from '../../src/sources/read-turns.js';

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function tenants() {
  const directory = new TenantDirectory([
    { id: 'flood', networks: ['10.0.0.0/8'], tokenHashes: [], certificates: [], limits: UNLIMITED },
    { id: 'other', networks: ['11.0.0.0/8'], tokenHashes: [], certificates: [], limits: UNLIMITED },
  ]);
  return { flood: directory.tenants.get('flood')!, other: directory.tenants.get('other')! };
}

test('read turns: a tenant\'s connections share one budget per turn; other tenants have their own; the next turn starts afresh', async () => {
  const turns = new ReadTurns();
  const { flood, other } = tenants();
  assert.equal(turns.charge(flood, TENANT_TURN_BYTES - 1), true);
  assert.equal(turns.charge(flood, 1), false, 'the turn\'s share is used');
  const spent = turns.current;
  assert.equal(turns.exhaustedIn(flood, spent), true);
  assert.equal(turns.charge(other, READ_TURN_BYTES), true, 'another tenant is not charged for it');
  assert.equal(turns.exhaustedIn(other, spent), false);
  await nextTurn();
  assert.notEqual(turns.current, spent);
  assert.equal(turns.charge(flood, READ_TURN_BYTES), true, 'a new turn, a new share');
  assert.equal(turns.exhaustedIn(flood, spent), false, 'a past turn is not held against it');
});

test('read turns: parked connections are resumed in order, as many per turn as the share covers', async () => {
  const turns = new ReadTurns();
  const { flood } = tenants();
  turns.charge(flood, TENANT_TURN_BYTES);
  const resumed: number[][] = [];
  let current: number[] = [];
  for (let i = 0; i < 10; i++) turns.park(flood, () => current.push(i));
  const perTurn = TENANT_TURN_BYTES / READ_TURN_BYTES;
  for (let turn = 0; turn < 5; turn++) {
    await nextTurn();
    resumed.push(current);
    current = [];
  }
  assert.deepEqual(resumed.flat(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'each once, in order');
  assert.ok(resumed.every((batch) => batch.length <= perTurn), JSON.stringify(resumed));
  assert.ok(resumed.filter((batch) => batch.length > 0).length >= Math.ceil(10 / perTurn), 'spread over turns');
});
