/**
 * Fuzz target for RELP: the frame parser fed in random chunks, and what a
 * session does with each frame's DATA (the `open` offers, the syslog message).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SourceInfo } from '../../src/core/record.js';
import { RelpCommand, RelpFrameParser, type RelpFrameError } from '../../src/sources/relp/framing.js';
import { answerOpen, parseOffers } from '../../src/sources/relp/offers.js';
import { decodeSyslogFrame } from '../../src/sources/syslog/decode.js';
import { applyMutation, byteMutationArb, cutsArb, defineTarget, noisyBytes, split } from './common.js';

const RELP_ERRORS: readonly RelpFrameError[] = ['bad_txnr', 'bad_command', 'bad_datalen', 'too_large', 'bad_trailer', 'truncated'];
const SOURCE = new SourceInfo('relp', '127.0.0.1', 1);

interface Frame {
  txnr: number;
  command: RelpCommand;
  other: string;
  data: string;
}

export interface RelpCase {
  stream: Buffer;
  cuts: number[];
  maxData: number;
  /** Set for an unmutated stream: the frames it must yield. */
  expected: Frame[] | null;
  /** An `open` DATA checked on its own; a number stands for that many offered commands (too long to print). */
  offers: string | number;
}

interface Outcome {
  frames: Frame[];
  error: RelpFrameError | null;
}

function run(chunks: readonly Buffer[], maxData: number): Outcome {
  const frames: Frame[] = [];
  const parser: RelpFrameParser = new RelpFrameParser(maxData, (txnr, command, data, start, end) => {
    assert.ok(Number.isInteger(txnr) && txnr >= 0 && txnr <= 999_999_999, `txnr ${txnr}`);
    assert.ok(start >= 0 && start <= end && end <= data.length, 'DATA lies inside its buffer');
    assert.ok(end - start <= maxData, `DATA of ${end - start} bytes passed a ${maxData}-byte limit`);
    frames.push({ txnr, command, other: command === RelpCommand.Other ? parser.otherCommand : '', data: data.toString('latin1', start, end) });
    // What the session does with the DATA must never throw either.
    if (command === RelpCommand.Open) checkOffers(data.toString('utf8', start, end));
    if (command === RelpCommand.Syslog) decodeSyslogFrame(data, start, end, SOURCE, '2026-11-27T12:00:00.000Z', 0);
  });
  let failed = false;
  for (const chunk of chunks) {
    const ok = parser.push(chunk);
    if (failed) assert.equal(ok, false, 'once failed, a parser stays failed');
    failed ||= !ok;
    assert.ok(parser.heldBytes <= maxData, `held ${parser.heldBytes} bytes with a ${maxData}-byte limit`);
    if (failed) break;
  }
  if (!failed) failed = !parser.finish();
  assert.equal(failed, parser.error !== null, 'push/finish return false exactly when an error is set');
  if (parser.error !== null) assert.ok(RELP_ERRORS.includes(parser.error), `undocumented error ${parser.error}`);
  assert.equal(parser.heldBytes, 0, 'nothing is held once the stream is over');
  return { frames, error: parser.error };
}

function checkOffers(data: string): void {
  const offers = parseOffers(data);
  const answer = answerOpen(data);
  assert.ok(answer.response.length <= 200, 'the answer to open is short whatever was offered');
  assert.equal(answer.accepted, offers.relpVersion !== null && offers.commands.includes('syslog'));
  if (offers.relpVersion !== null) assert.ok(Number.isInteger(offers.relpVersion) && offers.relpVersion >= 0);
}

function checkRelp(input: RelpCase): void {
  checkOffers(typeof input.offers === 'number' ? `relp_version=0\ncommands=${'a,'.repeat(input.offers)}syslog` : input.offers);
  const whole = run([input.stream], input.maxData);
  assert.ok(whole.frames.reduce((n, f) => n + f.data.length, 0) <= input.stream.length, 'frames never hold more bytes than the stream');
  assert.deepEqual(run(split(input.stream, input.cuts), input.maxData), whole, 'chunked parsing differs from whole');
  if (input.stream.length <= 64) {
    assert.deepEqual(run(split(input.stream, [...input.stream.keys()]), input.maxData), whole, 'byte-by-byte parsing differs');
  }
  if (input.expected !== null) assert.deepEqual(whole, { frames: input.expected, error: null });
}

const KNOWN = new Map<string, RelpCommand>([
  ['syslog', RelpCommand.Syslog], ['open', RelpCommand.Open], ['close', RelpCommand.Close], ['rsp', RelpCommand.Rsp], ['serverclose', RelpCommand.ServerClose],
]);

/** Offers as librelp sends them, and the ways a peer can get them wrong. */
const offersData = fc.array(fc.oneof(
  fc.constantFrom('relp_version=0', 'relp_version=1', 'relp_version=', 'relp_version=x', 'relp_version=9999999999', 'commands=syslog',
    'commands=', 'commands=syslog,syslog', 'relp_software=librelp,1.2.3', '=', '', 'relp_version'),
  fc.integer({ min: 0, max: 300 }).map((n) => `commands=${'a,'.repeat(n)}syslog`),
  fc.string({ maxLength: 30 }),
), { maxLength: 6 }).map((lines) => lines.join('\n'));

/** Offers checked on their own: now and then more values than a function call takes arguments (a 1 MiB max_frame allows them). */
const offersCase = fc.oneof({ weight: 2000, arbitrary: offersData }, { weight: 1, arbitrary: fc.constant(400_000) });

const syslogData = fc.oneof(
  fc.constantFrom('<13>1 - host app - - - hello', '<13>Oct 11 22:14:15 host app[1]: hi', 'plain text'),
  fc.string({ unit: 'binary', maxLength: 80 }),
);

const frameArb = fc.oneof(
  { weight: 3, arbitrary: fc.record({ command: fc.constant('syslog'), data: syslogData }) },
  { weight: 1, arbitrary: fc.record({ command: fc.constant('open'), data: offersData }) },
  { weight: 1, arbitrary: fc.record({ command: fc.oneof(fc.constantFrom('close', 'rsp', 'serverclose'), fc.stringMatching(/^[a-zA-Z]{1,32}$/)), data: fc.string({ maxLength: 20 }) }) },
).chain((f) => fc.record({ txnr: fc.integer({ min: 0, max: 999_999_999 }), command: fc.constant(f.command), data: fc.constant(f.data) }));

const OPEN_FRAME = { txnr: 1, command: 'open', data: 'relp_version=0\nrelp_software=fuzz\ncommands=syslog' };

/** Frames, mostly as a session expects them (an accepted `open` first, txnr 1, 2, …), so mutations reach a live session. */
const validStream = fc.record({
  frames: fc.array(frameArb, { minLength: 1, maxLength: 8 }),
  opened: fc.boolean(),
  sequential: fc.boolean(),
}).map(({ frames: drawn, opened, sequential }) => {
  const frames = opened ? [OPEN_FRAME, ...drawn] : drawn;
  const parts: Buffer[] = [];
  const expected: Frame[] = [];
  for (const [i, drawnFrame] of frames.entries()) {
    const f = sequential ? { ...drawnFrame, txnr: i + 1 } : drawnFrame;
    const data = Buffer.from(f.data, 'utf8');
    parts.push(Buffer.from(data.length === 0 ? `${f.txnr} ${f.command} 0` : `${f.txnr} ${f.command} ${data.length} `, 'latin1'), data, Buffer.from('\n'));
    const known = KNOWN.get(f.command);
    expected.push({ txnr: f.txnr, command: known ?? RelpCommand.Other, other: known === undefined ? f.command : '', data: data.toString('latin1') });
  }
  return { stream: Buffer.concat(parts), expected };
});

const RELP_TOKENS = ['1 ', '0 ', '1234567890 ', 'syslog ', 'open ', 'rsp ', 'x'.repeat(33) + ' ', ' 0\n', ' 1 ', ' 999999999 ', ' 131073 ', ' -1 ', '\n', '  '];

export const relpCases: fc.Arbitrary<RelpCase> = fc.record({
  base: fc.oneof(
    { weight: 3, arbitrary: fc.tuple(validStream, fc.array(byteMutationArb(RELP_TOKENS), { maxLength: 4 }))
      .map(([v, ms]) => ({ stream: ms.reduce(applyMutation, v.stream), expected: ms.length === 0 ? v.expected : null })) },
    { weight: 1, arbitrary: noisyBytes(RELP_TOKENS, 512).map((stream) => ({ stream, expected: null })) },
  ),
  cuts: cutsArb,
  maxData: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constant(128 * 1024)),
  offers: offersCase,
}).map(({ base, cuts, maxData, offers }) => ({
  stream: base.stream, cuts, maxData, offers,
  expected: base.expected !== null && base.expected.every((f) => f.data.length <= maxData) ? base.expected : null,
}));

export const relpTarget = defineTarget<RelpCase>({
  name: 'relp',
  description: 'RELP streams (valid frames with txnr/command/DATALEN/trailer garbage, raw bytes) in random chunks → RelpFrameParser, offers, syslog DATA',
  arbitrary: relpCases,
  check: checkRelp,
});
