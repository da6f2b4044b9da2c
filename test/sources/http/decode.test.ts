/**
 * Request bodies that used to escape as TypeError/RangeError (answered 500,
 * uncounted) — each found by the fuzz targets in test/fuzz — now a
 * BadBodyError (400), and what was right before still decodes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SourceInfo } from '../../../src/core/record.js';
import { BadBodyError, decodeBody } from '../../../src/sources/http/decode.js';
import { deeplyNestedProtobuf } from '../../fuzz/otlp.js';

const SOURCE = new SourceInfo('http', '127.0.0.1', 1);

const otlp = (body: unknown): Buffer => Buffer.from(JSON.stringify(body));
const record = (logRecord: unknown): Buffer => otlp({ resourceLogs: [{ scopeLogs: [{ logRecords: [logRecord] }] }] });
const deepArray = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);

const badBodies: [string, 'otlp' | 'ndjson', boolean, Buffer][] = [
  ['ndjson: ts past what a Date holds', 'ndjson', false, Buffer.from('{"ts":1e300}')],
  ['ndjson: a message nested deeper than JSON.stringify recurses', 'ndjson', false, Buffer.from(`{"msg":${deepArray(200_000)}}`)],
  ['ndjson: an extra field nested that deep', 'ndjson', false, Buffer.from(`{"x":${deepArray(200_000)}}`)],
  ['otlp: timeUnixNano as a number past what a Date holds', 'otlp', false, record({ timeUnixNano: 1e300 })],
  ['otlp: timeUnixNano nested deeper than JSON.stringify recurses', 'otlp', false, Buffer.from(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":${deepArray(200_000)}}]}]}]}`)],
  ['otlp: intValue nested deeper than String() recurses', 'otlp', false, Buffer.from(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"intValue":${deepArray(200_000)}}}]}]}]}`)],
  ['otlp: arrayValue.values not an array', 'otlp', false, record({ body: { arrayValue: { values: {} } } })],
  ['otlp: a null key-value in a kvlist', 'otlp', false, record({ body: { kvlistValue: { values: [null] } } })],
  ['otlp: scopeLogs not an array', 'otlp', false, otlp({ resourceLogs: [{ scopeLogs: 5 }] })],
  ['otlp: severityText an object', 'otlp', false, record({ severityText: { a: 1 } })],
  ['otlp protobuf: key-value lists nested 50,000 deep', 'otlp', true, deeplyNestedProtobuf(50_000, 'kvlist')],
];

for (const [name, kind, protobuf, body] of badBodies) {
  test(`http body: ${name} is a bad body (400), not an exception`, () => {
    assert.throws(() => decodeBody(kind, body, protobuf, SOURCE, ''), BadBodyError);
  });
}

test('http body: a kvlist key named __proto__ is kept as a key, not taken as a prototype', () => {
  const [rec] = decodeBody('otlp', record({ body: { kvlistValue: { values: [{ key: '__proto__', value: { stringValue: 'x' } }] } } }), false, SOURCE, '');
  assert.equal(rec?.msg, '{"__proto__":"x"}');
});

test('http body: nesting up to the limit still decodes, from JSON and protobuf alike', () => {
  const [fromProtobuf] = decodeBody('otlp', deeplyNestedProtobuf(20, 'array'), true, SOURCE, '');
  assert.equal(typeof fromProtobuf?.msg, 'string');
  const [fromJson] = decodeBody('otlp', record({ timeUnixNano: '1764244800000000000', severityText: 'WARN', body: { stringValue: 'fine' } }), false, SOURCE, '');
  assert.equal(fromJson?.msg, 'fine');
  assert.equal(fromJson?.ts, '2025-11-27T12:00:00.000Z');
});

/** A protobuf length-delimited field. */
function field(number: number, payload: Buffer): Buffer {
  const varint = (n: number): number[] => {
    const bytes: number[] = [];
    do {
      bytes.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
      n >>>= 7;
    } while (n > 0);
    return bytes;
  };
  return Buffer.concat([Buffer.from([...varint((number << 3) | 2), ...varint(payload.length)]), payload]);
}

test('http body: more records than max_records is a 413, from every encoding, before they are all built', () => {
  const tooMany = (kind: 'otlp' | 'ndjson', body: Buffer, protobuf: boolean) => {
    assert.throws(() => decodeBody(kind, body, protobuf, SOURCE, '', 3), (err: unknown) => err instanceof BadBodyError && err.status === 413);
    assert.equal(decodeBody(kind, body, protobuf, SOURCE, '', 4).length, 4, 'exactly the cap still decodes');
  };
  tooMany('ndjson', Buffer.from('a\nb\n{"msg":"c"}\nd\n'), false);
  tooMany('otlp', otlp({ resourceLogs: [{ scopeLogs: [{ logRecords: [{}, {}] }, { logRecords: [{}, {}] }] }] }), false);
  // Empty LogRecord messages: two bytes each, the cheapest records protobuf allows.
  const scope = field(2, Buffer.concat(Array.from({ length: 2 }, () => field(2, Buffer.alloc(0)))));
  tooMany('otlp', field(1, Buffer.concat([scope, scope])), true);
});
