/**
 * W7, a storm of hosts: N hosts never seen before connect at once (a node's
 * restart, a failover behind a balancer), each sending one message; then the
 * node restarts on the same data and the same N hosts, now known, connect at
 * once again. Measured per host, from the moment its message was written to
 * its socket:
 *
 * - registered: when the metadata service stored its document (the
 *   document's `updated_at`, read back through the service's listing);
 * - written: when its record appeared in the node's sink file, and whether
 *   that record carried its `meta` (or a `meta_missing`, and why).
 *
 * The storm client and the follower of the sink files run in the harness
 * process; the follower polls every 10 ms, so "written" is late by up to that
 * (and by whatever delays the harness's own event loop while it connects).
 */
import { closeSync, openSync, readSync, readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { HOST } from './ports.js';
import type { RunningServer } from './servers.js';

/** Connection attempts in flight at once: a listen backlog overflow would turn into slow SYN retries. */
const CONNECT_CONCURRENCY = 200;
const FOLLOW_POLL_MS = 10;

export const stormHostname = (i: number): string => `storm-host-${i}`;
const HOSTNAME_IN_LINE = /"hostname":"storm-host-(\d+)"/;
const MISSING_IN_LINE = /"meta_missing":"([a-z]+)"/;

export interface Spread {
  p50: number;
  p99: number;
  max: number;
}

export function spread(values: number[]): Spread | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  return { p50: at(0.5), p99: at(0.99), max: sorted.at(-1)! };
}

/** One storm's numbers. */
export interface StormPhase {
  hosts: number;
  /** Connections that failed (refused, reset, timed out). */
  failed: number;
  /** From the first connection attempt to the last message written to its socket. */
  connectSeconds: number;
  /** Hosts whose record was written (first record of each host). */
  written: number;
  /** Of those, with their `meta`; and without, by `meta_missing` reason (`none`: neither). */
  withMeta: number;
  missing: Record<string, number>;
  /** Per host: message written to the socket → record in the sink file, ms. */
  writtenMs?: Spread;
  /** Per host (a new host only): message written to the socket → document stored by the service, ms; hosts never registered are left out and counted in `unregistered`. */
  registeredMs?: Spread;
  unregistered?: number;
}

/** Follows the node's sink files, noting when each storm host's first record appears and what it carried. */
class SinkFollower {
  private readonly offsets = new Map<string, number>();
  private readonly partial = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  /** Host index → [time seen, meta state]; the first record of each host only. */
  readonly seen = new Map<number, { at: number; state: string }>();

  /** Start after whatever the files hold now. */
  constructor(private readonly files: () => string[]) {
    for (const file of files()) this.offsets.set(file, statSync(file).size);
  }

  start(): void {
    this.timer = setInterval(() => this.poll(), FOLLOW_POLL_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.poll();
  }

  private poll(): void {
    const now = Date.now();
    for (const file of this.files()) {
      const size = statSync(file, { throwIfNoEntry: false })?.size ?? 0;
      const from = this.offsets.get(file) ?? 0;
      if (size <= from) continue;
      const buffer = Buffer.alloc(size - from);
      const fd = openSync(file, 'r');
      try {
        readSync(fd, buffer, 0, buffer.length, from);
      } finally {
        closeSync(fd);
      }
      this.offsets.set(file, size);
      const text = (this.partial.get(file) ?? '') + buffer.toString('utf8');
      const lines = text.split('\n');
      this.partial.set(file, lines.pop() ?? '');
      for (const line of lines) {
        const host = HOSTNAME_IN_LINE.exec(line);
        if (host === null) continue;
        const index = Number(host[1]);
        if (this.seen.has(index)) continue;
        const state = line.includes('"meta":{') ? 'meta' : (MISSING_IN_LINE.exec(line)?.[1] ?? 'none');
        this.seen.set(index, { at: now, state });
      }
    }
  }
}

/** Open `hosts` connections, `CONNECT_CONCURRENCY` at a time; each sends its host's one message as soon as it is connected. */
async function connectStorm(port: number, hosts: number): Promise<{ sentAt: number[]; sockets: net.Socket[]; failed: number }> {
  const sentAt = new Array<number>(hosts).fill(0);
  const sockets: net.Socket[] = [];
  let failed = 0;
  let next = 0;
  const one = (i: number): Promise<void> => new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port }, () => {
      const msg = `<14>1 - ${stormHostname(i)} storm - - - first message of host ${i}`;
      socket.write(`${Buffer.byteLength(msg)} ${msg}`, () => {
        sentAt[i] = Date.now();
        resolve();
      });
    });
    socket.on('error', () => {
      failed++;
      resolve();
    });
    sockets.push(socket);
  });
  await Promise.all(Array.from({ length: CONNECT_CONCURRENCY }, async () => {
    while (next < hosts) await one(next++);
  }));
  return { sentAt, sockets, failed };
}

/** When the service stored each storm host's document (epoch ms), through its listing. */
async function registrationTimes(server: RunningServer): Promise<Map<number, number>> {
  const stderr = server.process.stderrTail();
  const listening = stderr.split('\n').filter((l) => l.includes('"SLU0300I"')).at(-1);
  const port = listening === undefined ? undefined : (JSON.parse(listening) as { port?: number }).port;
  if (port === undefined) throw new Error('W7: the node did not log where its metadata service listens (SLU0300I)');
  // The sink folder is <data_dir>/logs/<tenant>.
  const dataDir = path.dirname(path.dirname(server.config.outputDir));
  const token = readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
  const times = new Map<number, number>();
  for (let cursor: string | null = null; ;) {
    const url = `http://${HOST}:${port}/host_metadata/default?limit=1000${cursor === null ? '' : `&cursor=${cursor}`}`;
    const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    if (!response.ok) throw new Error(`W7: listing the registered hosts: HTTP ${response.status}`);
    const page = await response.json() as { hosts: { metadata: { hostname?: string }; updated_at: string }[]; next_cursor: string | null };
    for (const host of page.hosts) {
      const match = /^storm-host-(\d+)$/.exec(host.metadata.hostname ?? '');
      if (match) times.set(Number(match[1]), Date.parse(host.updated_at));
    }
    if (page.next_cursor === null) return times;
    cursor = page.next_cursor;
  }
}

/**
 * One storm against a running node: connect, send, wait until every host's
 * record is written (or `timeoutMs`), then close the connections. With
 * `registration`, also when each host was registered.
 */
export async function runStorm(server: RunningServer, hosts: number, registration: boolean, timeoutMs = 60_000): Promise<StormPhase> {
  const follower = new SinkFollower(server.outputFiles);
  follower.start();
  const started = Date.now();
  const { sentAt, sockets, failed } = await connectStorm(server.settings.tcpPort, hosts);
  const connectSeconds = (Math.max(...sentAt) - started) / 1000;
  const deadline = Date.now() + timeoutMs;
  while (follower.seen.size < hosts - failed && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  follower.stop();
  for (const socket of sockets) socket.end();
  const phase: StormPhase = { hosts, failed, connectSeconds, written: follower.seen.size, withMeta: 0, missing: {} };
  const written: number[] = [];
  for (const [index, { at, state }] of follower.seen) {
    if (sentAt[index]! > 0) written.push(at - sentAt[index]!);
    if (state === 'meta') phase.withMeta++;
    else phase.missing[state] = (phase.missing[state] ?? 0) + 1;
  }
  const writtenSpread = spread(written);
  if (writtenSpread) phase.writtenMs = writtenSpread;
  if (registration) {
    const times = await registrationTimes(server);
    const registered: number[] = [];
    for (let i = 0; i < hosts; i++) {
      const at = times.get(i);
      if (at !== undefined && sentAt[i]! > 0) registered.push(at - sentAt[i]!);
    }
    const registeredSpread = spread(registered);
    if (registeredSpread) phase.registeredMs = registeredSpread;
    phase.unregistered = hosts - failed - registered.length;
  }
  return phase;
}
