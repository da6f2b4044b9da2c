/**
 * Cluster membership: each node writes its identity and load under its own
 * key every heartbeat; the bucket's time-to-live makes a node that stopped
 * (crashed, partitioned) disappear without anyone deciding it.
 */
import type { KV } from 'nats';
import { decodeValue, encodeValue, type ClusterBuckets } from './buckets.js';

export interface MemberLoad {
  /** Open agent connections (stream sessions). */
  connections: number;
  /** Records received per second over the last heartbeat interval. */
  recordsPerSec: number;
  bytesPerSec: number;
  /** Resident memory of all the node's processes. */
  rssBytes: number;
  /** The memory governor's worst state among the node's workers: 0 normal, 1 soft, 2 hard. */
  memoryState: number;
}

export interface MemberRecord {
  id: string;
  version: string;
  /** Epoch ms. */
  startedAt: number;
  /** Epoch ms of this heartbeat (the writer's clock). */
  heartbeatAt: number;
  /** Where its admin server listens, e.g. `http://10.0.0.21:8080` (null: none). */
  admin: string | null;
  load: MemberLoad;
}

export class Membership {
  private readonly kv: KV;

  constructor(private readonly buckets: ClusterBuckets, readonly self: Omit<MemberRecord, 'heartbeatAt' | 'load'>) {
    this.kv = buckets.members;
  }

  async heartbeat(load: MemberLoad): Promise<void> {
    const record: MemberRecord = { ...this.self, heartbeatAt: Date.now(), load };
    await this.kv.put(this.self.id, encodeValue(record));
  }

  /** The members whose heartbeat has not expired, by id. */
  async members(): Promise<MemberRecord[]> {
    const entries = await Promise.all((await this.buckets.keysOf(this.kv)).map((key) => this.kv.get(key)));
    const members: MemberRecord[] = [];
    for (const entry of entries) {
      if (entry === null || entry.operation !== 'PUT') continue;
      const record = decodeValue<MemberRecord>(entry.value);
      if (record !== null && typeof record.id === 'string') members.push(record);
    }
    return members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Leaves at once (a clean stop), rather than after the time-to-live. */
  async leave(): Promise<void> {
    await this.kv.delete(this.self.id);
  }
}
