/**
 * Tenants on disk: each tenant's entries are a chain of their own, replayed
 * by deficit round-robin, so one tenant's backlog does not hold back another
 * tenant's replay; order within a tenant stays exact; acknowledgements follow
 * the order entries were handed out; open files stay bounded however many
 * tenants there are; and a buffer written in the format before chains (one
 * log for every tenant) is replayed first after an upgrade, losing nothing.
 */
import { memoryTelemetry, tempDir } from '../../helpers.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DiskBuffer, REPLAY_QUANTUM_BYTES, type BufferEntry } from '../../../src/sinks/buffer/disk-buffer.js';
import { DEFAULT_DISK_BUFFER_CONFIG, type DiskBufferConfig } from '../../../src/sinks/buffer/config.js';
import { ENTRY_HEADER_BYTES, encodeEntryHeader, encodeSegmentHeader, segmentName } from '../../../src/sinks/buffer/format.js';

const config: DiskBufferConfig = { ...DEFAULT_DISK_BUFFER_CONFIG, segmentBytes: 256 * 1024, maxBytes: 256 * 1024 * 1024, syncIntervalMs: 1 };

/** Entry `n` of `tenant`: says whose and which it is, padded to `length`. */
function payloadOf(tenant: string, n: number, length: number): Buffer {
  return Buffer.from(`${tenant}#${n}:`.padEnd(length, String.fromCharCode(97 + (n % 26))));
}

/** Append `count` entries for `tenant`, `inFlight` at a time (so they share write rounds); resolves when all are durable. */
async function appendMany(buffer: DiskBuffer, tenant: string, count: number, length: number, inFlight = 200): Promise<void> {
  for (let from = 1; from <= count; from += inFlight) {
    const results = await Promise.all(Array.from({ length: Math.min(inFlight, count - from + 1) }, (_, i) => buffer.append(tenant, payloadOf(tenant, from + i, length), 1)));
    results.forEach((result, i) => assert.deepEqual(result, { written: true, id: from + i }));
  }
}

/** Every entry of each tenant, exactly once, in append order, with its own payload. */
function assertExactOrder(entries: BufferEntry[], counts: Record<string, number>, length: (tenant: string) => number): void {
  for (const [tenant, count] of Object.entries(counts)) {
    const mine = entries.filter((e) => e.tenant === tenant);
    assert.deepEqual(mine.map((e) => e.id), Array.from({ length: count }, (_, i) => i + 1), `tenant ${tenant}: every entry once, in order`);
    mine.forEach((e) => assert.ok(e.payload.equals(payloadOf(tenant, e.id, length(tenant))), `${tenant}/${e.id} has its own payload`));
  }
  assert.equal(entries.length, Object.values(counts).reduce((a, b) => a + b, 0));
}

test('fair replay: a steady tenant written after a flooding tenant\'s large backlog is replayed within the first turns, not after the flood', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-fair-');
  const { telemetry } = memoryTelemetry();
  let buffer = await DiskBuffer.open(dir, config, telemetry);
  const FLOOD = 4000;
  const FLOOD_BYTES = 2048;
  const STEADY = 25;
  const STEADY_BYTES = 200;
  await appendMany(buffer, 'flood', FLOOD, FLOOD_BYTES); // 8 MB: 32 segments of backlog
  for (const tenant of ['steady-a', 'steady-b']) await appendMany(buffer, tenant, STEADY, STEADY_BYTES);
  // The sink was down: all of it is on disk when the node comes back.
  await buffer.close();
  buffer = await DiskBuffer.open(dir, config, telemetry);
  t.after(() => buffer.close());

  const replay: BufferEntry[] = [];
  for (;;) {
    const batch = await buffer.read(256 * 1024);
    if (batch.length === 0) break;
    replay.push(...batch);
    buffer.acknowledge(batch.at(-1)!);
  }
  assertExactOrder(replay, { flood: FLOOD, 'steady-a': STEADY, 'steady-b': STEADY }, (tenant) => (tenant === 'flood' ? FLOOD_BYTES : STEADY_BYTES));
  // Where each steady entry came out, in bytes of the whole replay: every one within the first round of turns.
  const totalBytes = replay.reduce((sum, e) => sum + e.payload.length, 0);
  let at = 0;
  let lastSteadyAt = 0;
  for (const entry of replay) {
    at += entry.payload.length;
    if (entry.tenant !== 'flood') lastSteadyAt = at;
  }
  assert.ok(lastSteadyAt <= 2 * REPLAY_QUANTUM_BYTES + 2 * STEADY * STEADY_BYTES, `the last steady entry came out after ${lastSteadyAt} of ${totalBytes} bytes`);
  assert.ok(lastSteadyAt / totalBytes < 0.02, `within the first 2 % of the replay (${(100 * lastSteadyAt / totalBytes).toFixed(2)} %)`);
  assert.equal(buffer.entriesHeld, 0);
});

test('fair replay: while a flood is being replayed, a steady tenant\'s new entry waits at most one read and one turn of the flood', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-fair-');
  const buffer = await DiskBuffer.open(dir, config, memoryTelemetry().telemetry);
  t.after(() => buffer.close());
  const FLOOD_BYTES = 1500;
  await appendMany(buffer, 'flood', 3000, FLOOD_BYTES);
  const READ_BYTES = 32 * 1024;
  let floodRead = 0;
  let steadyAppended = 0;
  /** Steady id → flood bytes handed out when it became durable. */
  const durableAt = new Map<number, number>();
  const seen: BufferEntry[] = [];
  for (let batches = 0; ; batches++) {
    const batch = await buffer.read(READ_BYTES);
    if (batch.length === 0) break;
    seen.push(...batch);
    for (const entry of batch) {
      if (entry.tenant === 'flood') {
        floodRead += entry.payload.length;
        continue;
      }
      const waited = floodRead - durableAt.get(entry.id)!;
      assert.ok(waited <= READ_BYTES + 2 * REPLAY_QUANTUM_BYTES + FLOOD_BYTES, `steady entry ${entry.id} waited for ${waited} bytes of the flood`);
    }
    buffer.acknowledge(batch.at(-1)!);
    if (batches % 4 === 0 && steadyAppended < 20) {
      const n = ++steadyAppended;
      assert.deepEqual(await buffer.append('steady', payloadOf('steady', n, 100), 1), { written: true, id: n });
      durableAt.set(n, floodRead);
    }
  }
  assertExactOrder(seen, { flood: 3000, steady: steadyAppended }, (tenant) => (tenant === 'flood' ? FLOOD_BYTES : 100));
  assert.equal(steadyAppended, 20);
});

test('fair replay: acknowledging an entry acknowledges every entry handed out before it, whatever its tenant', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-fair-');
  const { telemetry } = memoryTelemetry();
  let buffer = await DiskBuffer.open(dir, { ...config, checkpointIntervalMs: 0 }, telemetry);
  await Promise.all([buffer.append('a', Buffer.from('a1'), 1), buffer.append('b', Buffer.from('b1'), 1), buffer.append('a', Buffer.from('a2'), 1)]);
  await buffer.append('b', Buffer.from('b2'), 1);
  const read = await buffer.read();
  assert.equal(read.length, 4);
  const firstB = read.findIndex((e) => e.tenant === 'b');
  const lastA = read.findLastIndex((e) => e.tenant === 'a');
  assert.throws(() => buffer.acknowledge({ tenant: 'nobody', id: 1 }), RangeError);
  assert.throws(() => buffer.acknowledge({ tenant: 'a', id: 3 }), RangeError, 'not read yet');
  buffer.acknowledge(read[Math.max(firstB, lastA)]!);
  const acknowledged = read.slice(0, Math.max(firstB, lastA) + 1);
  assert.equal(buffer.entriesHeld, 4 - acknowledged.length);
  buffer.acknowledge(read[0]!); // already acknowledged: nothing happens
  assert.equal(buffer.entriesHeld, 4 - acknowledged.length);
  await buffer.close();
  buffer = await DiskBuffer.open(dir, config, telemetry);
  t.after(() => buffer.close());
  const again = await buffer.read();
  assert.deepEqual(again.map((e) => `${e.tenant}${e.id}`).sort(), read.slice(acknowledged.length).map((e) => `${e.tenant}${e.id}`).sort(), 'exactly the rest comes back');
});

/** Files of `dir` this process holds open (Linux: /proc/self/fd). */
function openFilesUnder(dir: string): number {
  let count = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir + path.sep)) count++;
    } catch {
      // closed meanwhile
    }
  }
  return count;
}

test('fair replay: many tenants keep a bounded number of files open, and each is replayed in order', { skip: !existsSync('/proc/self/fd') && 'needs /proc/self/fd' }, async (t) => {
  const dir = tempDir(t, 'sluice-buffer-fair-');
  const { telemetry } = memoryTelemetry();
  const TENANTS = 150;
  const tenants = Array.from({ length: TENANTS }, (_, i) => `t${i}`);
  let buffer = await DiskBuffer.open(dir, { ...config, segmentBytes: 8192 }, telemetry);
  let mostOpen = 0;
  for (let round = 1; round <= 4; round++) {
    const results = await Promise.all(tenants.map((tenant) => buffer.append(tenant, payloadOf(tenant, round, 3000), 1)));
    assert.ok(results.every((r) => r.written && r.id === round));
    mostOpen = Math.max(mostOpen, openFilesUnder(dir));
  }
  await buffer.close();
  buffer = await DiskBuffer.open(dir, { ...config, segmentBytes: 8192 }, telemetry);
  t.after(() => buffer.close());
  mostOpen = Math.max(mostOpen, openFilesUnder(dir));
  const replay: BufferEntry[] = [];
  for (;;) {
    const batch = await buffer.read(20_000);
    if (batch.length === 0) break;
    replay.push(...batch);
    mostOpen = Math.max(mostOpen, openFilesUnder(dir));
    buffer.acknowledge(batch.at(-1)!);
  }
  assertExactOrder(replay, Object.fromEntries(tenants.map((tenant) => [tenant, 4])), () => 3000);
  // 64 newest segments kept open for appends, 32 readers, the lock and a checkpoint being written.
  assert.ok(mostOpen <= 64 + 32 + 4, `${mostOpen} files open at most, for ${TENANTS} tenants`);
  t.diagnostic(`${mostOpen} files open at most for ${TENANTS} tenants`);
});

/** A segment in the format before per-tenant chains (the same segment format, at the top of the directory). */
function writeLegacySegment(dir: string, firstId: number, recordsBefore: number, payloads: Buffer[]): void {
  const parts = [encodeSegmentHeader({ firstId, recordsBefore })];
  payloads.forEach((payload, i) => {
    const header = Buffer.alloc(ENTRY_HEADER_BYTES);
    encodeEntryHeader(header, 0, { payloadBytes: payload.length, id: firstId + i, recordsBefore: recordsBefore + i, records: 1 }, payload);
    parts.push(header, payload);
  });
  writeFileSync(path.join(dir, segmentName(firstId)), Buffer.concat(parts));
}

const legacyPayload = (id: number): Buffer => Buffer.from(`{"tenant":"${id % 2 === 0 ? 'acme' : 'globex'}","msg":"old ${id}"}\n`);

test('fair replay: a buffer written before per-tenant chains is replayed first and in its order after an upgrade, then removed; nothing acknowledged is lost', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-fair-');
  mkdirSync(dir, { recursive: true });
  writeLegacySegment(dir, 1, 0, [1, 2, 3, 4, 5].map(legacyPayload));
  writeLegacySegment(dir, 6, 5, [6, 7, 8, 9, 10].map(legacyPayload));
  appendFileSync(path.join(dir, segmentName(6)), Buffer.alloc(20, 7)); // a torn append the old version never acknowledged
  writeFileSync(path.join(dir, 'checkpoint.json'), '{"version":1,"acknowledged":3}\n');
  const { telemetry, codes } = memoryTelemetry();
  let buffer = await DiskBuffer.open(dir, config, telemetry);
  assert.ok(codes().includes('SLU0460I'));
  assert.equal(await telemetry.value('sluice_buffer_discarded_bytes_total', { reason: 'torn_tail' }), 20);
  assert.equal(buffer.entriesHeld, 7);
  // New appends go to the tenants' chains; the old entries still come first (they are older).
  await buffer.append('acme', Buffer.from('new 1'), 1);
  let read = await buffer.read([4, 5, 6].reduce((sum, id) => sum + legacyPayload(id).length, 0));
  assert.deepEqual(read.map((e) => [e.tenant, e.id]), [[null, 4], [null, 5], [null, 6]]);
  assert.ok(read.every((e) => e.payload.equals(legacyPayload(e.id))));
  buffer.acknowledge(read.at(-1)!);
  await buffer.close();
  assert.deepEqual(JSON.parse(readFileSync(path.join(dir, 'checkpoint.json'), 'utf8')), { version: 2, tenants: {}, legacy: 6 });

  // A restart in the middle of the upgrade: the old chain resumes after what was acknowledged.
  buffer = await DiskBuffer.open(dir, config, telemetry);
  read = await buffer.read(Number.MAX_SAFE_INTEGER);
  assert.deepEqual(read.map((e) => [e.tenant, e.id]), [[null, 7], [null, 8], [null, 9], [null, 10], ['acme', 1]]);
  buffer.acknowledge(read.at(-1)!);
  await buffer.close();
  assert.ok(codes().includes('SLU0461I'), 'the old chain was delivered and removed');
  assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.seg')), []);
  assert.deepEqual(JSON.parse(readFileSync(path.join(dir, 'checkpoint.json'), 'utf8')), { version: 2, tenants: { acme: 1 } });

  buffer = await DiskBuffer.open(dir, config, telemetry);
  t.after(() => buffer.close());
  assert.equal(buffer.entriesHeld, 0);
  assert.deepEqual(await buffer.append('acme', Buffer.from('new 2'), 1), { written: true, id: 2 }, 'ids run on');
});

test('fair replay: a held tenant is not handed out while the others go on; released, it resumes in order and wakes a waiting reader', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-fair-');
  const buffer = await DiskBuffer.open(dir, config, memoryTelemetry().telemetry);
  t.after(() => buffer.close());
  await appendMany(buffer, 'busy', 40, 500);
  await appendMany(buffer, 'other', 40, 500);
  const first = await buffer.read(2000);
  assert.ok(first.length > 0);
  buffer.hold('busy'); // its receiver asked it to slow down
  const whileHeld: BufferEntry[] = [];
  for (;;) {
    const batch = await buffer.read(4000);
    if (batch.length === 0) break;
    whileHeld.push(...batch);
  }
  assert.ok(whileHeld.every((e) => e.tenant === 'other'), 'nothing of the held tenant is handed out');
  assert.equal(first.filter((e) => e.tenant === 'other').length + whileHeld.length, 40, 'the other tenant is replayed to the end meanwhile');

  const controller = new AbortController();
  const rest: BufferEntry[] = [];
  const reader = (async () => {
    for await (const batch of buffer.batches(4000, controller.signal)) {
      rest.push(...batch);
      if (first.filter((e) => e.tenant === 'busy').length + rest.length === 40) controller.abort();
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(rest.length, 0, 'the reader waits while the only tenant left is held');
  buffer.release('busy'); // drained: no append needed to wake the reader
  await reader;
  assertExactOrder([...first, ...whileHeld, ...rest], { busy: 40, other: 40 }, () => 500);
});
