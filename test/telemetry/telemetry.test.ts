import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sumLoadSamples, Telemetry } from '../../src/telemetry/telemetry.js';
import { memoryLogger } from '../helpers.js';

test('telemetry: a load sample is read from the process\'s own counters and gauges', async () => {
  const telemetry = new Telemetry(memoryLogger().logger);
  const empty = await telemetry.loadSample();
  assert.deepEqual({ ...empty, rssBytes: 0 }, { connections: 0, receivedRecords: 0, receivedBytes: 0, rssBytes: 0, memoryState: 0 });
  assert.ok(empty.rssBytes > 0);

  telemetry.recordsReceived.labels({ source: 'syslog_tcp' }).inc(5);
  telemetry.recordsReceived.labels({ source: 'relp' }).inc(2);
  telemetry.bytesReceived.labels({ source: 'relp' }).inc(700);
  telemetry.memoryState.set(1);
  telemetry.sessionTotals = () => ({ open: 3, queuedBytes: 0, paused: 0 });
  const sample = await telemetry.loadSample();
  assert.deepEqual({ ...sample, rssBytes: 0 }, { connections: 3, receivedRecords: 7, receivedBytes: 700, rssBytes: 0, memoryState: 1 });
});

test('telemetry: the samples of a node\'s processes add up, with the highest memory state', () => {
  const sample = (n: number, memoryState: number) => ({ connections: n, receivedRecords: 10 * n, receivedBytes: 100 * n, rssBytes: 1000 * n, memoryState });
  assert.deepEqual(sumLoadSamples([sample(1, 0), sample(2, 2), sample(3, 1)]), sample(6, 2));
  assert.deepEqual(sumLoadSamples([]), sample(0, 0));
});
