/**
 * The frame-level JSON-safety scan (four bytes a step) says exactly what a
 * regular expression on the decoded text says, for any bytes at any offset;
 * frames decoded as Latin-1 make the same records as UTF-8 decoding.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { LogRecord, SourceInfo } from '../../../src/core/record.js';
import { decodeSyslogFrame, jsonSafeBytes } from '../../../src/sources/syslog/decode.js';
import { parseSyslog } from '../../../src/sources/syslog/parse.js';

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

/** What decodeSyslogFrame made before ASCII frames were decoded as Latin-1: the UTF-8 text, parsed. */
function referenceDecode(buf: Buffer, source: SourceInfo, received: string, nowMs: number): LogRecord {
  let end = buf.length;
  while (end > 0 && (buf[end - 1] === 0x0a || buf[end - 1] === 0x0d || buf[end - 1] === 0x00)) end--;
  const text = buf.toString('utf8', 0, end);
  const rec = new LogRecord();
  rec.received = received;
  rec.source = source;
  rec.size = buf.length;
  rec.invalidUtf8 = !isUtf8(buf.subarray(0, end));
  rec.jsonSafe = !NEEDS_JSON_ESCAPE.test(text);
  parseSyslog(text, rec, nowMs);
  return rec;
}

const ASCII_ONLY = /^[\x00-\x7f]*$/;

test('decode property: Latin-1 decoding of ASCII frames (a BOM dropped or not) makes the record UTF-8 decoding makes', () => {
  const source = new SourceInfo('tcp', '127.0.0.1', 1);
  const nowMs = new Date(2026, 10, 27, 12, 0, 0).getTime();
  // Syslog-shaped ASCII pieces, with BOMs and other UTF-8 mixed in where the parser drops a BOM and where it does not.
  const piece = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('<13>1 ', '<165>1 ', '<34>', '<999>1 ', '2003-10-11T22:14:15.003Z ', '2026-11-27t10:00:00z ', '2003-09-31T22:14:15Z ',
      'Oct 11 22:14:15 ', 'Feb 29 00:00:00 ', 'host ', 'app ', 'su[12]: ', '1234 ', 'ID47 ', '- ', '-', ' ', '[id@1 k="v"] ', '[a b="\\]"]', '[x', 'msg text ', '"', '\\', '\t', '\u0000') },
    // The RFC 3164 variants real devices send: Cisco counters, marks, zones and colons, empty and glued TAGs, payloads after the hostname.
    { weight: 3, arbitrary: fc.constantFrom('<189>', '91: ', ': ', '*', '.', 'Mar  1 18:48:50.483', ' UTC', ' CET', ':', ' : ', 'router1: ', '2023 Oct 11 22:14:15: ',
      '%SYS-5-CONFIG_I: ', 'root[8539]:', 'xapi: ', '0002:: ', '{"a": ', 'k=v ', '<x/> ') },
    { weight: 3, arbitrary: fc.constantFrom('\uFEFF', '- - \uFEFF', ' \uFEFF') },
    { weight: 1, arbitrary: fc.constantFrom('é', '日本', '\uFFFD') },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 12 }) },
  );
  const frames = fc.oneof(
    fc.array(piece, { maxLength: 14 }).map((parts) => Buffer.from(parts.join(''))),
    // A valid RFC 5424 header, then a BOM where the MSG starts (as loggen sends), or somewhere in the MSG.
    fc.tuple(fc.constantFrom('', '\uFEFF'), fc.constantFrom('- ', '[id@1 k="v"] '), fc.string({ unit: 'grapheme-ascii', maxLength: 20 }),
      fc.constantFrom('\uFEFF', ''), fc.string({ unit: 'grapheme-ascii', maxLength: 20 }), fc.constantFrom('', '\n', '\r\n\u0000'))
      .map(([lead, sd, a, bom, b, trail]) => Buffer.from(`${lead}<13>1 2026-11-27T10:00:00Z h app - - ${sd}${bom}${a}${b}${trail}`)),
    fc.tuple(fc.string({ unit: 'grapheme-ascii', maxLength: 20 }), fc.string({ unit: 'grapheme-ascii', maxLength: 20 }))
      .map(([a, b]) => Buffer.from(`<13>1 - h a - - - ${a}\uFEFF${b}`)),
  );
  fc.assert(fc.property(frames, (buf) => {
    const rec = decodeSyslogFrame(buf, 0, buf.length, source, '2026-11-27T00:00:00.000Z', nowMs);
    const want = referenceDecode(buf, source, '2026-11-27T00:00:00.000Z', nowMs);
    if (rec.ascii) {
      assert.ok(rec.jsonSafe);
      for (const field of [rec.ts, rec.hostname, rec.app, rec.procid, rec.msgid, rec.msg, JSON.stringify(rec.sd)]) {
        assert.ok(ASCII_ONLY.test(field ?? ''), `ascii, yet ${JSON.stringify(field)}`);
      }
    }
    want.ascii = rec.ascii;
    assert.deepStrictEqual(rec, want);
  }), { numRuns: 5000 });
});

test('decode: loggen\'s frames (a BOM before MSG) and plain ASCII frames are ASCII records; a BOM inside MSG is kept', () => {
  const source = new SourceInfo('tcp', '127.0.0.1', 1);
  const decode = (text: string): LogRecord => {
    const buf = Buffer.from(text);
    return decodeSyslogFrame(buf, 0, buf.length, source, '2026-11-27T00:00:00.000Z', 0);
  };
  const loggen = decode('<38>1 2026-11-27T19:59:38+00:00 localhost prg00000 1234 - - \uFEFFseq: 0000000001, thread: 0000 PADD\n');
  assert.equal(loggen.ascii, true);
  assert.equal(loggen.msg, 'seq: 0000000001, thread: 0000 PADD');
  assert.equal(decode('<13>1 - h a - - - plain').ascii, true);
  assert.equal(decode('\uFEFF<13>1 - h a - - - plain').ascii, true);
  const kept = decode('<13>1 - h a - - - x\uFEFFy');
  assert.equal(kept.ascii, false);
  assert.equal(kept.msg, 'x\uFEFFy');
  const bsd = decode('<13>Oct 11 22:14:15 host app: \uFEFFx');
  assert.equal(bsd.ascii, false);
  assert.equal(bsd.msg, '\uFEFFx');
  assert.equal(decode('<13>1 - h a - - - caf\u00e9').ascii, false);
});
