/**
 * The file-descriptor capacity: read from /proc/self/limits (Node.js has
 * raised the soft limit to the hard one), logged at start, and enforced on
 * stream connections.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connectionCapacity, SPARE_DESCRIPTORS, readFdLimits } from '../../src/ops/descriptors.js';
import { closed, connect, startTestNode, waitFor } from '../helpers.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            20000                20000                files
Max locked memory         8388608              8388608              bytes
`;

test('capacity: the open-files limits are read from /proc/self/limits', () => {
  assert.deepEqual(readFdLimits(LIMITS), { soft: 20000, hard: 20000 });
  assert.deepEqual(readFdLimits(LIMITS.replace('20000                20000', '1024                 unlimited')), { soft: 1024, hard: Infinity });
  assert.equal(readFdLimits('no such line'), null);
  assert.equal(connectionCapacity({ soft: 20000, hard: 20000 }), 20000 - SPARE_DESCRIPTORS);
  assert.equal(connectionCapacity({ soft: 1000, hard: 1000 }), 0);
  assert.equal(connectionCapacity(null), Infinity);
});

test('capacity: Node.js runs with the soft limit raised to the hard one', { skip: process.platform !== 'linux' && 'Linux only' }, () => {
  const limits = readFdLimits(readFileSync('/proc/self/limits', 'utf8'));
  assert.ok(limits);
  assert.equal(limits.soft, limits.hard);
});

test('capacity: the node logs what it can hold and refuses stream connections past it (reason fd_limit)', async (t) => {
  const { node, tcpPort, lines } = await startTestNode(t, 'sources:\n  syslog_tcp:\n    max_connections: 1000000\n');
  const line = lines.find((l) => l['code'] === 'SLU0011I');
  assert.ok(line, 'the capacity line');
  const limits = readFdLimits();
  if (limits !== null) assert.equal(line['connections'], connectionCapacity(limits));
  assert.ok(lines.some((l) => l['code'] === 'SLU0010W'), 'listener caps above what the limit allows are warned about');

  // A node whose capacity is two connections (as if its limit were SPARE_DESCRIPTORS + 2).
  node.pipeline.memory.connectionCapacity = 2;
  const first = await connect(tcpPort);
  const second = await connect(tcpPort);
  await waitFor('two sessions', () => node.pipeline.sessions.size === 2);
  const third = await connect(tcpPort);
  await closed(third);
  assert.equal(await node.telemetry.value('sluice_source_refused_total', { source: 'syslog_tcp', reason: 'fd_limit' }), 1);
  first.destroy();
  second.destroy();
});
