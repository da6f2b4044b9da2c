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
 * Liveness is per process: every file sink of a worker writes `-w<n>` files,
 * so file sinks sharing a path share the registration.
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

/** A writer's registration, held while it runs. */
export interface WriterRegistration {
  /** Idempotent. */
  release(): Promise<void>;
}

/**
 * Registrations of this process by directory. Several file sinks may share a
 * path (each with its own tenants): in one process they are one writer, so
 * they share one registration, released with the last of them.
 */
const registered = new Map<string, { lock: Promise<DirectoryLock>; users: number }>();

/** Register writer `tag` of the sink folder `root` for as long as it runs (release() at stop). */
export async function registerWriter(root: string, tag: string | null): Promise<WriterRegistration> {
  const dir = path.resolve(root, WRITERS_DIR, writerName(tag));
  let entry = registered.get(dir);
  if (entry === undefined) {
    const created = { lock: lockRegistration(dir), users: 0 };
    registered.set(dir, entry = created);
    created.lock.catch(() => { if (registered.get(dir) === created) registered.delete(dir); });
  }
  const held = entry;
  held.users++;
  try {
    await held.lock;
  } catch (err) {
    held.users--;
    throw err;
  }
  let released = false;
  return {
    release: async () => {
      if (released) return;
      released = true;
      if (--held.users > 0) return;
      if (registered.get(dir) === held) registered.delete(dir);
      await (await held.lock).release();
    },
  };
}

async function lockRegistration(dir: string): Promise<DirectoryLock> {
  for (let attempt = 1; ; attempt++) {
    await mkdir(dir, { recursive: true });
    try {
      return await DirectoryLock.acquire(dir);
    } catch (err) {
      // An adopter removed the registration between the mkdir and the lock: make it again.
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
