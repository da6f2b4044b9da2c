import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import pino from 'pino';
import { LogRecord } from '../../../src/core/record.js';
import { parseSyslog } from '../../../src/sources/syslog/parse.js';
import { encodeRfc3164, encodeRfc5424, headerToken, truncateUtf8 } from '../../../src/sinks/syslog/encode.js';
import { SyslogEncoder } from '../../../src/sinks/syslog/sink.js';
import { DEFAULT_SYSLOG_SINK } from '../../../src/sinks/syslog/config.js';
import { SinkStats } from '../../../src/sinks/delivery/stats.js';
import { Telemetry } from '../../../src/telemetry/telemetry.js';
import { encodedFrame } from '../../helpers.js';

const RECEIVED = '2026-11-27T14:20:00.123Z';

function record(fields: Partial<LogRecord>): LogRecord {
  const rec = new LogRecord();
  rec.received = RECEIVED;
  rec.ts = RECEIVED;
  return Object.assign(rec, fields);
}

function reparse(text: string): LogRecord {
  const rec = new LogRecord();
  rec.received = RECEIVED;
  parseSyslog(text, rec, Date.parse(RECEIVED));
  return rec;
}

test('rfc5424: every field, with PRI from facility and severity and SD values escaped', () => {
  const rec = record({
    facility: 16, severity: 3, ts: '2026-11-27T15:20:00.123456+01:00', hostname: 'web-1', app: 'nginx', procid: '42', msgid: 'REQ',
    sd: { 'origin@1': { ip: ['10.0.0.1', '10.0.0.2'], note: 'a "quoted" \\ and ] bracket' } }, msg: 'héllo\nworld',
  });
  const text = encodeRfc5424(rec, '');
  assert.equal(text, '<131>1 2026-11-27T15:20:00.123456+01:00 web-1 nginx 42 REQ '
    + '[origin@1 ip="10.0.0.1" ip="10.0.0.2" note="a \\"quoted\\" \\\\ and \\] bracket"] héllo\nworld');
  assert.ok(!text.includes('\uFEFF'), 'no BOM');
  const back = reparse(text);
  assert.equal(back.parseError, false);
  assert.deepEqual(back.sd, rec.sd);
  assert.equal(back.msg, rec.msg);
});

test('rfc5424: absent fields are NILVALUE, an empty message leaves no trailing space, extra SD is appended', () => {
  const text = encodeRfc5424(record({ facility: 1, severity: 5 }), '[sluice@32473 tenant="acme" host="ab"]');
  assert.equal(text, `<13>1 ${RECEIVED} - - - - [sluice@32473 tenant="acme" host="ab"]`);
  assert.equal(encodeRfc5424(record({}), ''), `<13>1 ${RECEIVED} - - - - -`);
});

test('rfc5424: header tokens are made legal (no spaces, ASCII only, RFC lengths); bad timestamps fall back', () => {
  assert.equal(headerToken('my host', 255), 'my_host');
  assert.equal(headerToken('hôte', 255), 'h_te');
  assert.equal(headerToken('a'.repeat(60), 48), 'a'.repeat(48));
  assert.equal(headerToken('', 48), '-');
  const rec = record({ app: 'x'.repeat(60), ts: '2026-11-27T14:20:00.123456789Z' });
  const text = encodeRfc5424(rec, '');
  assert.ok(text.startsWith(`<13>1 2026-11-27T14:20:00.123456Z - ${'x'.repeat(48)} `), text);
  assert.ok(encodeRfc5424(record({ ts: 'Nov 27 14:20:00' }), '').includes(RECEIVED));
  const sd = encodeRfc5424(record({ sd: { 'bad id=x': { 'k"1': 'v' } } }), '');
  assert.ok(sd.includes('[bad_id_x k_1="v"]'), sd);
});

test('rfc5424 property: what the encoder writes, our parser reads back unchanged', () => {
  const token = fc.string({ minLength: 1, maxLength: 20, unit: fc.constantFrom(...'abcXYZ019._-:@/'.split('')) });
  const sdName = fc.string({ minLength: 1, maxLength: 10, unit: fc.constantFrom(...'abcxyz019_-@.'.split('')) });
  const value = fc.string({ maxLength: 30, unit: fc.constantFrom(...'ab "\\]=[ é\n'.split('')) });
  fc.assert(fc.property(
    fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 7 }),
    fc.option(token, { nil: null }), fc.option(token, { nil: null }), fc.option(token, { nil: null }), fc.option(token, { nil: null }),
    fc.option(fc.dictionary(sdName, fc.dictionary(sdName, value, { minKeys: 1, maxKeys: 3 }), { minKeys: 1, maxKeys: 3 }), { nil: null }),
    fc.string({ maxLength: 60 }),
    (facility, severity, hostname, app, procid, msgid, sd, msg) => {
      // A hostname or app of exactly "-" means NILVALUE on the wire, so it cannot round-trip as text.
      fc.pre(![hostname, app, procid, msgid].includes('-'));
      // The parser strips trailing NUL/CR/LF and a leading BOM from every message, as docs/record.md says.
      fc.pre(!/[\0\r\n]$/.test(msg) && !msg.startsWith('\uFEFF'));
      const rec = record({ facility, severity, hostname, app, procid, msgid, sd, msg });
      const back = reparse(encodeRfc5424(rec, ''));
      assert.equal(back.parseError, false);
      // Compared as JSON: the generated SD objects have no prototype, the parser's do.
      assert.deepEqual(
        JSON.stringify([back.facility, back.severity, back.ts, back.hostname, back.app, back.procid, back.msgid, back.sd, back.msg]),
        JSON.stringify([facility, severity, RECEIVED, hostname, app, procid, msgid, sd, msg]),
      );
    },
  ), { numRuns: 500 });
});

test('rfc3164: BSD header with the wall-clock time of the record, tag and pid; no structured data', () => {
  const rec = record({
    facility: 4, severity: 2, ts: '2026-03-07T09:05:01.500+02:00', hostname: 'db', app: 'postgres', procid: '77', msg: 'checkpoint',
    sd: { 'x@1': { a: 'b' } },
  });
  const text = encodeRfc3164(rec);
  assert.equal(text, '<34>Mar  7 09:05:01 db postgres[77]: checkpoint');
  const back = reparse(text);
  assert.deepEqual([back.hostname, back.app, back.procid, back.msg], ['db', 'postgres', '77', 'checkpoint']);
  assert.equal(encodeRfc3164(record({ hostname: 'h', msg: 'no tag' })), '<13>Nov 27 14:20:00 h no tag');
});

test('truncation cuts on a character boundary and is counted; frames are octet-counted in bytes', async () => {
  assert.equal(truncateUtf8('aé', 3, 2), 'a', 'the 2-byte é does not fit in 2 bytes after a');
  assert.equal(truncateUtf8('日本語', 9, 7), '日本');
  const telemetry = new Telemetry(pino({ level: 'silent' }));
  const encoder = new SyslogEncoder({ ...DEFAULT_SYSLOG_SINK, name: 'fwd', maxMessageBytes: 480 }, new SinkStats('fwd', telemetry));
  const short = encodedFrame(encoder, 'acme', record({ msg: 'é' }));
  const [count, ...rest] = short.split(' ');
  assert.equal(Number(count), Buffer.byteLength(rest.join(' ')));
  const long = encodedFrame(encoder, 'acme', record({ msg: 'é'.repeat(1000) }));
  const body = long.slice(long.indexOf(' ') + 1);
  assert.equal(Number(long.slice(0, long.indexOf(' '))), Buffer.byteLength(body));
  assert.ok(Buffer.byteLength(body) <= 480 && Buffer.byteLength(body) >= 479);
  assert.ok(!body.includes('\uFFFD'));
  assert.equal(await telemetry.value('sluice_sink_truncated_records_total', { sink: 'fwd' }), 1);
});

test('identity SD element carries tenant and host key when configured', () => {
  const telemetry = new Telemetry(pino({ level: 'silent' }));
  const encoder = new SyslogEncoder({ ...DEFAULT_SYSLOG_SINK, identitySdId: 'sluice@32473' }, new SinkStats('id', telemetry));
  const frame = encodedFrame(encoder, 'acme', record({ host: 'f'.repeat(40), sd: { 'a@1': { k: 'v' } }, msg: 'm' }));
  const back = reparse(frame.slice(frame.indexOf(' ') + 1));
  assert.deepEqual(back.sd, { 'a@1': { k: 'v' }, 'sluice@32473': { tenant: 'acme', host: 'f'.repeat(40) } });
});
