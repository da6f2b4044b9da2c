/**
 * The load generator's message: built at the requested size, carried through
 * the node's real parser and NDJSON encoder, and read back by the probe's
 * byte-level reader with the same fields.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogRecord } from '../../../src/core/record.js';
import { parseSyslog } from '../../../src/sources/syslog/parse.js';
import { encodeRecord } from '../../../src/core/ndjson.js';
import { MarkerReader, MessageFormatter, NDJSON_MARKER, newRunId, parseMarker } from '../../../src/ops/loadgen/message.js';

const SEND_MICROS = 81_234_567_890_123;
const WALL_MS = Date.UTC(2026, 10, 27, 14, 20, 0, 123);

/** The NDJSON line the file sink would write for this message. */
function asRecordedLine(message: string): Buffer {
  const rec = new LogRecord();
  rec.received = '2026-11-27T14:20:00.124Z';
  parseSyslog(message, rec, WALL_MS);
  return Buffer.from(encodeRecord(rec), 'utf8');
}

test('message: RFC 5424 at exactly the requested size, with the marker first in MSG', () => {
  const runId = newRunId();
  assert.match(runId, /^[0-9a-f]{8}$/);
  for (const size of [128, 256, 1000, 4096]) {
    const text = new MessageFormatter(runId, size).format('agent-1-42', 85, 7, SEND_MICROS, WALL_MS);
    assert.equal(text.length, size);
    assert.equal(Buffer.byteLength(text), size, 'ASCII only: characters are bytes (octet counting relies on it)');
    assert.ok(text.startsWith(`<14>1 2026-11-27T14:20:00.123Z agent-1-42 loadgen - - - lg=${runId}:85:7:${SEND_MICROS} x`), text);
  }
});

test('message: a size below the fixed part yields the unpadded message', () => {
  const text = new MessageFormatter('0123abcd', 128).format('agent-254-99999', 999_999, 123_456_789, SEND_MICROS, WALL_MS);
  assert.ok(text.length >= 128);
  assert.deepEqual(parseMarker(text.slice(text.indexOf('lg='))), { runId: '0123abcd', agent: 999_999, seq: 123_456_789, sendMicros: SEND_MICROS });
});

test('message: round trip through the node parser and the NDJSON encoder to the probe reader', () => {
  const runId = newRunId();
  const formatter = new MessageFormatter(runId, 256);
  const reader = new MarkerReader(runId);
  for (const [agent, seq] of [[0, 0], [17, 1], [9999, 123_456]] as const) {
    const message = formatter.format(`agent-0-${agent}`, agent, seq, SEND_MICROS + seq, WALL_MS);
    const line = asRecordedLine(message);
    const record = JSON.parse(line.toString('utf8')) as { msg: string; hostname: string; app: string; parse_error?: boolean };
    assert.equal(record.parse_error, undefined);
    assert.equal(record.hostname, `agent-0-${agent}`);
    assert.equal(record.app, 'loadgen');
    assert.deepEqual(parseMarker(record.msg), { runId, agent, seq, sendMicros: SEND_MICROS + seq });

    const at = line.indexOf(NDJSON_MARKER);
    assert.ok(at > 0, 'the probe finds the marker with a byte search');
    assert.equal(reader.read(line, at + NDJSON_MARKER.length, line.length), true);
    assert.deepEqual([reader.agent, reader.seq, reader.sendMicros], [agent, seq, SEND_MICROS + seq]);
  }
});

test('message: the reader refuses other runs and damaged markers', () => {
  const reader = new MarkerReader('0123abcd');
  const read = (fields: string): boolean => {
    const buf = Buffer.from(`"msg":"lg=${fields}"}\n`);
    return reader.read(buf, NDJSON_MARKER.length, buf.length);
  };
  assert.equal(read('0123abcd:1:2:3 xx'), true);
  assert.deepEqual([reader.agent, reader.seq, reader.sendMicros], [1, 2, 3]);
  assert.equal(read('0123abce:1:2:3 xx'), false, 'another run');
  assert.equal(read('0123abcd:1:2: xx'), false, 'no send time');
  assert.equal(read('0123abcd:1:x:3'), false, 'not a number');
  assert.equal(read('0123abcd::2:3'), false, 'empty agent');
  assert.equal(read('0123abcd'), false, 'cut short');
  assert.equal(parseMarker('lg=0123abcd:1:2'), null);
  assert.equal(parseMarker('hello lg=0123abcd:1:2:3'), null);
});
