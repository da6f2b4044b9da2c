import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventLoopMonitor } from '../../src/telemetry/event-loop.js';
import { Telemetry } from '../../src/telemetry/telemetry.js';
import { memoryLogger } from '../helpers.js';

function block(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* hold the loop */ }
}

test('event loop monitor: a blocked loop shows in the scrape gauges, the warning event and the run summary; the next scrape starts over', async (t) => {
  const { logger, lines } = memoryLogger();
  const telemetry = new Telemetry(logger);
  const monitor = new EventLoopMonitor(telemetry);
  t.after(() => monitor.stop());
  monitor.start();
  // Stalls of 150 ms, 20 ms apart, for a second and more: well over 1 % of each second's samples,
  // and busy seconds even when the machine is shared.
  const wallStart = performance.now();
  const cpuStart = process.cpuUsage();
  for (let i = 0; i < 8; i++) {
    await new Promise((r) => setTimeout(r, 20));
    block(150);
  }
  const cpu = process.cpuUsage(cpuStart);
  // The share of a core this process got while it held the loop: on a machine loaded far past its cores
  // it can fall under the monitor's busy mark (a quarter of a core), and the second is rightly not busy.
  const share = (cpu.user + cpu.system) / 1000 / (performance.now() - wallStart);
  await new Promise((r) => setTimeout(r, 1200));
  const max = await telemetry.value('sluice_event_loop_delay_max_seconds');
  assert.ok(max >= 0.14, `largest delay ${max} s after holding the loop 150 ms`);
  assert.ok(await telemetry.value('sluice_event_loop_delay_p50_seconds') < max);
  const warned = lines.find((l) => l.code === 'SLU0050W');
  assert.ok(warned !== undefined && (warned.p99_ms as number) >= 100, 'the slow second is logged');
  const summary = monitor.summary();
  if (share >= 0.5) {
    assert.ok(summary.busy_seconds >= 1, `the blocked second counts as busy (the process got ${share.toFixed(2)} of a core)`);
    assert.ok(summary.event_loop_delay_p99_worst_ms >= 100);
  } else {
    t.diagnostic(`the process got ${share.toFixed(2)} of a core while blocking: busy seconds not judged`);
  }
  assert.ok(summary.event_loop_delay_max_ms >= 140);
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(await telemetry.value('sluice_event_loop_delay_max_seconds') < 0.14, 'a scrape covers the time since the previous one');
  monitor.stop();
  assert.equal(telemetry.eventLoopDelaySource, null);
});

test('event loop monitor: one scrape reports p50, p99 and max of the same interval (the first gauge read does not zero the others)', async (t) => {
  const { logger } = memoryLogger();
  const telemetry = new Telemetry(logger);
  const monitor = new EventLoopMonitor(telemetry);
  t.after(() => monitor.stop());
  monitor.start();
  await telemetry.registry.metrics(); // the interval starts here
  for (let i = 0; i < 6; i++) {
    await new Promise((r) => setTimeout(r, 20));
    block(120);
  }
  const text = await telemetry.registry.metrics();
  const gauge = (stat: string, from: string): number => Number(new RegExp(`^sluice_event_loop_delay_${stat}_seconds (\\S+)$`, 'm').exec(from)?.[1]);
  assert.ok(gauge('max', text) >= 0.11, `max ${gauge('max', text)}`);
  assert.ok(gauge('p99', text) >= 0.11, `p99 ${gauge('p99', text)} in the same scrape`);
  assert.ok(gauge('p50', text) > 0, 'p50 of the same interval');
  await new Promise((r) => setTimeout(r, 50));
  const next = await telemetry.registry.metrics();
  assert.ok(gauge('max', next) < 0.11, 'the next scrape covers only the time since this one');
});
