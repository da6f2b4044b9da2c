/**
 * The tally counter: label children count in plain numbers that every read
 * of the metric (a scrape, get()) sees in full.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { TallyCounter } from '../../src/telemetry/tally-counter.js';

async function values(counter: TallyCounter<'source'>): Promise<Record<string, number>> {
  return Object.fromEntries((await counter.get()).values.map((v) => [String(v.labels.source), v.value]));
}

test('tally counter: children\'s counts are in every read, by position or by name alike; direct increments too', async () => {
  const registry = new Registry();
  const counter = new TallyCounter<'source'>({ name: 'test_records_total', help: 'h', labelNames: ['source'], registers: [registry] });
  const tcp = counter.labels('tcp');
  tcp.inc();
  tcp.inc(4);
  counter.labels({ source: 'tcp' }).inc(5);
  counter.labels({ source: 'udp' }).inc(2);
  counter.inc({ source: 'udp' }, 1);
  assert.deepEqual(await values(counter), { tcp: 10, udp: 3 });
  tcp.inc(1);
  assert.match(await registry.metrics(), /test_records_total\{source="tcp"\} 11/);
  assert.deepEqual(await values(counter), { tcp: 11, udp: 3 }, 'a count is added once');
});

test('tally counter: reset forgets what children held; remove drops a label set; a decrease is refused', async () => {
  const counter = new TallyCounter<'source'>({ name: 'test_reset_total', help: 'h', labelNames: ['source'], registers: [] });
  counter.labels('tcp').inc(3);
  counter.reset();
  counter.labels('tcp').inc(1);
  counter.labels('udp').inc(1);
  counter.remove('udp');
  assert.deepEqual(await values(counter), { tcp: 1 });
  assert.throws(() => counter.labels('tcp').inc(-1), RangeError);
  assert.throws(() => counter.labels('tcp').inc(Number.NaN), RangeError);
});
