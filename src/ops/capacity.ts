/**
 * How many connections this process can hold: its file-descriptor limit
 * minus a reserve for what else the node opens (sink files, segment files of
 * disk buffers, the metadata store, outbound sink and metadata connections,
 * listeners).
 *
 * Node.js itself raises RLIMIT_NOFILE's soft limit to the hard limit when it
 * starts (PlatformInit in node.cc), so the node does not raise it again; it
 * reads the limit it runs with from /proc/self/limits.
 */
import { readFileSync } from 'node:fs';

/** Descriptors kept for everything that is not an agent connection. */
export const FD_RESERVE = 256;

export interface FdLimits {
  soft: number;
  hard: number;
}

/** The open-files limits of this process; null where /proc is not there to read (not Linux). */
export function readFdLimits(limitsText?: string): FdLimits | null {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return null;
    }
  }
  const match = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(text);
  if (match === null) return null;
  const value = (v: string): number => (v === 'unlimited' ? Infinity : Number(v));
  return { soft: value(match[1]!), hard: value(match[2]!) };
}

/** Connections the node can hold under `limits` (Infinity when unknown or unlimited). */
export function connectionCapacity(limits: FdLimits | null, reserve = FD_RESERVE): number {
  if (limits === null || !Number.isFinite(limits.soft)) return Infinity;
  return Math.max(0, limits.soft - reserve);
}
