import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogRecord, SourceInfo } from '../../src/core/record.js';
import { appendRecord, decodeRecord, encodeRecord } from '../../src/core/ndjson.js';

function record(): LogRecord {
  const rec = new LogRecord();
  rec.tenant = 'acme';
  rec.host = 'a'.repeat(40);
  rec.ts = '2003-10-11T22:14:15.003Z';
  rec.received = '2026-11-27T14:20:00.000Z';
  rec.facility = 4;
  rec.severity = 2;
  rec.hostname = 'mymachine.example.com';
  rec.app = 'su';
  rec.procid = null;
  rec.msgid = 'ID47';
  rec.sd = { 'exampleSDID@32473': { iut: '3', eventSource: ['Application', 'Other'] } };
  rec.msg = "'su root' failed for lonvick on /dev/pts/8";
  rec.source = new SourceInfo('tcp', '127.0.0.1', 40000);
  return rec;
}

test('encode: one JSON line with every documented field', () => {
  const line = encodeRecord(record());
  assert.ok(line.endsWith('}\n'));
  assert.equal(line.indexOf('\n'), line.length - 1);
  assert.deepEqual(JSON.parse(line), {
    ts: '2003-10-11T22:14:15.003Z', received: '2026-11-27T14:20:00.000Z', tenant: 'acme', host: 'a'.repeat(40),
    hostname: 'mymachine.example.com', app: 'su', procid: null, msgid: 'ID47', facility: 4, severity: 2,
    sd: { 'exampleSDID@32473': { iut: '3', eventSource: ['Application', 'Other'] } },
    msg: "'su root' failed for lonvick on /dev/pts/8",
    source: { protocol: 'tcp', address: '127.0.0.1', port: 40000 },
  });
});

test('encode: strings that need escaping round-trip exactly; flags appear only when set', () => {
  const rec = record();
  const nasty = 'quote " backslash \\ newline \n tab \t nul \u0000 bell \u0007 unicode é 日本 \u2028 \uFFFD 😀';
  rec.msg = nasty;
  rec.hostname = 'h"x';
  rec.app = null;
  rec.sd = null;
  rec.parseError = true;
  rec.invalidUtf8 = true;
  const line = encodeRecord(rec);
  assert.equal(line.indexOf('\n'), line.length - 1, 'no raw newline inside the line');
  const parsed = JSON.parse(line) as Record<string, unknown>;
  assert.equal(parsed.msg, nasty);
  assert.equal(parsed.hostname, 'h"x');
  assert.equal(parsed.app, null);
  assert.equal(parsed.sd, null);
  assert.equal(parsed.parse_error, true);
  assert.equal(parsed.invalid_utf8, true);
  assert.ok(!('parse_error' in (JSON.parse(encodeRecord(record())) as object)));
});

test('encode: meta_missing says why a record has no metadata, decodes back, and never carries over to the next line of the host', () => {
  // Records of one connection take the encoder's fast path, which reuses the tail of the line before.
  const lines = (['timeout', null, 'unavailable', 'unavailable', null] as const).map((missing) => {
    const rec = record();
    rec.sd = null;
    rec.msg = 'plain';
    rec.jsonSafe = true;
    rec.metaMissing = missing;
    return encodeRecord(rec);
  });
  assert.deepEqual(lines.map((line) => (JSON.parse(line) as { meta_missing?: string }).meta_missing),
    ['timeout', undefined, 'unavailable', 'unavailable', undefined]);
  assert.deepEqual(lines.map((line) => decodeRecord(line.trimEnd()).metaMissing), ['timeout', null, 'unavailable', 'unavailable', null]);
});

test('encode: docs/record.md documents exactly the keys a record can have', async () => {
  const { readFileSync } = await import('node:fs');
  const path = await import('node:path');
  const { ROOT } = await import('../helpers.js');
  const doc = readFileSync(path.join(ROOT, 'docs', 'record.md'), 'utf8');
  const documented = [...doc.matchAll(/^\| `([a-z0-9_]+)` \|/gm)].map((m) => m[1]);
  const rec = record();
  rec.meta = { owner: 'x' };
  rec.parseError = true;
  rec.invalidUtf8 = true;
  rec.metaMissing = 'timeout';
  assert.deepEqual(Object.keys(JSON.parse(encodeRecord(rec)) as object), documented);
});

test('encode property: any decoded frame encodes to one line of valid JSON that round-trips its fields', async () => {
  const fc = (await import('fast-check')).default;
  const { decodeSyslogFrame } = await import('../../src/sources/syslog/decode.js');
  const source = new SourceInfo('tcp', '127.0.0.1', 1);
  const piece = fc.oneof(
    fc.constantFrom('<13>1 ', '<165>', '2026-11-27T10:00:00Z ', 'Oct 11 22:14:15 ', 'host ', 'app[12]: ', '- ', '[id@1 k="v\\"q"] ', '"', '\\', '\t', '\u0000'),
    fc.string({ unit: 'binary', maxLength: 20 }),
  );
  fc.assert(fc.property(fc.array(piece, { maxLength: 12 }), (parts) => {
    const frame = Buffer.from(parts.join(''));
    const rec = decodeSyslogFrame(frame, 0, frame.length, source, '2026-11-27T00:00:00.000Z', Date.UTC(2026, 10, 27));
    rec.tenant = 't';
    rec.host = 'h';
    const line = encodeRecord(rec);
    assert.equal(line.indexOf('\n'), line.length - 1);
    const parsed = JSON.parse(line) as Record<string, unknown>;
    assert.deepEqual([parsed.ts, parsed.hostname, parsed.app, parsed.procid, parsed.msgid, parsed.msg, parsed.sd],
      [rec.ts, rec.hostname, rec.app, rec.procid, rec.msgid, rec.msg, rec.sd === null ? null : JSON.parse(JSON.stringify(rec.sd))]);
  }), { numRuns: 1000 });
});

/**
 * The encoder as it was before lines were built from parts kept between
 * records and written as ASCII (main at 2dda4ce, its general path, which its
 * fast path matched): the oracle for the bytes the file sink writes.
 */
function previousEncodeRecord(rec: LogRecord): string {
  const str = (s: string): string => (/[\u0000-\u001f"\\]/.test(s) ? JSON.stringify(s) : '"' + s + '"');
  const strOrNull = (s: string | null): string => (s === null ? 'null' : str(s));
  let line = '{"ts":' + str(rec.ts) + ',"received":"' + rec.received + '","tenant":"' + rec.tenant + '","host":"' + rec.host
    + '","hostname":' + strOrNull(rec.hostname) + ',"app":' + strOrNull(rec.app) + ',"procid":' + strOrNull(rec.procid)
    + ',"msgid":' + strOrNull(rec.msgid) + ',"facility":' + rec.facility + ',"severity":' + rec.severity
    + ',"sd":' + (rec.sd === null ? 'null' : JSON.stringify(rec.sd)) + ',"msg":' + str(rec.msg)
    + ',"source":' + (rec.source === null ? 'null' : rec.source.json);
  if (rec.meta !== null) line += ',"meta":' + JSON.stringify(rec.meta);
  if (rec.parseError) line += ',"parse_error":true';
  if (rec.invalidUtf8) line += ',"invalid_utf8":true';
  return line + '}\n';
}

test('appendRecord property: the bytes queued are the UTF-8 of what the previous encoder made, record after record', async () => {
  const fc = (await import('fast-check')).default;
  const { decodeSyslogFrame } = await import('../../src/sources/syslog/decode.js');
  const { EncodedQueue } = await import('../../src/sinks/encoded-queue.js');
  const piece = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('<13>1 ', '<165>1 2026-11-27T10:00:00.123+01:00 ', 'Oct 11 22:14:15 ', 'host ', 'app[12]: ', '- ', '[id@1 k="v\\"q"] ', 'text ') },
    { weight: 1, arbitrary: fc.constantFrom('\uFEFF', '- - \uFEFF', 'é', '"', '\\', '\t', '\u0000') },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 30 }) },
  );
  // Runs of records that share their header (the parts kept between records), and records that differ.
  const frame = fc.oneof(
    fc.array(piece, { maxLength: 10 }).map((parts) => parts.join('')),
    fc.tuple(fc.constantFrom('<13>1', '<14>1', '<13>2'), fc.constantFrom('h', 'h2', '-'), fc.constantFrom('app', '-'), fc.constantFrom('1', '-'),
      fc.constantFrom('ID', '-'), fc.constantFrom('', '\uFEFF', 'é'), fc.string({ unit: 'grapheme-ascii', maxLength: 20 }))
      .map(([pri, host, app, procid, msgid, lead, msg]) => `${pri} 2026-11-27T10:00:00Z ${host} ${app} ${procid} ${msgid} - ${lead}${msg}`),
  );
  const frozen = [Object.freeze({ owner: 'team-a', env: 'prod' }), Object.freeze({ owner: 'équipe', note: '"quoted"\n' })];
  const meta = fc.option(fc.oneof(fc.constantFrom(...frozen), fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ unit: 'binary', maxLength: 8 }), { maxKeys: 3 })));
  const sources = [new SourceInfo('tcp', '127.0.0.1', 40000), new SourceInfo('udp', '::1', 1), new SourceInfo('tcp', 'hôte', 2)];
  const record = fc.record({
    frame, meta, source: fc.constantFrom(...sources), tenant: fc.constantFrom('acme', 'b'), host: fc.constantFrom('f'.repeat(40), 'e'.repeat(40)),
    flags: fc.constantFrom(0, 0, 1, 2, 3), mutateMeta: fc.boolean(),
  });
  fc.assert(fc.property(fc.array(record, { minLength: 1, maxLength: 12 }), (records) => {
    // A tiny first chunk, so lines also land where a new chunk must be made.
    const queue = new EncodedQueue(256, 16);
    const want: Buffer[] = [];
    let shared: Record<string, unknown> = { n: 0 };
    for (const r of records) {
      const bytes = Buffer.from(r.frame);
      const rec = decodeSyslogFrame(bytes, 0, bytes.length, r.source, '2026-11-27T00:00:00.000Z', Date.UTC(2026, 10, 27));
      rec.tenant = r.tenant;
      rec.host = r.host;
      // Unfrozen metadata may change between two records that carry the same object.
      if (r.mutateMeta) {
        shared.n = (shared.n as number) + 1;
        rec.meta = shared;
      } else {
        rec.meta = r.meta as Record<string, unknown> | null;
      }
      rec.parseError = (r.flags & 1) !== 0;
      rec.invalidUtf8 = (r.flags & 2) !== 0;
      appendRecord(queue, rec);
      const line = encodeRecord(rec);
      const previous = previousEncodeRecord(rec);
      assert.equal(line, previous);
      want.push(Buffer.from(previous, 'utf8'));
      if (r.mutateMeta && r.flags === 3) shared = { n: 0 };
    }
    assert.deepEqual(Buffer.concat(queue.take(Infinity)), Buffer.concat(want));
  }), { numRuns: 2000 });
});

test('decodeRecord: a run of one connection\'s records (a disk buffer replayed) shares one source, so their lines share their parts', () => {
  const line = (port: number, msg: string): string => {
    const rec = new LogRecord();
    rec.ts = '2026-12-07T00:00:00.000Z';
    rec.received = rec.ts;
    rec.tenant = 'acme';
    rec.host = 'f'.repeat(40);
    rec.msg = msg;
    rec.source = new SourceInfo('tcp', '10.0.0.1', port);
    return encodeRecord(rec).trimEnd();
  };
  const [a, b, c] = [decodeRecord(line(1, 'one')), decodeRecord(line(1, 'two')), decodeRecord(line(2, 'three'))];
  assert.equal(a.source, b.source);
  assert.notEqual(b.source, c.source);
  assert.deepEqual([c.source?.address, c.source?.port], ['10.0.0.1', 2]);
  for (const rec of [a, b, c]) assert.equal(encodeRecord(rec), line(rec.source!.port, rec.msg) + '\n');
});
