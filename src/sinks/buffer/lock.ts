/**
 * One owner per directory. Two writers appending to the same segments would
 * interleave entries and corrupt them, and two readers would deliver every
 * entry twice, so open() takes this lock — and the workers of a node race for
 * it when they adopt the buffers of slots that no longer run (buffered-sink.ts).
 *
 * A single pid file cannot be taken over safely by several processes at once
 * (each removes the stale file, and the slower one removes the faster one's
 * fresh lock), so the lock is a set of claims, one file per contender named
 * by its own pid, `lock.<pid>`:
 *
 *   1. list the claims; a claim whose process is gone is removed (only that
 *      pid ever creates that name, so removing it can never remove a live one);
 *   2. another live claim: busy. None: write our own claim, list again;
 *   3. still no other live claim: held. Otherwise withdraw ours and retry
 *      after a random pause (two contenders that met both withdraw).
 *
 * Two holders at once are impossible: whichever wrote its claim second
 * listed the first one's claim in step 3. A claim naming this very process
 * that this process has not opened (a restarted container is often pid 1
 * again) is ours to reuse. `lock` (one pid file, written by earlier versions)
 * counts as its pid's claim.
 */
import { readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** The lock file of versions before claims: read as its pid's claim, never written. */
export const LOCK_FILE = 'lock';
const CLAIM_FILE = /^lock\.(\d+)$/;
/** removeDirectory() renames a directory to this sibling on its way out (no folder anyone looks into starts with a dot). */
const REMOVING_NAME = /^\.removing-(.+)-(\d+)$/;
/** Rounds before an acquire reports the directory busy (a contender met halfway withdraws within one). */
const DEFAULT_ATTEMPTS = 4;
const RETRY_PAUSE_MS = { min: 5, max: 40 } as const;

/** Directories opened by this process (resolved paths). */
const openHere = new Set<string>();

/** Another live process (or, `pid` being this one's, another opener in this process) holds the directory. */
export class DirectoryBusyError extends Error {
  constructor(dir: string, readonly pid: number) {
    super(pid === process.pid ? `${dir} is already open in this process` : `${dir} is in use by process ${pid}`);
    this.name = 'DirectoryBusyError';
  }
}

export function claimFileName(pid: number): string {
  return `lock.${pid}`;
}

export class DirectoryLock {
  private constructor(private readonly key: string, private readonly file: string, readonly tookOverFromPid: number | null) {}

  /**
   * Take `dir`'s lock. Rejects with DirectoryBusyError when a live process
   * holds it (after `attempts` rounds: 1 to give up at the first sign of
   * another process), or with the file system's error (ENOENT: `dir` is gone).
   */
  static async acquire(dir: string, attempts = DEFAULT_ATTEMPTS): Promise<DirectoryLock> {
    const key = path.resolve(dir);
    if (openHere.has(key)) throw new DirectoryBusyError(dir, process.pid);
    openHere.add(key);
    const own = path.join(key, claimFileName(process.pid));
    const stale: number[] = [];
    try {
      let rival = 0;
      for (let attempt = 1; ; attempt++) {
        rival = await otherLiveClaim(key, stale);
        if (rival === 0) {
          await writeFile(own, `${process.pid}\n`);
          rival = await otherLiveClaim(key, stale);
          if (rival === 0) return new DirectoryLock(key, own, stale[0] ?? null);
          await unlink(own);
        }
        if (attempt >= attempts) break;
        await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS.min + Math.random() * (RETRY_PAUSE_MS.max - RETRY_PAUSE_MS.min)));
      }
      throw new DirectoryBusyError(dir, rival);
    } catch (err) {
      openHere.delete(key);
      throw err;
    }
  }

  async release(): Promise<void> {
    // Remove the file first: a reopen in this process must not find this claim and take it for a leftover.
    await unlink(this.file).catch(() => undefined);
    openHere.delete(this.key);
  }

  /**
   * Delete the locked directory, which releases the lock. It is renamed out
   * of the way first (`.removing-<name>-<pid>` beside it), while still held,
   * so no other process takes the lock of a directory half deleted. Rejects,
   * still holding the lock, when the rename fails.
   */
  async removeDirectory(): Promise<void> {
    const trash = path.join(path.dirname(this.key), `.removing-${path.basename(this.key)}-${process.pid}`);
    await rename(this.key, trash);
    openHere.delete(this.key);
    await rm(trash, { recursive: true, force: true });
  }
}

/**
 * Finish the removals (removeDirectory) that processes now gone left half
 * done in `parent`, of the directories `mine` claims by name.
 */
export async function removeLeftoverRemovals(parent: string, names: readonly string[], mine: (name: string) => boolean): Promise<void> {
  for (const name of names) {
    const removing = REMOVING_NAME.exec(name);
    if (removing === null || !mine(removing[1]!) || processAlive(Number(removing[2]))) continue;
    await rm(path.join(parent, name), { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * The pid of a live claim on `dir` other than this process's (0: none).
 * Claims of processes that are gone are removed, their pids added to `stale`.
 */
async function otherLiveClaim(dir: string, stale: number[]): Promise<number> {
  let live = 0;
  for (const name of await readdir(dir)) {
    let pid: number;
    const claim = CLAIM_FILE.exec(name);
    if (claim !== null) pid = Number(claim[1]);
    else if (name === LOCK_FILE) pid = Number((await readFile(path.join(dir, name), 'utf8').catch(() => '')).trim());
    else continue;
    if (claim !== null && pid === process.pid) continue; // ours (or a leftover of an earlier process with our pid: overwritten)
    if (pid !== process.pid && Number.isSafeInteger(pid) && pid > 0 && processAlive(pid)) {
      live = pid;
      continue;
    }
    await unlink(path.join(dir, name)).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'ENOENT') throw e; });
    if (Number.isSafeInteger(pid) && pid > 0 && !stale.includes(pid)) stale.push(pid);
  }
  return live;
}

/** Whether process `pid` exists (a zombie not yet waited for does too). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
