import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LogRecord, type StructuredData } from '../../../src/core/record.js';
import { parseSyslog } from '../../../src/sources/syslog/parse.js';
import { expectedSd, isoDateExists } from '../../fuzz/syslog-message.js';

const RECEIVED = '2024-12-01T12:00:00.000Z';
/** "Now" in the local time zone, so BSD expectations hold whatever TZ is. */
const NOW = new Date(2024, 11, 1, 12, 0, 0).getTime();
const BOM = '\uFEFF';

/** ISO string of a local-time date, the way BSD timestamps are interpreted. */
function local(y: number, mo: number, d: number, h: number, mi: number, s: number, ms = 0): string {
  return new Date(y, mo - 1, d, h, mi, s, ms).toISOString();
}

function parse(input: string, nowMs = NOW): LogRecord {
  const rec = new LogRecord();
  rec.received = RECEIVED;
  parseSyslog(input, rec, nowMs);
  return rec;
}

type Expect = Partial<Pick<LogRecord,
  'facility' | 'severity' | 'ts' | 'hostname' | 'app' | 'procid' | 'msgid' | 'sd' | 'msg' | 'parseError'>>;

interface Case {
  name: string;
  input: string;
  now?: number;
  expect: Expect;
}

function check(rec: LogRecord, expect: Expect): void {
  const full: Expect = { parseError: false, ...expect };
  for (const key of Object.keys(full) as (keyof Expect)[]) {
    assert.deepStrictEqual(rec[key], full[key], `field ${key}`);
  }
}

/** Expectation for a malformed message: everything null, msg = raw text. */
function malformed(raw: string, facility = 1, severity = 5): Expect {
  return {
    parseError: true, msg: raw, facility, severity, ts: RECEIVED,
    hostname: null, app: null, procid: null, msgid: null, sd: null,
  };
}

const cases: Case[] = [
  // ---- RFC 5424 §6.5
  {
    name: '5424 §6.5 example 1 (no SD, BOM in MSG)',
    input: `<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - ${BOM}'su root' failed for lonvick on /dev/pts/8`,
    expect: {
      facility: 4, severity: 2, ts: '2003-10-11T22:14:15.003Z', hostname: 'mymachine.example.com',
      app: 'su', procid: null, msgid: 'ID47', sd: null, msg: "'su root' failed for lonvick on /dev/pts/8",
    },
  },
  {
    name: '5424 §6.5 example 2 (offset, microseconds, IP hostname)',
    input: "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
    expect: {
      facility: 20, severity: 5, ts: '2003-08-24T05:14:15.000003-07:00', hostname: '192.0.2.1',
      app: 'myproc', procid: '8710', msgid: null, sd: null, msg: "%% It's time to make the do-nuts.",
    },
  },
  {
    name: '5424 §6.5 example 3 (SD and MSG)',
    input: '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 ' +
      `[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] ${BOM}An application event log entry...`,
    expect: {
      facility: 20, severity: 5, ts: '2003-10-11T22:14:15.003Z', hostname: 'mymachine.example.com',
      app: 'evntslog', procid: null, msgid: 'ID47',
      sd: { 'exampleSDID@32473': { iut: '3', eventSource: 'Application', eventID: '1011' } },
      msg: 'An application event log entry...',
    },
  },
  {
    name: '5424 §6.5 example 4 (two SD elements, no MSG)',
    input: '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 ' +
      '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]',
    expect: {
      hostname: 'mymachine.example.com', app: 'evntslog', msgid: 'ID47', msg: '',
      sd: {
        'exampleSDID@32473': { iut: '3', eventSource: 'Application', eventID: '1011' },
        'examplePriority@32473': { class: 'high' },
      },
    },
  },
  // ---- RFC 5424 details
  {
    name: '5424 NILVALUE in every field',
    input: '<13>1 - - - - - -',
    expect: {
      facility: 1, severity: 5, ts: RECEIVED, hostname: null, app: null, procid: null, msgid: null, sd: null, msg: '',
    },
  },
  {
    name: '5424 NILVALUE SD with empty MSG after SP',
    input: '<13>1 - h a p m - ',
    expect: { hostname: 'h', app: 'a', procid: 'p', msgid: 'm', sd: null, msg: '' },
  },
  {
    name: '5424 lowercase t and z are uppercased',
    input: '<13>1 2003-10-11t22:14:15.003z h a - - - x',
    expect: { ts: '2003-10-11T22:14:15.003Z', msg: 'x' },
  },
  {
    name: '5424 nine fractional digits and leap second',
    input: '<13>1 2016-12-31T23:59:60.123456789+00:00 h a - - - x',
    expect: { ts: '2016-12-31T23:59:60.123456789+00:00' },
  },
  {
    name: '5424 escaped SD-PARAM values; other backslashes kept',
    input: '<13>1 - h a - - [x@1 a="q\\"b\\\\c\\]d\\ne" b="" c="tail\\\\"] m',
    expect: { sd: { 'x@1': { a: 'q"b\\c]d\\ne', b: '', c: 'tail\\' } }, msg: 'm' },
  },
  {
    name: '5424 unescaped ] inside a quoted value is accepted',
    input: '<13>1 - h a - - [x@1 a="[b]"] m',
    expect: { sd: { 'x@1': { a: '[b]' } } },
  },
  {
    name: '5424 repeated param name → array in order',
    input: '<13>1 - h a - - [x@1 a="1" a="2" b="z" a="3"]',
    expect: { sd: { 'x@1': { a: ['1', '2', '3'], b: 'z' } } },
  },
  {
    name: '5424 repeated SD-ID merges, repeats across elements become arrays',
    input: '<13>1 - h a - - [x@1 a="1" b="2"][y@1][x@1 a="3" c="4"] m',
    expect: { sd: { 'x@1': { a: ['1', '3'], b: '2', c: '4' }, 'y@1': {} }, msg: 'm' },
  },
  {
    name: '5424 multiple SD elements with MSG',
    input: '<13>1 - h a - - [a@1 k="v"][b@1 k="w"][c@1] hello world',
    expect: { sd: { 'a@1': { k: 'v' }, 'b@1': { k: 'w' }, 'c@1': {} }, msg: 'hello world' },
  },
  {
    name: '5424 only one leading BOM is stripped from MSG, spaces kept',
    input: `<13>1 - h a - - - ${BOM}${BOM}  x `,
    expect: { msg: `${BOM}  x ` },
  },
  {
    name: '5424 leading BOM before PRI',
    input: `${BOM}<13>1 - h a - - - x`,
    expect: { hostname: 'h', msg: 'x' },
  },
  {
    name: '5424 non-ASCII hostname is accepted',
    input: '<13>1 - hôte a - - - x',
    expect: { hostname: 'hôte' },
  },
  {
    name: '5424 control character in a header token is kept (lenient)',
    input: '<13>1 - h\tx a - - - x',
    expect: { hostname: 'h\tx', app: 'a', msg: 'x' },
  },
  {
    name: '5424 PRI with leading zero accepted leniently',
    input: '<013>1 - h a - - - x',
    expect: { facility: 1, severity: 5, hostname: 'h' },
  },
  {
    name: 'PRI 0 and 191',
    input: '<191>1 - h a - - - x',
    expect: { facility: 23, severity: 7 },
  },
  {
    name: 'PRI 0',
    input: '<0>1 - h a - - - x',
    expect: { facility: 0, severity: 0 },
  },
  {
    name: '5424 long SD names (not interned) still merge and repeat',
    input: `<13>1 - h a - - [${'i'.repeat(100)} ${'n'.repeat(80)}="1"][${'i'.repeat(100)} ${'n'.repeat(80)}="2"]`,
    expect: { sd: { ['i'.repeat(100)]: { ['n'.repeat(80)]: ['1', '2'] } } },
  },
  {
    name: 'SD-ID and param named __proto__ stay plain own properties',
    input: '<13>1 - h a - - [__proto__ __proto__="p" constructor="c"]',
    expect: {
      sd: JSON.parse('{"__proto__":{"__proto__":"p","constructor":"c"}}') as StructuredData,
    },
  },
  // ---- trailing NUL / CR / LF
  { name: 'trailing NUL', input: '<13>1 - h a - - - x\0', expect: { msg: 'x' } },
  { name: 'trailing CR', input: '<13>1 - h a - - - x\r', expect: { msg: 'x' } },
  { name: 'trailing CRLF', input: '<13>1 - h a - - - x\r\n', expect: { msg: 'x' } },
  { name: 'trailing mixed run', input: '<13>Oct 11 22:14:15 h a: x\r\n\0\0', expect: { msg: 'x' } },
  { name: 'trailing CR after SD', input: '<13>1 - h a - - [a@1]\r\n', expect: { sd: { 'a@1': {} }, msg: '' } },
  { name: 'inner CR kept', input: '<13>1 - h a - - - x\ry\r', expect: { msg: 'x\ry' } },
  // ---- RFC 3164 §5.4
  {
    name: '3164 §5.4 example 1',
    input: "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
    expect: {
      facility: 4, severity: 2, ts: local(2024, 10, 11, 22, 14, 15), hostname: 'mymachine', app: 'su',
      procid: null, msgid: null, sd: null, msg: "'su root' failed for lonvick on /dev/pts/8",
    },
  },
  {
    name: '3164 §5.4 example 2 as received (no PRI, no timestamp)',
    input: 'Use the BFG!',
    expect: malformed('Use the BFG!'),
  },
  {
    name: '3164 §5.4 example 2 as relayed (no tag)',
    input: '<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!',
    expect: {
      ts: local(2024, 2, 5, 17, 32, 18), hostname: '10.0.0.99', app: null, procid: null, msg: 'Use the BFG!',
    },
  },
  {
    name: '3164 §5.4 example 3 (non-standard "CST 1987" after the time)',
    input: "<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: %% It's time to make the do-nuts.  %%",
    expect: {
      facility: 20, severity: 5, ts: local(2024, 8, 24, 5, 34, 0), hostname: 'CST', app: null,
      msg: "1987 mymachine myproc[10]: %% It's time to make the do-nuts.  %%",
    },
  },
  {
    name: '3164 §5.4 example 4 as received (unrecognised timestamp)',
    input: "<0>1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!",
    expect: {
      facility: 0, severity: 0, ts: RECEIVED, hostname: null, app: null,
      msg: "1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!",
    },
  },
  {
    name: '3164 §5.4 example 4 as relayed',
    input: "<0>Oct 22 10:52:12 scapegoat 1990 Oct 22 10:50:01 10.1.2.3 sched[0]: That's All Folks!",
    expect: {
      ts: local(2024, 10, 22, 10, 52, 12), hostname: 'scapegoat', app: null,
      msg: "1990 Oct 22 10:50:01 10.1.2.3 sched[0]: That's All Folks!",
    },
  },
  // ---- 3164 variants
  {
    name: '3164 tag with pid',
    input: '<30>Oct 11 22:14:15 host sshd[1234]: Accepted publickey',
    expect: { facility: 3, severity: 6, hostname: 'host', app: 'sshd', procid: '1234', msg: 'Accepted publickey' },
  },
  {
    name: '3164 tag with slash in app name',
    input: '<22>Oct 11 22:14:15 mx postfix/smtpd[99]: connect from x',
    expect: { hostname: 'mx', app: 'postfix/smtpd', procid: '99', msg: 'connect from x' },
  },
  {
    name: '3164 tag with pid but no colon',
    input: '<13>Oct 11 22:14:15 host app[12] text',
    expect: { hostname: 'host', app: 'app', procid: '12', msg: 'text' },
  },
  {
    name: '3164 empty pid brackets',
    input: '<13>Oct 11 22:14:15 host app[]: text',
    expect: { app: 'app', procid: null, msg: 'text' },
  },
  {
    name: '3164 only one space after the tag is dropped',
    input: '<13>Oct 11 22:14:15 host app:   indented',
    expect: { app: 'app', msg: '  indented' },
  },
  {
    name: '3164 tag with nothing after it',
    input: '<13>Oct 11 22:14:15 host app:',
    expect: { hostname: 'host', app: 'app', msg: '' },
  },
  {
    name: '3164 missing hostname, tag with pid',
    input: '<13>Oct 11 22:14:15 su[99]: hello',
    expect: { hostname: null, app: 'su', procid: '99', msg: 'hello' },
  },
  {
    name: '3164 missing hostname, tag without pid',
    input: '<13>Oct 11 22:14:15 kernel: [0.000] Linux',
    expect: { hostname: null, app: 'kernel', procid: null, msg: '[0.000] Linux' },
  },
  {
    name: '3164 missing hostname, tag with pid and no colon',
    input: '<13>Oct 11 22:14:15 cron[5] job done',
    expect: { hostname: null, app: 'cron', procid: '5', msg: 'job done' },
  },
  {
    name: '3164 token starting with [ is not a tag',
    input: '<13>Oct 11 22:14:15 [x] y',
    expect: { hostname: '[x]', app: null, msg: 'y' },
  },
  {
    name: '3164 hostname only',
    input: '<13>Oct 11 22:14:15 host',
    expect: { hostname: 'host', app: null, msg: '' },
  },
  {
    name: '3164 timestamp only',
    input: '<13>Oct 11 22:14:15',
    expect: { ts: local(2024, 10, 11, 22, 14, 15), hostname: null, app: null, msg: '' },
  },
  {
    name: '3164 NILVALUE hostname → null',
    input: '<13>Oct 11 22:14:15 - app: x',
    expect: { hostname: null, app: 'app', msg: 'x' },
  },
  {
    name: '3164 space-padded day',
    input: '<13>Oct  1 02:03:04 host app: x',
    expect: { ts: local(2024, 10, 1, 2, 3, 4), hostname: 'host', app: 'app', msg: 'x' },
  },
  {
    name: '3164 zero-padded and unpadded day, lowercase month',
    input: '<13>oct 1 02:03:04 host app: x',
    expect: { ts: local(2024, 10, 1, 2, 3, 4), hostname: 'host' },
  },
  {
    name: '3164 fractional seconds',
    input: '<13>Oct 01 02:03:04.56789 host app: x',
    expect: { ts: local(2024, 10, 1, 2, 3, 4, 567), hostname: 'host' },
  },
  {
    name: '3164 Cisco year between day and time',
    input: '<189>Oct 11 2023 22:14:15 router %LINK-3-UPDOWN: Interface up',
    expect: {
      facility: 23, severity: 5, ts: local(2023, 10, 11, 22, 14, 15), hostname: 'router',
      app: '%LINK-3-UPDOWN', msg: 'Interface up',
    },
  },
  {
    name: '3164 ISO timestamp (rsyslog forward format)',
    input: '<13>2003-10-11T22:14:15.003+02:00 host app[123]: msg',
    expect: { ts: '2003-10-11T22:14:15.003+02:00', hostname: 'host', app: 'app', procid: '123', msg: 'msg' },
  },
  {
    name: '3164 ISO timestamp, lowercase z, missing hostname',
    input: '<13>2003-10-11T22:14:15z app: msg',
    expect: { ts: '2003-10-11T22:14:15Z', hostname: null, app: 'app', msg: 'msg' },
  },
  {
    name: 'no PRI, BSD timestamp',
    input: 'Oct 11 22:14:15 host app: msg',
    expect: { facility: 1, severity: 5, ts: local(2024, 10, 11, 22, 14, 15), hostname: 'host', app: 'app', msg: 'msg' },
  },
  {
    name: 'no PRI, ISO timestamp',
    input: '2003-10-11T22:14:15Z host app[7]: msg',
    expect: { facility: 1, severity: 5, ts: '2003-10-11T22:14:15Z', hostname: 'host', procid: '7', msg: 'msg' },
  },
  {
    name: 'leading BOM before a 3164 message',
    input: `${BOM}<13>Oct 11 22:14:15 host app: msg`,
    expect: { hostname: 'host', app: 'app', msg: 'msg' },
  },
  {
    name: 'leading BOM before a PRI-less message',
    input: `${BOM}Oct 11 22:14:15 host app: msg`,
    expect: { hostname: 'host', msg: 'msg' },
  },
  {
    name: 'PRI but no timestamp',
    input: '<13>hello world',
    expect: { ts: RECEIVED, hostname: null, app: null, msg: 'hello world' },
  },
  {
    name: 'PRI and nothing else',
    input: '<13>',
    expect: { msg: '' },
  },
  {
    name: 'PRI then digits: not 5424 when VERSION would exceed 3 digits',
    input: '<13>1234 apples',
    expect: { msg: '1234 apples' },
  },
  {
    name: 'PRI then an impossible BSD timestamp is just text',
    input: '<13>Oct 32 22:14:15 host app: x',
    expect: { ts: RECEIVED, hostname: null, msg: 'Oct 32 22:14:15 host app: x' },
  },
  {
    name: 'PRI then an invalid ISO timestamp is just text',
    input: '<13>2003-13-11T22:14:15Z host app: x',
    expect: { ts: RECEIVED, hostname: null, msg: '2003-13-11T22:14:15Z host app: x' },
  },
  {
    name: 'BSD timestamp glued to text is not a timestamp',
    input: '<13>Oct 11 22:14:15x host app: y',
    expect: { ts: RECEIVED, hostname: null, app: null, msg: 'Oct 11 22:14:15x host app: y' },
  },
  {
    name: 'BSD timestamp with a colon glued to text is not a timestamp',
    input: '<13>Oct 11 22:14:15:x host app: y',
    expect: { ts: RECEIVED, hostname: null, app: null, msg: 'Oct 11 22:14:15:x host app: y' },
  },
  {
    name: 'BSD date that does not exist keeps the structure, ts = received',
    input: '<13>Feb 30 22:14:15 host app: x',
    expect: { ts: RECEIVED, hostname: 'host', app: 'app', msg: 'x' },
  },
  // ---- dates that do not exist are not event times (RFC 5424 and RFC 3164)
  {
    name: '5424 September 31st: the structure is kept, ts = received',
    input: '<101>1 2003-09-31T22:14:15.003Z host app - - - x',
    expect: { facility: 12, severity: 5, ts: RECEIVED, hostname: 'host', app: 'app', msg: 'x' },
  },
  { name: '5424 February 29th of a common year', input: '<13>1 2018-02-29T22:14:15Z h a - - - x', expect: { ts: RECEIVED, hostname: 'h', msg: 'x' } },
  { name: '5424 February 29th of a leap year', input: '<13>1 2016-02-29T22:14:15Z h a - - - x', expect: { ts: '2016-02-29T22:14:15Z' } },
  { name: '5424 February 29th of 2000 (divisible by 400)', input: '<13>1 2000-02-29T00:00:00Z h a - - - x', expect: { ts: '2000-02-29T00:00:00Z' } },
  { name: '5424 February 29th of 1900 (divisible by 100)', input: '<13>1 1900-02-29T00:00:00Z h a - - - x', expect: { ts: RECEIVED, hostname: 'h' } },
  { name: '5424 February 29th of 2100', input: '<13>1 2100-02-29T00:00:00+01:00 h a - - - x', expect: { ts: RECEIVED } },
  { name: '5424 February 30th', input: '<13>1 2016-02-30T00:00:00Z h a - - - x', expect: { ts: RECEIVED } },
  { name: '5424 April, June, November 31st', input: '<13>1 2003-04-31T00:00:00Z h a - - - x', expect: { ts: RECEIVED } },
  { name: '5424 June 31st', input: '<13>1 2003-06-31T00:00:00Z h a - - - x', expect: { ts: RECEIVED } },
  { name: '5424 November 31st, lowercase t', input: '<13>1 2003-11-31t00:00:00z h a - - - x', expect: { ts: RECEIVED } },
  { name: '5424 the 31st of each long month exists', input: '<13>1 2003-08-31T23:59:59Z h a - - - x', expect: { ts: '2003-08-31T23:59:59Z' } },
  { name: '5424 December 31st with a leap second', input: '<13>1 2016-12-31T23:59:60Z h a - - - x', expect: { ts: '2016-12-31T23:59:60Z' } },
  {
    name: '3164 ISO timestamp on a date that does not exist keeps the structure',
    input: '<13>2003-09-31T22:14:15+02:00 host app[1]: x',
    expect: { ts: RECEIVED, hostname: 'host', app: 'app', procid: '1', msg: 'x' },
  },
  { name: 'BSD Sep 31 with a year', input: '<13>Sep 31 2003 22:14:15 host app: x', expect: { ts: RECEIVED, hostname: 'host', app: 'app', msg: 'x' } },
  { name: 'BSD Feb 29 of a common year', input: '<13>Feb 29 2023 22:14:15 host app: x', expect: { ts: RECEIVED, hostname: 'host' } },
  { name: 'BSD Feb 29 of a leap year', input: '<13>Feb 29 2024 22:14:15 host app: x', expect: { ts: local(2024, 2, 29, 22, 14, 15), hostname: 'host' } },
  { name: 'BSD Feb 29 without a year, received in a leap year', input: '<13>Feb 29 22:14:15 host app: x', expect: { ts: local(2024, 2, 29, 22, 14, 15) } },
  {
    name: 'BSD Feb 29 without a year, received in a common year',
    input: '<13>Feb 29 22:14:15 host app: x',
    now: new Date(2025, 2, 1, 12).getTime(),
    expect: { ts: RECEIVED, hostname: 'host', app: 'app', msg: 'x' },
  },
  // ---- HOSTNAME and TAG: what is neither
  {
    name: 'a lone colon after the timestamp is an empty TAG, not a hostname',
    input: '<34>Oct 11 22:14:15 : a message',
    expect: { facility: 4, severity: 2, ts: local(2024, 10, 11, 22, 14, 15), hostname: null, app: null, msg: 'a message' },
  },
  { name: 'a lone colon, then a TAG', input: '<34>Oct 11 22:14:15 : su: a message', expect: { hostname: null, app: 'su', msg: 'a message' } },
  { name: 'a lone colon and nothing else', input: '<34>Oct 11 22:14:15 :', expect: { hostname: null, app: null, msg: '' } },
  { name: 'a lone colon keeps the indentation after its one SP', input: '<34>Oct 11 22:14:15 :   x', expect: { hostname: null, msg: '  x' } },
  {
    name: 'a lone colon after the hostname (Cisco ASA device-id)',
    input: '<166>Oct 11 2023 22:14:15 asa01 : %ASA-6-302013: Built outbound TCP connection',
    expect: { ts: local(2023, 10, 11, 22, 14, 15), hostname: 'asa01', app: '%ASA-6-302013', msg: 'Built outbound TCP connection' },
  },
  { name: 'a lone colon after the hostname, then text', input: '<13>Oct 11 22:14:15 host : plain text', expect: { hostname: 'host', app: null, msg: 'plain text' } },
  {
    name: 'JSON after the hostname is the message, not a TAG',
    input: '<14>Oct 11 22:14:15 opsaudit {"username": "admin", "action": "login"}',
    expect: { hostname: 'opsaudit', app: null, procid: null, msg: '{"username": "admin", "action": "login"}' },
  },
  {
    name: 'JSON after a TAG',
    input: '<14>Oct 11 22:14:15 host audit: {"username": "admin"}',
    expect: { hostname: 'host', app: 'audit', msg: '{"username": "admin"}' },
  },
  {
    name: 'JSON right after the timestamp is neither hostname nor TAG',
    input: '<14>Oct 11 22:14:15 {"username": "admin"}',
    expect: { hostname: null, app: null, msg: '{"username": "admin"}' },
  },
  { name: 'a JSON array after the hostname', input: '<14>Oct 11 22:14:15 host [{"a":1}]', expect: { hostname: 'host', app: null, msg: '[{"a":1}]' } },
  { name: 'a quoted key after the hostname', input: "<14>Oct 11 22:14:15 host 'key': value", expect: { hostname: 'host', app: null, msg: "'key': value" } },
  { name: 'key=value after the hostname', input: '<14>Oct 11 22:14:15 host user=alice: logged in', expect: { hostname: 'host', app: null, msg: 'user=alice: logged in' } },
  { name: 'key=value right after the timestamp', input: '<14>Oct 11 22:14:15 user=alice action=login', expect: { hostname: null, app: null, msg: 'user=alice action=login' } },
  { name: 'XML right after the timestamp', input: '<14>Oct 11 22:14:15 <event id="1"/>', expect: { hostname: null, app: null, msg: '<event id="1"/>' } },
  {
    name: 'IPv6-looking hostname ending in ::',
    input: '<0>Jan 10 01:00:00 0002:: prg0: msgtxt',
    expect: { facility: 0, severity: 0, ts: local(2024, 1, 10, 1, 0, 0), hostname: '0002::', app: 'prg0', msg: 'msgtxt' },
  },
  { name: 'IPv6 hostname ::', input: '<13>Jan 10 01:00:00 :: prg0: x', expect: { hostname: '::', app: 'prg0', msg: 'x' } },
  { name: 'IPv6 hostname 2001:db8::', input: '<13>Jan 10 01:00:00 2001:db8:: prg0[7]: x', expect: { hostname: '2001:db8::', app: 'prg0', procid: '7', msg: 'x' } },
  { name: 'IPv6 hostname fe80::1', input: '<13>Jan 10 01:00:00 fe80::1 prg0: x', expect: { hostname: 'fe80::1', app: 'prg0', msg: 'x' } },
  { name: 'IPv6 hostname ::1 with no TAG', input: '<13>Jan 10 01:00:00 ::1 x y', expect: { hostname: '::1', app: null, msg: 'x y' } },
  { name: 'a counter is not a TAG', input: '<13>Oct 11 22:14:15 router 82: %SYS-5-CONFIG_I: x', expect: { hostname: 'router', app: null, msg: '82: %SYS-5-CONFIG_I: x' } },
  { name: 'a token ending in one colon is no hostname', input: '<13>Oct 11 22:14:15 12: x', expect: { hostname: null, app: null, msg: '12: x' } },
  { name: 'a bare word after the hostname is not a TAG', input: '<13>Oct 11 22:14:15 host app message', expect: { hostname: 'host', app: null, msg: 'app message' } },
  // ---- space after PRI
  {
    name: 'space after PRI, BSD timestamp',
    input: '<38> Mar  7 19:06:53 example tag: testmessage',
    expect: { facility: 4, severity: 6, ts: local(2024, 3, 7, 19, 6, 53), hostname: 'example', app: 'tag', msg: 'testmessage' },
  },
  {
    name: 'space after PRI, ISO timestamp',
    input: '<54> 1970-01-01T00:01:31+00:00 host app: msg',
    expect: { facility: 6, severity: 6, ts: '1970-01-01T00:01:31+00:00', hostname: 'host', app: 'app', msg: 'msg' },
  },
  { name: 'several spaces after PRI', input: '<13>   Oct 11 22:14:15 host app: x', expect: { ts: local(2024, 10, 11, 22, 14, 15), hostname: 'host', msg: 'x' } },
  { name: 'space after PRI, no header: the text after PRI is kept whole', input: '<13> hello world', expect: { ts: RECEIVED, hostname: null, app: null, msg: ' hello world' } },
  { name: 'space after PRI is not RFC 5424', input: '<13> 1 - h a - - - x', expect: { ts: RECEIVED, hostname: null, app: null, msg: ' 1 - h a - - - x' } },
  // ---- Cisco: colon after the timestamp, time zone, clock marks
  {
    name: 'colon after the BSD timestamp',
    input: '<167>Mar 7 19:06:53: example tag: testmessage',
    expect: { facility: 20, severity: 7, ts: local(2024, 3, 7, 19, 6, 53), hostname: 'example', app: 'tag', msg: 'testmessage' },
  },
  {
    name: 'colon after a BSD timestamp with a year (Cisco PIX/ASA)',
    input: '<190>Apr 15 2007 21:28:13: %PIX-6-302014: Teardown TCP connection 1 for outside:10.0.0.1/80',
    expect: {
      facility: 23, severity: 6, ts: local(2007, 4, 15, 21, 28, 13), hostname: null, app: '%PIX-6-302014',
      msg: 'Teardown TCP connection 1 for outside:10.0.0.1/80',
    },
  },
  { name: 'colon after the timestamp and nothing else', input: '<13>Oct 11 22:14:15:', expect: { ts: local(2024, 10, 11, 22, 14, 15), msg: '' } },
  { name: 'colon after an ISO timestamp', input: '<13>2003-10-11T22:14:15Z: host app: x', expect: { ts: '2003-10-11T22:14:15Z', hostname: 'host', app: 'app', msg: 'x' } },
  {
    name: 'Cisco IOS: unsynchronised clock, milliseconds, UTC',
    input: '<189>*Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: Configured from console by vty2 (10.34.195.36)',
    expect: { ts: new Date(Date.UTC(2024, 2, 1, 18, 48, 50, 483)).toISOString(), hostname: null, app: '%SYS-5-CONFIG_I', msg: 'Configured from console by vty2 (10.34.195.36)' },
  },
  {
    name: 'Cisco IOS: clock that lost NTP, another zone (read as local time)',
    input: '<189>.Sep  8 14:53:43.301 KST: %LINK-3-UPDOWN: Interface GigabitEthernet1/0/1, changed state to up',
    expect: { ts: local(2024, 9, 8, 14, 53, 43, 301), hostname: null, app: '%LINK-3-UPDOWN', msg: 'Interface GigabitEthernet1/0/1, changed state to up' },
  },
  { name: 'UTC after a plain BSD timestamp', input: '<13>Oct 11 22:14:15 UTC: %SYS-5-X: y', expect: { ts: new Date(Date.UTC(2024, 9, 11, 22, 14, 15)).toISOString(), app: '%SYS-5-X', msg: 'y' } },
  { name: 'GMT after a plain BSD timestamp', input: '<13>Oct 11 22:14:15 GMT: host x: y', expect: { ts: new Date(Date.UTC(2024, 9, 11, 22, 14, 15)).toISOString(), hostname: 'host', app: 'x', msg: 'y' } },
  { name: 'capitals after a plain BSD timestamp are a TAG, not a zone', input: '<13>Oct 11 22:14:15 CRON: x', expect: { ts: local(2024, 10, 11, 22, 14, 15), hostname: null, app: 'CRON', msg: 'x' } },
  { name: 'a lowercase TAG after a Cisco timestamp is not a zone', input: '<13>*Oct 11 22:14:15 kernel: x', expect: { hostname: null, app: 'kernel', msg: 'x' } },
  { name: 'a zone without the colon is a hostname', input: '<13>Oct 11 22:14:15.5 UTC x', expect: { ts: local(2024, 10, 11, 22, 14, 15, 500), hostname: 'UTC', msg: 'x' } },
  // ---- TAG glued to the message
  {
    name: 'no space after the TAG\'s colon',
    input: '<13>Feb 13 20:07:26 74794bfb6795 root[8539]:syslog message',
    expect: { ts: local(2024, 2, 13, 20, 7, 26), hostname: '74794bfb6795', app: 'root', procid: '8539', msg: 'syslog message' },
  },
  { name: 'no space after the TAG\'s colon, no hostname', input: '<13>Feb 13 20:07:26 root[8539]:syslog message', expect: { hostname: null, app: 'root', procid: '8539', msg: 'syslog message' } },
  { name: 'no space after the TAG\'s colon, empty pid', input: '<13>Feb 13 20:07:26 h root[]:x', expect: { hostname: 'h', app: 'root', procid: null, msg: 'x' } },
  { name: 'app:text without brackets is not a TAG', input: '<13>Feb 13 20:07:26 host app:text more', expect: { hostname: 'host', app: null, msg: 'app:text more' } },
  { name: 'a URL after the hostname is not a TAG', input: '<13>Feb 13 20:07:26 host http://example.com/ is down', expect: { hostname: 'host', app: null, msg: 'http://example.com/ is down' } },
  { name: 'app[pid] glued to text other than a colon is not a TAG', input: '<13>Feb 13 20:07:26 host app[1]x y', expect: { hostname: 'host', app: null, msg: 'app[1]x y' } },
  // ---- TAG without a timestamp
  { name: 'TAG right after PRI', input: '<27>xapi: [error|xenserver|1] server error', expect: { facility: 3, severity: 3, ts: RECEIVED, hostname: null, app: 'xapi', msg: '[error|xenserver|1] server error' } },
  { name: 'TAG with pid after PRI and a space', input: '<15> openvpn[2499]: PTHREAD support initialized', expect: { ts: RECEIVED, hostname: null, app: 'openvpn', procid: '2499', msg: 'PTHREAD support initialized' } },
  { name: 'TAG with pid and no colon after PRI', input: '<13>dnsmasq[12] query from 10.0.0.1', expect: { app: 'dnsmasq', procid: '12', msg: 'query from 10.0.0.1' } },
  { name: 'Cisco ASA mnemonic right after PRI', input: '<166>%ASA-6-302013: Built inbound TCP connection', expect: { app: '%ASA-6-302013', msg: 'Built inbound TCP connection' } },
  { name: 'a number and a colon after PRI is not a TAG', input: '<13>42: the answer', expect: { ts: RECEIVED, app: null, msg: '42: the answer' } },
  { name: 'key=value after PRI is not a TAG (FortiGate)', input: '<189>date=2023-10-11 time=22:14:15 devname="FGT60E"', expect: { app: null, msg: 'date=2023-10-11 time=22:14:15 devname="FGT60E"' } },
  // ---- Cisco message counter, origin, NX-OS
  {
    name: 'Cisco IOS counter, unsynchronised clock, hostname after the timestamp',
    input: '<0>91: *Oct 07 03:10:04: mydevice.com %CRYPTO-4-RECVD_PKT_INV_SPI: decaps: rec\'d IPSEC packet has invalid spi',
    expect: {
      facility: 0, severity: 0, ts: local(2024, 10, 7, 3, 10, 4), hostname: 'mydevice.com', app: '%CRYPTO-4-RECVD_PKT_INV_SPI',
      msg: 'decaps: rec\'d IPSEC packet has invalid spi',
    },
  },
  {
    name: 'Cisco IOS counter, milliseconds, UTC',
    input: '<189>1042: Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: Configured from console by admin on vty0',
    expect: { ts: new Date(Date.UTC(2024, 2, 1, 18, 48, 50, 483)).toISOString(), hostname: null, app: '%SYS-5-CONFIG_I', msg: 'Configured from console by admin on vty0' },
  },
  {
    name: 'Cisco IOS counter and a local zone without milliseconds',
    input: '<189>1042: Mar  1 18:48:50 CET: %SYS-5-CONFIG_I: x',
    expect: { ts: local(2024, 3, 1, 18, 48, 50), hostname: null, app: '%SYS-5-CONFIG_I', msg: 'x' },
  },
  {
    name: 'Cisco IOS counter and origin hostname before the timestamp',
    input: '<189>1042: router1: *Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: x',
    expect: { ts: new Date(Date.UTC(2024, 2, 1, 18, 48, 50, 483)).toISOString(), hostname: 'router1', app: '%SYS-5-CONFIG_I', msg: 'x' },
  },
  { name: 'Cisco IOS counter, no timestamp', input: '<189>89: %SYS-5-CONFIG_I: Configured from console', expect: { ts: RECEIVED, hostname: null, app: '%SYS-5-CONFIG_I', msg: 'Configured from console' } },
  { name: 'Cisco IOS counter, uptime: kept whole', input: '<189>12: 00:00:46: %LINK-3-UPDOWN: x', expect: { ts: RECEIVED, hostname: null, app: null, msg: '12: 00:00:46: %LINK-3-UPDOWN: x' } },
  { name: 'a counter followed by text is kept whole', input: '<13>7: hello', expect: { ts: RECEIVED, app: null, msg: '7: hello' } },
  {
    name: 'Cisco NX-OS: an empty counter and the year first',
    input: '<189>: 2023 Oct 11 22:14:15 UTC: %ETHPORT-5-IF_UP: Interface Ethernet1/1 is up',
    expect: { ts: new Date(Date.UTC(2023, 9, 11, 22, 14, 15)).toISOString(), hostname: null, app: '%ETHPORT-5-IF_UP', msg: 'Interface Ethernet1/1 is up' },
  },
  { name: 'NX-OS year-first timestamp with milliseconds and a local zone', input: '<189>: 2023 Oct 11 22:14:15.120 CEST: %X-5-Y: z', expect: { ts: local(2023, 10, 11, 22, 14, 15, 120), app: '%X-5-Y', msg: 'z' } },
  { name: 'a year-first timestamp without the colon is not one', input: '<189>: 2023 Oct 11 22:14:15 sw1 x', expect: { ts: RECEIVED, app: null, msg: ': 2023 Oct 11 22:14:15 sw1 x' } },
  // ---- year inference
  {
    name: 'Dec/Jan wrap: December message received in early January → previous year',
    input: '<13>Dec 31 23:59:59 host app: x',
    now: new Date(2025, 0, 3, 12).getTime(),
    expect: { ts: local(2024, 12, 31, 23, 59, 59) },
  },
  {
    name: 'year inference: 6 days ahead stays in the current year',
    input: '<13>Jan  9 12:00:00 host app: x',
    now: new Date(2025, 0, 3, 12).getTime(),
    expect: { ts: local(2025, 1, 9, 12, 0, 0) },
  },
  {
    name: 'year inference: 8 days ahead → previous year',
    input: '<13>Jan 11 12:00:00 host app: x',
    now: new Date(2025, 0, 3, 12).getTime(),
    expect: { ts: local(2024, 1, 11, 12, 0, 0) },
  },
  // ---- malformed
  { name: 'empty string', input: '', expect: malformed('') },
  { name: 'only CRLF', input: '\r\n', expect: malformed('') },
  { name: 'arbitrary text', input: 'hello', expect: malformed('hello') },
  { name: 'binary garbage', input: '\u0001\u0002\uFFFD\uFFFD\u0000x', expect: malformed('\u0001\u0002\uFFFD\uFFFD\u0000x') },
  { name: 'text starting with a digit', input: '2003 was a year', expect: malformed('2003 was a year') },
  { name: 'PRI > 191', input: '<192>x', expect: malformed('<192>x') },
  { name: 'PRI 999', input: '<999>x', expect: malformed('<999>x') },
  { name: 'PRI with 4 digits', input: '<0013>x', expect: malformed('<0013>x') },
  { name: 'PRI not digits', input: '<ab>x', expect: malformed('<ab>x') },
  { name: 'PRI empty', input: '<>x', expect: malformed('<>x') },
  { name: 'PRI unterminated', input: '<12', expect: malformed('<12') },
  { name: 'lone <', input: '<', expect: malformed('<') },
  { name: 'bad PRI: leading BOM stripped from raw text too', input: `${BOM}<x>y\r\n`, expect: malformed('<x>y') },
  { name: 'only a BOM', input: BOM, expect: malformed('') },
  { name: 'bad PRI, trailing NUL stripped from raw', input: '<1x>y\0', expect: malformed('<1x>y') },
  { name: '5424 version 2', input: '<13>2 - h a - - - x', expect: malformed('<13>2 - h a - - - x') },
  { name: '5424 version 10', input: '<13>10 - h a - - - x', expect: malformed('<13>10 - h a - - - x') },
  { name: '5424 version 0', input: '<14>0 - h a - - - x', expect: malformed('<14>0 - h a - - - x', 1, 6) },
  {
    name: '5424 month 13',
    input: '<34>1 2003-13-11T22:14:15Z h a - - - x',
    expect: malformed('<34>1 2003-13-11T22:14:15Z h a - - - x', 4, 2),
  },
  { name: '5424 day 0', input: '<13>1 2003-10-00T22:14:15Z h a - - - x', expect: malformed('<13>1 2003-10-00T22:14:15Z h a - - - x') },
  { name: '5424 hour 24', input: '<13>1 2003-10-11T24:14:15Z h a - - - x', expect: malformed('<13>1 2003-10-11T24:14:15Z h a - - - x') },
  { name: '5424 second 61', input: '<13>1 2003-10-11T22:14:61Z h a - - - x', expect: malformed('<13>1 2003-10-11T22:14:61Z h a - - - x') },
  { name: '5424 no zone', input: '<13>1 2003-10-11T22:14:15 h a - - - x', expect: malformed('<13>1 2003-10-11T22:14:15 h a - - - x') },
  { name: '5424 space instead of T', input: '<13>1 2003-10-11 22:14:15Z h a - - - x', expect: malformed('<13>1 2003-10-11 22:14:15Z h a - - - x') },
  { name: '5424 empty fraction', input: '<13>1 2003-10-11T22:14:15.Z h a - - - x', expect: malformed('<13>1 2003-10-11T22:14:15.Z h a - - - x') },
  { name: '5424 10 fraction digits', input: '<13>1 2003-10-11T22:14:15.1234567890Z h a - - - x', expect: malformed('<13>1 2003-10-11T22:14:15.1234567890Z h a - - - x') },
  { name: '5424 bad offset', input: '<13>1 2003-10-11T22:14:15+2:00 h a - - - x', expect: malformed('<13>1 2003-10-11T22:14:15+2:00 h a - - - x') },
  { name: '5424 double space (empty field)', input: '<13>1 - h  a - - - x', expect: malformed('<13>1 - h  a - - - x') },
  { name: '5424 missing SD', input: '<13>1 - h a - -', expect: malformed('<13>1 - h a - -') },
  { name: '5424 truncated header', input: '<13>1 - h', expect: malformed('<13>1 - h') },
  { name: '5424 just version', input: '<13>1 ', expect: malformed('<13>1 ') },
  { name: '5424 SD neither - nor [', input: '<13>1 - h a - - x y', expect: malformed('<13>1 - h a - - x y') },
  { name: '5424 NILVALUE SD glued to MSG', input: '<13>1 - h a - - -x', expect: malformed('<13>1 - h a - - -x') },
  { name: '5424 SD unterminated', input: '<13>1 - h a - - [x@1 a="1"', expect: malformed('<13>1 - h a - - [x@1 a="1"') },
  { name: '5424 SD value unterminated', input: '<13>1 - h a - - [x@1 a="1]', expect: malformed('<13>1 - h a - - [x@1 a="1]') },
  { name: '5424 SD value ends in escaped quote', input: '<13>1 - h a - - [x@1 a="1\\"]', expect: malformed('<13>1 - h a - - [x@1 a="1\\"]') },
  { name: '5424 SD missing quotes', input: '<13>1 - h a - - [x@1 a=1]', expect: malformed('<13>1 - h a - - [x@1 a=1]') },
  { name: '5424 SD missing =', input: '<13>1 - h a - - [x@1 a]', expect: malformed('<13>1 - h a - - [x@1 a]') },
  { name: '5424 SD missing param name', input: '<13>1 - h a - - [x@1 ="1"]', expect: malformed('<13>1 - h a - - [x@1 ="1"]') },
  { name: '5424 SD trailing space in element', input: '<13>1 - h a - - [x@1 a="1" ]', expect: malformed('<13>1 - h a - - [x@1 a="1" ]') },
  { name: '5424 SD empty SD-ID', input: '<13>1 - h a - - [] x', expect: malformed('<13>1 - h a - - [] x') },
  { name: '5424 SD-ID with =', input: '<13>1 - h a - - [a=b] x', expect: malformed('<13>1 - h a - - [a=b] x') },
  { name: '5424 SD glued to MSG', input: '<13>1 - h a - - [x@1]msg', expect: malformed('<13>1 - h a - - [x@1]msg') },
  { name: '5424 SD missing closing ] after value', input: '<13>1 - h a - - [x@1 a="1"x]', expect: malformed('<13>1 - h a - - [x@1 a="1"x]') },
];

describe('parseSyslog table', () => {
  for (const c of cases) {
    test(c.name, () => {
      check(parse(c.input, c.now ?? NOW), c.expect);
    });
  }
});

describe('parseSyslog details', () => {
  test('every field is reset on a reused record', () => {
    const rec = new LogRecord();
    rec.received = RECEIVED;
    parseSyslog('<165>1 2003-10-11T22:14:15.003Z h a p m [x@1 a="1"] text', rec, NOW);
    parseSyslog('<13>hello', rec, NOW);
    check(rec, { facility: 1, severity: 5, ts: RECEIVED, hostname: null, app: null, procid: null, msgid: null, sd: null, msg: 'hello' });
  });

  test('__proto__ names do not change prototypes', () => {
    const rec = parse('<13>1 - h a - - [__proto__ __proto__="p"][x@1 __proto__="a" __proto__="b"]');
    const sd = rec.sd;
    assert.ok(sd !== null);
    assert.equal(Object.getPrototypeOf(sd), Object.prototype);
    assert.ok(Object.hasOwn(sd, '__proto__'));
    const inner = Object.getOwnPropertyDescriptor(sd, '__proto__')?.value as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(inner), Object.prototype);
    assert.deepStrictEqual(Object.getOwnPropertyDescriptor(inner, '__proto__')?.value, 'p');
    const x = sd['x@1'];
    assert.ok(x !== undefined);
    assert.deepStrictEqual(Object.getOwnPropertyDescriptor(x, '__proto__')?.value, ['a', 'b']);
  });

  test('BSD cache is invalidated when the inferred year changes', () => {
    const jan = new Date(2025, 0, 3, 12).getTime();
    const dec = new Date(2025, 11, 31, 12).getTime();
    const input = '<13>Dec 31 23:59:59 host app: x';
    assert.equal(parse(input, jan).ts, local(2024, 12, 31, 23, 59, 59));
    assert.equal(parse(input, dec).ts, local(2025, 12, 31, 23, 59, 59));
    assert.equal(parse(input, jan).ts, local(2024, 12, 31, 23, 59, 59));
  });

  test('BSD cache is invalidated when the 7-day threshold is crossed', () => {
    const input = '<13>Jan 20 00:00:00 host app: x';
    const before = new Date(2025, 0, 12, 23).getTime(); // 7 days 1 hour ahead → previous year
    const after = new Date(2025, 0, 13, 1).getTime(); // 6 days 23 hours ahead → this year
    assert.equal(parse(input, before).ts, local(2024, 1, 20, 0, 0, 0));
    assert.equal(parse(input, after).ts, local(2025, 1, 20, 0, 0, 0));
    assert.equal(parse(input, before).ts, local(2024, 1, 20, 0, 0, 0));
  });

  test('repeated BSD timestamps construct no Date, even when interleaved', () => {
    const a = '<13>Mar  3 03:03:03 host app: x';
    const b = '<13>Mar  3 03:03:04 other app: y';
    parse(a);
    parse(b);
    const RealDate = globalThis.Date;
    let constructed = 0;
    globalThis.Date = new Proxy(RealDate, {
      construct(target, args: unknown[]) {
        constructed++;
        return Reflect.construct(target, args) as object;
      },
    });
    const ts: string[] = [];
    try {
      ts.push(parse(a, NOW + 1000).ts, parse(b, NOW + 2000).ts, parse(a, NOW + 3000).ts);
    } finally {
      globalThis.Date = RealDate;
    }
    assert.equal(constructed, 0);
    assert.deepStrictEqual(ts, [local(2024, 3, 3, 3, 3, 3), local(2024, 3, 3, 3, 3, 4), local(2024, 3, 3, 3, 3, 3)]);
  });

  test('a NaN nowMs does not throw', () => {
    const rec = parse('<13>Apr  4 04:04:04 host app: x', NaN);
    assert.equal(rec.parseError, false);
    assert.equal(typeof rec.ts, 'string');
  });
});

// ---------------------------------------------------------------- properties

function assertSane(rec: LogRecord): void {
  assert.equal(typeof rec.msg, 'string');
  assert.equal(typeof rec.ts, 'string');
  assert.ok(Number.isInteger(rec.severity) && rec.severity >= 0 && rec.severity <= 7);
  assert.ok(Number.isInteger(rec.facility) && rec.facility >= 0 && rec.facility <= 23);
}

const PREFIXES = [
  '', '<', '<13>', '<13>1 ', '<13>1 - h a - - ', '<13>1 - h a - - [x@1 a="', '<13>1 2003-10-11T22:14:15',
  '<13>Oct 11 ', '<13>Oct 11 22:14:15 ', 'Oct  1 22:14:15', '2003-10-11T22:14:15.', '\uFEFF', '<191>',
];

describe('parseSyslog properties', () => {
  test('never throws on arbitrary strings', () => {
    const input = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.string({ unit: 'binary-ascii' }),
      fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes).toString('utf8')),
      fc.tuple(fc.constantFrom(...PREFIXES), fc.string({ unit: 'binary-ascii' })).map(([a, b]) => a + b),
    );
    fc.assert(fc.property(input, (text) => {
      assertSane(parse(text));
    }), { numRuns: 500 });
  });

  test('never throws whatever nowMs is', () => {
    const input = fc.tuple(fc.constantFrom('<13>Feb 29 ', '<13>Dec 31 ', 'Jan  1 '), fc.string({ unit: 'binary-ascii' }))
      .map(([a, b]) => a + '23:59:59 ' + b);
    fc.assert(fc.property(input, fc.double(), (text, now) => {
      assertSane(parse(text, now));
    }));
  });

  const printable = fc.integer({ min: 33, max: 126 }).map((c) => String.fromCharCode(c));
  const token = (max: number) => fc.string({ unit: printable, minLength: 1, maxLength: max });
  const sdName = fc.string({
    unit: printable.filter((c) => c !== '=' && c !== ']' && c !== '"'),
    minLength: 1, maxLength: 32,
  });
  const pad = (n: number, w: number) => String(n).padStart(w, '0');
  const timestamp = fc.option(
    fc.record({
      y: fc.integer({ min: 0, max: 9999 }), mo: fc.integer({ min: 1, max: 12 }), d: fc.integer({ min: 1, max: 31 }),
      h: fc.integer({ min: 0, max: 23 }), mi: fc.integer({ min: 0, max: 59 }), s: fc.integer({ min: 0, max: 60 }),
      frac: fc.option(fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 1, maxLength: 9 })),
      zone: fc.oneof(
        fc.constant('Z'),
        fc.tuple(fc.constantFrom('+', '-'), fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }))
          .map(([sign, zh, zm]) => `${sign}${pad(zh, 2)}:${pad(zm, 2)}`),
      ),
    }).map((t) => `${pad(t.y, 4)}-${pad(t.mo, 2)}-${pad(t.d, 2)}T${pad(t.h, 2)}:${pad(t.mi, 2)}:${pad(t.s, 2)}` +
      `${t.frac === null ? '' : '.' + t.frac}${t.zone}`),
  );
  const sdElements = fc.option(fc.array(
    fc.record({
      id: sdName,
      params: fc.array(fc.tuple(fc.oneof(sdName, fc.constantFrom('a', '__proto__')), fc.string({ unit: 'binary' })), { maxLength: 4 }),
    }),
    { minLength: 1, maxLength: 4 },
  ));

  function escapeSd(v: string): string {
    return v.replace(/[\\"\]]/g, (ch) => '\\' + ch);
  }

  test('valid RFC 5424 messages round-trip', () => {
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 191 }), timestamp, token(255), token(48), token(128), token(32), sdElements,
      fc.option(fc.string({ unit: 'binary' })),
      (pri, ts, hostname, app, procid, msgid, sd, msg) => {
        const sdText = sd === null
          ? '-'
          : sd.map((e) => `[${e.id}${e.params.map(([n, v]) => ` ${n}="${escapeSd(v)}"`).join('')}]`).join('');
        const text = `<${pri}>1 ${ts ?? '-'} ${hostname} ${app} ${procid} ${msgid} ${sdText}${msg === null ? '' : ' ' + msg}`;
        const rec = parse(text);
        const nil = (v: string) => (v === '-' ? null : v);
        check(rec, {
          facility: pri >> 3, severity: pri & 7, ts: ts !== null && isoDateExists(ts) ? ts : RECEIVED,
          hostname: nil(hostname), app: nil(app), procid: nil(procid), msgid: nil(msgid),
          sd: sd === null ? null : expectedSd(sd),
          msg: msg === null ? '' : msg.replace(/[\0\r\n]+$/, '').replace(/^\uFEFF/, ''),
        });
      },
    ));
  });
});
