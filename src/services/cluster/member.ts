/**
 * A node's part in the cluster, run by the primary: every heartbeat it writes
 * the node's load, reads the member list, renews or claims leadership and,
 * as leader, runs the singleton jobs (cluster-wide totals, removing locks of
 * nodes that left, pruning hosts unseen for `prune_hosts_after`). It also
 * decides when this node sheds agents. Host session locks are not here: each
 * worker holds its own (see host-locks.ts).
 *
 * Nothing here may stop the node from serving: NATS being away only means
 * no heartbeat (SLU0901W, retried every interval) and no leadership.
 */
import type { NatsConnection } from 'nats';
import type { LoadSample, Telemetry } from '../../telemetry/telemetry.js';
import { VERSION } from '../../telemetry/version.js';
import { settlesBefore } from '../../core/clock.js';
import type { ClusterConfig } from './config.js';
import { connectCluster, decodeValue, encodeValue, openClusterBuckets, type ClusterBuckets } from './buckets.js';
import { LeaderElection, type LeaderRecord } from './leader.js';
import { Membership, type MemberLoad, type MemberRecord } from './membership.js';
import type { HostLockRecord } from './host-locks.js';

/** What the leader publishes each heartbeat (key `totals` of the leader bucket, so it expires with a dead leader). */
export interface ClusterTotals {
  /** The leader that computed them. */
  by: string;
  at: number;
  members: number;
  connections: number;
  recordsPerSec: number;
  bytesPerSec: number;
  rssBytes: number;
}

export interface ClusterStatus {
  nodeId: string;
  /** Whether the last heartbeat was written. */
  connected: boolean;
  leader: LeaderRecord | null;
  leading: boolean;
  members: MemberRecord[];
  totals: ClusterTotals | null;
  lastError: string | null;
  /** The last time this node asked agents to reconnect, and how many. */
  lastShed: { at: number; asked: number; reason: string } | null;
}

export interface ClusterMemberHooks {
  /** The whole node's load now (every process's), from its own counters. */
  load(): Promise<LoadSample>;
  /** Ask up to `count` agents to reconnect; resolves to how many were asked. Null: the node cannot shed. */
  shed: ((count: number) => Promise<number>) | null;
  /** Delete hosts unseen for `olderThanMs`; how many. Null: this node runs no host metadata service. */
  pruneHosts: ((olderThanMs: number) => Promise<number>) | null;
}

const TOTALS_KEY = 'totals';
/** How often the leader looks for locks of departed nodes, and how many keys one pass reads at most. */
const LOCK_PRUNE_INTERVAL_MS = 30_000;
const LOCK_PRUNE_MAX_KEYS = 50_000;
const HOST_PRUNE_INTERVAL_MS = 3_600_000;
/** The longest one heartbeat round may take before the next is started anyway. */
const TICK_TIMEOUT_MS = 10_000;
/** At most this fraction of the node's connections is asked to reconnect per shed interval. */
const SHED_MAX_FRACTION = 0.25;
/** Past the soft memory mark, this fraction of the node's connections is asked to go elsewhere. */
const SHED_MEMORY_FRACTION = 0.1;

export class ClusterMember {
  private nc: NatsConnection | null = null;
  private buckets: ClusterBuckets | null = null;
  private membership: Membership | null = null;
  private election: LeaderElection | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Ends the wait between connection attempts early (stop). */
  private wake: (() => void) | null = null;
  private stopping = false;
  private readonly startedAt = Date.now();
  private previous: { at: number; records: number; bytes: number } | null = null;
  /** What view() returns but the leader, which the election knows. */
  private status: Omit<ClusterStatus, 'leader' | 'leading'>;
  private nextLockPruneAt = 0;
  private nextHostPruneAt = 0;
  private nextShedAt = 0;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: ClusterConfig,
    private readonly telemetry: Telemetry,
    private readonly hooks: ClusterMemberHooks,
    /** Where this node's admin server listens (shown to the other members), or null. */
    private readonly adminUrl: string | null,
  ) {
    this.status = { nodeId: config.nodeId, connected: false, members: [], totals: null, lastError: null, lastShed: null };
  }

  /** Connects in the background (retrying while NATS is away) and starts heartbeating; returns at once. */
  start(): void {
    this.running = this.connect().catch((err: Error) => {
      if (!this.stopping) this.failed(err);
    });
  }

  view(): ClusterStatus {
    return { ...this.status, members: [...this.status.members], leader: this.election?.leader ?? null, leading: this.election?.leading ?? false };
  }

  /** Leaves the cluster cleanly: resigns leadership and removes the heartbeat, so others see it at once. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.wake?.();
    // A connection attempt in progress gives up within its 2 s timeout.
    await this.running;
    if (this.nc === null) return;
    await this.election?.resign().catch(() => undefined);
    await this.membership?.leave().catch(() => undefined);
    await this.nc.close().catch(() => undefined);
    this.telemetry.clusterMembers.set(0);
    this.telemetry.clusterLeader.set(0);
    this.telemetry.clusterConnected.set(0);
    this.telemetry.emit('clusterLeft', { node: this.config.nodeId });
  }

  private async connect(): Promise<void> {
    const c = this.config;
    while (this.buckets === null) {
      if (this.stopping) return;
      try {
        this.nc ??= await connectCluster(c, 'member');
        this.buckets = await openClusterBuckets(this.nc, c);
      } catch (err) {
        this.failed(err as Error);
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          this.timer = setTimeout(resolve, c.heartbeatIntervalMs);
        });
      }
    }
    if (this.stopping) return;
    this.membership = new Membership(this.buckets, { id: c.nodeId, version: VERSION, startedAt: this.startedAt, admin: this.adminUrl });
    this.election = new LeaderElection(this.buckets.leader, c.nodeId, c.leaderTtlMs, c.heartbeatIntervalMs, (leading, leader) => {
      this.telemetry.clusterLeader.set(leading ? 1 : 0);
      this.telemetry.emit('clusterLeaderChanged', { node: c.nodeId, leader: leader?.id ?? null, leading });
    });
    await this.boundedTick();
    this.telemetry.emit('clusterJoined', { node: c.nodeId, servers: c.nats.join(','), members: this.status.members.length });
    this.schedule();
  }

  private schedule(): void {
    if (this.stopping) return;
    this.timer = setTimeout(() => {
      this.running = this.boundedTick().finally(() => this.schedule());
    }, this.config.heartbeatIntervalMs);
  }

  /**
   * A tick that cannot hold the heartbeat up: one that has not finished after
   * TICK_TIMEOUT_MS (a NATS call that never answers) is reported and left behind.
   */
  private async boundedTick(): Promise<void> {
    if (!(await settlesBefore(this.tick(), Date.now() + TICK_TIMEOUT_MS))) {
      this.failed(new Error(`a heartbeat round did not finish within ${TICK_TIMEOUT_MS} ms`));
    }
  }

  private async tick(): Promise<void> {
    const membership = this.membership!;
    try {
      const load = await this.load();
      await membership.heartbeat(load);
      const members = await membership.members();
      this.status.members = members;
      this.status.connected = true;
      this.status.lastError = null;
      this.telemetry.clusterConnected.set(1);
      this.telemetry.clusterMembers.set(members.length);
      await this.election!.tick();
      if (this.election!.leading) await this.leaderJobs(members);
      else this.status.totals = await this.readTotals();
      await this.considerShedding(load, members);
    } catch (err) {
      this.failed(err as Error);
      // The leader key may still be ours; LeaderElection steps down on its own once it cannot renew.
      await this.election!.tick();
    }
  }

  private failed(err: Error): void {
    this.status.connected = false;
    this.status.lastError = err.message;
    this.telemetry.clusterConnected.set(0);
    this.telemetry.emit('clusterUnreachable', { node: this.config.nodeId, error: err.message });
  }

  private async load(): Promise<MemberLoad> {
    const sample = await this.hooks.load();
    const now = Date.now();
    const records = sample.receivedRecords;
    const bytes = sample.receivedBytes;
    const previous = this.previous;
    this.previous = { at: now, records, bytes };
    const seconds = previous === null ? 0 : (now - previous.at) / 1000;
    const rate = (current: number, before: number | undefined) => (seconds > 0 && before !== undefined ? Math.max(0, (current - before) / seconds) : 0);
    return {
      connections: sample.connections,
      recordsPerSec: Math.round(rate(records, previous?.records)),
      bytesPerSec: Math.round(rate(bytes, previous?.bytes)),
      rssBytes: sample.rssBytes,
      memoryState: sample.memoryState,
    };
  }

  private async leaderJobs(members: MemberRecord[]): Promise<void> {
    const totals: ClusterTotals = {
      by: this.config.nodeId, at: Date.now(), members: members.length,
      connections: 0, recordsPerSec: 0, bytesPerSec: 0, rssBytes: 0,
    };
    for (const m of members) {
      totals.connections += m.load.connections;
      totals.recordsPerSec += m.load.recordsPerSec;
      totals.bytesPerSec += m.load.bytesPerSec;
      totals.rssBytes += m.load.rssBytes;
    }
    await this.buckets!.leader.put(TOTALS_KEY, encodeValue(totals));
    this.status.totals = totals;
    const now = Date.now();
    if (now >= this.nextLockPruneAt) {
      this.nextLockPruneAt = now + LOCK_PRUNE_INTERVAL_MS;
      await this.pruneLocks(new Set(members.map((m) => m.id)));
    }
    const after = this.config.pruneHostsAfterMs;
    if (after > 0 && this.hooks.pruneHosts !== null && now >= this.nextHostPruneAt) {
      this.nextHostPruneAt = now + HOST_PRUNE_INTERVAL_MS;
      // Not awaited: pruning a large store takes minutes, and the heartbeat must go on. Its own event reports the count.
      void this.hooks.pruneHosts(after).catch((err: Error) => this.failed(err));
    }
  }

  /** Removes locks whose owner's node is no longer a member (it died without releasing them). */
  private async pruneLocks(alive: Set<string>): Promise<void> {
    const locks = this.buckets!.hostLocks;
    let scanned = 0;
    let removed = 0;
    // kv.keys() here: this bucket has no TTL (see listKeys), and it may hold far more keys than one stream-info answer should carry.
    for await (const key of await locks.keys()) {
      if (++scanned > LOCK_PRUNE_MAX_KEYS) break;
      const entry = await locks.get(key);
      if (entry === null || entry.operation !== 'PUT') continue;
      const record = decodeValue<HostLockRecord>(entry.value);
      if (record !== null && alive.has(record.node)) continue;
      // Conditional on the revision read: a lock rewritten meanwhile by a live node stays.
      await locks.delete(key, { previousSeq: entry.revision }).then(() => removed++, () => undefined);
    }
    if (removed > 0) this.telemetry.emit('clusterLocksPruned', { node: this.config.nodeId, removed, scanned });
  }

  private async readTotals(): Promise<ClusterTotals | null> {
    const entry = await this.buckets!.leader.get(TOTALS_KEY);
    return entry !== null && entry.operation === 'PUT' ? decodeValue<ClusterTotals>(entry.value) : null;
  }

  /**
   * Over its fair share of the cluster's connections (by `shed_connections_over`)
   * or past the soft memory mark, the node asks some agents to reconnect so the
   * balancer places them elsewhere; at most a quarter of its connections per
   * interval, then it waits an interval for the balancer's view to settle.
   */
  private async considerShedding(self: MemberLoad, members: MemberRecord[]): Promise<void> {
    const over = this.config.shedConnectionsOver;
    if (this.hooks.shed === null || over === 0 || members.length < 2 || Date.now() < this.nextShedAt) return;
    // Somewhere to go: another member not itself refusing work.
    if (!members.some((m) => m.id !== this.config.nodeId && m.load.memoryState < 2)) return;
    const total = members.reduce((n, m) => n + m.load.connections, 0);
    // Rounded up: connections are whole, so a node holding the one connection of three nodes (share 1) is not over it,
    // and a shed connection cannot make its new node the one over the share (no ping-pong).
    const fair = Math.ceil(total / members.length);
    let count = 0;
    let reason = '';
    if (self.memoryState >= 1) {
      count = Math.ceil(self.connections * SHED_MEMORY_FRACTION);
      reason = 'memory';
    } else if (self.connections > fair * over) {
      count = self.connections - fair;
      reason = 'connections';
    }
    count = Math.min(count, Math.ceil(self.connections * SHED_MAX_FRACTION));
    if (count <= 0) return;
    const asked = await this.hooks.shed(count);
    this.nextShedAt = Date.now() + this.config.shedIntervalMs;
    this.status.lastShed = { at: Date.now(), asked, reason };
    this.telemetry.emit('clusterShedding', { node: this.config.nodeId, reason, connections: self.connections, fairShare: fair, wanted: count, asked });
  }
}
