/**
 * The checkpoint: per tenant chain, the id up to which a sink has
 * acknowledged its entries, so a restart resumes after them (version 2).
 * Version 1, written before the buffer kept a chain per tenant, holds one id
 * for the one log of that format: it is read as the `legacy` chain's. Written to a temporary file,
 * fsynced, then renamed over the old one: a crash leaves either the old or
 * the new checkpoint, never half of one.
 */
import { open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

export const CHECKPOINT_FILE = 'checkpoint.json';
const CHECKPOINT_TEMP_FILE = 'checkpoint.json.tmp';
const CHECKPOINT_VERSION = 2;
const LEGACY_CHECKPOINT_VERSION = 1;

export interface Checkpoint {
  /** Tenant → the highest id of its chain acknowledged. */
  readonly tenants: ReadonlyMap<string, number>;
  /** The same for the chain written before per-tenant chains (0 when there is none). */
  readonly legacy: number;
}

export type CheckpointRead =
  | { kind: 'found'; checkpoint: Checkpoint }
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
    const parsed = JSON.parse(text) as { version?: unknown; acknowledged?: unknown; tenants?: unknown; legacy?: unknown };
    if (parsed.version === LEGACY_CHECKPOINT_VERSION) {
      if (!isId(parsed.acknowledged)) return { kind: 'unreadable', error: `bad acknowledged id ${String(parsed.acknowledged)}` };
      return { kind: 'found', checkpoint: { tenants: new Map(), legacy: parsed.acknowledged } };
    }
    if (parsed.version !== CHECKPOINT_VERSION) return { kind: 'unreadable', error: `unknown checkpoint version ${String(parsed.version)}` };
    const legacy = parsed.legacy ?? 0;
    if (!isId(legacy)) return { kind: 'unreadable', error: `bad legacy id ${String(legacy)}` };
    if (typeof parsed.tenants !== 'object' || parsed.tenants === null) return { kind: 'unreadable', error: 'no tenants' };
    const tenants = new Map<string, number>();
    for (const [tenant, acknowledged] of Object.entries(parsed.tenants)) {
      if (!isId(acknowledged)) return { kind: 'unreadable', error: `bad acknowledged id ${String(acknowledged)} of tenant ${tenant}` };
      tenants.set(tenant, acknowledged);
    }
    return { kind: 'found', checkpoint: { tenants, legacy } };
  } catch (err) {
    return { kind: 'unreadable', error: (err as Error).message };
  }
}

function isId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

export async function writeCheckpoint(dir: string, checkpoint: Checkpoint): Promise<void> {
  const temp = path.join(dir, CHECKPOINT_TEMP_FILE);
  const handle = await open(temp, 'w');
  const content: { version: number; tenants: Record<string, number>; legacy?: number } = { version: CHECKPOINT_VERSION, tenants: Object.fromEntries(checkpoint.tenants) };
  if (checkpoint.legacy > 0) content.legacy = checkpoint.legacy;
  try {
    await handle.writeFile(JSON.stringify(content) + '\n');
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
