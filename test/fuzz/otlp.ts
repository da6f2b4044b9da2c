/**
 * Fuzz targets for OTLP/HTTP logs bodies, JSON and protobuf, fed through
 * decodeBody exactly as the HTTP source feeds them. Valid requests are
 * generated as the OTLP/JSON shape the protobuf decoder produces, so one
 * model serves both encodings and a protobuf round trip can be checked.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SourceInfo, type LogRecord } from '../../src/core/record.js';
import { BadBodyError, decodeBody } from '../../src/sources/http/decode.js';
import { decodeOtlpProtobuf, type OtlpAnyValue, type OtlpKeyValue, type OtlpLogRecord, type OtlpLogsRequest } from '../../src/sources/http/otlp.js';
import { applyMutation, assertBounded, byteMutationArb, defineTarget, expectDocumented, noisyBytes } from './common.js';

const SOURCE = new SourceInfo('http', '127.0.0.1', 1);
const RECEIVED = '2026-11-27T12:00:00.000Z';

/** The outcome every body must have: records, or a BadBodyError (answered 400). Returns null for the latter. */
export function decodeChecked(kind: 'otlp' | 'ndjson', body: Buffer, protobuf: boolean): LogRecord[] | null {
  let records: LogRecord[];
  try {
    records = decodeBody(kind, body, protobuf, SOURCE, RECEIVED);
  } catch (err) {
    expectDocumented(err, BadBodyError);
    return null;
  }
  // Output grows at most linearly with the input: a record needs at least two bytes of body,
  // and no value expands by more than hex-encoding bytes or `null` for an empty message.
  assertBounded('records', records.length, body.length / 2 + 1);
  let text = 0;
  for (const rec of records) {
    assert.equal(typeof rec.msg, 'string');
    assert.ok(Number.isInteger(rec.severity) && rec.severity >= 0 && rec.severity <= 7, `severity ${rec.severity}`);
    assert.ok(Number.isInteger(rec.facility) && rec.facility >= 0 && rec.facility <= 23, `facility ${rec.facility}`);
    assert.ok(rec.ts === RECEIVED || Number.isFinite(Date.parse(rec.ts)), `ts ${rec.ts}`);
    for (const field of [rec.hostname, rec.app, rec.procid, rec.msgid]) assert.ok(field === null || typeof field === 'string');
    text += rec.msg.length;
  }
  assertBounded('message text', text, 4 * body.length + 64);
  return records;
}

// ---------------------------------------------------------------- the model

/** Plain objects, as JSON.parse and the decoder make them. */
const NO_NULL_PROTO = { noNullPrototype: true } as const;
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String);
const hex = (maxBytes: number): fc.Arbitrary<string> => fc.uint8Array({ maxLength: maxBytes }).map((b) => Buffer.from(b).toString('hex'));
const key = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('host.name', 'service.name', 'process.pid', '__proto__', 'constructor'));

const { anyValue } = fc.letrec<{ anyValue: OtlpAnyValue; keyValue: OtlpKeyValue }>((tie) => ({
  anyValue: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    fc.record({ stringValue: fc.string({ unit: 'binary', maxLength: 40 }) }, NO_NULL_PROTO),
    fc.record({ boolValue: fc.boolean() }, NO_NULL_PROTO),
    fc.record({ intValue: fc.maxSafeNat() }, NO_NULL_PROTO),
    fc.record({ doubleValue: fc.double({ noNaN: true, noDefaultInfinity: true }) }, NO_NULL_PROTO),
    fc.record({ arrayValue: fc.record({ values: fc.array(tie('anyValue'), { maxLength: 3 }) }, NO_NULL_PROTO) }, NO_NULL_PROTO),
    fc.record({ kvlistValue: fc.record({ values: fc.array(tie('keyValue'), { maxLength: 3 }) }, NO_NULL_PROTO) }, NO_NULL_PROTO),
    fc.record({ bytesValue: hex(8) }, NO_NULL_PROTO),
    fc.constant({}),
  ),
  keyValue: fc.record({ key, value: tie('anyValue') }, { requiredKeys: ['key'], noNullPrototype: true }),
}));
const attributes = fc.array(fc.record({ key, value: anyValue }, { requiredKeys: ['key'], noNullPrototype: true }), { maxLength: 3 });

const logRecord: fc.Arbitrary<OtlpLogRecord> = fc.record({
  timeUnixNano: u64, observedTimeUnixNano: u64,
  severityNumber: fc.oneof(fc.integer({ min: 0, max: 30 }), fc.maxSafeNat()),
  severityText: fc.string({ maxLength: 10 }),
  body: anyValue, attributes,
  traceId: hex(16), spanId: hex(8), eventName: fc.string({ maxLength: 10 }),
}, { requiredKeys: ['attributes'], noNullPrototype: true });

const request: fc.Arbitrary<OtlpLogsRequest> = fc.record({
  resourceLogs: fc.array(fc.record({
    resource: fc.record({ attributes }, { noNullPrototype: true }),
    scopeLogs: fc.array(fc.record({
      scope: fc.record({ name: fc.string({ maxLength: 10 }), version: fc.string({ maxLength: 10 }) }, { requiredKeys: [], noNullPrototype: true }),
      logRecords: fc.array(logRecord, { maxLength: 3 }),
    }, { requiredKeys: ['logRecords'], noNullPrototype: true }), { maxLength: 3 }),
  }, { requiredKeys: ['scopeLogs'], noNullPrototype: true }), { maxLength: 3 }),
});

// ---------------------------------------------------------------- protobuf encoding of the model

/** A varint of a non-negative integer up to 2^53 (numbers, not BigInt: this runs millions of times). */
function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

class Writer {
  readonly bytes: number[] = [];
  tag(field: number, wire: number): void { this.bytes.push(...varint(field * 8 + wire)); }
  varintField(field: number, n: number): void { this.tag(field, 0); this.bytes.push(...varint(n)); }
  fixed64(field: number, decimal: string): void {
    this.tag(field, 1);
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(decimal));
    this.bytes.push(...b);
  }
  double(field: number, v: number): void {
    this.tag(field, 1);
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    this.bytes.push(...b);
  }
  bytesField(field: number, data: Uint8Array | number[]): void {
    this.tag(field, 2);
    this.bytes.push(...varint(data.length));
    for (const x of data) this.bytes.push(x);
  }
  string(field: number, s: string): void { this.bytesField(field, Buffer.from(s, 'utf8')); }
  message(field: number, build: (w: Writer) => void): void {
    const inner = new Writer();
    build(inner);
    this.bytesField(field, inner.bytes);
  }
}

function writeAnyValue(w: Writer, v: OtlpAnyValue): void {
  if (v.stringValue !== undefined) w.string(1, v.stringValue);
  if (v.boolValue !== undefined) w.varintField(2, v.boolValue ? 1 : 0);
  if (v.intValue !== undefined) w.varintField(3, Number(v.intValue));
  if (v.doubleValue !== undefined) w.double(4, v.doubleValue);
  if (v.arrayValue !== undefined) w.message(5, (a) => { for (const x of v.arrayValue!.values ?? []) a.message(1, (m) => writeAnyValue(m, x)); });
  if (v.kvlistValue !== undefined) w.message(6, (l) => { for (const kv of v.kvlistValue!.values ?? []) l.message(1, (m) => writeKeyValue(m, kv)); });
  if (v.bytesValue !== undefined) w.bytesField(7, Buffer.from(v.bytesValue, 'hex'));
}

function writeKeyValue(w: Writer, kv: OtlpKeyValue): void {
  w.string(1, kv.key);
  if (kv.value !== undefined) w.message(2, (m) => writeAnyValue(m, kv.value!));
}

/** The model as protobuf; `unknown` adds a field of each wire type the decoder must skip. */
export function encodeRequest(req: OtlpLogsRequest, unknown = false): Buffer {
  const junk = (w: Writer): void => {
    if (!unknown) return;
    w.varintField(99, 300);
    w.fixed64(98, '1');
    w.string(97, 'x');
    w.tag(96, 5);
    w.bytes.push(1, 2, 3, 4);
  };
  const w = new Writer();
  junk(w);
  for (const rl of req.resourceLogs ?? []) {
    w.message(1, (r) => {
      junk(r);
      if (rl.resource !== undefined) r.message(1, (res) => { for (const kv of rl.resource!.attributes ?? []) res.message(1, (m) => writeKeyValue(m, kv)); });
      for (const sl of rl.scopeLogs ?? []) {
        r.message(2, (s) => {
          junk(s);
          if (sl.scope !== undefined) {
            s.message(1, (sc) => {
              if (sl.scope!.name !== undefined) sc.string(1, sl.scope!.name);
              if (sl.scope!.version !== undefined) sc.string(2, sl.scope!.version);
            });
          }
          for (const lr of sl.logRecords ?? []) {
            s.message(2, (l) => {
              junk(l);
              if (lr.timeUnixNano !== undefined) l.fixed64(1, String(lr.timeUnixNano));
              if (lr.severityNumber !== undefined) l.varintField(2, lr.severityNumber);
              if (lr.severityText !== undefined) l.string(3, lr.severityText);
              if (lr.body !== undefined) l.message(5, (m) => writeAnyValue(m, lr.body!));
              for (const kv of lr.attributes ?? []) l.message(6, (m) => writeKeyValue(m, kv));
              if (lr.traceId !== undefined) l.bytesField(9, Buffer.from(lr.traceId, 'hex'));
              if (lr.spanId !== undefined) l.bytesField(10, Buffer.from(lr.spanId, 'hex'));
              if (lr.observedTimeUnixNano !== undefined) l.fixed64(11, String(lr.observedTimeUnixNano));
              if (lr.eventName !== undefined) l.string(12, lr.eventName);
            });
          }
        });
      }
    });
  }
  return Buffer.from(w.bytes);
}

/**
 * A body of `depth` nested AnyValues (kvlist or array) inside one log record,
 * built in O(depth): lengths inside out, then the prefixes outside in.
 */
export function deeplyNestedProtobuf(depth: number, kind: 'kvlist' | 'array'): Buffer {
  // Wrappers from the innermost AnyValue outwards: per level AnyValue → (KeyValueList → KeyValue) or ArrayValue.
  const perLevel = kind === 'kvlist' ? [2, 1, 6] : [1, 5];
  const fields: number[] = [];
  for (let i = 0; i < depth; i++) fields.push(...perLevel);
  fields.push(5, 2, 2, 1); // LogRecord.body, ScopeLogs.log_records, ResourceLogs.scope_logs, request.resource_logs
  const sizes: number[] = [];
  let size = 0;
  for (let i = 0; i < fields.length; i++) {
    sizes.push(size);
    size += varint(fields[i]! * 8 + 2).length + varint(size).length;
  }
  const out = Buffer.alloc(size);
  let pos = 0;
  for (let i = fields.length - 1; i >= 0; i--) {
    for (const b of varint(fields[i]! * 8 + 2)) out[pos++] = b;
    for (const b of varint(sizes[i]!)) out[pos++] = b;
  }
  return out;
}

// ---------------------------------------------------------------- JSON mutations

/** JSON text spliced in verbatim when a tree is serialized: nesting deeper than JSON.stringify can recurse. */
export class RawJson {
  constructor(readonly text: string) {}
}

/** JSON.stringify, with RawJson nodes written as their text. */
export function serializeJson(tree: unknown): string {
  const raws: string[] = [];
  const json = JSON.stringify(tree, (_key, value: unknown) => (value instanceof RawJson ? `@@RAW${raws.push(value.text) - 1}@@` : value)) ?? 'null';
  return json.replace(/"@@RAW(\d+)@@"/g, (_match, i: string) => raws[Number(i)]!);
}

/** Nesting depth: mostly shallow, now and then deeper than any recursion survives. */
export const nestingDepth = fc.oneof({ weight: 100, arbitrary: fc.integer({ min: 1, max: 64 }) }, { weight: 1, arbitrary: fc.integer({ min: 10_000, max: 100_000 }) });

/** Values that break JSON consumers: wrong types, out-of-range numbers, deep nesting. */
export const nastyJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 5, arbitrary: fc.constantFrom(1e300, -1, 2 ** 64, 0.5, -1e300, 8.64e15 + 1, '', '99999999999999999999999', '-1', 'NaN', null, [], {}, [null], [1], ['x'], { values: 5 }, { values: [null] }, { values: 'ab' }, true) },
  nestingDepth.map((depth) => new RawJson('['.repeat(depth) + ']'.repeat(depth))),
  nestingDepth.map((depth) => new RawJson('{"values":['.repeat(depth) + ']}'.repeat(depth))),
  nestingDepth.map((depth) => new RawJson('{"a":'.repeat(depth) + '1' + '}'.repeat(depth))),
  fc.constant(JSON.parse('{"__proto__":{"stringValue":"polluted"},"key":"__proto__"}') as unknown),
);

interface JsonMutation { at: number; value: unknown }

/** Replace the `at`-th node (modulo the node count, in document order) of a JSON tree. */
function replaceNode(root: unknown, m: JsonMutation): unknown {
  const slots: [Record<string, unknown> | unknown[], string | number][] = [];
  const visit = (node: unknown): void => {
    if (node === null || typeof node !== 'object' || node instanceof RawJson) return;
    if (Array.isArray(node)) {
      node.forEach((child, i) => { slots.push([node, i]); visit(child); });
    } else {
      for (const [k, child] of Object.entries(node)) { slots.push([node as Record<string, unknown>, k]); visit(child); }
    }
  };
  visit(root);
  if (slots.length === 0) return m.value instanceof RawJson ? m.value : structuredClone(m.value);
  const [parent, k] = slots[m.at % slots.length]!;
  // A copy: fast-check hands out the same constant objects again, and later mutations write into the tree.
  const value = m.value instanceof RawJson ? m.value : structuredClone(m.value);
  if (Array.isArray(parent)) parent[k as number] = value;
  else Object.defineProperty(parent, k, { value, enumerable: true, writable: true, configurable: true });
  return root;
}

interface OtlpJsonCase { body: Buffer; valid: OtlpLogsRequest | null }

const OTLP_JSON_TOKENS = ['"resourceLogs"', '"scopeLogs"', '"logRecords"', '"body"', '"kvlistValue"', '"values"', ':', '[', '{', 'null', '1e999'];

export const otlpJsonCases: fc.Arbitrary<OtlpJsonCase> = fc.oneof(
  { weight: 2, arbitrary: fc.tuple(request, fc.array(fc.record({ at: fc.nat(), value: nastyJson }), { maxLength: 3 })).map(([req, ms]) => {
    const valid = ms.length === 0 ? req : null;
    // The mutations work on a copy, so the model stays as generated.
    const tree = ms.reduce(replaceNode, JSON.parse(JSON.stringify(req)) as unknown);
    return { body: Buffer.from(serializeJson(tree), 'utf8'), valid };
  }) },
  { weight: 1, arbitrary: fc.tuple(request, fc.array(byteMutationArb(OTLP_JSON_TOKENS), { minLength: 1, maxLength: 3 }))
    .map(([req, ms]) => ({ body: ms.reduce(applyMutation, Buffer.from(JSON.stringify(req), 'utf8')), valid: null })) },
  { weight: 1, arbitrary: noisyBytes(OTLP_JSON_TOKENS).map((body) => ({ body, valid: null })) },
);

export const otlpJsonTarget = defineTarget<OtlpJsonCase>({
  name: 'otlp-json',
  description: 'OTLP/JSON bodies (valid, nodes replaced by wrong types / huge numbers / deep nesting, bytes mutated, raw) → decodeBody',
  arbitrary: otlpJsonCases,
  check(input) {
    const records = decodeChecked('otlp', input.body, false);
    if (input.valid === null) return;
    assert.ok(records !== null, 'a valid request decodes');
    // The same request as protobuf must give the same records.
    assert.deepStrictEqual(decodeChecked('otlp', encodeRequest(input.valid), true), records, 'JSON and protobuf disagree');
  },
});

// ---------------------------------------------------------------- protobuf

const PROTOBUF_TOKENS = [
  '\x0a\x00', '\x0a\x7f', '\x12\x05', '\x08\x01', '\x09', '\x0b', '\x0c', '\x0e', '\x0f', '\x0d\x00\x00', '\x00',
];
const BAD_PROTOBUF: readonly Buffer[] = [
  Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // an 11-byte varint
  Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), // a length far past the end
  Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // a length of 2^64-1
  Buffer.from([0x0b]), Buffer.from([0x0c]), Buffer.from([0x0e]), Buffer.from([0x0f]), // group and reserved wire types
  Buffer.from([0x80]), // a varint cut short
];

interface OtlpProtobufCase { body: Buffer; valid: OtlpLogsRequest | null }

export const otlpProtobufCases: fc.Arbitrary<OtlpProtobufCase> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(request, fc.boolean(), fc.array(fc.oneof(
    byteMutationArb(PROTOBUF_TOKENS),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.constantFrom(...BAD_PROTOBUF).map((b) => new Uint8Array(b)) }),
  ), { maxLength: 3 })).map(([req, unknown, ms]) => ({
    body: ms.reduce(applyMutation, encodeRequest(req, unknown)),
    valid: ms.length === 0 ? req : null,
  })) },
  { weight: 1, arbitrary: fc.record({
    depth: nestingDepth,
    kind: fc.constantFrom('kvlist' as const, 'array' as const),
  }).map(({ depth, kind }) => ({ body: deeplyNestedProtobuf(depth, kind), valid: null })) },
  { weight: 1, arbitrary: noisyBytes(PROTOBUF_TOKENS).map((body) => ({ body, valid: null })) },
);

export const otlpProtobufTarget = defineTarget<OtlpProtobufCase>({
  name: 'otlp-protobuf',
  description: 'OTLP protobuf bodies (valid with unknown fields, bad varints/lengths/wire types, deep nesting, raw) → decodeBody',
  arbitrary: otlpProtobufCases,
  check(input) {
    const records = decodeChecked('otlp', input.body, true);
    if (input.valid === null) return;
    assert.ok(records !== null, 'a valid request decodes');
    assert.deepStrictEqual(decodeOtlpProtobuf(input.body), normalized(input.valid), 'protobuf round trip');
  },
});

/** The model as the decoder returns it: repeated fields always present. */
function normalized(req: OtlpLogsRequest): OtlpLogsRequest {
  return {
    resourceLogs: (req.resourceLogs ?? []).map((rl) => ({
      scopeLogs: (rl.scopeLogs ?? []).map((sl) => ({
        logRecords: (sl.logRecords ?? []).map((lr) => ({ ...lr, attributes: (lr.attributes ?? []).map(normalKv) })),
        ...(sl.scope === undefined ? {} : { scope: sl.scope }),
      })),
      ...(rl.resource === undefined ? {} : { resource: { attributes: (rl.resource.attributes ?? []).map(normalKv) } }),
    })),
  };
}

function normalKv(kv: OtlpKeyValue): OtlpKeyValue {
  return kv.value === undefined ? { key: kv.key } : { key: kv.key, value: normalAny(kv.value) };
}

function normalAny(v: OtlpAnyValue): OtlpAnyValue {
  const out: OtlpAnyValue = { ...v };
  if (v.arrayValue !== undefined) out.arrayValue = { values: (v.arrayValue.values ?? []).map(normalAny) };
  if (v.kvlistValue !== undefined) out.kvlistValue = { values: (v.kvlistValue.values ?? []).map(normalKv) };
  return out;
}
