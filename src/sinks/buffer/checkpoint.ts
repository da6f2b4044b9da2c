/**
 * The checkpoint: the id up to which a sink has acknowledged the buffer's
 * entries, so a restart resumes after them. Written to a temporary file,
 * fsynced, then renamed over the old one: a crash leaves either the old or
 * the new checkpoint, never half of one.
 */
import { open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

export const CHECKPOINT_FILE = 'checkpoint.json';
const CHECKPOINT_TEMP_FILE = 'checkpoint.json.tmp';
const CHECKPOINT_VERSION = 1;

export type CheckpointRead =
  | { kind: 'found'; acknowledged: number }
  | { kind: 'missing' }
  | { kind: 'unreadable'; error: string };

export async function readCheckpoint(dir: string): Promise<CheckpointRead> {
  let text: string;
  try {
    text = await readFile(path.join(dir, CHECKPOINT_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    return { kind: 'unreadable', error: (err as Error).message };
  }
  try {
    const parsed = JSON.parse(text) as { version?: unknown; acknowledged?: unknown };
    if (parsed.version !== CHECKPOINT_VERSION) return { kind: 'unreadable', error: `unknown checkpoint version ${String(parsed.version)}` };
    const acknowledged = parsed.acknowledged;
    if (typeof acknowledged !== 'number' || !Number.isSafeInteger(acknowledged) || acknowledged < 0) {
      return { kind: 'unreadable', error: `bad acknowledged id ${String(acknowledged)}` };
    }
    return { kind: 'found', acknowledged };
  } catch (err) {
    return { kind: 'unreadable', error: (err as Error).message };
  }
}

export async function writeCheckpoint(dir: string, acknowledged: number): Promise<void> {
  const temp = path.join(dir, CHECKPOINT_TEMP_FILE);
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(JSON.stringify({ version: CHECKPOINT_VERSION, acknowledged }) + '\n');
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await rename(temp, path.join(dir, CHECKPOINT_FILE));
  await syncDirectory(dir);
}

/** A temporary file left by a crash in the middle of writeCheckpoint(). */
export async function removeCheckpointLeftovers(dir: string): Promise<void> {
  await unlink(path.join(dir, CHECKPOINT_TEMP_FILE)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

/** Make creations, renames and removals of the directory's entries durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
