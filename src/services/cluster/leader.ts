/**
 * Leader election on one key: a node that finds the key absent creates it
 * (create fails when it exists: compare-and-set), the leader renews it each
 * heartbeat by updating the revision it last wrote (fails when anyone else
 * wrote meanwhile), and the bucket's time-to-live removes it when the leader
 * stops renewing. A leader that cannot renew steps down before its key can
 * have expired, so two nodes never both believe they lead.
 */
import type { KV } from 'nats';
import { decodeValue, encodeValue, isWrongRevision } from './buckets.js';

const LEADER_KEY = 'leader';

export interface LeaderRecord {
  id: string;
  /** Epoch ms the term began. */
  since: number;
}

export class LeaderElection {
  /** The leader as last seen (null: none known). */
  leader: LeaderRecord | null = null;
  private revision = 0;
  /** Epoch ms of the last successful create or renewal (leader only). */
  private renewedAt = 0;

  constructor(
    private readonly kv: KV,
    private readonly nodeId: string,
    private readonly ttlMs: number,
    /** How often tick() runs: a leader gives up one interval before its key could expire. */
    private readonly intervalMs: number,
    private readonly onChange: (leading: boolean, leader: LeaderRecord | null) => void,
  ) {}

  get leading(): boolean {
    return this.revision !== 0;
  }

  /** Renew (as leader) or try to become leader; call every interval. Never throws. */
  async tick(): Promise<void> {
    if (this.leading) {
      const record = this.leader!;
      try {
        this.revision = await this.kv.update(LEADER_KEY, encodeValue(record), this.revision);
        this.renewedAt = Date.now();
      } catch (err) {
        // Someone else wrote the key (our term had expired), or we cannot reach NATS and our key may expire any moment.
        if (isWrongRevision(err) || Date.now() - this.renewedAt >= this.ttlMs - this.intervalMs) this.stepDown();
      }
      return;
    }
    const record: LeaderRecord = { id: this.nodeId, since: Date.now() };
    try {
      this.revision = await this.kv.create(LEADER_KEY, encodeValue(record));
      this.renewedAt = Date.now();
      this.leader = record;
      this.onChange(true, record);
      return;
    } catch {
      // Held by another node (or NATS unreachable): learn who leads.
    }
    try {
      const entry = await this.kv.get(LEADER_KEY);
      const seen = entry !== null && entry.operation === 'PUT' ? decodeValue<LeaderRecord>(entry.value) : null;
      if (seen?.id !== this.leader?.id || seen?.since !== this.leader?.since) {
        this.leader = seen;
        this.onChange(false, seen);
      }
    } catch {
      // Unreachable: keep the last known leader; the next tick asks again.
    }
  }

  /** Give the key up now (a clean stop), so another node takes over at its next tick rather than after the time-to-live. */
  async resign(): Promise<void> {
    if (!this.leading) return;
    const revision = this.revision;
    this.stepDown();
    await this.kv.delete(LEADER_KEY, { previousSeq: revision }).catch(() => undefined);
  }

  private stepDown(): void {
    this.revision = 0;
    this.leader = null;
    this.onChange(false, null);
  }
}
