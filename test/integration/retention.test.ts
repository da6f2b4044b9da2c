/**
 * No buffer retention: records never pin the socket chunks they were read
 * from (the Node.js form of the seed's sub-binary leak). Measured in a child
 * process with --expose-gc; the same measurement with a deliberate leak shows
 * it would be caught.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const child = fileURLToPath(new URL('./retention-child.js', import.meta.url));

function measure(retainChunks: boolean): { records: number; arrayBuffers: number; pinned: number } {
  const out = execFileSync(process.execPath, ['--expose-gc', child], {
    env: { ...process.env, RETAIN_CHUNKS: retainChunks ? '1' : '0' }, encoding: 'utf8', timeout: 60_000,
  });
  return JSON.parse(out.trim().split('\n').pop()!) as { records: number; arrayBuffers: number; pinned: number };
}

test('retention: 1,000 records kept from 64 KiB chunks hold kilobytes, not the 64 MB of chunks', () => {
  const clean = measure(false);
  const leaky = measure(true);
  assert.equal(clean.records, 1000);
  assert.equal(leaky.records, 1000);
  assert.ok(leaky.pinned > 0);
  // The leak control: views into the chunks keep whole chunks alive (tens of MB).
  assert.ok(leaky.arrayBuffers > 16 * 1024 * 1024, `the control leak must be visible: ${leaky.arrayBuffers} bytes`);
  assert.ok(clean.arrayBuffers < 8 * 1024 * 1024, `records pin ${clean.arrayBuffers} bytes of external memory`);
});
