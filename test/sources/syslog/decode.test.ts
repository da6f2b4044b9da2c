/**
 * The frame-level JSON-safety scan (four bytes a step) says exactly what a
 * regular expression on the decoded text says, for any bytes at any offset.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { jsonSafeBytes } from '../../../src/sources/syslog/decode.js';

const NEEDS_JSON_ESCAPE = /[\u0000-\u001f"\\]/;

test('decode: jsonSafeBytes agrees with a regex on the decoded text, at every alignment', () => {
  // Mostly printable bytes, so that safe frames (the fast path) are common, with the hits and UTF-8 mixed in.
  const byte = fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
    { weight: 1, arbitrary: fc.constantFrom(0x00, 0x09, 0x0a, 0x1f, 0x22, 0x5c, 0x7f, 0x80, 0xc3, 0xa9, 0xff) },
  );
  fc.assert(fc.property(fc.array(byte, { maxLength: 64 }), fc.nat(7), fc.nat(7), (bytes, before, after) => {
    const buf = Buffer.concat([Buffer.alloc(before, 0x41), Buffer.from(bytes), Buffer.alloc(after, 0x41)]);
    const end = before + bytes.length;
    assert.equal(jsonSafeBytes(buf, before, end), !NEEDS_JSON_ESCAPE.test(buf.toString('utf8', before, end)));
  }), { numRuns: 3000 });
});

test('decode: each escape-needing byte is found in every position of a word', () => {
  for (const bad of [0x00, 0x1f, 0x22, 0x5c]) {
    for (let at = 0; at < 9; at++) {
      const buf = Buffer.from('abcdefghi');
      buf[at] = bad;
      assert.equal(jsonSafeBytes(buf, 0, buf.length), false, `0x${bad.toString(16)} at ${at}`);
    }
  }
  const utf8 = Buffer.from('caf\u00e9 \u00fcber ~ DEL\x7f');
  assert.equal(jsonSafeBytes(utf8, 0, utf8.length), true, 'UTF-8 and DEL need no escaping');
});
