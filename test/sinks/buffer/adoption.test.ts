/**
 * A buffered sink adopts its sink's buffer folders that no live process
 * holds (worker slots that no longer run), replays them into its sink beside
 * its own buffer, and deletes each once delivered; folders a live process
 * holds are left alone until that process is gone, and when its own slot's
 * folder is held it buffers in `<folder>.2`. A real file sink behind it, a
 * real second process holding folders.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AckStatus } from '../../../src/core/ack.js';
import { LogRecord } from '../../../src/core/record.js';
import { BufferedSink, isFolderOf } from '../../../src/sinks/buffer/buffered-sink.js';
import { DEFAULT_DISK_BUFFER_CONFIG } from '../../../src/sinks/buffer/config.js';
import { DiskBuffer } from '../../../src/sinks/buffer/disk-buffer.js';
import { FileSink } from '../../../src/sinks/file/sink.js';
import { ackInto, memoryTelemetry, readTenantRecords, tempDir, waitFor } from '../../helpers.js';
import { entryPayload, LOCK_CHILD_FLAG, type LockChildReport } from './lock-child.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lock-child.js');
const CONFIG = { ...DEFAULT_DISK_BUFFER_CONFIG, syncIntervalMs: 1 };

/** Writes `entries` entries of `perEntry` records of `tenant` labelled with the folder's name into a buffer folder, and closes it. */
async function orphan(dir: string, tenant: string, entries: number, perEntry: number): Promise<void> {
  const buffer = await DiskBuffer.open(dir, CONFIG, memoryTelemetry().telemetry);
  for (let i = 0; i < entries; i++) await buffer.append(tenant, entryPayload(tenant, path.basename(dir), i * perEntry, perEntry), perEntry);
  await buffer.close();
}

/** How many times each `<label> <n>` message is in the tenant's files, by label. */
function delivered(logs: string, tenant: string): Map<string, number[]> {
  const byLabel = new Map<string, number[]>();
  for (const rec of readTenantRecords(logs, tenant)) {
    const [label, n] = String(rec.msg).split(' ') as [string, string];
    const counts = byLabel.get(label) ?? [];
    counts[Number(n)] = (counts[Number(n)] ?? 0) + 1;
    byLabel.set(label, counts);
  }
  return byLabel;
}
const once = (count: number): number[] => Array<number>(count).fill(1);

test('adoption: folders of this sink that no process holds are replayed and deleted; held ones wait for their process to be gone; a held own folder moves to .2', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const buffers = path.join(dir, 'buffers');
  const logs = path.join(dir, 'logs');
  await orphan(path.join(buffers, 'files.w3'), 'acme', 5, 10);
  await orphan(path.join(buffers, 'files.w3'), 'globex', 2, 10);
  await orphan(path.join(buffers, 'files.w5'), 'acme', 0, 0);
  await orphan(path.join(buffers, 'other.w3'), 'acme', 1, 10);
  mkdirSync(path.join(buffers, 'files.backup'));
  writeFileSync(path.join(buffers, 'files.backup', 'keep'), 'not a buffer of this sink');

  // Another process holds slot 4's folder and this slot's (1), each with entries.
  const child = fork(CHILD, [LOCK_CHILD_FLAG, 'buffers', 'acme', '3', path.join(buffers, 'files.w4'), path.join(buffers, 'files.w1')], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const childExited = new Promise((resolve) => child.on('exit', resolve));
  t.after(() => { child.kill('SIGKILL'); });
  await new Promise<void>((resolve, reject) => {
    child.on('message', (m: LockChildReport) => { if (m.kind === 'held') resolve(); });
    void childExited.then(() => reject(new Error('the holding process exited')));
  });

  const { telemetry, lines } = memoryTelemetry();
  const inner = new FileSink({
    name: 'files', type: 'file', tenants: ['*'], path: logs, rotateBytes: 1 << 30, rotateIntervalMs: 0,
    maxFiles: 0, batchBytes: 256 * 1024, batchDelayMs: 5, queueHighWaterBytes: 8 * 1024 * 1024, fsyncIntervalMs: 5,
  }, telemetry, 'w1');
  const sink = new BufferedSink(inner, path.join(buffers, 'files.w1'), CONFIG, telemetry);
  await sink.start();
  t.after(() => sink.stop(Date.now() + 5000));
  assert.equal(sink.directory, path.join(buffers, 'files.w1.2'), 'its slot folder is held by the other process');

  const statuses: AckStatus[] = [];
  const live = Array.from({ length: 5 }, (_, n) => Object.assign(new LogRecord(), { tenant: 'acme', ts: '2026-11-27T14:20:00.123Z', received: '2026-11-27T14:20:00.123Z', msg: `live ${n}` }));
  sink.write('acme', live, ackInto(statuses));
  await waitFor('the live batch committed', () => statuses.length === 1);
  assert.deepEqual(statuses, [AckStatus.Committed]);

  const removed = (): string[] => lines.filter((l) => l.code === 'SLU0463I').map((l) => path.basename(String(l.dir))).sort();
  await waitFor('slot 3 and 5 adopted and deleted', () => removed().length === 2, 30_000);
  assert.ok(!existsSync(path.join(buffers, 'files.w3')) && !existsSync(path.join(buffers, 'files.w5')));
  assert.deepEqual(delivered(logs, 'acme').get('files.w3'), once(50));
  assert.deepEqual(delivered(logs, 'globex').get('files.w3'), once(20));
  assert.deepEqual(delivered(logs, 'acme').get('live'), once(5));
  assert.equal(delivered(logs, 'acme').get('files.w4'), undefined, 'a folder held by a live process is not read');
  const adopted = lines.filter((l) => l.code === 'SLU0462I').map((l) => path.basename(String(l.dir))).sort();
  assert.deepEqual(adopted, ['files.w3', 'files.w5']);
  assert.deepEqual(removed(), ['files.w3', 'files.w5']);

  child.kill('SIGKILL');
  await childExited;
  await waitFor('the dead process\'s folders adopted and deleted', () => removed().length === 4, 30_000);
  assert.deepEqual(removed(), ['files.w1', 'files.w3', 'files.w4', 'files.w5']);
  const after = delivered(logs, 'acme');
  assert.deepEqual(after.get(path.join(buffers, 'files.w4')), once(3));
  assert.deepEqual(after.get(path.join(buffers, 'files.w1')), once(3));
  assert.deepEqual(after.get('files.w3'), once(50), 'nothing delivered twice');
  assert.ok(lines.some((l) => l.code === 'SLU0458I' && l.pid === child.pid), 'the dead process\'s lock was taken over');
  assert.ok(existsSync(path.join(buffers, 'other.w3')) && existsSync(path.join(buffers, 'files.backup', 'keep')), 'another sink\'s folder and a folder of another name are left alone');
  assert.ok(existsSync(path.join(buffers, 'files.w1.2')), 'its own folder stays');
});

test('adoption: a sink claims only the folder names it makes', () => {
  for (const name of ['fwd', 'fwd.w1', 'fwd.w12', 'fwd.2', 'fwd.w3.2']) assert.ok(isFolderOf('fwd', name), name);
  for (const name of ['fwd2', 'fwd-a', 'fwd.w', 'fwd.backup', 'fwd.w1.x', 'fw', '.removing-fwd.w1-42', 'fwd.w1.2.3']) assert.ok(!isFolderOf('fwd', name), name);
});
