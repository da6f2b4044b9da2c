import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SyslogFramer, type FrameErrorReason } from '../../../src/sources/syslog/framing.js';

interface Framed {
  frames: string[];
  error: FrameErrorReason | null;
}

function frame(chunks: Buffer[], maxFrame = 1024, finish = true): Framed {
  const frames: string[] = [];
  const framer = new SyslogFramer(maxFrame, (buf, start, end) => frames.push(buf.toString('latin1', start, end)));
  let ok = true;
  for (const chunk of chunks) {
    ok = framer.push(chunk);
    if (!ok) break;
  }
  if (ok && finish) framer.finish();
  return { frames, error: framer.error };
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

const cases: { name: string; input: string; frames: string[]; error?: FrameErrorReason; maxFrame?: number }[] = [
  { name: 'LF-terminated', input: '<13>a\n<14>b\n', frames: ['<13>a', '<14>b'] },
  { name: 'octet-counted', input: '5 <13>a5 <14>b', frames: ['<13>a', '<14>b'] },
  { name: 'octet count with LF inside the message', input: '7 <13>a\nb', frames: ['<13>a\nb'] },
  { name: 'mixed framing on one connection', input: '5 <13>a<14>b\n5 <15>c', frames: ['<13>a', '<14>b', '<15>c'] },
  { name: 'blank lines and CRLF separators are skipped', input: '\n\r\n<13>a\r\n\n', frames: ['<13>a\r'] },
  { name: 'LF after an octet-counted frame', input: '5 <13>a\n5 <14>b\n', frames: ['<13>a', '<14>b'] },
  { name: 'digits without a space start an LF frame', input: '2023-10-11 host msg\n', frames: ['2023-10-11 host msg'] },
  { name: 'a last line without LF is delivered at end of stream', input: '<13>a\n<14>b', frames: ['<13>a', '<14>b'] },
  { name: 'bare digits at end of stream are a line', input: '<13>a\n42', frames: ['<13>a', '42'] },
  { name: 'zero octet count', input: '<13>a\n0 x', frames: ['<13>a'], error: 'bad_octet_count' },
  { name: 'octet count above the maximum', input: '<13>a\n2000 x', frames: ['<13>a'], error: 'too_large' },
  { name: 'line above the maximum', input: `<13>a\n${'x'.repeat(1025)}\n<14>b\n`, frames: ['<13>a'], error: 'too_large' },
  { name: 'line of exactly the maximum', input: `${'x'.repeat(1024)}\n`, frames: ['x'.repeat(1024)] },
  { name: 'octet-counted frame truncated by end of stream', input: '5 <13>a10 <14>b', frames: ['<13>a'], error: 'truncated' },
  { name: 'ten digits are not a count', input: '1234567890 x\n', frames: ['1234567890 x'] },
];

for (const c of cases) {
  test(`framing: ${c.name}`, () => {
    const whole = frame([b(c.input)], c.maxFrame);
    assert.deepEqual(whole.frames, c.frames);
    assert.equal(whole.error, c.error ?? null);
    // One byte at a time must give the same result.
    const bytes = [...b(c.input)].map((x) => Buffer.from([x]));
    const split = frame(bytes, c.maxFrame);
    assert.deepEqual(split.frames, c.frames);
    assert.equal(split.error, c.error ?? null);
  });
}

test('framing: push() refuses further input after an error', () => {
  const frames: string[] = [];
  const framer = new SyslogFramer(16, (buf, s, e) => frames.push(buf.toString('latin1', s, e)));
  assert.equal(framer.push(b('99 x')), false);
  assert.equal(framer.push(b('<13>ok\n')), false);
  assert.deepEqual(frames, []);
});

test('framing: frames spanning chunks are copied, never views of the chunk', () => {
  const held: Buffer[] = [];
  const framer = new SyslogFramer(1024, (buf) => held.push(buf));
  // Unpooled chunks, as sockets deliver them (small Buffer.from() copies share one pool).
  const unpooled = (s: string): Buffer => {
    const buf = Buffer.alloc(s.length);
    buf.write(s, 'latin1');
    return buf;
  };
  const first = unpooled('<13>hello wo');
  const second = unpooled('rld\n12 <14>span');
  const third = unpooled('ning');
  framer.push(first);
  framer.push(second);
  framer.push(third);
  framer.finish();
  assert.equal(held.length, 2);
  for (const buf of held) {
    assert.notEqual(buf.buffer, first.buffer);
    assert.notEqual(buf.buffer, second.buffer);
    assert.notEqual(buf.buffer, third.buffer);
  }
  assert.deepEqual(held.map((x) => x.toString()), ['<13>hello world', '<14>spanning']);
});

// A message body for the property: printable bytes plus LF (only legal inside octet-counted frames).
const message = fc.string({ unit: fc.constantFrom(...'<>0123456789 abcxyz:[]=-"\\'.split('')), minLength: 1, maxLength: 60 })
  .filter((s) => !/^[\r\n\0]/.test(s) && !/^\d/.test(s));
const framed = fc.array(fc.tuple(message, fc.boolean(), fc.boolean()), { minLength: 1, maxLength: 20 });

test('framing property: any split of the stream yields the same frames', () => {
  fc.assert(fc.property(framed, fc.array(fc.nat(), { maxLength: 30 }), (messages, cuts) => {
    let stream = '';
    const expected: string[] = [];
    for (const [msg, octet, withLf] of messages) {
      const body = withLf && octet ? `${msg}\n${msg}` : msg;
      stream += octet ? `${Buffer.byteLength(body, 'latin1')} ${body}` : `${body}\n`;
      expected.push(body);
    }
    const bytes = b(stream);
    const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((x, y) => x - y);
    const chunks: Buffer[] = [];
    let last = 0;
    for (const p of points) {
      chunks.push(bytes.subarray(last, p));
      last = p;
    }
    chunks.push(bytes.subarray(last));
    const result = frame(chunks, 4096);
    assert.equal(result.error, null);
    assert.deepEqual(result.frames, expected);
  }), { numRuns: 500 });
});

test('framing: digits alone at the end of the stream obey a limit below the longest count (found by fuzzing)', () => {
  assert.deepEqual(frame([b('12345')], 3), { frames: [], error: 'too_large' });
  assert.deepEqual(frame([b('123')], 3), { frames: ['123'], error: null });
});
