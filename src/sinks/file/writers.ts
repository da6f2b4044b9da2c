/**
 * The writers of one file sink folder, and the files of those that no longer
 * run. Each writer (worker n of a node: tag `w<n>`; a process alone: no tag)
 * has its active file in every tenant folder and rotates and prunes its own
 * files. Slots move (rolling restarts, full restarts, a changed `workers`),
 * so a writer's files can be left with nobody to rotate or prune them.
 *
 * So each writer registers while it runs: it holds the directory lock of
 * `<path>/.writers/<writer>/` (the disk buffer's lock: a claim file named by
 * its pid). A writer that can take another's registration (its process is
 * gone) adopts that writer's files, tenant folder by tenant folder (the file
 * sink says how: adoptOrphanedFiles in sink.ts), then deletes the
 * registration. A writer starting in a slot whose files are being adopted
 * waits for that to end (its start fails and is retried by the supervisor).
 *
 *   <path>/.writers/w1/lock.4242   worker 1 runs (pid 4242)
 *   <path>/.writers/w3/lock.4100   pid 4100 is gone: w3's files are adopted by w1 or w2
 */
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { DirectoryBusyError, DirectoryLock, removeLeftoverRemovals } from '../buffer/lock.js';

export const WRITERS_DIR = '.writers';
/** The registration of the writer without a tag (a process alone). */
const UNTAGGED_WRITER = 'main';
const WRITER_NAME = /^(?:main|w\d{1,6})$/;
/** Rounds of mkdir + lock when an adopter removes the registration between the two. */
const REGISTER_ATTEMPTS = 3;

function writerName(tag: string | null): string {
  return tag ?? UNTAGGED_WRITER;
}

/** Register writer `tag` of the sink folder `root` for as long as it runs (release the lock at stop). */
export async function registerWriter(root: string, tag: string | null): Promise<DirectoryLock> {
  const dir = path.join(root, WRITERS_DIR, writerName(tag));
  for (let attempt = 1; ; attempt++) {
    await mkdir(dir, { recursive: true });
    try {
      return await DirectoryLock.acquire(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= REGISTER_ATTEMPTS) throw err;
    }
  }
}

/**
 * Every writer of `root` registered and not running (other than `ownTag`):
 * `adopt(tenantDir, tag)` is called for each of its tenant folders, then its
 * registration is deleted. One whose adoption fails stays registered and is
 * tried again next time. Resolves with the tags adopted.
 */
export async function adoptOrphanedWriters(
  root: string,
  ownTag: string | null,
  adopt: (tenantDir: string, tag: string | null) => Promise<void>,
): Promise<(string | null)[]> {
  const registry = path.join(root, WRITERS_DIR);
  let writers: string[];
  try {
    writers = await readdir(registry);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  await removeLeftoverRemovals(registry, writers, (name) => WRITER_NAME.test(name));
  const adopted: (string | null)[] = [];
  for (const writer of writers) {
    if (!WRITER_NAME.test(writer) || writer === writerName(ownTag)) continue;
    let lock: DirectoryLock;
    try {
      lock = await DirectoryLock.acquire(path.join(registry, writer), 1);
    } catch (err) {
      if (err instanceof DirectoryBusyError || (err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const tag = writer === UNTAGGED_WRITER ? null : writer;
    try {
      for (const entry of await readdir(root, { withFileTypes: true })) {
        // Tenant folders are tenant ids, which start with a letter or a digit.
        if (entry.isDirectory() && !entry.name.startsWith('.')) await adopt(path.join(root, entry.name), tag);
      }
      await lock.removeDirectory();
    } finally {
      await lock.release();
    }
    adopted.push(tag);
  }
  return adopted;
}
