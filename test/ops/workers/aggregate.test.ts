/**
 * How the primary combines its workers' metrics: counters and most gauges
 * add up; a state, a pressure, a delay or a crash-loop flag is the highest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AggregatorRegistry } from 'prom-client';
import { silentTelemetry } from '../../helpers.js';

test('aggregate: counters and connections add up over workers; memory state and pressure, event-loop delay and crash loop take the highest', async () => {
  const workers = [silentTelemetry(), silentTelemetry()];
  workers.forEach((t, i) => {
    t.recordsReceived.inc({ source: 'syslog_tcp' }, 10 * (i + 1));
    t.connections.set({ source: 'syslog_tcp' }, 3);
    t.memoryState.set(1 + i);
    t.memoryPressure.set(0.5 + i / 10);
    t.crashLooping.set({ component: 'source:relp' }, 1);
    t.eventLoopDelaySource = () => ({ p50: 0.001, p99: 0.01 * (i + 1), max: 0.05 });
  });
  const node = AggregatorRegistry.aggregate(await Promise.all(workers.map((t) => t.registry.getMetricsAsJSON())));
  const text = await node.metrics();
  assert.match(text, /sluice_source_received_records_total\{source="syslog_tcp"\} 30\b/);
  assert.match(text, /sluice_source_connections\{source="syslog_tcp"\} 6\b/);
  assert.match(text, /sluice_memory_state 2\b/, 'soft and hard is hard, not 3');
  assert.match(text, /sluice_memory_pressure 0\.6\b/);
  assert.match(text, /sluice_crash_loop\{component="source:relp"\} 1\b/);
  assert.match(text, /sluice_event_loop_delay_p99_seconds 0\.02\b/);
});
