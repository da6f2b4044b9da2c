/**
 * What every fuzz target shares: the target shape, byte-level mutations of
 * valid inputs, and chunk splitting for stream parsers.
 *
 * A target is one parser: an arbitrary of inputs (raw bytes and valid
 * messages mutated) and a check that throws when an invariant breaks. The
 * same target runs a few hundred cases in `npm test` (test/fuzz/parsers.test.ts)
 * and a million in `npm run fuzz` (test/fuzz/run.ts).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';

export interface FuzzTarget<T> {
  name: string;
  /** One line: what is fed to what. */
  description: string;
  arbitrary: fc.Arbitrary<T>;
  /** Throws when an invariant breaks; returns normally otherwise. */
  check(input: T): void;
}

/** A target with its input type erased, so targets of different inputs share one list. */
export type AnyFuzzTarget = FuzzTarget<unknown>;

export function defineTarget<T>(target: FuzzTarget<T>): AnyFuzzTarget {
  return target as unknown as AnyFuzzTarget;
}

export function propertyOf(target: AnyFuzzTarget): fc.IProperty<[unknown]> {
  return fc.property(target.arbitrary, (input) => target.check(input));
}

/** Asserts `err` is one of the errors a parser documents; anything else is a bug and is rethrown. */
export function expectDocumented(err: unknown, ...allowed: (abstract new (...args: never[]) => Error)[]): void {
  if (allowed.some((kind) => err instanceof kind)) return;
  throw err;
}

// ---------------------------------------------------------------- byte mutations

/** Byte strings that break parsers more often than random bytes do. */
export const NASTY_TOKENS: readonly string[] = [
  '\0', '\n', '\r', '\r\n', ' ', '  ', '"', '\\', '[', ']', '=', '<', '>', '-', ':', '{', '}', ',',
  '0', '9', '999999999', '9999999999', '4294967296', '-1', '00', '1e400', 'NaN',
  '\uFEFF', '\uFFFD', '\u00ff', '\u2028',
];

const NASTY_BYTES: readonly Buffer[] = [
  ...NASTY_TOKENS.map((s) => Buffer.from(s, 'utf8')),
  Buffer.from([0xff]), Buffer.from([0xc3]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xf4, 0x90, 0x80, 0x80]),
  Buffer.from([0x80]), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
];

export type ByteMutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'flip'; at: number; mask: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'duplicate'; at: number; length: number };

export function byteMutationArb(extraTokens: readonly string[] = []): fc.Arbitrary<ByteMutation> {
  const tokens = [...NASTY_BYTES, ...extraTokens.map((s) => Buffer.from(s, 'utf8'))];
  const insertion = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...tokens).map((b) => new Uint8Array(b)) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 16 }) },
  );
  return fc.oneof(
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }),
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: insertion }) },
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
    fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 32 }) }),
  );
}

export function applyMutation(input: Buffer, m: ByteMutation): Buffer {
  const at = m.at % (input.length + 1);
  switch (m.kind) {
    case 'truncate': return input.subarray(0, at);
    case 'flip': {
      if (input.length === 0) return input;
      const out = Buffer.from(input);
      const i = m.at % input.length;
      out[i] = out[i]! ^ m.mask;
      return out;
    }
    case 'insert': return Buffer.concat([input.subarray(0, at), m.bytes, input.subarray(at)]);
    case 'delete': return Buffer.concat([input.subarray(0, at), input.subarray(at + m.length)]);
    case 'duplicate': return Buffer.concat([input.subarray(0, at + m.length), input.subarray(at)]);
  }
}

/** `base` with 0-4 byte mutations applied (0: the valid input itself, for round trips). */
export function mutated(base: fc.Arbitrary<Buffer>, extraTokens: readonly string[] = []): fc.Arbitrary<Buffer> {
  return fc.tuple(base, fc.array(byteMutationArb(extraTokens), { maxLength: 4 }))
    .map(([bytes, mutations]) => mutations.reduce(applyMutation, bytes));
}

/** Arbitrary bytes, biased to the tokens a parser cares about. */
export function noisyBytes(extraTokens: readonly string[] = [], maxLength = 256): fc.Arbitrary<Buffer> {
  const tokens = [...NASTY_BYTES, ...extraTokens.map((s) => Buffer.from(s, 'utf8'))];
  return fc.oneof(
    fc.uint8Array({ maxLength }).map((b) => Buffer.from(b)),
    fc.array(fc.oneof(fc.constantFrom(...tokens), fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b))), { maxLength: 40 })
      .map((parts) => Buffer.concat(parts)),
  );
}

// ---------------------------------------------------------------- streams

/** Cut points for feeding a stream in chunks (reduced modulo the stream length). */
export const cutsArb = fc.array(fc.nat(), { maxLength: 12 });

export function split(stream: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of [...points, stream.length]) {
    // A copy, as a socket delivers fresh buffers: a parser keeping a view would be caught by the comparison.
    chunks.push(Buffer.from(stream.subarray(from, p)));
    from = p;
  }
  return chunks;
}

/** Total characters of a structured-data-like value: keys and strings, recursively. */
export function textSize(value: unknown): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'string') return value.length;
  if (typeof value !== 'object') return String(value).length;
  let n = 0;
  for (const [k, v] of Object.entries(value)) n += k.length + textSize(v);
  return n;
}

export function assertBounded(what: string, size: number, limit: number): void {
  assert.ok(size <= limit, `${what}: ${size} exceeds the bound ${limit}`);
}
