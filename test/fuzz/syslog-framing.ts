/**
 * Fuzz target for RFC 6587 stream framing (octet counting and LF), fed in
 * arbitrary chunks the way a socket delivers them.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SyslogFramer, type FrameErrorReason } from '../../src/sources/syslog/framing.js';
import { applyMutation, byteMutationArb, cutsArb, defineTarget, noisyBytes, split } from './common.js';

const FRAME_ERRORS: readonly FrameErrorReason[] = ['too_large', 'bad_octet_count', 'truncated'];

export interface FramingCase {
  stream: Buffer;
  cuts: number[];
  maxFrame: number;
  /** Set for an unmutated stream of valid frames: the frames it must yield. */
  expected: string[] | null;
}

interface Outcome {
  frames: string[];
  error: FrameErrorReason | null;
}

/** Feed the chunks, checking after each push what must hold at every step. */
function run(chunks: readonly Buffer[], maxFrame: number): Outcome {
  const frames: string[] = [];
  const framer = new SyslogFramer(maxFrame, (buf, start, end) => {
    assert.ok(start >= 0 && start <= end && end <= buf.length, 'a frame lies inside its buffer');
    assert.ok(end - start <= maxFrame, `a frame of ${end - start} bytes passed a ${maxFrame}-byte limit`);
    frames.push(buf.toString('latin1', start, end));
  });
  let failed = false;
  for (const chunk of chunks) {
    const ok = framer.push(chunk);
    assert.equal(typeof ok, 'boolean');
    if (failed) assert.equal(ok, false, 'once failed, a framer stays failed');
    failed ||= !ok;
    assert.ok(framer.heldBytes <= maxFrame, `held ${framer.heldBytes} bytes with a ${maxFrame}-byte limit`);
    if (failed) break;
  }
  if (!failed) failed = !framer.finish();
  assert.equal(failed, framer.error !== null, 'push/finish return false exactly when an error is set');
  if (framer.error !== null) assert.ok(FRAME_ERRORS.includes(framer.error), `undocumented error ${framer.error}`);
  assert.equal(framer.heldBytes, 0, 'nothing is held once the stream is over');
  return { frames, error: framer.error };
}

function checkFraming(input: FramingCase): void {
  const whole = run([input.stream], input.maxFrame);
  const total = whole.frames.reduce((n, f) => n + f.length, 0);
  assert.ok(total <= input.stream.length, 'frames never hold more bytes than the stream');
  // The framing of a stream must not depend on how the network cut it.
  assert.deepEqual(run(split(input.stream, input.cuts), input.maxFrame), whole, 'chunked framing differs from whole');
  if (input.stream.length <= 64) {
    assert.deepEqual(run(split(input.stream, [...input.stream.keys()]), input.maxFrame), whole, 'byte-by-byte framing differs');
  }
  if (input.expected !== null) assert.deepEqual(whole, { frames: input.expected, error: null });
}

/** A frame body: syslog-ish text; LF-framed bodies cannot hold LF nor start like a count or a separator. */
const body = fc.string({ unit: fc.constantFrom(...'<>0123456789 abcxyz:[]=-"\\\0\r'.split('')), minLength: 1, maxLength: 60 });

const validStream = fc.array(fc.record({ text: body, octet: fc.boolean(), lfInside: fc.boolean() }), { minLength: 1, maxLength: 12 })
  .map((frames) => {
    let stream = '';
    const expected: string[] = [];
    for (const f of frames) {
      if (f.octet) {
        const text = f.lfInside ? `${f.text}\n${f.text}` : f.text;
        stream += `${Buffer.byteLength(text, 'latin1')} ${text}`;
        expected.push(text);
      } else {
        // An LF frame starts after any LF/CR/NUL separators, and a leading digit run followed by SP would be a count.
        const text = `x${f.text}`;
        stream += `${text}\n`;
        expected.push(text);
      }
    }
    return { stream: Buffer.from(stream, 'latin1'), expected };
  });

const FRAMING_TOKENS = ['0 ', '00 ', '1 ', '999999999 ', '9999999999 ', '123456789', '4096 ', '\n', '\r\n', '\0', ' '];

export const framingCases: fc.Arbitrary<FramingCase> = fc.record({
  base: fc.oneof(
    { weight: 3, arbitrary: fc.tuple(validStream, fc.array(byteMutationArb(FRAMING_TOKENS), { maxLength: 4 }))
      .map(([v, ms]) => ({ stream: ms.reduce(applyMutation, v.stream), expected: ms.length === 0 ? v.expected : null })) },
    { weight: 1, arbitrary: noisyBytes(FRAMING_TOKENS, 512).map((stream) => ({ stream, expected: null })) },
  ),
  cuts: cutsArb,
  maxFrame: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constant(4096)),
}).map(({ base, cuts, maxFrame }) => ({
  stream: base.stream, cuts, maxFrame,
  // A valid stream frames as generated only when every frame fits.
  expected: base.expected !== null && base.expected.every((f) => Buffer.byteLength(f, 'latin1') <= maxFrame) ? base.expected : null,
}));

export const syslogFramingTarget = defineTarget<FramingCase>({
  name: 'syslog-framing',
  description: 'RFC 6587 byte streams (octet-counted and LF frames, mutated, raw) in random chunks → SyslogFramer',
  arbitrary: framingCases,
  check: checkFraming,
});
