import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { durationText, parseDuration, parseSize, sizeText } from '../../src/core/units.js';

test('units: a default in ms or bytes is written in the largest unit that holds it whole, and parses back', () => {
  assert.deepEqual([0, 10, 250, 1000, 30_000, 60_000, 120_000, 3_600_000, 2_592_000_000].map(durationText), ['0s', '10ms', '250ms', '1s', '30s', '1m', '2m', '1h', '30d']);
  assert.deepEqual([0, 480, 8192, 262_144, 8 * 1024 ** 2, 1024 ** 3, 65_507].map(sizeText), ['0B', '480B', '8KiB', '256KiB', '8MiB', '1GiB', '65507B']);
  fc.assert(fc.property(fc.nat({ max: 2 ** 40 }), (ms) => parseDuration(durationText(ms)) === ms));
  fc.assert(fc.property(fc.nat({ max: 2 ** 45 }), (bytes) => parseSize(sizeText(bytes)) === bytes));
});
