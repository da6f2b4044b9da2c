/**
 * Each tenant's share of an event-loop turn: the turn's budget split among the
 * tenants that read, a tenant over its share deferred until its balance is
 * positive again at a turn's end, the others served at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tenant } from '../../src/core/identity.js';
import { MIN_TENANT_TURN_BYTES, READ_BYTES, tenantTurnShare, TurnShares, TURN_WORK_BYTES } from '../../src/core/turn-shares.js';
import { EndOfTurn, nextTurn } from '../../src/core/turns.js';
import { silentTelemetry } from '../helpers.js';

test('turn shares: the budget split evenly among the tenants reading, never below the least share', () => {
  assert.equal(tenantTurnShare(TURN_WORK_BYTES, 0), TURN_WORK_BYTES, 'nobody else reads: the whole turn');
  assert.equal(tenantTurnShare(TURN_WORK_BYTES, 1), TURN_WORK_BYTES);
  assert.equal(tenantTurnShare(TURN_WORK_BYTES, 4), TURN_WORK_BYTES / 4);
  assert.equal(tenantTurnShare(TURN_WORK_BYTES, 3), Math.floor(TURN_WORK_BYTES / 3));
  assert.equal(tenantTurnShare(TURN_WORK_BYTES, 1000), MIN_TENANT_TURN_BYTES, 'many tenants: each still gets a few records');
});

test('turn shares: a tenant over its share waits, in debt for turns, while a tenant under it is served; waiters resume oldest first as the balance covers reads', async () => {
  const telemetry = silentTelemetry();
  telemetry.setTenantSeries(['flood', 'steady'], 10);
  const shares = new TurnShares(new EndOfTurn(), telemetry, 2 * READ_BYTES);
  const flood = shares.account(new Tenant('flood'));
  const steady = shares.account(new Tenant('steady'));
  const resumed: string[] = [];
  const waiter = (name: string) => ({ resumeTurn: () => resumed.push(name) });

  // Turn 0: nobody read the turn before, so each share is the whole budget (two reads).
  assert.equal(shares.share, 2 * READ_BYTES);
  assert.equal(shares.charge(flood, READ_BYTES), true, 'under its share: reads on');
  assert.equal(shares.charge(flood, READ_BYTES), false, 'its share used');
  shares.defer(flood, waiter('a'));
  assert.equal(shares.charge(flood, READ_BYTES), false, 'a read that was under way: now in debt');
  shares.defer(flood, waiter('b'));
  assert.equal(shares.charge(steady, 512), true, 'another tenant is served at once');

  await nextTurn();
  // Two tenants read in turn 0: each share is half the budget, which only pays the flooder's debt back.
  assert.equal(shares.share, READ_BYTES);
  assert.deepEqual(resumed, [], 'still in debt: nobody resumes');
  assert.equal(shares.charge(steady, 512), true, 'the steady tenant reads on');

  await nextTurn();
  // Only the steady tenant read in turn 1: each share of turn 2 is the whole budget.
  assert.equal(shares.share, READ_BYTES * 2);
  assert.deepEqual(resumed, ['a', 'b'], 'the balance covers two reads: both resume, oldest first');

  assert.equal(await telemetry.value('sluice_tenant_turn_deferred_total', { tenant: 'flood' }), 2);
  assert.equal(await telemetry.value('sluice_tenant_turn_deferred_total', { tenant: 'steady' }), 0);
});

test('turn shares: with waiters and nothing else to do the loop keeps turning, so they resume; one read per turn when the share covers one', async () => {
  const shares = new TurnShares(new EndOfTurn(), silentTelemetry(), READ_BYTES);
  const flood = shares.account(new Tenant('flood'));
  const resumed: number[] = [];
  assert.equal(shares.charge(flood, READ_BYTES * 3), false);
  for (let i = 0; i < 3; i++) shares.defer(flood, { resumeTurn: () => resumed.push(i) });
  let turns = 0;
  while (resumed.length < 3) {
    await nextTurn();
    turns++;
  }
  assert.deepEqual(resumed, [0, 1, 2], 'oldest first');
  // Debt of 2 reads paid back in two turns, then one waiter per turn (each share covers one read).
  assert.ok(turns >= 5, `resumed over ${turns} turns`);
});
