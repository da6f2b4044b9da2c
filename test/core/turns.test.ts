/**
 * The end of an event-loop turn: what enlisted in a turn runs once, in order,
 * after the turn's I/O; what enlists meanwhile runs at the next turn's end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EndOfTurn, nextTurn, type TurnListener } from '../../src/core/turns.js';

test('turns: listeners enlisted in one turn run once at its end, in order; one enlisting while they run waits for the next end', async () => {
  const turnEnd = new EndOfTurn();
  const calls: string[] = [];
  const listener = (name: string, then?: () => void): TurnListener => ({
    turnEnded: () => {
      calls.push(name);
      then?.();
    },
  });
  const late = listener('late');
  turnEnd.enlist(listener('first'));
  turnEnd.enlist(listener('second', () => turnEnd.enlist(late)));
  turnEnd.enlist(listener('third'));
  assert.deepEqual(calls, [], 'nothing runs before the turn ends');
  await nextTurn();
  assert.deepEqual(calls, ['first', 'second', 'third'], 'one end for all three, in the order they enlisted');
  await nextTurn();
  assert.deepEqual(calls, ['first', 'second', 'third', 'late'], 'enlisted while the others ran: the next end');
  await nextTurn();
  assert.equal(calls.length, 4, 'each runs once per enlistment');
});
