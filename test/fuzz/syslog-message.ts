/**
 * Fuzz targets for the syslog message parser (RFC 5424 and RFC 3164), fed
 * through decodeSyslogFrame exactly as every syslog transport feeds it.
 */
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { LogRecord, SourceInfo, type StructuredData } from '../../src/core/record.js';
import { decodeSyslogFrame } from '../../src/sources/syslog/decode.js';
import { applyMutation, assertBounded, byteMutationArb, defineTarget, noisyBytes, textSize } from './common.js';

const RECEIVED = '2026-11-27T12:00:00.000Z';
const SOURCE = new SourceInfo('tcp', '127.0.0.1', 1);
/** Local noon, so BSD timestamps (local time, no year) have a known year. */
const NOW = new Date(2026, 10, 27, 12, 0, 0).getTime();
const NEEDS_JSON_ESCAPE = /[\u0000-\u001f"\\]/;

type Expected = Partial<Pick<LogRecord, 'facility' | 'severity' | 'hostname' | 'app' | 'procid' | 'msgid' | 'sd' | 'msg'>> & {
  /** RFC 3339 text kept as sent, or the BSD fields the ISO time must show (local, or UTC when the timestamp said so). */
  ts?: string | { year: number | null; month: number; day: number; hour: number; minute: number; second: number; ms: number; utc: boolean };
};

interface MessageCase {
  bytes: Buffer;
  /** Set when the bytes are a valid message (no mutation): what it must parse to. */
  expected: Expected | null;
  /** Parsed between two parses of `bytes`: the parser's caches must not change the answer. */
  other: Buffer;
  nowMs: number;
}

function decode(bytes: Buffer, nowMs: number): LogRecord {
  return decodeSyslogFrame(bytes, 0, bytes.length, SOURCE, RECEIVED, nowMs);
}

/** The frame without trailing LF/CR/NUL, as decodeSyslogFrame and parseSyslog see it. */
function stripped(bytes: Buffer): Buffer {
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d || bytes[end - 1] === 0x00)) end--;
  return bytes.subarray(0, end);
}

function checkMessage(input: MessageCase): void {
  const { bytes, nowMs } = input;
  const rec = decode(bytes, nowMs);
  const body = stripped(bytes);
  let text = body.toString('utf8');
  while (text.length > 0 && /[\0\r\n]$/.test(text)) text = text.slice(0, -1);
  if (text.startsWith('\uFEFF')) text = text.slice(1);

  assert.equal(typeof rec.msg, 'string');
  assert.ok(Number.isInteger(rec.severity) && rec.severity >= 0 && rec.severity <= 7, `severity ${rec.severity}`);
  assert.ok(Number.isInteger(rec.facility) && rec.facility >= 0 && rec.facility <= 23, `facility ${rec.facility}`);
  assert.equal(typeof rec.ts, 'string');
  assert.ok(rec.ts === RECEIVED || rec.ts.length <= 40, 'a timestamp is a timestamp, not a copy of the message');
  assert.equal(rec.size, bytes.length);
  // Output never outgrows the input: every field is a piece of the frame.
  for (const field of ['hostname', 'app', 'procid', 'msgid', 'msg'] as const) assertBounded(field, rec[field]?.length ?? 0, text.length);
  assertBounded('structured data', textSize(rec.sd), text.length);
  assert.equal(rec.invalidUtf8, !isUtf8(body), 'invalid_utf8 flags exactly the frames that are not UTF-8');
  if (rec.jsonSafe) {
    for (const field of ['hostname', 'app', 'procid', 'msgid', 'msg', 'ts'] as const) {
      assert.ok(!NEEDS_JSON_ESCAPE.test(rec[field] ?? ''), `jsonSafe, yet ${field} needs escaping`);
    }
  }
  if (rec.parseError) {
    // docs/record.md: an unparsable message is kept whole, header fields empty.
    assert.equal(rec.msg, text);
    assert.equal(rec.ts, RECEIVED);
    assert.deepEqual([rec.hostname, rec.app, rec.procid, rec.msgid, rec.sd], [null, null, null, null, null]);
  }
  decode(input.other, nowMs);
  assert.deepStrictEqual(decode(bytes, nowMs), rec, 'the same frame parses the same after another one');
  if (input.expected !== null) checkExpected(rec, input.expected);
}

function checkExpected(rec: LogRecord, expected: Expected): void {
  assert.equal(rec.parseError, false, 'a valid message parses');
  for (const [key, want] of Object.entries(expected)) {
    if (key === 'ts') continue;
    assert.deepStrictEqual(rec[key as keyof LogRecord], want, `field ${key}`);
  }
  const ts = expected.ts;
  if (typeof ts === 'string') {
    assert.equal(rec.ts, ts);
  } else if (ts !== undefined) {
    const d = new Date(rec.ts);
    assert.ok(Number.isFinite(d.getTime()), `ts ${rec.ts}`);
    const got = ts.utc
      ? { year: d.getUTCFullYear(), month: d.getUTCMonth(), day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds(), ms: d.getUTCMilliseconds() }
      : { year: d.getFullYear(), month: d.getMonth(), day: d.getDate(), hour: d.getHours(), minute: d.getMinutes(), second: d.getSeconds(), ms: d.getMilliseconds() };
    const { year, utc: _utc, ...fields } = ts;
    assert.deepEqual({ ...got, year: undefined }, { ...fields, year: undefined }, `ts ${rec.ts}`);
    if (year !== null) assert.equal(got.year, year);
    else assert.ok(got.year === 2026 || got.year === 2025, `year ${got.year} inferred from now`);
  }
}

// ---------------------------------------------------------------- generators

const pad = (n: number, w: number): string => String(n).padStart(w, '0');
const printable = fc.integer({ min: 33, max: 126 }).map((c) => String.fromCharCode(c));
const token = (max: number): fc.Arbitrary<string> => fc.oneof(
  fc.string({ unit: printable, minLength: 1, maxLength: max }),
  fc.constant('-'),
);
const nil = (v: string): string | null => (v === '-' ? null : v);
/** A message body: any text, as the parser keeps it (trailing NUL/CR/LF dropped, one leading BOM dropped). */
const messageText = fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ unit: 'grapheme-ascii', maxLength: 80 }));
const cleanMsg = (m: string): string => m.replace(/[\0\r\n]+$/, '');

const rfc3339 = fc.record({
  y: fc.integer({ min: 0, max: 9999 }), mo: fc.integer({ min: 1, max: 12 }), d: fc.integer({ min: 1, max: 31 }),
  h: fc.integer({ min: 0, max: 23 }), mi: fc.integer({ min: 0, max: 59 }), s: fc.integer({ min: 0, max: 60 }),
  frac: fc.option(fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 1, maxLength: 9 })),
  zone: fc.oneof(fc.constant('Z'), fc.tuple(fc.constantFrom('+', '-'), fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }))
    .map(([sign, zh, zm]) => `${sign}${pad(zh, 2)}:${pad(zm, 2)}`)),
}).map((t) => `${pad(t.y, 4)}-${pad(t.mo, 2)}-${pad(t.d, 2)}T${pad(t.h, 2)}:${pad(t.mi, 2)}:${pad(t.s, 2)}${t.frac === null ? '' : '.' + t.frac}${t.zone}`);

const sdName = fc.string({ unit: printable.filter((c) => c !== '=' && c !== ']' && c !== '"'), minLength: 1, maxLength: 12 });
const sdElements = fc.array(fc.record({
  id: fc.oneof(sdName, fc.constantFrom('origin', 'meta', '__proto__', 'x@32473')),
  params: fc.array(fc.tuple(fc.oneof(sdName, fc.constantFrom('a', '__proto__', 'constructor')), fc.string({ unit: 'binary', maxLength: 20 })), { maxLength: 4 }),
}), { minLength: 1, maxLength: 4 });

function defineOwn(obj: object, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

/** The SD a list of elements must parse to: repeated ids merge, repeated names become arrays (the parser's reference model). */
export function expectedSd(elements: { id: string; params: [string, string][] }[]): StructuredData {
  const sd: StructuredData = {};
  for (const { id, params } of elements) {
    if (!Object.hasOwn(sd, id)) defineOwn(sd, id, {});
    const elem = Object.getOwnPropertyDescriptor(sd, id)?.value as Record<string, string | string[]>;
    for (const [name, value] of params) {
      if (!Object.hasOwn(elem, name)) {
        defineOwn(elem, name, value);
      } else {
        const prev = Object.getOwnPropertyDescriptor(elem, name)?.value as string | string[];
        defineOwn(elem, name, typeof prev === 'string' ? [prev, value] : [...prev, value]);
      }
    }
  }
  return sd;
}

/**
 * Whether a calendar date exists: the reference for the parser's own check,
 * from Date's proleptic Gregorian calendar rather than the parser's arithmetic.
 */
export function dateExists(year: number, month: number, day: number): boolean {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  return d.getUTCFullYear() === year && d.getUTCMonth() === month - 1 && d.getUTCDate() === day;
}

/** Whether the date of an RFC 3339 timestamp (`YYYY-MM-DDT…`) exists. */
export function isoDateExists(ts: string): boolean {
  return dateExists(Number(ts.slice(0, 4)), Number(ts.slice(5, 7)), Number(ts.slice(8, 10)));
}

const valid5424: fc.Arbitrary<{ bytes: Buffer; expected: Expected }> = fc.record({
  pri: fc.integer({ min: 0, max: 191 }),
  ts: fc.option(rfc3339),
  hostname: token(64), app: token(48), procid: token(32), msgid: token(32),
  sd: fc.option(sdElements),
  msg: fc.option(messageText),
}).map((m) => {
  const sdText = m.sd === null ? '-'
    : m.sd.map((e) => `[${e.id}${e.params.map(([n, v]) => ` ${n}="${v.replace(/[\\"\]]/g, (c) => '\\' + c)}"`).join('')}]`).join('');
  const text = `<${m.pri}>1 ${m.ts ?? '-'} ${m.hostname} ${m.app} ${m.procid} ${m.msgid} ${sdText}${m.msg === null ? '' : ' ' + m.msg}`;
  return {
    bytes: Buffer.from(text, 'utf8'),
    expected: {
      facility: m.pri >> 3, severity: m.pri & 7, ts: m.ts !== null && isoDateExists(m.ts) ? m.ts : RECEIVED,
      hostname: nil(m.hostname), app: nil(m.app), procid: nil(m.procid), msgid: nil(m.msgid),
      sd: m.sd === null ? null : expectedSd(m.sd),
      msg: m.msg === null ? '' : cleanMsg(m.msg).replace(/^\uFEFF/, ''),
    },
  };
});

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** The year a BSD timestamp without one gets at NOW: 2026, or 2025 when that is more than 7 days ahead (both common years). */
const INFERRED_YEAR = 2026;

interface TimestampCase {
  text: string;
  /** What rec.ts must show (RECEIVED when the date does not exist). */
  ts: Expected['ts'];
}

/**
 * BSD timestamps as devices write them: day space- or zero-padded or bare, any
 * day 1-31 (so some dates do not exist), a year after the day (Cisco ASA) or
 * first (NX-OS, which ends in a colon), Cisco's clock marks, fractions, a
 * colon and a zone name after the time.
 */
const bsdTimestamp: fc.Arbitrary<TimestampCase> = fc.record({
  month: fc.integer({ min: 0, max: 11 }), monthCase: fc.constantFrom('as-is', 'upper', 'lower'),
  day: fc.integer({ min: 1, max: 31 }), dayStyle: fc.constantFrom('space', 'zero', 'bare'),
  year: fc.option(fc.record({ value: fc.integer({ min: 1970, max: 2099 }), first: fc.boolean() })),
  hour: fc.integer({ min: 0, max: 23 }), minute: fc.integer({ min: 0, max: 59 }), second: fc.integer({ min: 0, max: 59 }),
  frac: fc.option(fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 1, maxLength: 9 })),
  mark: fc.constantFrom('', '', '*', '.'),
  zone: fc.constantFrom(null, null, 'UTC', 'GMT', 'CET', 'KST', 'CEST'),
  colon: fc.boolean(),
}).map((t) => {
  const name = MONTHS[t.month]!;
  const month = t.monthCase === 'upper' ? name.toUpperCase() : t.monthCase === 'lower' ? name.toLowerCase() : name;
  const day = t.day >= 10 || t.dayStyle === 'bare' ? String(t.day) : t.dayStyle === 'zero' ? pad(t.day, 2) : ` ${t.day}`;
  const yearFirst = t.year !== null && t.year.first;
  const cisco = t.mark !== '' || t.frac !== null || yearFirst;
  // Zones other than UTC and GMT are only read from a timestamp that is otherwise Cisco's (a `*`/`.` mark, a fraction, the year first).
  const zone = t.zone !== null && (t.zone === 'UTC' || t.zone === 'GMT' || cisco) ? t.zone : null;
  const colon = t.colon || zone !== null || yearFirst;
  const time = `${pad(t.hour, 2)}:${pad(t.minute, 2)}:${pad(t.second, 2)}${t.frac === null ? '' : '.' + t.frac}`;
  const date = yearFirst ? `${t.year!.value} ${month} ${day}` : `${t.mark}${month} ${day}${t.year === null ? '' : ` ${t.year.value}`}`;
  const text = `${date} ${time}${zone === null ? '' : ` ${zone}`}${colon ? ':' : ''}`;
  const ms = t.frac === null ? 0 : Number((t.frac + '00').slice(0, 3));
  const year = t.year === null ? null : t.year.value;
  const ts = dateExists(year ?? INFERRED_YEAR, t.month + 1, t.day)
    ? { year, month: t.month, day: t.day, hour: t.hour, minute: t.minute, second: t.second, ms, utc: zone === 'UTC' || zone === 'GMT' }
    : RECEIVED;
  return { text, ts };
});

const isoTimestamp: fc.Arbitrary<TimestampCase> = fc.tuple(rfc3339, fc.boolean())
  .map(([text, colon]) => ({ text: colon ? `${text}:` : text, ts: isoDateExists(text) ? text : RECEIVED }));

const hostChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789.-_'.split(''));
const appChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-%'.split(''));
const hostname = fc.string({ unit: hostChar, minLength: 1, maxLength: 32 });
/** An app name the parser takes for one: not all digits (a counter), and not 3-5 capitals where a zone name may stand. */
const appName = fc.string({ unit: appChar, minLength: 1, maxLength: 24 }).filter((a) => !/^\d+$/.test(a) && !/^[A-Z]{3,5}$/.test(a));

/**
 * RFC 3164 as devices send it: PRI (or none), spaces after it, Cisco's message
 * counter and origin, a BSD or ISO timestamp (or, after PRI, none), a hostname
 * (or none, or Cisco ASA's `host :`), and a TAG in each form: `app:`,
 * `app[pid]:`, `app[pid]`, `app[pid]:` glued to the message, or the empty `:`.
 */
const valid3164: fc.Arbitrary<{ bytes: Buffer; expected: Expected }> = fc.record({
  pri: fc.option(fc.integer({ min: 0, max: 191 })),
  spaces: fc.constantFrom('', '', '', ' ', '  '),
  counter: fc.option(fc.stringMatching(/^[0-9]{0,6}$/)),
  origin: fc.option(hostname),
  ts: fc.oneof({ weight: 4, arbitrary: bsdTimestamp }, { weight: 1, arbitrary: isoTimestamp }, { weight: 1, arbitrary: fc.constant(null) }),
  hostname: fc.option(hostname),
  asaColon: fc.boolean(),
  app: appName,
  pid: fc.option(fc.stringMatching(/^[0-9]{1,7}$/)),
  tagStyle: fc.constantFrom('colon', 'brackets-colon', 'brackets', 'glued', 'empty'),
  msg: messageText.filter((m) => !m.startsWith('\uFEFF')),
}).map((m) => {
  const hasPri = m.pri !== null;
  // Spaces, the counter and a missing timestamp are only read after PRI; an origin only after a counter and before a timestamp.
  const counter = hasPri ? m.counter : null;
  const ts = m.ts ?? (hasPri ? null : { text: 'Oct 11 22:14:15', ts: { year: null, month: 9, day: 11, hour: 22, minute: 14, second: 15, ms: 0, utc: false } });
  const origin = counter !== null && ts !== null ? m.origin : null;
  const host = ts === null || origin !== null ? null : m.hostname;
  // The empty TAG needs a timestamp before it, the bracket forms a pid.
  const style = m.tagStyle === 'empty' && ts === null ? 'colon' : m.pid === null && m.tagStyle !== 'empty' ? 'colon' : m.tagStyle;
  // After the empty TAG the message must not read as a TAG itself: a quote opens it.
  const msg = style === 'empty' ? `"${m.msg}` : m.msg;
  const tag = style === 'colon' ? `${m.app}: ` : style === 'brackets-colon' ? `${m.app}[${m.pid}]: `
    : style === 'brackets' ? `${m.app}[${m.pid}] ` : style === 'glued' ? `${m.app}[${m.pid}]:` : ': ';
  const header = `${hasPri ? `<${m.pri}>${m.spaces}` : ''}${counter === null ? '' : `${counter}: `}${origin === null ? '' : `${origin}: `}`
    + `${ts === null ? '' : `${ts.text} `}${host === null ? '' : `${host} ${m.asaColon && style !== 'empty' ? ': ' : ''}`}`;
  const text = header + tag + msg;
  const hasTag = style !== 'empty';
  return {
    bytes: Buffer.from(text, 'utf8'),
    expected: {
      ...(hasPri ? { facility: m.pri! >> 3, severity: m.pri! & 7 } : {}),
      ts: ts === null ? RECEIVED : ts.ts, hostname: nil(origin ?? host ?? '-'),
      app: hasTag ? m.app : null, procid: hasTag && style !== 'colon' ? m.pid : null, msgid: null, sd: null,
      msg: style === 'glued' ? cleanMsg(msg).replace(/^ /, '') : cleanMsg(msg),
    },
  };
});

/** Parsed between two parses of a case: they fill the SD-name and timestamp caches with other entries. */
const OTHER_MESSAGES: readonly Buffer[] = [
  '<13>1 2026-11-27T12:00:00Z h a p m [origin ip="1"][meta a="b" a="c"] x', '<13>1 - - - - - [__proto__ a="1"]', '<13>1 - h a - - [x@32473 constructor="v"]',
  '<13>Oct 11 22:14:15 host app[1]: x', '<13>Feb 29 00:00:00 h a: b', 'Dec 31 23:59:59.999 h a[1] m', 'Jan  1 2024 00:00:00 x', '<191>bare',
].map((s) => Buffer.from(s));

const SYSLOG_TOKENS = ['<13>', '<191>', '<192>', '<0013>', '1 ', '2 ', ' - ', '[', ']', '="', '\\"', '\\]', 'Oct 11 ', 'Feb 30 ', '22:14:15', '.', 'T', 'Z', '+25:00', 'app[1]:', 'app:'];

function messageCases(valid: fc.Arbitrary<{ bytes: Buffer; expected: Expected }>): fc.Arbitrary<MessageCase> {
  const mutations = fc.array(byteMutationArb(SYSLOG_TOKENS), { maxLength: 4 });
  const structured = fc.tuple(valid, mutations).map(([v, ms]) => ({
    bytes: ms.reduce(applyMutation, v.bytes),
    expected: ms.length === 0 ? v.expected : null,
  }));
  const raw = noisyBytes(SYSLOG_TOKENS).map((bytes) => ({ bytes, expected: null }));
  const nowMs = fc.oneof({ weight: 4, arbitrary: fc.constant(NOW) }, fc.integer({ min: -1e13, max: 1e13 }), fc.constantFrom(NaN, 0, 8.64e15, -8.64e15));
  return fc.record({
    main: fc.oneof({ weight: 3, arbitrary: structured }, { weight: 1, arbitrary: raw }),
    other: fc.oneof(fc.constantFrom(...OTHER_MESSAGES), noisyBytes(SYSLOG_TOKENS, 32)),
    nowMs,
  }).map(({ main, other, nowMs: now }) => ({
    bytes: main.bytes, other, nowMs: now,
    // Round trips are judged against the fixed "now" only: the year of a BSD timestamp depends on it.
    expected: now === NOW ? main.expected : null,
  }));
}

export const syslog5424Target = defineTarget<MessageCase>({
  name: 'syslog-5424',
  description: 'RFC 5424 messages (valid, mutated, raw bytes) → decodeSyslogFrame',
  arbitrary: messageCases(valid5424),
  check: checkMessage,
});

export const syslog3164Target = defineTarget<MessageCase>({
  name: 'syslog-3164',
  description: 'RFC 3164 / BSD messages (valid, mutated, raw bytes) → decodeSyslogFrame',
  arbitrary: messageCases(valid3164),
  check: checkMessage,
});
