/**
 * A full buffer: drop_newest refuses and counts, block waits in order until
 * acknowledgements free a segment, bounded by the deadline or a signal.
 */
import { removeQuietly } from '../../helpers.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { DiskBuffer, DiskBufferClosedError, type AppendResult } from '../../../src/sinks/buffer/disk-buffer.js';
import { DEFAULT_DISK_BUFFER_CONFIG, type DiskBufferConfig } from '../../../src/sinks/buffer/config.js';
import { ENTRY_HEADER_BYTES, SEGMENT_HEADER_BYTES } from '../../../src/sinks/buffer/format.js';
import { Telemetry } from '../../../src/telemetry/telemetry.js';

const PAYLOAD_BYTES = 1000;

/** The tenant these single-tenant cases append for; its chain is the folder tenants/acme. */
const TENANT = 'acme';
/** Three 1000-byte entries fill a 4 KiB segment; a fourth starts the next. */
const PER_SEGMENT = Math.floor((4096 - SEGMENT_HEADER_BYTES) / (ENTRY_HEADER_BYTES + PAYLOAD_BYTES));

function setup(t: { after(fn: () => void): void }, overrides: Partial<DiskBufferConfig>): { dir: string; config: DiskBufferConfig; telemetry: Telemetry } {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-buffer-full-'));
  t.after(() => removeQuietly(dir));
  const config = { ...DEFAULT_DISK_BUFFER_CONFIG, segmentBytes: 4096, maxBytes: 8192, syncIntervalMs: 0, ...overrides };
  return { dir, config, telemetry: new Telemetry(pino({ level: 'silent' })) };
}

const payload = (i: number): Buffer => Buffer.alloc(PAYLOAD_BYTES, i);

function bytesOfSegments(dir: string): number {
  const chain = path.join(dir, 'tenants', TENANT);
  return readdirSync(chain).filter((n) => n.endsWith('.seg')).reduce((sum, n) => sum + statSync(path.join(chain, n)).size, 0);
}

/** Append until the buffer refuses (drop_newest); returns how many fitted. */
async function fill(buffer: DiskBuffer): Promise<number> {
  for (let i = 1; ; i++) {
    const result = await buffer.append(TENANT, payload(i), 10);
    if (!result.written) {
      assert.deepEqual(result, { written: false, reason: 'full' });
      return i - 1;
    }
  }
}

/** Settled or not after a moment. */
async function settledWithin<T>(promise: Promise<T>, ms: number): Promise<boolean> {
  let settled = false;
  void promise.then(() => { settled = true; }, () => { settled = true; });
  await new Promise((resolve) => setTimeout(resolve, ms));
  return settled;
}

test('full, drop_newest: entries past maxBytes are refused and their records counted; acknowledging a segment makes room again', async (t) => {
  const { dir, config, telemetry } = setup(t, { whenFull: 'drop_newest' });
  const buffer = await DiskBuffer.open(dir, config, telemetry);
  t.after(() => buffer.close());
  const fitted = await fill(buffer);
  // Two full segments plus one entry in a third: the next would pass 8192 bytes.
  const expectedBytes = 2 * (SEGMENT_HEADER_BYTES + PER_SEGMENT * (ENTRY_HEADER_BYTES + PAYLOAD_BYTES)) + SEGMENT_HEADER_BYTES + ENTRY_HEADER_BYTES + PAYLOAD_BYTES;
  assert.equal(fitted, 2 * PER_SEGMENT + 1);
  assert.equal(bytesOfSegments(dir), expectedBytes);
  assert.ok(expectedBytes + ENTRY_HEADER_BYTES + PAYLOAD_BYTES > config.maxBytes);
  assert.equal(await telemetry.value('sluice_buffer_bytes'), expectedBytes, 'the gauge matches the files');
  assert.equal(await telemetry.value('sluice_buffer_entries'), fitted);

  assert.deepEqual(await buffer.append(TENANT, payload(99), 7), { written: false, reason: 'full' });
  assert.equal(await telemetry.value('sluice_buffer_dropped_records_total', { reason: 'full' }), 10 + 7);

  // Deliver the first segment: it is deleted and there is room for more.
  const firstSegment = await buffer.read(PER_SEGMENT * PAYLOAD_BYTES);
  assert.equal(firstSegment.length, PER_SEGMENT);
  buffer.acknowledge(firstSegment[firstSegment.length - 1]!);
  // Accepted, not dropped: it waits the moment it takes to remove the acknowledged segment, so the files never pass maxBytes.
  assert.deepEqual(await buffer.append(TENANT, payload(100), 1), { written: true, id: fitted + 1 });
  assert.ok(bytesOfSegments(dir) <= config.maxBytes);
});

test('full, drop_newest: with one segment\'s worth of room, a fully acknowledged newest segment is retired so appends go on', async (t) => {
  const { dir, config, telemetry } = setup(t, { whenFull: 'drop_newest', maxBytes: 4096 });
  const buffer = await DiskBuffer.open(dir, config, telemetry);
  t.after(() => buffer.close());
  for (let round = 0; round < 3; round++) {
    const fitted = await fill(buffer);
    assert.equal(fitted, PER_SEGMENT);
    const entries = await buffer.read(Number.MAX_SAFE_INTEGER);
    assert.equal(entries.length, PER_SEGMENT);
    buffer.acknowledge(entries[entries.length - 1]!);
  }
  assert.ok(bytesOfSegments(dir) <= config.maxBytes);
});

test('full: an entry that can never fit is refused as too_large, whatever the policy', async (t) => {
  for (const whenFull of ['block', 'drop_newest'] as const) {
    const { dir, config, telemetry } = setup(t, { whenFull });
    const buffer = await DiskBuffer.open(dir, config, telemetry);
    const limit = config.segmentBytes - SEGMENT_HEADER_BYTES - ENTRY_HEADER_BYTES;
    assert.deepEqual(await buffer.append(TENANT, Buffer.alloc(limit + 1), 3), { written: false, reason: 'too_large' });
    assert.deepEqual(await buffer.append(TENANT, Buffer.alloc(limit), 3), { written: true, id: 1 }, 'exactly one segment\'s worth fits');
    assert.equal(await telemetry.value('sluice_buffer_dropped_records_total', { reason: 'too_large' }), 3);
    await buffer.close();
  }
});

test('full, block: appends wait, in call order, until an acknowledgement frees a segment', async (t) => {
  const { dir, config, telemetry } = setup(t, { whenFull: 'block', blockTimeoutMs: 10_000 });
  const buffer = await DiskBuffer.open(dir, config, telemetry);
  t.after(() => buffer.close());
  const fitted = 2 * PER_SEGMENT + 1;
  for (let i = 1; i <= fitted; i++) assert.deepEqual(await buffer.append(TENANT, payload(i), 1), { written: true, id: i });

  const big = buffer.append(TENANT, payload(50), 1);
  const small = buffer.append(TENANT, Buffer.from('small'), 1); // would fit, but must not overtake the one waiting before it
  assert.equal(await settledWithin(big, 100), false, 'the big one waits');
  assert.equal(await settledWithin(small, 0), false, 'the small one waits behind it');

  const firstSegment = await buffer.read(PER_SEGMENT * PAYLOAD_BYTES);
  buffer.acknowledge(firstSegment[firstSegment.length - 1]!);
  assert.deepEqual(await big, { written: true, id: fitted + 1 });
  assert.deepEqual(await small, { written: true, id: fitted + 2 });
  assert.equal(await telemetry.value('sluice_buffer_dropped_records_total'), 0);
});

test('full, block: the wait is bounded by blockTimeoutMs (refused as timeout, counted) and by an AbortSignal (rejected, not counted)', async (t) => {
  const { dir, config, telemetry } = setup(t, { whenFull: 'block', blockTimeoutMs: 150 });
  const buffer = await DiskBuffer.open(dir, config, telemetry);
  t.after(() => buffer.close());
  for (let i = 1; i <= 2 * PER_SEGMENT + 1; i++) await buffer.append(TENANT, payload(i), 1);

  const started = Date.now();
  const timedOut: AppendResult = await buffer.append(TENANT, payload(60), 4);
  const waited = Date.now() - started;
  assert.deepEqual(timedOut, { written: false, reason: 'timeout' });
  assert.ok(waited >= 140 && waited < 2000, `waited ${waited} ms`);
  assert.equal(await telemetry.value('sluice_buffer_dropped_records_total', { reason: 'timeout' }), 4);

  const controller = new AbortController();
  const aborted = buffer.append(TENANT, payload(61), 5, { signal: controller.signal });
  controller.abort(new Error('sink stopping'));
  await assert.rejects(aborted, /sink stopping/);
  await assert.rejects(buffer.append(TENANT, payload(62), 5, { signal: controller.signal }), /sink stopping/, 'an aborted signal fails at once');
  assert.equal(await telemetry.value('sluice_buffer_dropped_records_total', { reason: 'timeout' }), 4);
});

test('full, block: close() rejects the appends still waiting and keeps everything written', async (t) => {
  const { dir, config, telemetry } = setup(t, { whenFull: 'block', blockTimeoutMs: 10_000 });
  const buffer = await DiskBuffer.open(dir, config, telemetry);
  const fitted = 2 * PER_SEGMENT + 1;
  for (let i = 1; i <= fitted; i++) await buffer.append(TENANT, payload(i), 1);
  const waiting = assert.rejects(buffer.append(TENANT, payload(70), 1), DiskBufferClosedError);
  await buffer.close();
  await waiting;
  await assert.rejects(buffer.append(TENANT, payload(71), 1), DiskBufferClosedError);
  const reopened = await DiskBuffer.open(dir, config, telemetry);
  t.after(() => reopened.close());
  assert.equal((await reopened.read(Number.MAX_SAFE_INTEGER)).length, fitted);
});
