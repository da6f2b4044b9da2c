/**
 * Host session locks: one owner (a worker process of one node) holds a
 * host's session at a time. The newest connection wins: a process that sees
 * a host's first record writes the lock with itself as owner; every process
 * watches the bucket, and one that holds sessions of a host whose lock was
 * written by another owner *after* its own write closes them (the agent has
 * reconnected elsewhere; its old connection is stale or half-open).
 * Revisions order the writes, so two nodes racing for a host agree on who
 * won: whoever wrote last.
 *
 * A session that carries several hosts (a relay) claims none of them. A lock
 * is removed when its owner's last session of the host closes, by a delete
 * conditional on the owner's own revision (a newer owner's lock stays); the
 * leader removes locks of owners that left the cluster without doing so.
 */
import { randomBytes } from 'node:crypto';
import { KvWatchInclude, type KV, type KvEntry, type NatsConnection, type QueuedIterator } from 'nats';
import type { SessionEntry, SessionObserver, SessionRegistry } from '../../core/sessions.js';
import type { ClusterConfig } from './config.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { connectCluster, decodeValue, encodeValue, openClusterBuckets } from './buckets.js';

export interface HostLockRecord {
  /** `<node id>/<process tag>`: unique per process run. */
  owner: string;
  node: string;
  session: string;
  /** Epoch ms. */
  at: number;
}

interface HeldHost {
  readonly sessions: Set<SessionEntry>;
  /** Revision of our write; 0 while it is in flight. */
  revision: number;
  /** The latest write of another owner seen while ours was in flight. */
  foreign: { revision: number; record: HostLockRecord } | null;
}

export interface HostLockEvents {
  /** Sessions of `hostKey` were closed because `record.owner` took the host over. */
  hostMoved(hostKey: string, record: HostLockRecord, sessions: number): void;
  /** A lock write or delete failed (NATS unreachable): the host stays unlocked until its next connection. */
  lockFailed(hostKey: string, error: Error): void;
}

/** Lock writes in flight at once; a reconnect storm's claims queue behind them. */
const MAX_WRITES_IN_FLIGHT = 64;

export class HostLocks implements SessionObserver {
  readonly owner: string;
  private readonly held = new Map<string, HeldHost>();
  private readonly queue: (() => Promise<void>)[] = [];
  private inFlight = 0;
  private watcher: QueuedIterator<KvEntry> | null = null;
  private stopped = false;
  /** Sessions closed because their host moved (the metric reads it). */
  takeovers = 0;

  constructor(
    private readonly kv: KV,
    readonly nodeId: string,
    private readonly events: HostLockEvents,
    processTag = randomBytes(6).toString('base64url'),
  ) {
    this.owner = `${nodeId}/${processTag}`;
  }

  /** Starts watching for takeovers; resolves once the watch is in place (claims made before could miss one). */
  async start(): Promise<void> {
    await this.watch(undefined);
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.stop();
  }

  /** Hosts this process holds a lock for (or is writing one). */
  get size(): number {
    return this.held.size;
  }

  hostChanged(entry: SessionEntry, previousKey: string | null): void {
    if (previousKey !== null) this.release(previousKey, entry);
    if (entry.hostKey !== null) this.claim(entry.hostKey, entry);
  }

  closed(entry: SessionEntry): void {
    if (entry.hostKey !== null) this.release(entry.hostKey, entry);
  }

  private claim(hostKey: string, entry: SessionEntry): void {
    const existing = this.held.get(hostKey);
    if (existing !== undefined) {
      // Already ours (another session of the same host on this process): nothing to write.
      existing.sessions.add(entry);
      return;
    }
    const host: HeldHost = { sessions: new Set([entry]), revision: 0, foreign: null };
    this.held.set(hostKey, host);
    const record: HostLockRecord = { owner: this.owner, node: this.nodeId, session: entry.id, at: Date.now() };
    this.enqueue(async () => {
      if (this.held.get(hostKey) !== host) return;
      try {
        host.revision = await this.kv.put(hostKey, encodeValue(record));
      } catch (err) {
        this.events.lockFailed(hostKey, err as Error);
        // Not held: its sessions go on unlocked, and the host's next session tries again.
        if (this.held.get(hostKey) === host) this.held.delete(hostKey);
        return;
      }
      if (this.held.get(hostKey) !== host) {
        // Every session of the host closed while the write was in flight.
        await this.remove(hostKey, host.revision);
      } else if (host.foreign !== null && host.foreign.revision > host.revision) {
        this.takeOver(hostKey, host, host.foreign.record);
      }
    });
  }

  private release(hostKey: string, entry: SessionEntry): void {
    const host = this.held.get(hostKey);
    if (host === undefined || !host.sessions.delete(entry) || host.sessions.size > 0) return;
    this.held.delete(hostKey);
    // A write still in flight removes its lock when it lands (see claim).
    if (host.revision !== 0) {
      const revision = host.revision;
      this.enqueue(() => this.remove(hostKey, revision));
    }
  }

  private async remove(hostKey: string, revision: number): Promise<void> {
    try {
      await this.kv.delete(hostKey, { previousSeq: revision });
    } catch {
      // Written by a newer owner since: its lock stays, as it should.
    }
  }

  private enqueue(write: () => Promise<void>): void {
    this.queue.push(write);
    this.drain();
  }

  private drain(): void {
    while (this.inFlight < MAX_WRITES_IN_FLIGHT && this.queue.length > 0) {
      const write = this.queue.shift()!;
      this.inFlight++;
      void write().finally(() => {
        this.inFlight--;
        this.drain();
      });
    }
  }

  /** Follows every lock write, from now (or from `fromRevision` after the watch broke). */
  private async watch(fromRevision: number | undefined): Promise<void> {
    const watcher = await this.kv.watch({
      key: '>',
      ignoreDeletes: true,
      ...(fromRevision === undefined ? { include: KvWatchInclude.UpdatesOnly } : { resumeFromRevision: fromRevision }),
    });
    this.watcher = watcher;
    let last = fromRevision === undefined ? 0 : fromRevision - 1;
    void (async () => {
      try {
        for await (const update of watcher) {
          last = update.revision;
          this.seen(update);
        }
      } catch {
        // The watch broke (connection lost for good, consumer gone): start again after the last update seen.
      }
      if (this.stopped) return;
      const retry = (): void => {
        if (this.stopped) return;
        this.watch(last + 1).catch(() => setTimeout(retry, 1000).unref());
      };
      setTimeout(retry, 500).unref();
    })();
  }

  private seen(update: KvEntry): void {
    if (update.operation !== 'PUT') return;
    const host = this.held.get(update.key);
    if (host === undefined) return;
    const record = decodeValue<HostLockRecord>(update.value);
    if (record === null || record.owner === this.owner) return;
    if (host.revision === 0) {
      if (host.foreign === null || update.revision > host.foreign.revision) host.foreign = { revision: update.revision, record };
    } else if (update.revision > host.revision) {
      this.takeOver(update.key, host, record);
    }
  }

  private takeOver(hostKey: string, host: HeldHost, record: HostLockRecord): void {
    this.held.delete(hostKey);
    const sessions = [...host.sessions];
    this.takeovers += sessions.length;
    for (const session of sessions) session.control.close('host_moved');
    this.events.hostMoved(hostKey, record, sessions.length);
  }
}

/**
 * Host locks for one process's sessions, in the background: connects (and
 * retries while NATS is away; sessions meanwhile are simply not locked),
 * then locks the hosts of the sessions already open and of every new one.
 */
export class HostLockService {
  private nc: NatsConnection | null = null;
  private locks: HostLocks | null = null;
  private stopping = false;
  private retry: NodeJS.Timeout | null = null;
  private gauge: NodeJS.Timeout | null = null;

  constructor(private readonly config: ClusterConfig, private readonly sessions: SessionRegistry, private readonly telemetry: Telemetry) {
    void this.connect();
  }

  private async connect(): Promise<void> {
    const c = this.config;
    while (!this.stopping) {
      try {
        this.nc ??= await connectCluster(c, 'host locks');
        const { hostLocks } = await openClusterBuckets(this.nc, c);
        const locks = new HostLocks(hostLocks, c.nodeId, {
          hostMoved: (hostKey, record, sessions) => {
            this.telemetry.hostLockTakeovers.inc(sessions);
            this.telemetry.emit('hostMoved', { host_key: hostKey, to: record.node, sessions });
          },
          lockFailed: (hostKey, err) => this.telemetry.emit('hostLockFailed', { host_key: hostKey, error: err.message }),
        });
        await locks.start();
        if (this.stopping) {
          locks.stop();
          break;
        }
        this.locks = locks;
        this.sessions.observe(locks);
        for (const entry of this.sessions.values()) if (entry.hostKey !== null) locks.hostChanged(entry, null);
        this.gauge = setInterval(() => this.telemetry.hostLocksHeld.set(locks.size), c.heartbeatIntervalMs).unref();
        return;
      } catch (err) {
        this.telemetry.emit('hostLockFailed', { host_key: null, error: (err as Error).message });
        await new Promise<void>((resolve) => { this.retry = setTimeout(resolve, c.heartbeatIntervalMs); });
      }
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.retry !== null) clearTimeout(this.retry);
    if (this.gauge !== null) clearInterval(this.gauge);
    this.locks?.stop();
    // drain(): the lock deletes of sessions that just closed go out before the connection ends.
    await this.nc?.drain().catch(() => undefined);
  }
}
