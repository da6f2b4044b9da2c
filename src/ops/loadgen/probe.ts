/**
 * The probe: sees records arrive in the file sink, as a reader of the files
 * would, and times them against the send time they carry.
 *
 * It follows `<logs>/<tenant>/current.ndjson` (and each worker's `current-w<n>.ndjson`) of every tenant folder (the
 * expected ones from the first poll, others once found: the folder list is
 * read again every quarter second), reading only appended bytes every few
 * milliseconds. A file that
 * existed at start is followed from its end; one created later, from its
 * beginning. A partial last line waits for the rest of it. Rotation: once the
 * file at `current.ndjson` is no longer the one held open (the sink closes
 * a file before renaming it), the held file is read to its end and closed,
 * and the new `current.ndjson` is followed from its beginning, so no line is
 * lost or read twice.
 *
 * Reads are synchronous: they hit the page cache, take microseconds, and keep
 * each poll one uninterrupted pass that the timestamps of a read belong to.
 */
import { closeSync, fstatSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ACTIVE_FILE, ACTIVE_FILE_PATTERN, sortRotated } from '../../sinks/file/sink.js';
import { monotonicMicros } from './clock.js';
import { MarkerReader, NDJSON_MARKER } from './message.js';
import type { DeliveryListener } from './tracker.js';

export const POLL_INTERVAL_MS = 3;
const DISCOVERY_INTERVAL_MS = 250;
const READ_BUFFER_BYTES = 1 << 20;
/** Bytes one file may take per poll, so a busy tenant does not starve the others (or the IPC). */
const MAX_BYTES_PER_POLL = 16 << 20;
const NEWLINE = 0x0a;

class FollowedFile {
  readonly path: string;
  fd: number | null = null;
  dev = 0;
  ino = 0;
  offset = 0;
  /** The start of a line whose end has not been written yet (a copy: the read buffer is reused). */
  pending: Buffer | null = null;

  /** `folder`: the name of the tenant folder the file is in. */
  constructor(readonly folder: string, filePath: string) {
    this.path = filePath;
  }
}

export interface ProbeStats {
  /** Markers of this run found. */
  markers: number;
  bytesRead: number;
  /** Rotations followed. */
  rotations: number;
  /** Bytes left without a final newline in a rotated file (a sink never does this). */
  truncatedBytes: number;
}

export class LogProbe {
  readonly stats: ProbeStats = { markers: 0, bytesRead: 0, rotations: 0, truncatedBytes: 0 };
  private readonly files = new Map<string, FollowedFile>();
  private readonly reader: MarkerReader;
  private readonly buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  private timer: NodeJS.Timeout | null = null;
  private lastDiscovery = 0;
  private stopped = false;

  /**
   * @param expectedFolders tenant folders to watch for from the first poll,
   *   not only once discovered (a new tenant's first records would wait for it)
   */
  constructor(
    private readonly logsDir: string,
    runId: string,
    private readonly listener: DeliveryListener,
    private readonly expectedFolders: readonly string[] = [],
    private readonly clock: () => number = monotonicMicros,
  ) {
    this.reader = new MarkerReader(runId);
  }

  /**
   * Takes note of the files as they are now (to be followed from their end)
   * and polls every `pollIntervalMs`; with null, the caller calls poll().
   */
  start(pollIntervalMs: number | null = POLL_INTERVAL_MS): void {
    this.discover(true);
    if (pollIntervalMs !== null) this.timer ??= setInterval(() => this.poll(), pollIntervalMs);
  }

  /** One pass over every followed file; called by the timer, or directly. */
  poll(): void {
    if (Date.now() - this.lastDiscovery >= DISCOVERY_INTERVAL_MS) this.discover(false);
    for (const file of this.files.values()) this.follow(file);
  }

  /** A last pass, then every file closed; idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.poll();
    for (const file of this.files.values()) {
      if (file.fd !== null) closeSync(file.fd);
      file.fd = null;
    }
    this.files.clear();
  }

  private discover(atStart: boolean): void {
    this.lastDiscovery = Date.now();
    let folders: string[];
    try {
      folders = readdirSync(this.logsDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch {
      folders = []; // No logs folder yet: the node has written nothing.
    }
    const found: [string, string][] = [];
    for (const folder of folders) {
      let names: string[];
      try {
        names = readdirSync(path.join(this.logsDir, folder)).filter((name) => ACTIVE_FILE_PATTERN.test(name));
      } catch {
        names = [];
      }
      for (const name of names) found.push([folder, name]);
    }
    // The single-process file of an expected folder is followed before it exists; workers' files once found.
    if (atStart) for (const folder of this.expectedFolders) found.push([folder, ACTIVE_FILE]);
    for (const [folder, name] of found) {
      const filePath = path.join(this.logsDir, folder, name);
      if (this.files.has(filePath)) continue;
      const file = new FollowedFile(folder, filePath);
      this.files.set(filePath, file);
      // What is there before the run is not ours: follow an existing file from its end.
      if (atStart && this.openFile(file)) file.offset = fstatSync(file.fd!).size;
    }
  }

  private openFile(file: FollowedFile): boolean {
    try {
      file.fd = openSync(file.path, 'r');
    } catch {
      return false; // Not created yet (or between a rotation and the next write).
    }
    const st = fstatSync(file.fd);
    file.dev = st.dev;
    file.ino = st.ino;
    file.offset = 0;
    file.pending = null;
    return true;
  }

  private follow(file: FollowedFile): void {
    // Twice at most: the rotated file's end, then the new file.
    for (let pass = 0; pass < 2; pass++) {
      if (file.fd === null && !this.openFile(file)) return;
      if (!this.readAvailable(file, MAX_BYTES_PER_POLL)) return;
      const current = statSync(file.path, { throwIfNoEntry: false });
      if (current !== undefined && current.ino === file.ino && current.dev === file.dev) return;
      // Rotated away; the sink closed it before the rename, so its end is final.
      this.finish(file);
      this.stats.rotations++;
      this.readRotatedAfter(file);
      if (current === undefined) return;
    }
  }

  /** Reads a file that will not grow any more to its end, and closes it. */
  private finish(file: FollowedFile): void {
    this.readAvailable(file, Infinity);
    if (file.pending !== null) this.stats.truncatedBytes += file.pending.length;
    closeSync(file.fd!);
    file.fd = null;
    file.pending = null;
  }

  /**
   * Files rotated after the one just finished, oldest first: there are none
   * unless the probe fell a whole file behind, but then they are read too.
   */
  private readRotatedAfter(finished: FollowedFile): void {
    const folder = path.dirname(finished.path);
    let names: string[];
    try {
      names = sortRotated(readdirSync(folder), ACTIVE_FILE_PATTERN.exec(path.basename(finished.path))?.[1] ?? null);
    } catch {
      return;
    }
    const inodes = names.map((name) => statSync(path.join(folder, name), { throwIfNoEntry: false }));
    const index = inodes.findIndex((st) => st !== undefined && st.ino === finished.ino && st.dev === finished.dev);
    if (index < 0) return;
    for (let i = index + 1; i < names.length; i++) {
      const rotated = new FollowedFile(finished.folder, path.join(folder, names[i]!));
      if (!this.openFile(rotated)) continue;
      this.finish(rotated);
    }
  }

  /** Reads what was appended, up to `budget` bytes; true when the end of the file was reached. */
  private readAvailable(file: FollowedFile, budget: number): boolean {
    let taken = 0;
    for (;;) {
      const n = readSync(file.fd!, this.buffer, 0, this.buffer.length, file.offset);
      if (n === 0) return true;
      file.offset += n;
      taken += n;
      this.stats.bytesRead += n;
      this.consume(file, n);
      if (n < this.buffer.length) return true;
      if (taken >= budget) return false;
    }
  }

  private consume(file: FollowedFile, length: number): void {
    let data = this.buffer.subarray(0, length);
    if (file.pending !== null) {
      data = Buffer.concat([file.pending, data]);
      file.pending = null;
    }
    const end = data.lastIndexOf(NEWLINE) + 1;
    if (end > 0) this.scan(file.folder, data, end);
    if (end < data.length) file.pending = Buffer.from(data.subarray(end));
  }

  /** Finds this run's markers in the complete lines `data[0, end)`. */
  private scan(folder: string, data: Buffer, end: number): void {
    const visibleMicros = this.clock();
    const reader = this.reader;
    let position = 0;
    for (;;) {
      const at = data.indexOf(NDJSON_MARKER, position);
      if (at < 0 || at >= end) return;
      const fields = at + NDJSON_MARKER.length;
      if (reader.read(data, fields, end)) {
        this.stats.markers++;
        this.listener.record(reader.agent, reader.seq, reader.sendMicros, visibleMicros, folder);
      }
      const lineEnd = data.indexOf(NEWLINE, fields);
      if (lineEnd < 0 || lineEnd >= end) return;
      position = lineEnd + 1;
    }
  }
}
