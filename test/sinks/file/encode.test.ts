import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogRecord, SourceInfo } from '../../../src/core/record.js';
import { encodeRecord } from '../../../src/sinks/file/encode.js';

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

test('encode: docs/record.md documents exactly the keys a record can have', async () => {
  const { readFileSync } = await import('node:fs');
  const path = await import('node:path');
  const { ROOT } = await import('../../helpers.js');
  const doc = readFileSync(path.join(ROOT, 'docs', 'record.md'), 'utf8');
  const documented = [...doc.matchAll(/^\| `([a-z0-9_]+)` \|/gm)].map((m) => m[1]);
  const rec = record();
  rec.meta = { owner: 'x' };
  rec.parseError = true;
  rec.invalidUtf8 = true;
  assert.deepEqual(Object.keys(JSON.parse(encodeRecord(rec)) as object), documented);
});

test('encode property: any decoded frame encodes to one line of valid JSON that round-trips its fields', async () => {
  const fc = (await import('fast-check')).default;
  const { decodeSyslogFrame } = await import('../../../src/sources/syslog/decode.js');
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
