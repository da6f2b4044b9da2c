/**
 * The file sink: NDJSON per tenant under `<path>/<tenant>/`.
 *
 * The active file is `current.ndjson` (`current-w<n>.ndjson` in worker n); rotation (by size, by age) renames it
 * to the UTC time it was opened, e.g. `20261127T142000.123Z.ndjson`, so names
 * sort by age. Records are encoded as they arrive and written in batches (one
 * write in flight per tenant file); a batch is committed, and its acks
 * settled, once its write has completed.
 *
 * Fairness: every tenant has its own queue and write loop, with at most one
 * write of at most batch_size in flight, so the disk (libuv's thread pool,
 * first come first served) serves backlogged tenants in turn, a batch each:
 * round-robin with a quantum of batch_size. Past the queue's high-water mark
 * only tenants over their share of it are slowed (core/fair.ts).
 */
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Counter, Gauge } from 'prom-client';
import type { ComponentHealth, Sink } from '../../core/component.js';
import { AckStatus, AckToken } from '../../core/ack.js';
import type { LogRecord } from '../../core/record.js';
import { backoffDelay } from '../../core/backoff.js';
import { settlesBefore, timerDelay } from '../../core/clock.js';
import type { FileSinkConfig } from './config.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { appendRecord } from '../../core/ndjson.js';
import { EncodedQueue } from '../encoded-queue.js';
import { FairShares, type TenantShare } from '../../core/fair.js';

export const ACTIVE_FILE = 'current.ndjson';
/** Active files of every writer: `current.ndjson` (a single process) and `current-w<n>.ndjson` (worker n). */
export const ACTIVE_FILE_PATTERN = /^current(?:-(w\d+))?\.ndjson$/;
const ROTATED_FILE = /^(\d{8}T\d{6}\.\d{3}Z)(?:-(\d{1,6}))?(?:-(w\d+))?\.ndjson$/;
const MAINTENANCE_INTERVAL_MS = 1000;
/** A tenant queue that was empty starts with a chunk this small, doubling up to batch_size while it stays busy. */
const FIRST_CHUNK_BYTES = 4096;

/**
 * The active file of one writer. Worker processes of one node each write
 * their own files (`tag` `w<n>`): appends and renames of several processes
 * on one file would race.
 */
export function activeFileName(tag: string | null = null): string {
  return tag === null ? ACTIVE_FILE : `current-${tag}.ndjson`;
}

/** `2026-11-27T14:20:00.123Z` → `20261127T142000.123Z` (then `-<seq>` when taken, `-<tag>` for a worker's file). */
export function rotatedName(openedAtMs: number, seq: number, tag: string | null = null): string {
  const iso = new Date(openedAtMs).toISOString();
  const stamp = iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 13) + iso.slice(14, 16) + iso.slice(17);
  return `${stamp}${seq === 0 ? '' : `-${seq}`}${tag === null ? '' : `-${tag}`}.ndjson`;
}

/**
 * Rotated files of one folder, oldest first: of one writer (`tag`, null for
 * the untagged files of a single process), or of every writer (undefined).
 */
export function sortRotated(names: readonly string[], tag?: string | null): string[] {
  const parsed: { name: string; stamp: string; seq: number }[] = [];
  for (const name of names) {
    const m = ROTATED_FILE.exec(name);
    if (m && (tag === undefined || (m[3] ?? null) === tag)) parsed.push({ name, stamp: m[1]!, seq: m[2] === undefined ? 0 : Number(m[2]) });
  }
  parsed.sort((a, b) => (a.stamp < b.stamp ? -1 : a.stamp > b.stamp ? 1 : a.seq - b.seq));
  return parsed.map((p) => p.name);
}

class TenantFile {
  handle: FileHandle | null = null;
  /** Bytes in the active file. */
  size = 0;
  openedAt = 0;
  readonly queue: EncodedQueue;
  /** The write loop (or a rotation) is running. */
  writing: Promise<void> | null = null;
  /** Acknowledgements of batches written but not yet fsync'd. */
  unsynced: AckToken[] = [];
  lastSync = 0;
  syncTimer: NodeJS.Timeout | null = null;
  /** This tenant's delivered counters, resolved at the first write. */
  delivered: { records: Counter.Internal; bytes: Counter.Internal } | null = null;

  constructor(readonly tenant: string, readonly dir: string, chunkSize: number, readonly share: TenantShare) {
    // A tenant that sends a record now and then must not cost a batch_size buffer per write.
    this.queue = new EncodedQueue(chunkSize, Math.min(chunkSize, FIRST_CHUNK_BYTES));
  }
}

export class FileSink implements Sink {
  readonly acknowledges = true;
  readonly name: string;
  private readonly files = new Map<string, TenantFile>();
  private readonly shares: FairShares;
  private readonly drainListeners: ((tenant: string | null) => void)[] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  private maintenanceTimer: NodeJS.Timeout | null = null;
  private stopping = false;
  private destroyed = false;
  private readonly written: Counter.Internal;
  private readonly writtenBytes: Counter.Internal;
  private readonly rotations: Counter.Internal;
  private readonly queuedGauge: Gauge.Internal<"sink">;

  private readonly activeFile: string;

  /** `fileTag`: this writer's tag in the file names (`w<n>` in worker n), null in a single process. */
  constructor(private readonly config: FileSinkConfig, private readonly telemetry: Telemetry, private readonly fileTag: string | null = null) {
    this.name = config.name;
    this.activeFile = activeFileName(fileTag);
    const labels = { sink: config.name };
    this.written = telemetry.sinkRecords.labels(labels);
    this.writtenBytes = telemetry.sinkBytes.labels(labels);
    this.rotations = telemetry.sinkRotations.labels(labels);
    this.queuedGauge = telemetry.sinkQueuedBytes.labels(labels);
    this.shares = new FairShares(config.queueHighWaterBytes, (tenant) => {
      for (const listener of this.drainListeners) listener(tenant);
    });
  }

  private deliveredCounters(tenant: string): { records: Counter.Internal; bytes: Counter.Internal } {
    const labels = { sink: this.name, tenant: this.telemetry.tenantLabel(tenant) };
    return { records: this.telemetry.tenantDeliveredRecords.labels(labels), bytes: this.telemetry.tenantDeliveredBytes.labels(labels) };
  }

  async start(): Promise<void> {
    await mkdir(this.config.path, { recursive: true });
    if (this.config.rotateIntervalMs > 0 && !this.maintenanceTimer) {
      this.maintenanceTimer = setInterval(this.rotateAged, MAINTENANCE_INTERVAL_MS);
      this.maintenanceTimer.unref();
    }
  }

  write(tenant: string, records: readonly LogRecord[], ack: AckToken | null): boolean {
    let file = this.files.get(tenant);
    if (file === undefined) {
      file = new TenantFile(tenant, path.join(this.config.path, tenant), this.config.batchBytes, this.shares.share(tenant));
      this.files.set(tenant, file);
    }
    const queue = file.queue;
    const before = queue.bytes;
    for (let i = 0; i < records.length; i++) appendRecord(queue, records[i]!);
    queue.mark(records.length, ack === null ? null : this.afterSync(file, ack));
    const clear = this.shares.add(file.share, queue.bytes - before);
    this.queuedGauge.set(this.shares.total);

    if (queue.bytes >= this.config.batchBytes) this.startWriting(file);
    else if (this.flushTimer === null) this.flushTimer = setTimeout(this.flushAll, timerDelay(this.config.batchDelayMs));
    return clear;
  }

  /**
   * The queue settles a batch once it is written; the caller's acknowledgement
   * must wait until it is also fsync'd. This stands in for it in the queue.
   */
  private afterSync(file: TenantFile, ack: AckToken): AckToken {
    const written = new AckToken((status) => {
      if (status !== AckStatus.Committed) ack.fail();
      else file.unsynced.push(ack);
    });
    written.retain();
    written.seal();
    return written;
  }

  /** fsync the active file and commit the acknowledgements it covers. */
  private async syncFile(file: TenantFile): Promise<void> {
    if (file.unsynced.length === 0) return;
    const acks = file.unsynced;
    file.unsynced = [];
    file.lastSync = Date.now();
    try {
      await file.handle!.datasync();
    } catch (err) {
      // Not known to be on disk: the senders must send again.
      for (const ack of acks) ack.fail();
      this.telemetry.emit('fileWriteFailed', { sink: this.name, tenant: file.tenant, error: `fsync: ${(err as Error).message}` });
      return;
    }
    for (const ack of acks) ack.commit();
  }

  queuedBytes(): number {
    return this.shares.total;
  }

  congested(tenant?: string): boolean {
    return tenant === undefined ? this.shares.anyPaused : this.shares.congested(tenant);
  }

  onDrain(listener: (tenant: string | null) => void): void {
    this.drainListeners.push(listener);
  }

  async stop(deadline: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.maintenanceTimer) clearInterval(this.maintenanceTimer);
    this.maintenanceTimer = null;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (!(await settlesBefore(this.idle(), deadline))) {
      this.destroy();
      throw new Error(`file sink ${this.name}: ${this.shares.total} bytes not written by the deadline`);
    }
    for (const file of this.files.values()) {
      if (file.syncTimer) clearTimeout(file.syncTimer);
      if (file.handle !== null) await this.syncFile(file);
      await file.handle?.close();
      file.handle = null;
    }
  }

  destroy(): void {
    this.destroyed = true;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.maintenanceTimer) clearInterval(this.maintenanceTimer);
    for (const file of this.files.values()) {
      file.queue.failAll();
      if (file.syncTimer) clearTimeout(file.syncTimer);
      for (const ack of file.unsynced) ack.fail();
      file.unsynced = [];
      void file.handle?.close().catch(() => undefined);
      file.handle = null;
    }
    this.shares.clear();
  }

  health(): ComponentHealth {
    return this.shares.anyPaused ? { healthy: true, detail: `congested: ${this.shares.total} bytes queued` } : { healthy: true };
  }

  /** Resolves once every tenant file has written all it holds. */
  private async idle(): Promise<void> {
    for (;;) {
      const busy = [...this.files.values()].filter((f) => f.writing !== null || !f.queue.empty);
      if (busy.length === 0 || this.destroyed) return;
      for (const file of busy) this.startWriting(file);
      await Promise.all(busy.map((f) => f.writing));
    }
  }

  private readonly flushAll = (): void => {
    this.flushTimer = null;
    for (const file of this.files.values()) if (!file.queue.empty) this.startWriting(file);
  };

  private startWriting(file: TenantFile): void {
    if (file.writing === null) file.writing = this.writeLoop(file).finally(() => { file.writing = null; });
  }

  /**
   * Write until the queue is empty, up to batch_size per write (whole
   * lines only, so a file passes rotate_size by at most one write). Errors
   * are retried with backoff; records are never dropped here.
   */
  private async writeLoop(file: TenantFile): Promise<void> {
    let attempt = 0;
    while (!file.queue.empty && !this.destroyed) {
      const chunks = file.queue.take(this.config.batchBytes);
      let bytes = 0;
      for (const chunk of chunks) bytes += chunk.length;
      try {
        await this.prepare(file, bytes);
        await writeFully(file.handle!, chunks, bytes);
        file.size += bytes;
        attempt = 0;
      } catch (err) {
        // The chunks stay queued; retry once the disk may be back (ENOSPC, EIO).
        await this.closeQuietly(file);
        this.telemetry.emit('fileWriteFailed', { sink: this.name, tenant: file.tenant, error: (err as Error).message });
        await new Promise((resolve) => setTimeout(resolve, backoffDelay(attempt++)));
        continue;
      }
      const records = file.queue.release(chunks.length);
      this.written.inc(records);
      this.writtenBytes.inc(bytes);
      file.delivered ??= this.deliveredCounters(file.tenant);
      file.delivered.records.inc(records);
      file.delivered.bytes.inc(bytes);
      this.shares.remove(file.share, bytes);
      this.queuedGauge.set(this.shares.total);
      if (file.unsynced.length > 0 && Date.now() - file.lastSync >= this.config.fsyncIntervalMs) await this.syncFile(file);
    }
    // Written but not yet synced: sync when the interval is up (group commit), from this same loop.
    if (file.unsynced.length > 0 && !this.destroyed && file.syncTimer === null) {
      const due = file.lastSync + this.config.fsyncIntervalMs - Date.now();
      if (due <= 0) await this.syncFile(file);
      else {
        file.syncTimer = setTimeout(() => {
          file.syncTimer = null;
          this.startWriting(file);
        }, due);
      }
    }
  }

  /** Open the active file, rotating first when this write would pass the size limit or the file is too old. */
  private async prepare(file: TenantFile, incoming: number): Promise<void> {
    if (file.handle !== null && file.size > 0) {
      const tooBig = file.size + incoming > this.config.rotateBytes;
      const tooOld = this.config.rotateIntervalMs > 0 && Date.now() - file.openedAt >= this.config.rotateIntervalMs;
      if (tooBig || tooOld) await this.rotate(file);
    }
    if (file.handle === null) {
      await mkdir(file.dir, { recursive: true });
      const activePath = path.join(file.dir, this.activeFile);
      file.handle = await open(activePath, 'a');
      const st = await file.handle.stat();
      file.size = st.size > 0 ? await this.dropTornTail(file, activePath, st.size) : 0;
      // A file left by an earlier run keeps its age, so rotation by time stays honest.
      file.openedAt = st.size > 0 ? Math.min(st.birthtimeMs || st.mtimeMs, Date.now()) : Date.now();
    }
  }

  /**
   * A file left by a crash may end in part of a line (a write cut short by a
   * power loss). Nothing in it was acknowledged (acks wait for the fsync of
   * whole writes), so it is cut off rather than glued to the next record.
   * Returns the size to continue from.
   */
  private async dropTornTail(file: TenantFile, activePath: string, size: number): Promise<number> {
    const reader = await open(activePath, 'r');
    try {
      const last = Buffer.alloc(1);
      await reader.read(last, 0, 1, size - 1);
      if (last[0] === 0x0a) return size;
      let end = size;
      const window = Buffer.alloc(64 * 1024);
      while (end > 0) {
        const from = Math.max(0, end - window.length);
        const { bytesRead } = await reader.read(window, 0, end - from, from);
        const newline = window.subarray(0, bytesRead).lastIndexOf(0x0a);
        if (newline >= 0) {
          end = from + newline + 1;
          break;
        }
        end = from;
      }
      await file.handle!.truncate(end);
      this.telemetry.emit('fileTornTail', { sink: this.name, tenant: file.tenant, file: activePath, dropped_bytes: size - end });
      return end;
    } finally {
      await reader.close();
    }
  }

  private async rotate(file: TenantFile): Promise<void> {
    if (file.handle !== null) await this.syncFile(file);
    await file.handle?.close();
    file.handle = null;
    const activePath = path.join(file.dir, this.activeFile);
    let seq = 0;
    let target = path.join(file.dir, rotatedName(file.openedAt, seq, this.fileTag));
    while (await exists(target)) target = path.join(file.dir, rotatedName(file.openedAt, ++seq, this.fileTag));
    await rename(activePath, target);
    this.rotations.inc();
    this.telemetry.emit('fileRotated', { sink: this.name, tenant: file.tenant, file: target, bytes: file.size });
    file.size = 0;
    if (this.config.maxFiles > 0) await this.prune(file);
  }

  private async prune(file: TenantFile): Promise<void> {
    const rotated = sortRotated(await readdir(file.dir), this.fileTag);
    for (const name of rotated.slice(0, Math.max(0, rotated.length - this.config.maxFiles))) {
      try {
        await unlink(path.join(file.dir, name));
      } catch (err) {
        this.telemetry.emit('fileRetentionFailed', { sink: this.name, file: name, error: (err as Error).message });
      }
    }
  }

  /** Rotate files that have aged past the interval even when no new records arrive. */
  private readonly rotateAged = (): void => {
    const now = Date.now();
    for (const file of this.files.values()) {
      if (file.writing === null && file.handle !== null && file.size > 0 && now - file.openedAt >= this.config.rotateIntervalMs) {
        file.writing = this.rotate(file)
          .catch((err: Error) => this.telemetry.emit('fileWriteFailed', { sink: this.name, tenant: file.tenant, error: err.message }))
          .finally(() => {
            file.writing = null;
            if (!file.queue.empty) this.startWriting(file);
          });
      }
    }
  };

  private async closeQuietly(file: TenantFile): Promise<void> {
    const handle = file.handle;
    file.handle = null;
    await handle?.close().catch(() => undefined);
  }
}

/** writev() until every byte is down (a regular file may take a short write, e.g. near ENOSPC). */
async function writeFully(handle: FileHandle, chunks: Buffer[], bytes: number): Promise<void> {
  let { bytesWritten } = await handle.writev(chunks);
  while (bytesWritten < bytes) {
    const rest = Buffer.concat(chunks).subarray(bytesWritten);
    bytesWritten += (await handle.write(rest)).bytesWritten;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
