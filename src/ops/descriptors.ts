/**
 * File descriptors: every agent connection holds one, so the process's
 * open-files limit caps how many agents a node can serve. Node.js has no
 * getrlimit; Linux tells it in /proc.
 */
import { readFileSync } from 'node:fs';
import type { SluiceConfig } from './config/types.js';

/**
 * Descriptors a node keeps besides agent connections: listeners, sink files
 * and sockets, the host metadata store and its clients, the runtime's own.
 */
export const SPARE_DESCRIPTORS = 1024;

export interface FdLimits {
  soft: number;
  hard: number;
}

/** The open-files limits of this process (from /proc/self/limits, or `limitsText`); null where /proc does not tell. */
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

/** The soft RLIMIT_NOFILE (Node raises it to the hard limit at start); null where /proc does not tell or it is unlimited. */
export function openFilesLimit(): number | null {
  const soft = readFdLimits()?.soft;
  return soft === undefined || !Number.isFinite(soft) ? null : soft;
}

/** Connections the node can hold under `limits`, the spare kept back (Infinity when unknown or unlimited). */
export function connectionCapacity(limits: FdLimits | null, spare = SPARE_DESCRIPTORS): number {
  if (limits === null || !Number.isFinite(limits.soft)) return Infinity;
  return Math.max(0, limits.soft - spare);
}

/**
 * Descriptors the connection listeners (TCP, TLS, RELP, HTTP) may take at
 * their configured caps, plus the spare; null when one is uncapped
 * (max_connections 0), where the open-files limit is the cap.
 */
export function descriptorsWanted(config: SluiceConfig): number | null {
  const { syslogTcp, syslogTls, relp, http } = config.sources;
  let connections = 0;
  for (const listener of [syslogTcp, syslogTls, relp, http]) {
    if (!listener.enabled) continue;
    if (listener.maxConnections === 0) return null;
    connections += listener.maxConnections;
  }
  return connections + SPARE_DESCRIPTORS;
}
