/**
 * The cluster's shared state: three JetStream key-value buckets, so the
 * engine (not sluice) provides ordering, compare-and-set and expiry.
 *
 * - `<prefix>_members`: one key per node, its heartbeat; the bucket's
 *   time-to-live removes a node that stopped writing.
 * - `<prefix>_leader`: the key `leader`, created by whoever finds it absent
 *   and renewed by compare-and-set; the time-to-live frees it when the
 *   leader dies. (A bucket's TTL applies to all its keys, hence a bucket of its own.)
 * - `<prefix>_host_locks`: one key per host key, naming the session's owner;
 *   no TTL: ownership moves by takeover, and the leader removes locks whose
 *   owner has left the cluster.
 *
 * The buckets are memory-backed: everything in them is rewritten by live
 * nodes within a heartbeat (locks, at the host's next connection), so a NATS
 * restart loses nothing that matters, and a reconnect storm's lock writes
 * cost no disk.
 */
import { connect, StorageType, type JetStreamManager, type KV, type NatsConnection } from 'nats';
import type { ClusterConfig } from './config.js';

export interface ClusterBuckets {
  members: KV;
  leader: KV;
  hostLocks: KV;
  /** Lists a bucket's keys (see {@link listKeys}). */
  keysOf(bucket: KV): Promise<string[]>;
}

export const MEMBERS_BUCKET = 'members';
export const LEADER_BUCKET = 'leader';
export const HOST_LOCKS_BUCKET = 'host_locks';

/**
 * Connects for cluster coordination (rejects when no server answers within
 * 2 s: callers retry); once connected, it reconnects on its own, forever.
 */
export async function connectCluster(config: ClusterConfig, role: string): Promise<NatsConnection> {
  return connect({
    servers: config.nats,
    name: `sluice ${config.nodeId} ${role}`,
    timeout: 2000,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    reconnectJitter: 250,
    noAsyncTraces: true,
  });
}

/** Opens (creating when missing) the three buckets. A bucket that exists keeps the settings it was created with. */
export async function openClusterBuckets(nc: NatsConnection, config: ClusterConfig): Promise<ClusterBuckets> {
  const js = nc.jetstream({ timeout: Math.max(2000, config.heartbeatIntervalMs) });
  const open = (name: string, ttl: number) => js.views.kv(`${config.bucketPrefix}_${name}`, {
    history: 1, ttl, replicas: config.replicas, storage: StorageType.Memory,
  });
  const [members, leader, hostLocks] = await Promise.all([
    open(MEMBERS_BUCKET, config.memberTtlMs),
    open(LEADER_BUCKET, config.leaderTtlMs),
    open(HOST_LOCKS_BUCKET, 0),
  ]);
  const jsm = await nc.jetstreamManager({ timeout: Math.max(2000, config.heartbeatIntervalMs) });
  const names = new Map<KV, string>([
    [members, `${config.bucketPrefix}_${MEMBERS_BUCKET}`],
    [leader, `${config.bucketPrefix}_${LEADER_BUCKET}`],
    [hostLocks, `${config.bucketPrefix}_${HOST_LOCKS_BUCKET}`],
  ]);
  return { members, leader, hostLocks, keysOf: (bucket) => listKeys(jsm, names.get(bucket)!) };
}

/**
 * The keys a bucket holds now, from one stream-info request (the subjects that
 * have a message), not `kv.keys()`: its consumer counts on the messages it was
 * told of, and one that expires (the bucket's TTL) while it lists leaves it
 * waiting forever — seen in CI as a membership listing that never returned.
 * A key deleted meanwhile is still listed; its `get` then finds a delete marker.
 */
async function listKeys(jsm: JetStreamManager, bucket: string): Promise<string[]> {
  const prefix = `$KV.${bucket}.`;
  const info = await jsm.streams.info(`KV_${bucket}`, { subjects_filter: '>' });
  return Object.keys(info.state.subjects ?? {}).filter((s) => s.startsWith(prefix)).map((s) => s.slice(prefix.length));
}

/** Removes the buckets (tests and `bucket_prefix` changes; never done by a running node). */
export async function destroyClusterBuckets(nc: NatsConnection, bucketPrefix: string): Promise<void> {
  const jsm = await nc.jetstreamManager();
  for (const name of [MEMBERS_BUCKET, LEADER_BUCKET, HOST_LOCKS_BUCKET]) {
    await jsm.streams.delete(`KV_${bucketPrefix}_${name}`).catch(() => false);
  }
}

/** Whether a KV write failed because another writer got there first (compare-and-set), not for lack of a connection. */
export function isWrongRevision(err: unknown): boolean {
  const message = (err as Error | null)?.message ?? '';
  return /wrong last sequence|key exists/i.test(message);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeValue(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/** The JSON a value holds, or null when it holds none (a delete marker, or not JSON). */
export function decodeValue<T>(bytes: Uint8Array): T | null {
  if (bytes.length === 0) return null;
  try {
    return JSON.parse(decoder.decode(bytes)) as T;
  } catch {
    return null;
  }
}
