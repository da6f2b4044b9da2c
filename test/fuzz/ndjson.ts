/**
 * Fuzz target for the newline-delimited ingest endpoint (`POST /v1/ingest`),
 * fed through decodeBody exactly as the HTTP source feeds it.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { applyMutation, byteMutationArb, defineTarget, noisyBytes } from './common.js';
import { decodeChecked, nastyJson, serializeJson } from './otlp.js';

const SEVERITIES: Record<string, number> = { err: 3, warning: 4, info: 6, debug: 7, EMERG: 0 };

interface Line {
  /** The line as sent. */
  text: string;
  /** What a valid line must decode to (null: not checked). */
  expected: { msg: string; hostname: string | null; app: string | null; severity: number | null; ts: string | null } | null;
}

const KNOWN_FIELDS = new Set(['msg', 'message', 'hostname', 'host', 'app', 'service', 'procid', 'pid', 'msgid', 'severity', 'level', 'facility', 'ts', 'timestamp', 'time']);
const fieldText = fc.string({ unit: 'binary', maxLength: 30 });
const isoTime = fc.integer({ min: 0, max: 4102444800000 }).map((ms) => new Date(ms).toISOString());

const jsonLine: fc.Arbitrary<Line> = fc.record({
  msg: fieldText,
  hostname: fc.option(fieldText),
  app: fc.option(fieldText),
  severity: fc.option(fc.oneof(fc.integer({ min: 0, max: 7 }), fc.constantFrom(...Object.keys(SEVERITIES)))),
  ts: fc.option(fc.oneof(isoTime, fc.integer({ min: 0, max: 4102444800000 }))),
  extra: fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => !KNOWN_FIELDS.has(k)), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
}).map((f) => {
  const obj: Record<string, unknown> = {};
  // Extra fields first, so a known field of the same name overrides them.
  for (const [k, v] of Object.entries(f.extra)) Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
  Object.assign(obj, { msg: f.msg, hostname: f.hostname, app: f.app, severity: f.severity, ts: f.ts });
  const severity = f.severity === null ? null : typeof f.severity === 'number' ? f.severity : SEVERITIES[f.severity]!;
  const ts = f.ts === null ? null : typeof f.ts === 'number' ? new Date(f.ts).toISOString() : f.ts;
  return { text: JSON.stringify(obj), expected: { msg: f.msg, hostname: f.hostname, app: f.app, severity, ts } };
});

/** Plain text lines: the whole line is the message (what makes a line "blank" or JSON is excluded). */
const textLine: fc.Arbitrary<Line> = fc.string({ unit: 'binary', minLength: 1, maxLength: 60 })
  .filter((s) => !s.includes('\n') && !s.startsWith('{') && !s.endsWith('\r') && s.trim() !== '')
  .map((text) => ({ text, expected: { msg: text, hostname: null, app: null, severity: null, ts: null } }));

/** A JSON line with one field given a hostile value. */
const hostileLine: fc.Arbitrary<Line> = fc.record({
  field: fc.constantFrom('msg', 'message', 'hostname', 'app', 'pid', 'severity', 'level', 'facility', 'ts', 'timestamp', 'time', 'extra', '__proto__'),
  value: nastyJson,
}).map(({ field, value }) => ({ text: `{${JSON.stringify(field)}:${serializeJson(value)}}`, expected: null }));

interface NdjsonCase { body: Buffer; lines: Line[] | null }

const NDJSON_TOKENS = ['\n', '\r\n', '{', '}', '"', ':', '"msg"', '"ts"', '1e400', '\\u0000', '\\ud800'];

export const ndjsonCases: fc.Arbitrary<NdjsonCase> = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(
    fc.array(fc.oneof({ weight: 3, arbitrary: jsonLine }, { weight: 2, arbitrary: textLine }, { weight: 2, arbitrary: hostileLine }), { minLength: 1, maxLength: 6 }),
    fc.constantFrom('\n', '\r\n'),
    fc.array(byteMutationArb(NDJSON_TOKENS), { maxLength: 3 }),
  ).map(([lines, eol, ms]) => {
    const body = ms.reduce(applyMutation, Buffer.from(lines.map((l) => l.text).join(eol), 'utf8'));
    return { body, lines: ms.length === 0 && lines.every((l) => l.expected !== null) ? lines : null };
  }) },
  { weight: 1, arbitrary: noisyBytes(NDJSON_TOKENS).map((body) => ({ body, lines: null })) },
);

export const ndjsonTarget = defineTarget<NdjsonCase>({
  name: 'http-ndjson',
  description: 'NDJSON bodies (JSON and text lines, hostile field values, deep nesting, bytes mutated, raw) → decodeBody',
  arbitrary: ndjsonCases,
  check(input) {
    const records = decodeChecked('ndjson', input.body, false);
    if (records !== null) assert.ok(records.length <= input.body.toString('utf8').split('\n').length, 'at most one record per line');
    if (input.lines === null) return;
    assert.ok(records !== null, 'valid lines decode');
    assert.equal(records.length, input.lines.length);
    input.lines.forEach((line, i) => {
      const rec = records[i]!;
      const want = line.expected!;
      assert.equal(rec.msg, want.msg);
      assert.equal(rec.hostname, want.hostname);
      assert.equal(rec.app, want.app);
      if (want.severity !== null) assert.equal(rec.severity, want.severity);
      if (want.ts !== null) assert.equal(rec.ts, want.ts);
    });
  },
});
