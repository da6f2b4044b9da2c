/**
 * The corpus: lines in the formats real devices and daemons send (Cisco
 * IOS/ASA/NX-OS, Juniper, Fortinet, HAProxy, nginx, sshd, sudo, systemd, the
 * kernel, Windows through NXLog and Snare, …), written for sluice, each with the
 * record it must give (corpus.json beside this file). Every line goes through
 * decodeSyslogFrame as every transport sends it, and through parseSyslog on its
 * UTF-8 text: the fast decode path and the text parser must agree.
 *
 * BSD timestamps are read in the node's local zone, so the zone is pinned:
 * Europe/Berlin, where local time is not UTC, so the lines that say UTC and the
 * ones that do not give different event times whatever zone the machine has.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LogRecord, SourceInfo, type StructuredData } from '../../../src/core/record.js';
import { decodeSyslogFrame } from '../../../src/sources/syslog/decode.js';
import { parseSyslog } from '../../../src/sources/syslog/parse.js';
import { ROOT } from '../../helpers.js';

process.env.TZ = 'Europe/Berlin';

interface CorpusEntry {
  /** What sends such lines, and what the line shows. */
  sender: string;
  line: string;
  expect: {
    ts: string; hostname: string | null; app: string | null; procid: string | null; msgid: string | null;
    facility: number; severity: number; sd: StructuredData | null; msg: string; parse_error?: true;
  };
}

const RECEIVED = '2026-11-27T11:00:00.000Z';
const SOURCE = new SourceInfo('udp', '127.0.0.1', 514);
const corpus = JSON.parse(readFileSync(path.join(ROOT, 'test', 'sources', 'syslog', 'corpus.json'), 'utf8')) as CorpusEntry[];

/** The record's parsed fields in the corpus's terms (SD compared as JSON: the parser's objects have a prototype). */
function parsed(rec: LogRecord): CorpusEntry['expect'] {
  const { ts, hostname, app, procid, msgid, facility, severity, msg } = rec;
  const sd = rec.sd === null ? null : JSON.parse(JSON.stringify(rec.sd)) as StructuredData;
  return { ts, hostname, app, procid, msgid, facility, severity, sd, msg, ...(rec.parseError ? { parse_error: true } : {}) };
}

test('corpus: the pinned zone is in effect (a BSD time is not read as UTC)', () => {
  assert.equal(new Date(2026, 10, 27, 12).toISOString(), '2026-11-27T11:00:00.000Z');
});

test('corpus: has lines of every kind of sender it is meant to cover', () => {
  const senders = corpus.map((e) => e.sender).join('\n');
  for (const name of ['Cisco IOS', 'Cisco ASA', 'NX-OS', 'Junos', 'FortiGate', 'HAProxy', 'nginx', 'sshd', 'sudo', 'systemd', 'kernel', 'NXLog', 'Snare']) {
    assert.ok(senders.includes(name), `no line from ${name}`);
  }
});

for (const entry of corpus) {
  test(`corpus: ${entry.sender}`, () => {
    // Received at local noon: BSD timestamps without a year get 2026 unless more than 7 days ahead.
    const nowMs = new Date(2026, 10, 27, 12).getTime();
    const frame = Buffer.from(entry.line + '\n');
    const rec = decodeSyslogFrame(frame, 0, frame.length, SOURCE, RECEIVED, nowMs);
    assert.deepStrictEqual(parsed(rec), entry.expect);
    const text = new LogRecord();
    text.received = RECEIVED;
    parseSyslog(entry.line, text, nowMs);
    assert.deepStrictEqual(parsed(text), entry.expect, 'the text parser agrees with the decode path');
  });
}
