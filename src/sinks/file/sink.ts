/**
 * The file sink: NDJSON per tenant under `<path>/<tenant>/`, on the one
 * sender chain (delivery/chain.ts: per-tenant queues, fair shares, batching,
 * retry, deadline drain, counters) with a transport of its own,
 * FileTransport: append, fsync, rotation and retention.
 *
 * The active file is `current.ndjson` (`current-w<n>.ndjson` in worker n); rotation (by size, by age) renames it
 * to the UTC time it was opened, e.g. `20261127T142000.123Z.ndjson`, so names
 * sort by age. Records are encoded as they arrive and written in batches:
 * each tenant has a lane of its own in the chain, so one write (of up to
 * batch_size, one writev()) is in flight per tenant file, and the disk
 * (libuv's thread pool, first come first served) serves backlogged tenants
 * in turn, a batch each. A batch counts as delivered once written; its acks
 * are committed once it is also fsync'd (grouped: at most one fsync per file
 * per fsync_interval). A tenant whose file fails (a full disk, a folder it
 * cannot write) waits out a backoff of its own, records kept, while the
 * other tenants go on: the file sink never drops what it took.
 *
 * Writers: each worker of a node writes its own files (`-w<n>`); files of a
 * writer that no longer runs are adopted by one that does (writers.ts,
 * adoptOrphanedFiles below), so none stays active forever and retention
 * covers them.
 */
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Counter } from 'prom-client';
import type { Sink } from '../../core/component.js';
import { AckStatus, AckToken } from '../../core/ack.js';
import type { LogRecord } from '../../core/record.js';
import { DEFAULT_BACKOFF } from '../../core/backoff.js';
import type { FileSinkConfig } from './config.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { appendRecord, type LineAppender } from '../../core/ndjson.js';
import { DeliverySink } from '../delivery/chain.js';
import { SinkStats } from '../delivery/stats.js';
import type { DeliveryBatch, DeliveryEncoder, DeliveryTransport } from '../delivery/transport.js';
import { adoptOrphanedWriters, registerWriter, type WriterRegistration } from './writers.js';

export const ACTIVE_FILE = 'current.ndjson';
/** Active files of every writer: `current.ndjson` (a single process) and `current-w<n>.ndjson` (worker n). */
export const ACTIVE_FILE_PATTERN = /^current(?:-(w\d+))?\.ndjson$/;
const ROTATED_FILE = /^(\d{8}T\d{6}\.\d{3}Z)(?:-(\d{1,6}))?(?:-(w\d+))?\.ndjson$/;
const MAINTENANCE_INTERVAL_MS = 1000;
/** How often a writer looks for writers that no longer run, whose files it adopts. */
export const ADOPT_INTERVAL_MS = 2000;

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
  return stampedName(stampOf(openedAtMs), seq, tag);
}

function stampOf(ms: number): string {
  const iso = new Date(ms).toISOString();
  return iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 13) + iso.slice(14, 16) + iso.slice(17);
}

function stampedName(stamp: string, seq: number, tag: string | null): string {
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

/** One tenant's file of this writer. */
class TenantFile {
  handle: FileHandle | null = null;
  /** Bytes in the active file. */
  size = 0;
  openedAt = 0;
  /** The chunks of the send in progress, and their bytes. */
  chunks: Buffer[] = [];
  bytes = 0;
  /** The operation on this file that is running (a write, an fsync, a rotation): the next waits for it. */
  busy: Promise<void> | null = null;
  /** Acknowledgements of batches written but not yet fsync'd. */
  unsynced: AckToken[] = [];
  lastSync = 0;
  syncTimer: NodeJS.Timeout | null = null;

  constructor(readonly tenant: string, readonly dir: string, readonly syncDue: () => void) {}
}

/** A record as its NDJSON line (ASCII lines copied without UTF-8 encoding). */
const FILE_ENCODER: DeliveryEncoder<LogRecord> = {
  encode(_tenant: string, records: readonly LogRecord[], queue: LineAppender): void {
    for (let i = 0; i < records.length; i++) appendRecord(queue, records[i]!);
  },
};

/**
 * Writes the chain's batches to the tenants' files, fsyncs them for the
 * acknowledgements, rotates and prunes. Operations on one file never
 * overlap (TenantFile.busy); files of different tenants are written side by
 * side (each tenant's lane has its own send in flight).
 */
export class FileTransport implements DeliveryTransport {
  readonly name: string;
  private readonly telemetry: Telemetry;
  private readonly files = new Map<string, TenantFile>();
  private readonly rotations: Counter.Internal;
  private readonly activeFile: string;
  private maintenanceTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** This writer's registration (writers.ts), held while it runs. */
  private registration: WriterRegistration | null = null;
  private adoptTimer: NodeJS.Timeout | null = null;
  private adopting: Promise<void> | null = null;

  /** `fileTag`: this writer's tag in the file names (`w<n>` in worker n), null in a single process. */
  constructor(private readonly config: FileSinkConfig, stats: SinkStats, private readonly fileTag: string | null = null) {
    this.name = config.name;
    this.telemetry = stats.telemetry;
    this.activeFile = activeFileName(fileTag);
    this.rotations = stats.telemetry.sinkRotations.labels({ sink: config.name });
  }

  async open(): Promise<void> {
    await mkdir(this.config.path, { recursive: true });
    this.registration ??= await registerWriter(this.config.path, this.fileTag);
    if (this.config.rotateIntervalMs > 0 && !this.maintenanceTimer) {
      this.maintenanceTimer = setInterval(this.rotateAged, MAINTENANCE_INTERVAL_MS);
      this.maintenanceTimer.unref();
    }
    this.scheduleAdoption();
  }

  /** Look for writers that no longer run every ADOPT_INTERVAL_MS (first after one: writers starting now register first). */
  private scheduleAdoption(): void {
    if (this.closed || this.adoptTimer !== null) return;
    this.adoptTimer = setTimeout(() => {
      this.adopting = adoptOrphanedWriters(this.config.path, this.fileTag, this.adoptOrphanedFiles).then(
        (tags) => { for (const tag of tags) this.telemetry.emit('fileWriterAdopted', { sink: this.name, writer: tag ?? 'main' }); },
        (err: Error) => this.telemetry.emit('fileAdoptFailed', { sink: this.name, error: err.message }),
      ).finally(() => {
        this.adopting = null;
        this.adoptTimer = null;
        this.scheduleAdoption();
      });
    }, ADOPT_INTERVAL_MS);
    this.adoptTimer.unref();
  }

  /**
   * Take over, in one tenant folder, the files of writer `tag` that no longer
   * runs: its active file is rotated (removed when empty), and its rotated
   * files are renamed as this writer's (stamp kept), so this writer's
   * rotation and max_files cover them from now on.
   */
  private readonly adoptOrphanedFiles = async (dir: string, tag: string | null): Promise<void> => {
    const names = await readdir(dir);
    const active = activeFileName(tag);
    if (names.includes(active)) {
      const activePath = path.join(dir, active);
      const st = await stat(activePath);
      if (st.size === 0) await unlink(activePath);
      else await this.renameFree(activePath, dir, stampOf(Math.min(st.birthtimeMs || st.mtimeMs, Date.now())));
    }
    for (const name of sortRotated(names, tag)) await this.renameFree(path.join(dir, name), dir, ROTATED_FILE.exec(name)![1]!);
    // A folder of a tenant another file sink on this path takes is pruned by that one, at its next rotation there.
    if (this.config.maxFiles > 0 && this.takesTenant(path.basename(dir))) await this.prune(dir);
  };

  private takesTenant(tenant: string): boolean {
    return this.config.tenants.includes('*') || this.config.tenants.includes(tenant);
  }

  /** Rename `from` to this writer's rotated file of `stamp`, the first sequence number free. */
  private async renameFree(from: string, dir: string, stamp: string): Promise<void> {
    let seq = 0;
    while (await exists(path.join(dir, stampedName(stamp, seq, this.fileTag)))) seq++;
    await rename(from, path.join(dir, stampedName(stamp, seq, this.fileTag)));
  }

  /** One tenant's batch (the chain gives the file sink a lane per tenant): one write to its file. */
  async send(batch: DeliveryBatch): Promise<void> {
    const file = this.file(batch.tenant!);
    file.chunks = batch.chunks;
    file.bytes = batch.bytes;
    await this.exclusive(file, this.writeOut);
  }

  /**
   * The chain settles a batch once it is written; the caller's acknowledgement
   * must wait until it is also fsync'd. This stands in for it in the queue.
   */
  holdAck(tenant: string, ack: AckToken): AckToken {
    const file = this.file(tenant);
    const written = new AckToken((status) => {
      if (status !== AckStatus.Committed) {
        ack.fail();
        return;
      }
      file.unsynced.push(ack);
      this.scheduleSync(file);
    });
    written.retain();
    written.seal();
    return written;
  }

  /** After the last send: fsync what is written and close every file. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.maintenanceTimer) clearInterval(this.maintenanceTimer);
    this.maintenanceTimer = null;
    if (this.adoptTimer) clearTimeout(this.adoptTimer);
    await this.adopting;
    for (const file of this.files.values()) {
      if (file.syncTimer) clearTimeout(file.syncTimer);
      file.syncTimer = null;
      await this.exclusive(file, this.syncAndClose);
    }
    // Files closed: from now on a running writer may adopt them.
    await this.registration?.release();
    this.registration = null;
  }

  destroy(): void {
    this.closed = true;
    if (this.maintenanceTimer) clearInterval(this.maintenanceTimer);
    this.maintenanceTimer = null;
    if (this.adoptTimer) clearTimeout(this.adoptTimer);
    void this.registration?.release();
    this.registration = null;
    for (const file of this.files.values()) {
      if (file.syncTimer) clearTimeout(file.syncTimer);
      file.syncTimer = null;
      for (const ack of file.unsynced) ack.fail();
      file.unsynced = [];
      void file.handle?.close().catch(() => undefined);
      file.handle = null;
    }
  }

  describe(): string | null {
    return null;
  }

  private file(tenant: string): TenantFile {
    let file = this.files.get(tenant);
    if (file === undefined) {
      const created: TenantFile = new TenantFile(tenant, path.join(this.config.path, tenant), () => {
        created.syncTimer = null;
        void this.exclusive(created, this.sync);
      });
      this.files.set(tenant, created);
      file = created;
    }
    return file;
  }

  /** Run `op` on `file` once no other operation on it (a write, an fsync, a rotation) runs. */
  private async exclusive(file: TenantFile, op: (file: TenantFile) => Promise<void>): Promise<void> {
    while (file.busy !== null) await file.busy;
    const running = op(file);
    const settled = running.then(ignore, ignore);
    file.busy = settled;
    try {
      await running;
    } finally {
      if (file.busy === settled) file.busy = null;
    }
  }

  /**
   * Write the chunks of a send (whole lines only, so a file passes
   * rotate_size by at most one write), rotating first when due. A failure
   * (a full disk, a folder it cannot write) is thrown: the chain retries this
   * tenant's lane after a backoff, records kept, while the others go on.
   */
  private readonly writeOut = async (file: TenantFile): Promise<void> => {
    try {
      await this.prepare(file, file.bytes);
      await writeFully(file.handle!, file.chunks, file.bytes);
      file.size += file.bytes;
    } catch (err) {
      await this.closeAfterError(file);
      throw err;
    } finally {
      file.chunks = NO_CHUNKS;
    }
  };

  /** Group commit: one fsync per file per fsync_interval at most, once written acks wait for one. */
  private scheduleSync(file: TenantFile): void {
    if (file.syncTimer !== null || this.closed) return;
    const due = Math.max(0, file.lastSync + this.config.fsyncIntervalMs - Date.now());
    file.syncTimer = setTimeout(file.syncDue, due);
  }

  private readonly sync = (file: TenantFile): Promise<void> => this.syncFile(file);

  private readonly syncAndClose = async (file: TenantFile): Promise<void> => {
    await this.syncFile(file);
    const handle = file.handle;
    file.handle = null;
    await handle?.close().catch(() => undefined);
  };

  /** fsync the active file and commit the acknowledgements it covers. */
  private async syncFile(file: TenantFile): Promise<void> {
    if (file.unsynced.length === 0) return;
    const acks = file.unsynced;
    file.unsynced = [];
    file.lastSync = Date.now();
    try {
      // Written acks always have the handle they were written to (a rotation or a failure syncs before closing).
      await file.handle!.datasync();
    } catch (err) {
      // Not known to be on disk: the senders must send again.
      for (const ack of acks) ack.fail();
      this.telemetry.emit('fileWriteFailed', { sink: this.name, tenant: file.tenant, error: `fsync: ${(err as Error).message}` });
      return;
    }
    for (const ack of acks) ack.commit();
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
    if (this.config.maxFiles > 0) await this.prune(file.dir);
  }

  /** Remove this writer's oldest rotated files in `dir` past max_files. */
  private async prune(dir: string): Promise<void> {
    const rotated = sortRotated(await readdir(dir), this.fileTag);
    for (const name of rotated.slice(0, Math.max(0, rotated.length - this.config.maxFiles))) {
      try {
        await unlink(path.join(dir, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // pruned meanwhile (an adoption's prune and a rotation's)
        this.telemetry.emit('fileRetentionFailed', { sink: this.name, file: name, error: (err as Error).message });
      }
    }
  }

  /** Rotate files that have aged past the interval even when no new records arrive. */
  private readonly rotateAged = (): void => {
    const now = Date.now();
    for (const file of this.files.values()) {
      if (file.busy === null && file.handle !== null && file.size > 0 && now - file.openedAt >= this.config.rotateIntervalMs) {
        void this.exclusive(file, this.rotateQuietly);
      }
    }
  };

  private readonly rotateQuietly = async (file: TenantFile): Promise<void> => {
    try {
      await this.rotate(file);
    } catch (err) {
      this.telemetry.emit('fileWriteFailed', { sink: this.name, tenant: file.tenant, error: (err as Error).message });
    }
  };

  /** After a failed write: fsync what was written before it (its acks fail if that fails too), then close. */
  private async closeAfterError(file: TenantFile): Promise<void> {
    if (file.handle !== null) await this.syncFile(file);
    const handle = file.handle;
    file.handle = null;
    await handle?.close().catch(() => undefined);
  }
}

const NO_CHUNKS: Buffer[] = [];

function ignore(): void {}

/** The file sink: the sender chain with a FileTransport, a lane per tenant. */
export class FileSink extends DeliverySink<LogRecord> implements Sink {
  /** `fileTag`: this writer's tag in the file names (`w<n>` in worker n), null in a single process. */
  constructor(config: FileSinkConfig, telemetry: Telemetry, fileTag: string | null = null) {
    const stats = new SinkStats(config.name, telemetry, 'fileWriteFailed');
    super(config.name, {
      batchBytes: config.batchBytes,
      batchDelayMs: config.batchDelayMs,
      queueHighWaterBytes: config.queueHighWaterBytes,
      // Never refused: past the high-water mark the sources are slowed, and at four times it all of them (core/fair.ts).
      queueMaxBytes: Infinity,
      retryInitialMs: DEFAULT_BACKOFF.initialMs,
      retryMaxMs: DEFAULT_BACKOFF.maxMs,
    }, FILE_ENCODER, new FileTransport(config, stats, fileTag), stats, true, { lanePerTenant: true });
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
