/**
 * The messages between the primary and its workers (over node:cluster IPC).
 * Every message carries `sluice` (its type) so it is never confused with
 * node:cluster's or prom-client's own messages on the same channel.
 */
import type { SluiceConfig } from '../config/types.js';
import type { NodeAddresses } from '../node.js';
import type { Allotments, UseReport } from './limit-shares.js';
import type { HostmetaCall, HostmetaReply } from './hostmeta-channel.js';

/** Primary → worker. */
export type ToWorker =
  | { sluice: 'start'; config: SluiceConfig }
  /** Stop accepting, drain, flush, exit (0 when everything was flushed by `deadline`). */
  | { sluice: 'drain'; deadline: number }
  | { sluice: 'call'; id: number; method: string; args: unknown[] }
  /** The worker's part of the tenants' limits (see limit-shares.ts). */
  | { sluice: 'allot'; seq: number; allotments: Allotments }
  /** The resident memory of the node's other processes (the primary and the other workers), summed: the memory governor's node total. */
  | { sluice: 'memory'; othersBytes: number }
  /** The answer to a call to the primary's metadata service (hostmeta-channel.ts). */
  | HostmetaReply;

/** Worker → primary. */
export type FromWorker =
  /** The worker listens for messages now (ones sent earlier, e.g. at node:cluster's 'online', would be lost). */
  | { sluice: 'hello' }
  | { sluice: 'ready'; addresses: NodeAddresses }
  | { sluice: 'failed'; error: string }
  | { sluice: 'result'; id: number; value: unknown }
  | { sluice: 'error'; id: number; message: string }
  /** Lines of a live tail, and how many the worker dropped since its last message (the IPC channel was behind). */
  | { sluice: 'tail'; subscription: number; lines: string[]; dropped: number }
  /** This worker's resident memory, every MEMORY_REPORT_MS. */
  | { sluice: 'memory'; rssBytes: number }
  /** Its use of its part of the tenants' limits since the last report. */
  | { sluice: 'use'; report: UseReport; applied: number }
  /** Its metrics (prom-client JSON) once drained, just before it exits: the primary keeps its counters. */
  | { sluice: 'final'; metrics: unknown[] }
  /** A call to the primary's metadata service (hostmeta-channel.ts). */
  | HostmetaCall;

/** How often each process of a node tells the others its memory (worker → primary → workers). */
export const MEMORY_REPORT_MS = 250;

/** The environment variable a worker reads its slot from. */
export const WORKER_ID_ENV = 'SLUICE_WORKER_ID';

export function isSluiceMessage(message: unknown): message is { sluice: string } {
  return typeof message === 'object' && message !== null && typeof (message as { sluice?: unknown }).sluice === 'string';
}
