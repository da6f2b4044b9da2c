/**
 * A sink behind a disk buffer: what sources hand over is appended to the
 * buffer and acknowledged once the buffer has fsync'd it; a pump (replay.ts)
 * reads the buffer and feeds the sink, and an entry leaves the buffer only
 * once the sink has committed it. A sink that is down for a while (or a node
 * that is killed meanwhile) then loses nothing that was acknowledged, and the
 * other sinks of the route never wait for it.
 *
 * Entries hold the records as NDJSON lines (encodeRecord), decoded again for
 * the sink: one encoding for every kind of sink, at the cost of encoding
 * twice on this path.
 *
 * Fairness: appends waiting for their fsync are counted per tenant, and past
 * the high-water mark only tenants over their share are slowed. On disk each
 * tenant has its own chain, replayed by deficit round-robin: a tenant's
 * backlog delays another tenant's replay by at most one turn per round.
 *
 * Adoption: each worker of a node buffers in a folder of its slot
 * (`<sink>.w<n>`), and slots move (a rolling restart starts each replacement
 * in a free slot; a full restart starts slots 1..N; `workers` may change), so
 * a folder can be left with entries that no running worker owns. Every
 * ADOPT_SCAN_MS each buffered sink looks for its sink's other folders, opens
 * those no live process holds (the folder lock decides: one process at a
 * time), replays them into the same sink beside its own buffer, and deletes
 * each once it is delivered. A worker whose slot folder another worker is
 * replaying buffers in `<folder>.2` (`.3`, …) instead.
 *
 *   buffers/fwd.w1   ◄── worker 1's own buffer: appended, replayed
 *   buffers/fwd.w3   ◄── left by a worker that no longer runs: adopted by worker 1 (or 2), replayed, deleted
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { ComponentHealth, Sink } from '../../core/component.js';
import type { AckToken } from '../../core/ack.js';
import type { LogRecord } from '../../core/record.js';
import { settlesBefore } from '../../core/clock.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { encodeRecord } from '../../core/ndjson.js';
import { DiskBuffer } from './disk-buffer.js';
import { DirectoryBusyError, removeLeftoverRemovals } from './lock.js';
import { BufferReplay } from './replay.js';
import { FairShares } from '../../core/fair.js';
import type { DiskBufferConfig } from './config.js';

/** Bytes of appends not yet durable above which sources are asked to slow down. */
const APPEND_HIGH_WATER = 8 * 1024 * 1024;
/** How often a buffered sink looks for its sink's folders that no live process holds. */
export const ADOPT_SCAN_MS = 2000;
/** `<folder>`, `<folder>.2`, … : the folders tried for this process's own buffer. */
const OWN_FOLDER_CHOICES = 8;

/**
 * Whether buffer folder `folder` is one sink `sink` makes: `<sink>` (a single
 * process), `<sink>.w<n>` (worker n), either with `.<k>` (openOwn). Sink names
 * have no dot, so no other sink's folder matches; nothing else is ever adopted
 * (and so deleted).
 */
export function isFolderOf(sink: string, folder: string): boolean {
  if (!folder.startsWith(sink)) return false;
  return folder.length === sink.length || /^(?:\.w\d{1,6})?(?:\.\d{1,3})?$/.test(folder.slice(sink.length));
}

export class BufferedSink implements Sink {
  readonly acknowledges = true;
  readonly name: string;
  private own: BufferReplay | null = null;
  /** Buffers of this sink's folders that no live process held, replayed here until delivered; by directory. */
  private readonly adopted = new Map<string, BufferReplay>();
  /** Adopted buffers being closed and deleted. */
  private readonly removals = new Set<Promise<void>>();
  private readonly appending: FairShares;
  private readonly drainListeners: ((tenant: string | null) => void)[] = [];
  private readonly appends = new Set<Promise<void>>();
  private scanTimer: NodeJS.Timeout | null = null;
  private scanning: Promise<void> | null = null;
  private isStopping = false;

  constructor(
    readonly inner: Sink,
    private readonly dir: string,
    private readonly config: DiskBufferConfig,
    readonly telemetry: Telemetry,
  ) {
    this.name = inner.name;
    this.appending = new FairShares(APPEND_HIGH_WATER, (tenant) => {
      for (const listener of this.drainListeners) listener(tenant);
    });
    inner.onDrain((tenant) => {
      this.own?.drained(tenant);
      for (const replay of this.adopted.values()) replay.drained(tenant);
    });
  }

  /** Stopping: an entry the sink fails now replays on the next start (BufferReplay). */
  get stopping(): boolean {
    return this.isStopping;
  }

  /** The directory this sink appends to (its slot's folder, or `<folder>.<k>` when that one was taken). */
  get directory(): string | null {
    return this.own?.buffer.dir ?? null;
  }

  async start(): Promise<void> {
    await this.inner.start();
    this.own = new BufferReplay(await this.openOwn(), this);
    this.scheduleScan();
  }

  /**
   * This process's own buffer: in its folder, or, while another live process
   * replays that folder (it adopted it when no worker ran in this slot), in
   * the first of `<folder>.2`, `<folder>.3`, … that no live process holds.
   */
  private async openOwn(): Promise<DiskBuffer> {
    for (let choice = 1; ; choice++) {
      const dir = choice === 1 ? this.dir : `${this.dir}.${choice}`;
      try {
        return await DiskBuffer.open(dir, this.config, this.telemetry, this.name);
      } catch (err) {
        if (!(err instanceof DirectoryBusyError) || choice >= OWN_FOLDER_CHOICES) throw err;
      }
    }
  }

  write(tenant: string, records: readonly LogRecord[], ack: AckToken | null): boolean {
    const buffer = this.own?.buffer;
    if (buffer === undefined || this.isStopping) {
      ack?.fail();
      return false;
    }
    let text = '';
    for (let i = 0; i < records.length; i++) text += encodeRecord(records[i]!);
    const payload = Buffer.from(text, 'utf8');
    const share = this.appending.share(tenant);
    const clear = this.appending.add(share, payload.length);
    const append = buffer.append(tenant, payload, records.length).then(
      (result) => {
        if (result.written) ack?.commit();
        else ack?.drop(); // counted by the buffer, by reason
      },
      () => ack?.fail(),
    ).finally(() => {
      this.appends.delete(append);
      this.appending.remove(share, payload.length);
    });
    this.appends.add(append);
    return clear;
  }

  queuedBytes(): number {
    return this.appending.total + this.inner.queuedBytes();
  }

  congested(tenant?: string): boolean {
    return tenant === undefined ? this.appending.anyPaused : this.appending.congested(tenant);
  }

  onDrain(listener: (tenant: string | null) => void): void {
    this.drainListeners.push(listener);
  }

  /**
   * Appends finish; the pumps stop reading; what the sink holds is flushed;
   * the rest stays on disk, in the own folder for the next start in this
   * slot and in adopted folders for whichever process adopts them next.
   */
  async stop(deadline: number): Promise<void> {
    if (this.isStopping) return;
    this.isStopping = true;
    if (this.scanTimer !== null) clearTimeout(this.scanTimer);
    await this.scanning;
    await Promise.all([...this.appends]);
    const replays = this.replays();
    for (const replay of replays) replay.stop();
    await settlesBefore(Promise.all(replays.map((r) => r.pump)), deadline);
    try {
      await this.inner.stop(deadline);
    } finally {
      for (const replay of replays) replay.acknowledgeSettled();
      await Promise.all([...this.removals]);
      await Promise.all(replays.map((r) => r.buffer.close()));
    }
  }

  destroy(): void {
    this.isStopping = true;
    if (this.scanTimer !== null) clearTimeout(this.scanTimer);
    const replays = this.replays();
    for (const replay of replays) replay.stop();
    this.inner.destroy();
    for (const replay of replays) void replay.buffer.close().catch(() => undefined);
  }

  health(): ComponentHealth {
    return this.inner.health();
  }

  private replays(): BufferReplay[] {
    return this.own === null ? [...this.adopted.values()] : [this.own, ...this.adopted.values()];
  }

  private scheduleScan(): void {
    if (this.isStopping) return;
    this.scanTimer = setTimeout(() => {
      this.scanTimer = null;
      this.scanning = this.adoptOrphans().catch((err: Error) => {
        this.telemetry.emit('bufferAdoptFailed', { buffer: this.name, dir: path.dirname(this.dir), error: err.message });
      }).finally(() => {
        this.scanning = null;
        this.scheduleScan();
      });
    }, ADOPT_SCAN_MS);
    // The node's lifetime is not this timer's business.
    this.scanTimer.unref();
  }

  /**
   * Open every folder of this sink that no live process holds (the lock
   * decides, at the first sign of another process: it is that one's) and
   * replay it beside the own buffer; one already empty is deleted at once.
   * Also clears folders whose removal a process that is gone left half done.
   */
  private async adoptOrphans(): Promise<void> {
    const parent = path.dirname(this.dir);
    let names: string[];
    try {
      names = await readdir(parent);
    } catch (err) {
      this.telemetry.emit('bufferAdoptFailed', { buffer: this.name, dir: parent, error: (err as Error).message });
      return;
    }
    await removeLeftoverRemovals(parent, names, (name) => isFolderOf(this.name, name));
    for (const name of names) {
      if (this.isStopping) return;
      const dir = path.join(parent, name);
      if (!isFolderOf(this.name, name) || dir === this.own?.buffer.dir || this.adopted.has(dir)) continue;
      let buffer: DiskBuffer;
      try {
        buffer = await DiskBuffer.open(dir, this.config, this.telemetry, name, { create: false, lockAttempts: 1 });
      } catch (err) {
        // Held by a live process, or removed meanwhile by the process that delivered it: not ours.
        if (err instanceof DirectoryBusyError || (err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
        this.telemetry.emit('bufferAdoptFailed', { buffer: this.name, dir, error: (err as Error).message });
        continue;
      }
      this.telemetry.emit('bufferAdopted', { buffer: this.name, dir, entries: buffer.entriesHeld });
      if (buffer.entriesHeld === 0) {
        this.removeAdopted(buffer);
        continue;
      }
      this.adopted.set(dir, new BufferReplay(buffer, this, () => {
        this.adopted.delete(dir);
        this.removeAdopted(buffer);
      }));
    }
  }

  /** Delete an adopted buffer that is delivered (close it, keeping it, when something came back meanwhile). */
  private removeAdopted(buffer: DiskBuffer): void {
    const removal = buffer.removeIfEmpty().then(
      (removed) => { if (removed) this.telemetry.emit('bufferAdoptedDelivered', { buffer: this.name, dir: buffer.dir }); },
      (err: Error) => this.telemetry.emit('bufferAdoptFailed', { buffer: this.name, dir: buffer.dir, error: err.message }),
    ).finally(() => this.removals.delete(removal));
    this.removals.add(removal);
  }
}
