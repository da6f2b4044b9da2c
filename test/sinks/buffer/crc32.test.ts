import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { crc32 } from '../../../src/sinks/buffer/crc32.js';

/** The definition, one bit at a time: slow, obviously right, shares nothing with the table-driven code. */
function crc32BitByBit(data: Uint8Array, previous = 0): number {
  let crc = ~previous >>> 0;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return ~crc >>> 0;
}

test('crc32: the standard check values', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  assert.equal(crc32(Buffer.alloc(0)), 0);
  assert.equal(crc32(Buffer.from('The quick brown fox jumps over the lazy dog')), 0x414fa339);
});

test('crc32 property: equals the bit-by-bit definition for any bytes and any alignment, and chains', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 300 }), (bytes, split) => {
    const cut = Math.min(split, bytes.length);
    assert.equal(crc32(bytes), crc32BitByBit(bytes));
    assert.equal(crc32(bytes.subarray(cut), crc32(bytes.subarray(0, cut))), crc32(bytes));
  }), { numRuns: 500 });
});

test('crc32: agrees with zlib where this Node has it (20.15+), so other tools can verify the files', (t) => {
  const native = (zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
  if (native === undefined) {
    t.skip('node:zlib has no crc32 here');
    return;
  }
  fc.assert(fc.property(fc.uint8Array({ maxLength: 5000 }), (bytes) => crc32(bytes) === native(bytes)), { numRuns: 200 });
});
