import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { GENERATED_DOCS } from '../../src/ops/docs.js';
import { ROOT } from '../helpers.js';

for (const [file, render] of Object.entries(GENERATED_DOCS)) {
  test(`docs: ${file} is generated from the code (run \`npm run docs\` when this fails)`, () => {
    assert.equal(readFileSync(path.join(ROOT, file), 'utf8'), render());
  });
}
