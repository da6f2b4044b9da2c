/**
 * A process that holds directory locks for lock.test.ts and
 * buffered-sink.test.ts. Forked with `--lock-child <mode> <args…>`:
 *
 * - `race <dir> <attempts>`: says `ready`, waits for `go`, tries to take the
 *   lock of `dir` and says `held` or `busy`; a holder keeps it until killed.
 * - `buffers <tenant> <entries> <dir>…`: opens a disk buffer in each dir,
 *   appends `entries` records of `tenant` (encoded as the buffered sink does)
 *   and says `held`, keeping them open until killed.
 * - `writer <path> <tag>`: registers as writer `tag` of a file sink folder
 *   (file/writers.ts) and says `held`, until killed.
 *
 * Loaded any other way (a test runner scanning the folder) it does nothing.
 */
import pino from 'pino';
import { DirectoryLock } from '../../../src/sinks/buffer/lock.js';
import { DiskBuffer } from '../../../src/sinks/buffer/disk-buffer.js';
import { DEFAULT_DISK_BUFFER_CONFIG } from '../../../src/sinks/buffer/config.js';
import { encodeRecord } from '../../../src/core/ndjson.js';
import { LogRecord } from '../../../src/core/record.js';
import { Telemetry } from '../../../src/telemetry/telemetry.js';
import { registerWriter } from '../../../src/sinks/file/writers.js';

export const LOCK_CHILD_FLAG = '--lock-child';

export type LockChildReport = { kind: 'ready' } | { kind: 'held' } | { kind: 'busy'; error: string };

/** `count` records of `tenant`, msg `<label> <n>`, as one buffer entry's payload. */
export function entryPayload(tenant: string, label: string, from: number, count: number): Buffer {
  let text = '';
  for (let n = from; n < from + count; n++) {
    const rec = new LogRecord();
    rec.tenant = tenant;
    rec.ts = rec.received = '2026-11-27T14:20:00.123Z';
    rec.msg = `${label} ${n}`;
    text += encodeRecord(rec);
  }
  return Buffer.from(text);
}

async function main(mode: string, args: string[]): Promise<void> {
  const send = (report: LockChildReport): void => { process.send!(report); };
  if (mode === 'race') {
    const [dir, attempts] = args as [string, string];
    send({ kind: 'ready' });
    await new Promise<void>((resolve) => process.once('message', () => resolve()));
    try {
      await DirectoryLock.acquire(dir, Number(attempts));
      send({ kind: 'held' });
    } catch (err) {
      send({ kind: 'busy', error: (err as Error).message });
    }
  } else if (mode === 'buffers') {
    const [tenant, entries, ...dirs] = args as [string, string, ...string[]];
    const telemetry = new Telemetry(pino({ level: 'silent' }));
    for (const dir of dirs) {
      const buffer = await DiskBuffer.open(dir, DEFAULT_DISK_BUFFER_CONFIG, telemetry);
      for (let i = 0; i < Number(entries); i++) await buffer.append(tenant, entryPayload(tenant, dir, i, 1), 1);
    }
    send({ kind: 'held' });
  } else if (mode === 'writer') {
    const [root, tag] = args as [string, string];
    await registerWriter(root, tag);
    send({ kind: 'held' });
  }
  // Hold until killed (an IPC channel without a message listener does not keep a process alive).
  setInterval(() => undefined, 60_000);
}

if (process.argv[2] === LOCK_CHILD_FLAG && process.send !== undefined) {
  main(process.argv[3]!, process.argv.slice(4)).catch((err: Error) => {
    process.stderr.write(`lock child failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  });
}
