/**
 * One owner per buffer directory. Two writers appending to the same segments
 * would interleave entries and corrupt them, so open() takes a lock file
 * holding the owner's pid. A lock whose process is gone (kill -9) is stale and
 * taken over; so is one naming this very process (a restarted container is
 * often pid 1 again) that this process has not opened.
 */
import { readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const LOCK_FILE = 'lock';

/** Directories opened by this process (resolved paths). */
const openHere = new Set<string>();

export class DirectoryLock {
  private constructor(private readonly key: string, private readonly file: string, readonly tookOverFromPid: number | null) {}

  static async acquire(dir: string): Promise<DirectoryLock> {
    const key = path.resolve(dir);
    if (openHere.has(key)) throw new Error(`disk buffer ${dir} is already open in this process`);
    openHere.add(key);
    const file = path.join(key, LOCK_FILE);
    let stalePid: number | null = null;
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          await writeFile(file, `${process.pid}\n`, { flag: 'wx' });
          return new DirectoryLock(key, file, stalePid);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        const holder = Number((await readFile(file, 'utf8').catch(() => '')).trim());
        if (Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid && processAlive(holder)) {
          throw new Error(`disk buffer ${dir} is in use by process ${holder}`);
        }
        stalePid = Number.isSafeInteger(holder) && holder > 0 ? holder : null;
        await unlink(file).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'ENOENT') throw e; });
      }
      throw new Error(`disk buffer ${dir}: could not take the lock (another process keeps taking it)`);
    } catch (err) {
      openHere.delete(key);
      throw err;
    }
  }

  async release(): Promise<void> {
    // Remove the file first: a reopen in this process must not find this lock and remove its successor's.
    await unlink(this.file).catch(() => undefined);
    openHere.delete(this.key);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
