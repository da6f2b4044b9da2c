/**
 * Damaged and torn files: every way a segment can be cut or changed must be
 * detected; no entry that fails verification is ever handed out, and what is
 * lost is counted.
 */
import { memoryTelemetry, tempDir } from '../../helpers.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { DiskBuffer, type BufferEntry } from '../../../src/sinks/buffer/disk-buffer.js';
import { DEFAULT_DISK_BUFFER_CONFIG, type DiskBufferConfig } from '../../../src/sinks/buffer/config.js';
import { ENTRY_HEADER_BYTES, SEGMENT_HEADER_BYTES } from '../../../src/sinks/buffer/format.js';

const config: DiskBufferConfig = { ...DEFAULT_DISK_BUFFER_CONFIG, segmentBytes: 4096, maxBytes: 1024 * 1024, syncIntervalMs: 0 };

/** The tenant these single-tenant cases append for; its chain is the folder tenants/acme. */
const TENANT = 'acme';

/** Entry i's payload: recognisable, and different in every byte position from its neighbours'. */
function payloadOf(i: number, length = 64): Buffer {
  return Buffer.from(`entry-${i}:`.padEnd(length, String.fromCharCode(97 + (i % 26))));
}

async function writeEntries(dir: string, count: number, length = 64): Promise<void> {
  const buffer = await DiskBuffer.open(dir, config, memoryTelemetry().telemetry);
  for (let i = 1; i <= count; i++) await buffer.append(TENANT, payloadOf(i, length), i);
  await buffer.close();
}

function segmentFiles(dir: string): string[] {
  const chain = path.join(dir, 'tenants', TENANT);
  return readdirSync(chain).filter((n) => n.endsWith('.seg')).sort().map((n) => path.join(chain, n));
}

/** Offsets of the entries of a segment file, by walking the length fields. */
function entryOffsets(file: string): number[] {
  const bytes = readFileSync(file);
  const offsets: number[] = [];
  for (let at = SEGMENT_HEADER_BYTES; at < bytes.length; at += ENTRY_HEADER_BYTES + bytes.readUInt32LE(at)) offsets.push(at);
  return offsets;
}

async function readAll(buffer: DiskBuffer): Promise<BufferEntry[]> {
  return buffer.read(Number.MAX_SAFE_INTEGER);
}

/** Every entry handed out is exactly the one appended under its id. */
function assertIntact(entries: BufferEntry[]): void {
  for (const entry of entries) {
    assert.ok(entry.payload.equals(payloadOf(entry.id, entry.payload.length)), `entry ${entry.id} has its own payload`);
    assert.equal(entry.records, entry.id);
  }
}

function copyDir(from: string, to: string): void {
  cpSync(from, to, { recursive: true });
}

test('corruption: the newest segment cut at every byte of its last entry reopens with every complete entry, no garbage, and takes new appends', async (t) => {
  const root = tempDir(t, 'sluice-buffer-corrupt-');
  const original = path.join(root, 'original');
  await writeEntries(original, 5);
  const [file] = segmentFiles(original);
  const whole = readFileSync(file!);
  const offsets = entryOffsets(file!);
  assert.equal(offsets.length, 5, 'all five in one segment');
  const lastStart = offsets[4]!;

  for (let cut = lastStart; cut < whole.length; cut++) {
    const dir = path.join(root, `cut${cut}`);
    copyDir(original, dir);
    writeFileSync(path.join(dir, path.relative(original, file!)), whole.subarray(0, cut));
    const { telemetry } = memoryTelemetry();
    let buffer = await DiskBuffer.open(dir, config, telemetry);
    const entries = await readAll(buffer);
    assert.deepEqual(entries.map((e) => e.id), [1, 2, 3, 4], `cut at ${cut}`);
    assertIntact(entries);
    assert.equal(await telemetry.value('sluice_buffer_discarded_bytes_total', { reason: 'torn_tail' }), cut - lastStart);
    // The torn entry never completed, so its id is free: the next append takes it, right after entry 4.
    assert.deepEqual(await buffer.append(TENANT, payloadOf(5), 5), { written: true, id: 5 });
    await buffer.close();
    buffer = await DiskBuffer.open(dir, config, telemetry);
    const again = await readAll(buffer);
    assert.deepEqual(again.map((e) => e.id), [1, 2, 3, 4, 5]);
    assertIntact(again);
    await buffer.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('corruption: a newest segment torn inside its header (a crash while creating it) is removed; the older segment carries on', async (t) => {
  const root = tempDir(t, 'sluice-buffer-corrupt-');
  const original = path.join(root, 'original');
  await writeEntries(original, 120); // 4 KiB segments of 96-byte entries: several segments
  const files = segmentFiles(original);
  assert.ok(files.length >= 3);
  const newest = files[files.length - 1]!;
  const firstInNewest = Number(path.basename(newest, '.seg'));
  for (const cut of [0, 1, SEGMENT_HEADER_BYTES - 1]) {
    const dir = path.join(root, `cut${cut}`);
    copyDir(original, dir);
    writeFileSync(path.join(dir, path.relative(original, newest)), readFileSync(newest).subarray(0, cut));
    const buffer = await DiskBuffer.open(dir, config, memoryTelemetry().telemetry);
    const entries = await readAll(buffer);
    assert.deepEqual(entries.map((e) => e.id), Array.from({ length: firstInNewest - 1 }, (_, i) => i + 1));
    assertIntact(entries);
    assert.deepEqual(await buffer.append(TENANT, payloadOf(firstInNewest), firstInNewest), { written: true, id: firstInNewest });
    assertIntact(await readAll(buffer));
    await buffer.close();
  }
});

test('corruption: any byte changed in an entry of an older segment is detected; the rest of that segment is skipped and its records counted', async (t) => {
  const root = tempDir(t, 'sluice-buffer-corrupt-');
  const original = path.join(root, 'original');
  await writeEntries(original, 120);
  const files = segmentFiles(original);
  const damagedFile = files[1]!; // an older segment with segments on both sides
  const offsets = entryOffsets(damagedFile);
  const firstId = Number(path.basename(damagedFile, '.seg'));
  const victim = 2; // the third entry of the segment
  const victimId = firstId + victim;
  const lastIdInSegment = firstId + offsets.length - 1;
  const lostIds = Array.from({ length: lastIdInSegment - victimId + 1 }, (_, i) => victimId + i);
  const lostRecords = lostIds.reduce((sum, id) => sum + id, 0); // entry i holds i records
  const original2 = readFileSync(damagedFile);
  const entryEnd = offsets[victim + 1]!;

  for (let at = offsets[victim]!; at < entryEnd; at++) {
    const dir = path.join(root, `flip${at}`);
    copyDir(original, dir);
    const damaged = Buffer.from(original2);
    damaged[at] = damaged[at]! ^ 0x10;
    writeFileSync(path.join(dir, path.relative(original, damagedFile)), damaged);
    const { telemetry, codes } = memoryTelemetry();
    const buffer = await DiskBuffer.open(dir, config, telemetry);
    const entries = await readAll(buffer);
    assertIntact(entries);
    const expected = Array.from({ length: 120 }, (_, i) => i + 1).filter((id) => !lostIds.includes(id));
    assert.deepEqual(entries.map((e) => e.id), expected, `byte ${at - offsets[victim]!} of the entry changed`);
    assert.equal(await telemetry.value('sluice_buffer_dropped_records_total', { reason: 'corrupt' }), lostRecords);
    assert.equal(await telemetry.value('sluice_buffer_discarded_bytes_total', { reason: 'corrupt' }), original2.length - offsets[victim]!);
    assert.ok(codes().includes('SLU0452E') && codes().includes('SLU0453E'), 'damage and loss are logged');
    // The skipped segment is released once the sink acknowledges past it.
    buffer.acknowledge(entries[entries.length - 1]!);
    await buffer.close();
    assert.ok(!existsSync(path.join(dir, path.relative(original, damagedFile))));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('corruption: a byte changed in the newest segment cuts it there at open (damage and a torn write look alike); nothing after is trusted', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-corrupt-');
  await writeEntries(dir, 5);
  const [file] = segmentFiles(dir);
  const offsets = entryOffsets(file!);
  const damaged = readFileSync(file!);
  damaged[offsets[2]! + ENTRY_HEADER_BYTES + 3]! ^= 0x01; // inside entry 3's payload
  writeFileSync(file!, damaged);
  const { telemetry } = memoryTelemetry();
  const buffer = await DiskBuffer.open(dir, config, telemetry);
  const entries = await readAll(buffer);
  assert.deepEqual(entries.map((e) => e.id), [1, 2]);
  assertIntact(entries);
  assert.equal(await telemetry.value('sluice_buffer_discarded_bytes_total', { reason: 'torn_tail' }), damaged.length - offsets[2]!);
  await buffer.close();
});

test('corruption: a damaged header of an older segment skips that segment whole, counted', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-corrupt-');
  await writeEntries(dir, 120);
  const files = segmentFiles(dir);
  const bytes = readFileSync(files[0]!);
  bytes[0] = bytes[0]! ^ 0xff; // the magic
  writeFileSync(files[0]!, bytes);
  const { telemetry } = memoryTelemetry();
  const buffer = await DiskBuffer.open(dir, config, telemetry);
  const entries = await readAll(buffer);
  const secondFirstId = Number(path.basename(files[1]!, '.seg'));
  assert.equal(entries[0]!.id, secondFirstId);
  assert.equal(entries[entries.length - 1]!.id, 120);
  assertIntact(entries);
  assert.equal(await telemetry.value('sluice_buffer_discarded_bytes_total', { reason: 'corrupt' }), bytes.length);
  await buffer.close();
});

test('corruption: damage found while running moves appends to a new segment, so nothing appended later is stranded behind it', async (t) => {
  const dir = tempDir(t, 'sluice-buffer-corrupt-');
  const { telemetry } = memoryTelemetry();
  const buffer = await DiskBuffer.open(dir, config, telemetry);
  t.after(() => buffer.close());
  for (let i = 1; i <= 3; i++) await buffer.append(TENANT, payloadOf(i), i);
  // Damage entry 2 on disk behind the buffer's back (another process, a bad disk).
  const [file] = segmentFiles(dir);
  const at = entryOffsets(file!)[1]! + ENTRY_HEADER_BYTES;
  const fd = openSync(file!, 'r+');
  writeSync(fd, Buffer.from('X'), 0, 1, at);
  closeSync(fd);
  const first = await readAll(buffer);
  assert.deepEqual(first.map((e) => e.id), [1]);
  for (let i = 4; i <= 5; i++) await buffer.append(TENANT, payloadOf(i), i);
  const later = await readAll(buffer);
  assert.deepEqual(later.map((e) => e.id), [4, 5]);
  assertIntact(later);
  assert.equal(segmentFiles(dir).length, 2, 'entries 4 and 5 went to a new segment');
  assert.equal(await telemetry.value('sluice_buffer_dropped_records_total', { reason: 'corrupt' }), 2 + 3);
});
