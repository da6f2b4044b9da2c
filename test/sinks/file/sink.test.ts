import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { LogRecord } from '../../../src/core/record.js';
import { AckStatus, AckToken } from '../../../src/core/ack.js';
import { FileSink, sortRotated, rotatedName } from '../../../src/sinks/file/sink.js';
import type { FileSinkConfig } from '../../../src/sinks/file/config.js';
import { readTenantRecords, silentTelemetry, tempDir, waitFor } from '../../helpers.js';

function config(dir: string, overrides: Partial<FileSinkConfig> = {}): FileSinkConfig {
  return {
    name: 'files', type: 'file', tenants: ['*'], path: dir, rotateBytes: 100 * 1024 * 1024, rotateIntervalMs: 0,
    maxFiles: 0, batchBytes: 256 * 1024, batchDelayMs: 5, queueHighWaterBytes: 8 * 1024 * 1024, fsyncIntervalMs: 20, ...overrides,
  };
}

function records(tenant: string, from: number, count: number): LogRecord[] {
  const out: LogRecord[] = [];
  for (let i = from; i < from + count; i++) {
    const rec = new LogRecord();
    rec.tenant = tenant;
    rec.ts = rec.received = '2026-11-27T00:00:00.000Z';
    rec.msg = `message ${i}`;
    out.push(rec);
  }
  return out;
}

const telemetry = silentTelemetry;
const seqs = (recs: Record<string, unknown>[]): number[] => recs.map((r) => Number(String(r.msg).split(' ')[1]));
const range = (from: number, count: number): number[] => Array.from({ length: count }, (_, i) => from + i);

test('file sink: tenants get separate folders; acks settle after the write', async (t) => {
  const dir = tempDir(t);
  const sink = new FileSink(config(dir), telemetry());
  await sink.start();
  const settled: AckStatus[] = [];
  const ack = new AckToken((s) => settled.push(s));
  ack.retain();
  sink.write('a', records('a', 0, 3), ack);
  ack.seal();
  sink.write('b', records('b', 0, 2), null);
  assert.deepEqual(settled, [], 'not committed before the write completes');
  await waitFor('ack', () => settled.length === 1);
  assert.deepEqual(settled, [AckStatus.Committed]);
  await sink.stop(Date.now() + 5000);
  assert.deepEqual(seqs(readTenantRecords(dir, 'a')), [0, 1, 2]);
  assert.deepEqual(seqs(readTenantRecords(dir, 'b')), [0, 1]);
});

test('file sink: rotation by size keeps every record, in order, with no line split', async (t) => {
  const dir = tempDir(t);
  const sink = new FileSink(config(dir, { rotateBytes: 2000, batchBytes: 500 }), telemetry());
  await sink.start();
  for (let i = 0; i < 50; i++) sink.write('a', records('a', i * 10, 10), null);
  await sink.stop(Date.now() + 5000);
  const files = readdirSync(path.join(dir, 'a'));
  assert.ok(files.length > 5, `expected many files, got ${files.join(',')}`);
  for (const name of files) {
    const size = readFileSync(path.join(dir, 'a', name)).length;
    assert.ok(size <= 2000 + 1000, `${name} is ${size} bytes`);
    assert.ok(readFileSync(path.join(dir, 'a', name), 'utf8').endsWith('\n'));
  }
  assert.deepEqual(seqs(readTenantRecords(dir, 'a')), range(0, 500));
});

test('file sink: rotation by time happens even when the tenant goes quiet', async (t) => {
  const dir = tempDir(t);
  const sink = new FileSink(config(dir, { rotateIntervalMs: 300 }), telemetry());
  await sink.start();
  sink.write('a', records('a', 0, 5), null);
  await waitFor('rotation', () => existsSync(path.join(dir, 'a')) && readdirSync(path.join(dir, 'a')).some((n) => n.endsWith('Z.ndjson')), 5000);
  sink.write('a', records('a', 5, 5), null);
  await sink.stop(Date.now() + 5000);
  assert.deepEqual(seqs(readTenantRecords(dir, 'a')), range(0, 10));
  assert.ok(existsSync(path.join(dir, 'a', 'current.ndjson')));
});

test('file sink: retention keeps the newest max_files rotated files', async (t) => {
  const dir = tempDir(t);
  const sink = new FileSink(config(dir, { rotateBytes: 300, batchBytes: 1, maxFiles: 2 }), telemetry());
  await sink.start();
  for (let i = 0; i < 20; i++) {
    sink.write('a', records('a', i * 3, 3), null);
    await waitFor('write', () => sink.queuedBytes() === 0);
  }
  await sink.stop(Date.now() + 5000);
  const rotated = readdirSync(path.join(dir, 'a')).filter((n) => n !== 'current.ndjson');
  assert.equal(rotated.length, 2);
  const kept = seqs(readTenantRecords(dir, 'a'));
  assert.equal(kept.at(-1), 59, 'the newest records are kept');
  assert.deepEqual(kept, range(kept[0]!, kept.length));
});

test('file sink: above the high-water mark write() says slow down, and drain fires', async (t) => {
  const dir = tempDir(t);
  const sink = new FileSink(config(dir, { queueHighWaterBytes: 2000, batchDelayMs: 50 }), telemetry());
  await sink.start();
  let drained = 0;
  sink.onDrain(() => drained++);
  assert.equal(sink.write('a', records('a', 0, 5), null), true);
  assert.equal(sink.write('a', records('a', 5, 50), null), false);
  assert.equal(sink.congested(), true);
  await waitFor('drain', () => drained === 1);
  assert.equal(sink.congested(), false);
  await sink.stop(Date.now() + 5000);
  assert.deepEqual(seqs(readTenantRecords(dir, 'a')), range(0, 55));
});

test('file sink: stop() flushes what is batched; a restart appends to the active file', async (t) => {
  const dir = tempDir(t);
  const first = new FileSink(config(dir, { batchDelayMs: 60_000 }), telemetry());
  await first.start();
  first.write('a', records('a', 0, 3), null);
  await first.stop(Date.now() + 5000);
  const second = new FileSink(config(dir), telemetry());
  await second.start();
  second.write('a', records('a', 3, 3), null);
  await second.stop(Date.now() + 5000);
  assert.deepEqual(readdirSync(path.join(dir, 'a')), ['current.ndjson']);
  assert.deepEqual(seqs(readTenantRecords(dir, 'a')), range(0, 6));
});

test('file sink: a failing disk is retried with backoff, records are kept and counted', async (t) => {
  const dir = tempDir(t);
  // A regular file where the tenant folder must go: mkdir fails until it is removed.
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'a'), 'in the way');
  const tel = telemetry();
  const sink = new FileSink(config(dir), tel);
  await sink.start();
  sink.write('a', records('a', 0, 4), null);
  await waitFor('an error counted', async () => (await tel.value('sluice_sink_errors_total')) >= 1);
  const { rmSync } = await import('node:fs');
  rmSync(path.join(dir, 'a'));
  await waitFor('retried write', () => sink.queuedBytes() === 0, 10_000);
  await sink.stop(Date.now() + 5000);
  assert.deepEqual(seqs(readTenantRecords(dir, 'a')), range(0, 4));
});

test('file sink: rotated names sort by age', () => {
  const names = [rotatedName(Date.UTC(2026, 0, 2), 0), rotatedName(Date.UTC(2026, 0, 1), 1),
    rotatedName(Date.UTC(2026, 0, 1), 0), 'current.ndjson', rotatedName(Date.UTC(2026, 0, 1), 10)];
  assert.deepEqual(sortRotated(names), [
    '20260101T000000.000Z.ndjson', '20260101T000000.000Z-1.ndjson', '20260101T000000.000Z-10.ndjson', '20260102T000000.000Z.ndjson',
  ]);
});

test('file sink: acknowledgements wait for the grouped fsync, and stop() syncs what is left', async (t) => {
  const dir = tempDir(t);
  const sink = new FileSink(config(dir, { fsyncIntervalMs: 400, batchDelayMs: 1 }), telemetry());
  await sink.start();
  const settled: string[] = [];
  const acked = (name: string): AckToken => {
    const ack = new AckToken((s) => settled.push(`${name}:${s}`));
    ack.retain();
    ack.seal();
    return ack;
  };
  sink.write('a', records('a', 0, 2), acked('first'));
  await waitFor('first sync', () => settled.length === 1);
  sink.write('a', records('a', 2, 2), acked('second'));
  await waitFor('second written', () => sink.queuedBytes() === 0);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(settled, [`first:${AckStatus.Committed}`], 'written is not enough: it waits for the next fsync');
  await waitFor('second sync', () => settled.length === 2, 5000);
  sink.write('a', records('a', 4, 2), acked('third'));
  await sink.stop(Date.now() + 5000);
  assert.deepEqual(settled, [`first:${AckStatus.Committed}`, `second:${AckStatus.Committed}`, `third:${AckStatus.Committed}`]);
  assert.deepEqual(seqs(readTenantRecords(dir, 'a')), range(0, 6));
});

test('file sink: a partial last line left by a crash is cut off before new records are appended', async (t) => {
  const dir = tempDir(t);
  mkdirSync(path.join(dir, 'a'), { recursive: true });
  writeFileSync(path.join(dir, 'a', 'current.ndjson'), '{"msg":"message 0"}\n{"msg":"message 1"}\n{"msg":"mess');
  const tel = telemetry();
  const sink = new FileSink(config(dir), tel);
  await sink.start();
  sink.write('a', records('a', 2, 2), null);
  await sink.stop(Date.now() + 5000);
  assert.deepEqual(seqs(readTenantRecords(dir, 'a')), range(0, 4));
});
