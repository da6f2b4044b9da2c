import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EVENTS } from '../../src/ops/events.js';
import { Telemetry } from '../../src/ops/telemetry.js';
import { memoryLogger } from '../helpers.js';

test('events: codes are unique, well-formed, and their letter matches the level', () => {
  const codes = new Set<string>();
  for (const [name, def] of Object.entries(EVENTS)) {
    assert.match(def.code, /^SLU\d{4}[IWE]$/, name);
    assert.ok(!codes.has(def.code), `duplicate code ${def.code}`);
    codes.add(def.code);
    assert.equal(def.code.at(-1), { info: 'I', warn: 'W', error: 'E' }[def.level], name);
  }
});

test('events: one emit logs the code and bumps the counter; throttling is per event, source and reason', async () => {
  const { logger, lines } = memoryLogger();
  const telemetry = new Telemetry(logger);
  for (let i = 0; i < 5; i++) telemetry.emit('frameRejected', { source: 'syslog_tcp', reason: 'too_large', peer: `p${i}` });
  assert.equal(await telemetry.value('sluice_source_bad_frames_total', { source: 'syslog_tcp', reason: 'too_large' }), 5);
  const logged = lines.filter((l) => l.code === 'SLU0101W');
  assert.equal(logged.length, 1, 'throttled to one line per 10 s');
  assert.equal(logged[0]?.msg, 'bad frame: connection closed');
  telemetry.emit('frameRejected', { source: 'syslog_tcp', reason: 'bad_octet_count' });
  assert.equal(lines.filter((l) => l.code === 'SLU0101W').length, 2, 'another reason is not throttled by the first');
});
