import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatFrame, nextTxnr, RelpCommand, RelpFrameParser, type RelpFrameError } from '../../../src/sources/relp/framing.js';

interface Parsed {
  txnr: number;
  command: RelpCommand;
  /** The command's name for RelpCommand.Other. */
  other: string;
  data: string;
}

interface Outcome {
  frames: Parsed[];
  error: RelpFrameError | null;
  errorBytes: number;
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

function parse(chunks: Buffer[], maxData = 1024, finish = true): Outcome {
  const frames: Parsed[] = [];
  const parser = new RelpFrameParser(maxData, (txnr, command, buf, start, end) => {
    frames.push({ txnr, command, other: command === RelpCommand.Other ? parser.otherCommand : '', data: buf.toString('latin1', start, end) });
  });
  let ok = true;
  for (const chunk of chunks) {
    ok = parser.push(chunk);
    if (!ok) break;
  }
  if (ok && finish) parser.finish();
  return { frames, error: parser.error, errorBytes: parser.errorBytes };
}

const frame = (txnr: number, command: RelpCommand, data = '', other = ''): Parsed => ({ txnr, command, other, data });

const OFFERS = 'relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog';

const cases: { name: string; input: string; frames: Parsed[]; error?: RelpFrameError; errorBytes?: number; maxData?: number }[] = [
  { name: 'open with offers (as librelp sends it)', input: `1 open 86 ${OFFERS}\n`, frames: [frame(1, RelpCommand.Open, OFFERS)] },
  { name: 'syslog', input: '2 syslog 9 <13>hello\n', frames: [frame(2, RelpCommand.Syslog, '<13>hello')] },
  { name: 'close without data', input: '3 close 0\n', frames: [frame(3, RelpCommand.Close)] },
  { name: 'rsp', input: '4 rsp 6 200 OK\n', frames: [frame(4, RelpCommand.Rsp, '200 OK')] },
  { name: 'serverclose hint on txnr 0', input: '0 serverclose 0\n', frames: [frame(0, RelpCommand.ServerClose)] },
  { name: 'a command this server does not know', input: '5 starttls 0\n', frames: [frame(5, RelpCommand.Other, '', 'starttls')] },
  { name: 'upper-case letters are a different command', input: '5 SYSLOG 1 x\n', frames: [frame(5, RelpCommand.Other, 'x', 'SYSLOG')] },
  { name: 'DATA with LF, SP and digits inside is taken by length', input: '6 syslog 11 1 syslog 0\n\n', frames: [frame(6, RelpCommand.Syslog, '1 syslog 0\n')] },
  { name: 'several frames back to back', input: '1 syslog 1 a\n2 syslog 2 bc\n3 close 0\n',
    frames: [frame(1, RelpCommand.Syslog, 'a'), frame(2, RelpCommand.Syslog, 'bc'), frame(3, RelpCommand.Close)] },
  { name: 'leading zeros in numbers', input: '007 syslog 003 abc\n', frames: [frame(7, RelpCommand.Syslog, 'abc')] },
  { name: 'largest txnr and a 32-letter command', input: `999999999 ${'x'.repeat(32)} 0\n`, frames: [frame(999_999_999, RelpCommand.Other, '', 'x'.repeat(32))] },
  { name: 'DATA of exactly the maximum', input: `1 syslog 8 ${'z'.repeat(8)}\n`, maxData: 8, frames: [frame(1, RelpCommand.Syslog, 'z'.repeat(8))] },

  { name: 'non-numeric txnr', input: 'abc syslog 1 x\n', frames: [], error: 'bad_txnr' },
  { name: 'garbage after a good frame', input: '1 syslog 1 a\nGET / HTTP/1.1\r\n', frames: [frame(1, RelpCommand.Syslog, 'a')], error: 'bad_txnr' },
  { name: 'missing txnr', input: ' syslog 1 x\n', frames: [], error: 'bad_txnr' },
  { name: 'ten-digit txnr', input: '1234567890 syslog 1 x\n', frames: [], error: 'bad_txnr' },
  { name: 'txnr then LF', input: '1\n', frames: [], error: 'bad_txnr' },
  { name: 'command with a digit', input: '1 sys1og 1 x\n', frames: [], error: 'bad_command' },
  { name: 'empty command', input: '1  1 x\n', frames: [], error: 'bad_command' },
  { name: '33-letter command', input: `1 ${'x'.repeat(33)} 0\n`, frames: [], error: 'bad_command' },
  { name: 'non-numeric DATALEN', input: '1 syslog x\n', frames: [], error: 'bad_datalen' },
  { name: 'missing DATALEN', input: '1 syslog \n', frames: [], error: 'bad_datalen' },
  { name: 'negative DATALEN', input: '1 syslog -1 x\n', frames: [], error: 'bad_datalen' },
  { name: 'ten-digit DATALEN', input: '1 syslog 1000000000 x\n', frames: [], error: 'bad_datalen' },
  { name: 'DATALEN > 0 without DATA', input: '1 syslog 5\n', frames: [], error: 'bad_datalen' },
  { name: 'DATALEN 0 followed by a space', input: '1 close 0 \n', frames: [], error: 'bad_trailer' },
  { name: 'DATALEN shorter than DATA', input: '1 syslog 3 hello\n', frames: [], error: 'bad_trailer' },
  { name: 'DATALEN longer than DATA', input: '1 syslog 7 hello\n2 close 0\n', frames: [], error: 'bad_trailer' },
  { name: 'oversized DATALEN is refused before any DATA is read', input: '1 syslog 999999999 ', maxData: 1024, frames: [], error: 'too_large', errorBytes: 999_999_999 },
  { name: 'DATA one byte over the maximum', input: `1 syslog 9 ${'z'.repeat(9)}\n`, maxData: 8, frames: [], error: 'too_large', errorBytes: 9 },
  { name: 'stream ends inside DATA', input: '1 syslog 1 a\n2 syslog 5 ab', frames: [frame(1, RelpCommand.Syslog, 'a')], error: 'truncated' },
  { name: 'stream ends inside the header', input: '1 syslog 1 a\n2 sys', frames: [frame(1, RelpCommand.Syslog, 'a')], error: 'truncated' },
  { name: 'stream ends before the trailer', input: '1 syslog 1 a', frames: [], error: 'truncated' },
];

for (const c of cases) {
  test(`relp framing: ${c.name}`, () => {
    const whole = parse([b(c.input)], c.maxData);
    const byteByByte = parse([...b(c.input)].map((byte) => Buffer.from([byte])), c.maxData);
    for (const outcome of [whole, byteByByte]) {
      assert.deepEqual(outcome.frames, c.frames);
      assert.equal(outcome.error, c.error ?? null);
      if (c.errorBytes !== undefined) assert.equal(outcome.errorBytes, c.errorBytes);
    }
  });
}

test('relp framing: after an error, push() keeps returning false and hands out nothing', () => {
  const frames: number[] = [];
  const parser = new RelpFrameParser(64, (txnr) => frames.push(txnr));
  assert.equal(parser.push(b('x')), false);
  assert.equal(parser.push(b('1 syslog 1 a\n')), false);
  assert.equal(parser.finish(), false);
  assert.deepEqual(frames, []);
});

test('relp framing: halt() stops at the current frame; the rest of the chunk and later ones are ignored', () => {
  const frames: number[] = [];
  const parser: RelpFrameParser = new RelpFrameParser(64, (txnr) => {
    frames.push(txnr);
    if (txnr === 2) parser.halt();
  });
  assert.equal(parser.push(b('1 syslog 1 a\n2 close 0\n3 syslog 1 c\n4 sys')), true);
  assert.equal(parser.push(b('log 1 d\n')), true);
  assert.equal(parser.finish(), true, 'a halted parser does not report the ignored partial frame');
  assert.deepEqual(frames, [1, 2]);
});

test('relp framing: DATA that spans chunks is copied out, so the chunks can be reused at once', () => {
  const kept: Buffer[] = [];
  const chunks = [b('1 syslog 10 01234'), b('56789'), b('\n2 syslog 3 a'), b('bc\n')];
  const parser = new RelpFrameParser(64, (_txnr, _command, buf, start, end) => {
    // Keep the handed-out buffer only when it is not one of the chunks: the parser owns it.
    if (!chunks.includes(buf)) kept.push(buf.subarray(start, end));
  });
  for (const chunk of chunks) {
    assert.equal(parser.push(chunk), true);
    chunk.fill(0x21);
  }
  assert.deepEqual(kept.map((k) => k.toString('latin1')), ['0123456789', 'abc']);
  assert.equal(parser.heldBytes, 0);
});

test('relp framing: a frame wholly inside one chunk is handed out without a copy', () => {
  const chunk = b('1 syslog 5 hello\n');
  let handed: Buffer | null = null;
  new RelpFrameParser(64, (_txnr, _command, buf) => { handed = buf; }).push(chunk);
  assert.equal(handed, chunk);
});

test('relp framing: txnr wraps from 999,999,999 to 1', () => {
  assert.equal(nextTxnr(1), 2);
  assert.equal(nextTxnr(999_999_998), 999_999_999);
  assert.equal(nextTxnr(999_999_999), 1);
});

test('relp framing: formatFrame writes DATA only when there is some', () => {
  assert.equal(formatFrame(0, 'serverclose', ''), '0 serverclose 0\n');
  assert.equal(formatFrame(7, 'rsp', '200 OK'), '7 rsp 6 200 OK\n');
  assert.equal(formatFrame(8, 'rsp', '500 é'), '8 rsp 6 500 é\n', 'DATALEN counts bytes, not characters');
});

const commandArb = fc.oneof(
  fc.constantFrom('syslog', 'open', 'close', 'rsp', 'serverclose'),
  fc.stringMatching(/^[a-zA-Z]{1,32}$/),
);
const frameArb = fc.record({
  txnr: fc.integer({ min: 0, max: 999_999_999 }),
  command: commandArb,
  data: fc.uint8Array({ maxLength: 300 }),
});

function encode(f: { txnr: number; command: string; data: Uint8Array }): Buffer {
  const header = f.data.length === 0 ? `${f.txnr} ${f.command} 0` : `${f.txnr} ${f.command} ${f.data.length} `;
  return Buffer.concat([b(header), f.data, b('\n')]);
}

const NAMES = new Map<string, RelpCommand>([
  ['syslog', RelpCommand.Syslog], ['open', RelpCommand.Open], ['close', RelpCommand.Close], ['rsp', RelpCommand.Rsp], ['serverclose', RelpCommand.ServerClose],
]);

test('relp framing: any frames, split at any byte boundaries, parse to the same frames', () => {
  fc.assert(fc.property(fc.array(frameArb, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), (frames, cuts) => {
    const stream = Buffer.concat(frames.map(encode));
    const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((x, y) => x - y);
    const chunks: Buffer[] = [];
    let from = 0;
    for (const p of [...points, stream.length]) {
      chunks.push(Buffer.from(stream.subarray(from, p)));
      from = p;
    }
    const outcome = parse(chunks, 300);
    assert.equal(outcome.error, null);
    assert.deepEqual(outcome.frames, frames.map((f) => {
      const known = NAMES.get(f.command);
      return frame(f.txnr, known ?? RelpCommand.Other, Buffer.from(f.data).toString('latin1'), known === undefined ? f.command : '');
    }));
  }), { numRuns: 500 });
});

test('relp framing: any bytes at all end in frames or a named error, never an exception', () => {
  fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (raw) => {
    const outcome = parse(raw.map((r) => Buffer.from(r)), 32);
    for (const f of outcome.frames) assert.ok(f.data.length <= 32, 'no frame carries more than the maximum DATA');
  }), { numRuns: 500 });
});
