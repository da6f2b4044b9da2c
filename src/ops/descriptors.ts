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

/** The soft RLIMIT_NOFILE (Node raises it to the hard limit at start); null where /proc does not tell. */
export function openFilesLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return soft === undefined || soft === 'unlimited' ? null : Number(soft);
  } catch {
    return null;
  }
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
