/**
 * Every parser's fuzz target with a bounded number of cases (npm test); the
 * million-case run is `npm run fuzz` (docs/fuzzing.md). A failure prints the
 * seed and path to replay: `npm run fuzz -- --target NAME --seed S --path P`.
 */
import { test } from 'node:test';
import fc from 'fast-check';
import { propertyOf } from './common.js';
import { TARGETS } from './targets.js';

const RUNS = Number(process.env.SLUICE_FUZZ_RUNS ?? 1000);

for (const target of TARGETS) {
  test(`fuzz ${target.name}: ${target.description}`, () => {
    fc.assert(propertyOf(target), { numRuns: RUNS });
  });
}
