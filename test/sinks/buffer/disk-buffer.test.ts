/**
 * The disk buffer's contract, case by case: order and ids, read budgets,
 * write rounds, deletion and checkpoints, the lock, configuration, and a
 * write that fails on the real filesystem.
 */
import { memoryTelemetry, tempDir } from '../../helpers.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DiskBuffer, type BufferEntry } from '../../../src/sinks/buffer/disk-buffer.js';
import { DEFAULT_DISK_BUFFER_CONFIG, diskBufferConfigProblems, type DiskBufferConfig } from '../../../src/sinks/buffer/config.js';
import { segmentName } from '../../../src/sinks/buffer/format.js';

const small: DiskBufferConfig = { ...DEFAULT_DISK_BUFFER_CONFIG, segmentBytes: 4096, maxBytes: 1024 * 1024, syncIntervalMs: 1 };

/** The tenant these single-tenant cases append for; its chain is the folder tenants/acme. */
const TENANT = 'acme';
const text = (entries: BufferEntry[]): string[] => entries.map((e) => e.payload.toString());
const chainDir = (dir: string): string => path.join(dir, 'tenants', TENANT);
const segments = (dir: string): string[] => readdirSync(chainDir(dir)).filter((n) => n.endsWith('.seg')).sort();

test('disk buffer: entries come back in append order with consecutive ids, their payloads and record counts', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-');
  const buffer = await DiskBuffer.open(dir, small, memoryTelemetry().telemetry);
  t.after(() => buffer.close());
  const results = await Promise.all(['a', 'bb', '', 'dddd'].map((p, i) => buffer.append(TENANT, Buffer.from(p), i * 10)));
  assert.deepEqual(results.map((r) => (r.written ? r.id : -1)), [1, 2, 3, 4]);
  const entries = await buffer.read();
  assert.deepEqual(entries.map((e) => [e.id, e.payload.toString(), e.records]), [[1, 'a', 0], [2, 'bb', 10], [3, '', 20], [4, 'dddd', 30]]);
  assert.deepEqual(await buffer.read(), [], 'nothing more until something is appended');
});

test('disk buffer: read(maxBytes) returns at least one entry, then only what fits in the budget', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-');
  const buffer = await DiskBuffer.open(dir, small, memoryTelemetry().telemetry);
  t.after(() => buffer.close());
  for (const size of [100, 50, 50, 10, 1]) await buffer.append(TENANT, Buffer.alloc(size, 'x'), 1);
  assert.deepEqual((await buffer.read(10)).map((e) => e.id), [1], 'one entry even when larger than the budget');
  assert.deepEqual((await buffer.read(99)).map((e) => e.id), [2], 'the next (50) would pass 99');
  assert.deepEqual((await buffer.read(60)).map((e) => e.id), [3, 4]);
  assert.deepEqual((await buffer.read(0)).map((e) => e.id), [5], 'a zero budget still reads one');
});

test('disk buffer: concurrent appends share write rounds (one fsync for many)', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-');
  const { telemetry } = memoryTelemetry();
  const buffer = await DiskBuffer.open(dir, { ...small, segmentBytes: 1024 * 1024, syncIntervalMs: 5 }, telemetry);
  t.after(() => buffer.close());
  const results = await Promise.all(Array.from({ length: 500 }, (_, i) => buffer.append(TENANT, Buffer.from(`line ${i}\n`), 1)));
  assert.ok(results.every((r, i) => r.written && r.id === i + 1));
  const syncs = await telemetry.value('sluice_buffer_syncs_total');
  assert.ok(syncs >= 1 && syncs <= 5, `500 appends took ${syncs} fsync rounds`);
});

test('disk buffer: an append waits up to syncIntervalMs to share its round, unless syncBytes are already waiting', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-');
  const slow = await DiskBuffer.open(path.join(dir, 'slow'), { ...small, syncIntervalMs: 120 }, memoryTelemetry().telemetry);
  let started = Date.now();
  await slow.append(TENANT, Buffer.from('x'), 1);
  const waited = Date.now() - started;
  assert.ok(waited >= 100, `resolved after ${waited} ms, before the interval`);
  await slow.close();

  const eager = await DiskBuffer.open(path.join(dir, 'eager'), { ...small, syncIntervalMs: 60_000, syncBytes: 1000 }, memoryTelemetry().telemetry);
  started = Date.now();
  await eager.append(TENANT, Buffer.alloc(2000), 1);
  assert.ok(Date.now() - started < 10_000, 'syncBytes starts the round without waiting for the interval');
  await eager.close();
});

test('disk buffer: acknowledged segments are deleted, the checkpoint is saved, and a reopen resumes after it with ids running on', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-');
  const { telemetry } = memoryTelemetry();
  let buffer = await DiskBuffer.open(dir, { ...small, checkpointIntervalMs: 30 }, telemetry);
  for (let i = 1; i <= 40; i++) await buffer.append(TENANT, Buffer.alloc(300, i), 1);
  const before = segments(dir);
  assert.ok(before.length >= 3, `${before.length} segments`);
  const read = await buffer.read(25 * 300);
  assert.equal(read.length, 25);
  buffer.acknowledge({ tenant: TENANT, id: 25 });
  await new Promise((resolve) => setTimeout(resolve, 150));
  const after = segments(dir);
  assert.ok(after.length < before.length, 'fully acknowledged segments are gone');
  assert.ok(Number(after[0]!.slice(0, 16)) <= 26, 'the segment holding entry 26 stays');
  assert.deepEqual(JSON.parse(readFileSync(path.join(dir, 'checkpoint.json'), 'utf8')), { version: 2, tenants: { [TENANT]: 25 } }, 'saved within the interval');
  assert.equal(await telemetry.value('sluice_buffer_entries'), 15);
  await buffer.close();

  buffer = await DiskBuffer.open(dir, small, telemetry);
  t.after(() => buffer.close());
  const replay = await buffer.read(Number.MAX_SAFE_INTEGER);
  assert.deepEqual(replay.map((e) => e.id), Array.from({ length: 15 }, (_, i) => 26 + i), 'nothing acknowledged comes back');
  assert.ok(replay[0]!.payload.equals(Buffer.alloc(300, 26)));
  assert.deepEqual(await buffer.append(TENANT, Buffer.from('next'), 1), { written: true, id: 41 });
});

test('disk buffer: when everything is acknowledged and deleted, ids still run on after a reopen', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-');
  const { telemetry } = memoryTelemetry();
  let buffer = await DiskBuffer.open(dir, { ...small, maxBytes: 4096 }, telemetry);
  for (let i = 1; i <= 3; i++) await buffer.append(TENANT, Buffer.alloc(1000), 1);
  buffer.acknowledge((await buffer.read(Number.MAX_SAFE_INTEGER)).at(-1)!);
  assert.deepEqual(await buffer.append(TENANT, Buffer.alloc(1000), 1), { written: true, id: 4 }, 'the acknowledged segment was retired to make room');
  buffer.acknowledge((await buffer.read()).at(-1)!);
  await buffer.close();
  buffer = await DiskBuffer.open(dir, small, telemetry);
  t.after(() => buffer.close());
  assert.equal(buffer.entriesHeld, 0);
  assert.deepEqual(await buffer.read(), []);
  assert.deepEqual(await buffer.append(TENANT, Buffer.from('x'), 1), { written: true, id: 5 });
});

test('disk buffer: batches() hands out entries as they become durable and ends on close or abort', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-');
  const buffer = await DiskBuffer.open(dir, small, memoryTelemetry().telemetry);
  const seen: string[] = [];
  const consumer = (async () => {
    for await (const batch of buffer.batches(1024)) {
      seen.push(...text(batch));
      buffer.acknowledge(batch.at(-1)!);
    }
  })();
  await buffer.append(TENANT, Buffer.from('one'), 1);
  await new Promise((resolve) => setTimeout(resolve, 20));
  await Promise.all([buffer.append(TENANT, Buffer.from('two'), 1), buffer.append(TENANT, Buffer.from('three'), 1)]);
  while (seen.length < 3) await new Promise((resolve) => setTimeout(resolve, 5));
  await buffer.close();
  await consumer;
  assert.deepEqual(seen, ['one', 'two', 'three']);

  const reopened = await DiskBuffer.open(dir, small, memoryTelemetry().telemetry);
  t.after(() => reopened.close());
  const controller = new AbortController();
  const iterating = (async () => { for await (const entry of reopened.entries(controller.signal)) seen.push(entry.payload.toString()); })();
  controller.abort();
  await iterating;
  assert.deepEqual(seen, ['one', 'two', 'three'], 'acknowledged entries are not replayed');
});

test('disk buffer: a reader running alongside many appenders sees every entry once, in order, across segment changes', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-');
  const { telemetry } = memoryTelemetry();
  const buffer = await DiskBuffer.open(dir, { ...small, syncIntervalMs: 0 }, telemetry);
  t.after(() => buffer.close());
  const total = 3000;
  let next = 0;
  const appender = async (): Promise<void> => {
    while (next < total) {
      const n = next++;
      await buffer.append(TENANT, Buffer.from(`${n}:`.padEnd(50 + (n % 7) * 100, '.')), 1);
    }
  };
  const seen: number[] = [];
  const reader = (async () => {
    for await (const batch of buffer.batches(2048)) {
      for (const entry of batch) seen.push(Number(entry.payload.toString().split(':')[0]));
      buffer.acknowledge(batch.at(-1)!);
      if (seen.length === total) return;
    }
  })();
  await Promise.all([...Array.from({ length: 32 }, appender), reader]);
  assert.deepEqual(seen, Array.from({ length: total }, (_, i) => i));
  assert.equal(await telemetry.value('sluice_buffer_syncs_total') > 10, true, 'many rounds, so many segment changes happened mid-read');
  for (let i = 0; i < 100 && segments(dir).length > 1; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(segments(dir).length, 1, 'read segments are deleted; the newest stays for appends');
});

test('disk buffer: acknowledging past what was read is refused; acknowledging less again does nothing', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-');
  const buffer = await DiskBuffer.open(dir, small, memoryTelemetry().telemetry);
  t.after(() => buffer.close());
  for (let i = 0; i < 3; i++) await buffer.append(TENANT, Buffer.from('x'), 1);
  await buffer.read(1);
  assert.throws(() => buffer.acknowledge({ tenant: TENANT, id: 2 }), RangeError);
  buffer.acknowledge({ tenant: TENANT, id: 1 });
  buffer.acknowledge({ tenant: TENANT, id: 1 });
  buffer.acknowledge({ tenant: TENANT, id: 0 });
  assert.equal(buffer.entriesHeld, 2);
});

test('disk buffer: one read at a time', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-');
  const buffer = await DiskBuffer.open(dir, small, memoryTelemetry().telemetry);
  t.after(() => buffer.close());
  await buffer.append(TENANT, Buffer.from('x'), 1);
  const first = buffer.read();
  await assert.rejects(buffer.read(), /another read is in progress/);
  assert.equal((await first).length, 1);
});

test('disk buffer: an entry larger than the read buffer reads back whole', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-');
  const buffer = await DiskBuffer.open(dir, { ...small, segmentBytes: 256 * 1024, readBufferBytes: 64 }, memoryTelemetry().telemetry);
  t.after(() => buffer.close());
  const big = Buffer.alloc(100_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
  await buffer.append(TENANT, Buffer.from('before'), 1);
  await buffer.append(TENANT, big, 1);
  await buffer.append(TENANT, Buffer.from('after'), 1);
  const entries = await buffer.read(Number.MAX_SAFE_INTEGER);
  assert.deepEqual(entries.map((e) => e.payload.length), [6, 100_000, 5]);
  assert.ok(entries[1]!.payload.equals(big));
});

test('disk buffer: one owner per directory; a lock left by a dead process is taken over, a live one refuses', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-');
  const { telemetry, lines } = memoryTelemetry();
  const buffer = await DiskBuffer.open(dir, small, telemetry);
  await assert.rejects(DiskBuffer.open(dir, small, telemetry), /already open in this process/);
  await buffer.close();

  const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;
  writeFileSync(path.join(dir, 'lock'), `${deadPid}\n`);
  const taken = await DiskBuffer.open(dir, small, telemetry);
  assert.ok(lines.some((l) => l.code === 'SLU0458I' && l.pid === deadPid));
  await taken.close();
  assert.ok(!existsSync(path.join(dir, 'lock')), 'close releases the lock');

  writeFileSync(path.join(dir, 'lock'), `${process.ppid}\n`); // alive, and not this process
  await assert.rejects(DiskBuffer.open(dir, small, telemetry), new RegExp(`in use by process ${process.ppid}`));
});

test('disk buffer: a configuration that cannot work is refused with every problem named', async (t) => {
  const problems = diskBufferConfigProblems({ ...DEFAULT_DISK_BUFFER_CONFIG, segmentBytes: 100, maxBytes: 50, whenFull: 'drop_oldest' as 'block', syncIntervalMs: -1 });
  assert.equal(problems.length, 5, problems.join('\n'));
  assert.deepEqual(diskBufferConfigProblems(DEFAULT_DISK_BUFFER_CONFIG), []);
  await assert.rejects(DiskBuffer.open(tempDir(t, 'sluice-buffer-'), { ...small, maxBytes: 100 }, memoryTelemetry().telemetry), /maxBytes/);
});

test('disk buffer: an unreadable checkpoint is logged and everything still on disk is replayed', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-');
  const { telemetry, lines } = memoryTelemetry();
  let buffer = await DiskBuffer.open(dir, small, telemetry);
  for (let i = 0; i < 3; i++) await buffer.append(TENANT, Buffer.from(`e${i}`), 1);
  buffer.acknowledge((await buffer.read(1))[0]!);
  await buffer.close();
  writeFileSync(path.join(dir, 'checkpoint.json'), '{"version":2,"tena');
  buffer = await DiskBuffer.open(dir, small, telemetry);
  t.after(() => buffer.close());
  assert.ok(lines.some((l) => l.code === 'SLU0457W'));
  assert.deepEqual(text(await buffer.read()), ['e0', 'e1', 'e2'], 'at least once: the acknowledged entry comes back');
});

test('disk buffer: a write round that fails (a new segment cannot be created) rejects its appends, leaves no trace, and the next appends reuse the ids', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-');
  const { telemetry, lines } = memoryTelemetry();
  const buffer = await DiskBuffer.open(dir, { ...small, syncIntervalMs: 20 }, telemetry);
  for (let i = 1; i <= 2; i++) await buffer.append(TENANT, Buffer.alloc(1000, i), i);
  // Entry 3 still fits the first segment, entry 4 needs the next one, and a directory is squatting on its name.
  const squatter = path.join(chainDir(dir), segmentName(4));
  mkdirSync(squatter);
  const failed = await Promise.allSettled([buffer.append(TENANT, Buffer.alloc(1000, 3), 3), buffer.append(TENANT, Buffer.alloc(1000, 4), 4)]);
  assert.deepEqual(failed.map((r) => r.status), ['rejected', 'rejected'], 'the whole round is rejected');
  assert.ok(lines.some((l) => l.code === 'SLU0455E'));
  rmdirSync(squatter);

  assert.deepEqual(await buffer.append(TENANT, Buffer.alloc(1000, 5), 5), { written: true, id: 3 });
  assert.deepEqual(await buffer.append(TENANT, Buffer.alloc(1000, 6), 6), { written: true, id: 4 });
  await buffer.close();
  const reopened = await DiskBuffer.open(dir, small, telemetry);
  t.after(() => reopened.close());
  const entries = await reopened.read(Number.MAX_SAFE_INTEGER);
  assert.deepEqual(entries.map((e) => [e.id, e.payload[0], e.records]), [[1, 1, 1], [2, 2, 2], [3, 5, 5], [4, 6, 6]], 'entry 3 of the failed round was taken back');
  assert.equal(await telemetry.value('sluice_buffer_discarded_bytes_total'), 0, 'nothing torn left behind');
});
