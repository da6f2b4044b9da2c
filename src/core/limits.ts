/**
 * Per-tenant rate limits: messages per second and bytes per second, each a
 * token bucket shared by every session of the tenant. Over its limit a tenant
 * is slowed (stream sessions pause reading; TCP backpressure reaches the
 * agents) or, for datagrams and HTTP requests, refused and counted. Other
 * tenants never wait on it: each has its own buckets.
 *
 * The limits are the node's. In a node of several worker processes each
 * worker's limiter holds its part of them (setAllotment): a share of the
 * rates and of the bucket depth, and a number of the tenant's connections,
 * which the primary moves between workers by demand (takeDemand) so that the
 * parts add up to the node's limits.
 */
import { TokenBucket } from './token-bucket.js';

export interface TenantLimits {
  /** 0: unlimited. */
  messagesPerSecond: number;
  /** 0: unlimited. */
  bytesPerSecond: number;
  /** Bucket depth, as time at the rate: how much a quiet tenant may send at once. */
  burstMs: number;
  /** Stream connections the tenant may hold open at once (all listeners of the node); 0: no cap. */
  maxConnections: number;
}

export const UNLIMITED: TenantLimits = { messagesPerSecond: 0, bytesPerSecond: 0, burstMs: 1000, maxConnections: 0 };

/** The longest a held batch waits before it looks at the buckets again: a worker's share may have grown meanwhile. */
export const MAX_LIMIT_WAIT_MS = 250;
/** A held batch waits for at least this much of the rate at once (fewer timers at high rates). */
const WAIT_SLICE_MS = 50;
/** The smallest share a worker holds: a rate of 0 would make a bucket that never refills. */
export const MIN_SHARE = 1e-4;

/** What one process's part of a tenant's limits is (see the module comment). */
export interface LimitAllotment {
  /** Its fraction of the node's rates and burst (0–1). */
  share: number;
  /** How many of the node's max_connections it may hold open (null: all of them). */
  connections: number | null;
}

/** How a tenant used its limits in one process since the last takeDemand(). */
export interface LimitDemand {
  /** Records admitted. */
  records: number;
  /** Bytes admitted. */
  bytes: number;
  /** Something waited or was refused for want of tokens. */
  starved: boolean;
  /** A connection was refused for want of the tenant's connection allowance. */
  connectionsRefused: boolean;
}

function bucketFor(rate: number, burstMs: number, now: number): TokenBucket | null {
  return rate > 0 ? new TokenBucket(rate, Math.max(1, (rate * burstMs) / 1000), now) : null;
}

export class TenantLimiter {
  private messages: TokenBucket | null;
  private bytes: TokenBucket | null;
  private allotment: LimitAllotment;
  private records = 0;
  private bytesAdmitted = 0;
  private starved = false;
  private connectionsRefused = false;
  /** Told when the tenant starts to want more than this process holds (a worker reports at once). */
  onStarved: (() => void) | null = null;

  constructor(private current: TenantLimits, now = Date.now(), allotment: LimitAllotment = { share: 1, connections: null }) {
    this.allotment = allotment;
    const share = clampShare(allotment.share);
    this.messages = bucketFor(current.messagesPerSecond * share, current.burstMs, now);
    this.bytes = bucketFor(current.bytesPerSecond * share, current.burstMs, now);
  }

  /** The node's limits (not this process's part of them). */
  get limits(): TenantLimits {
    return this.current;
  }

  get unlimited(): boolean {
    return this.messages === null && this.bytes === null;
  }

  /** Whether any limit needs sharing between processes. */
  get shared(): boolean {
    return !this.unlimited || this.current.maxConnections > 0;
  }

  /** This process's part of the limits (1 and null in a single process). */
  get part(): LimitAllotment {
    return this.allotment;
  }

  /** Whether one more connection fits the tenant's cap, given how many it holds in this process. */
  admitConnection(open: number): boolean {
    if (this.current.maxConnections <= 0) return true;
    const cap = this.allotment.connections ?? this.current.maxConnections;
    if (open < cap) return true;
    this.connectionsRefused = true;
    this.markStarved();
    return false;
  }

  /** Change the limits at runtime (the admin API's one way to do it); this process keeps its share. */
  set(limits: TenantLimits, now = Date.now()): void {
    this.current = limits;
    this.resize(now);
  }

  /** This process's part of the node's limits (set by the primary). */
  setAllotment(allotment: LimitAllotment, now = Date.now()): void {
    this.allotment = allotment;
    this.resize(now);
  }

  private resize(now: number): void {
    const share = clampShare(this.allotment.share);
    this.messages = resize(this.messages, this.current.messagesPerSecond * share, this.current.burstMs, now);
    this.bytes = resize(this.bytes, this.current.bytesPerSecond * share, this.current.burstMs, now);
  }

  /** The use since the last call, and start counting anew. */
  takeDemand(): LimitDemand {
    const demand = { records: this.records, bytes: this.bytesAdmitted, starved: this.starved, connectionsRefused: this.connectionsRefused };
    this.records = 0;
    this.bytesAdmitted = 0;
    this.starved = false;
    this.connectionsRefused = false;
    return demand;
  }

  /**
   * For a stream's batch: take the tokens of as many leading records as both
   * buckets cover now and return that count (the rest waits: see wait()). A
   * record larger than the byte bucket passes when the bucket is full, or it
   * could never pass.
   */
  takeLeading(records: readonly { size: number }[], now: number): number {
    const messages = this.messages === null ? Infinity : Math.floor(this.messages.available(now));
    const bytes = this.bytes === null ? Infinity : this.bytes.available(now);
    const whole = this.bytes === null || bytes >= this.bytes.depth;
    const most = Math.min(records.length, messages);
    let count = 0;
    let size = 0;
    while (count < most) {
      const next = records[count]!.size;
      if (size + next > bytes && !(count === 0 && whole)) break;
      size += next;
      count++;
    }
    if (count > 0) this.admitted(count, size, now);
    return count;
  }

  /**
   * ms until some of `records` (held: none passed) could pass: a slice of
   * the rate, not the whole batch, and never more than MAX_LIMIT_WAIT_MS.
   */
  wait(records: readonly { size: number }[], now: number): number {
    this.markStarved();
    let want = 0;
    if (this.messages !== null) {
      const rate = this.current.messagesPerSecond * clampShare(this.allotment.share);
      const slice = Math.max(1, Math.ceil((rate * WAIT_SLICE_MS) / 1000));
      want = this.messages.shortfall(Math.min(records.length, slice), now);
    }
    if (this.bytes !== null && records.length > 0) want = Math.max(want, this.bytes.shortfall(records[0]!.size, now));
    return Math.max(1, Math.min(MAX_LIMIT_WAIT_MS, want));
  }

  /**
   * All or nothing, for requests that can be answered "retry later": take the
   * tokens if both buckets cover the batch and return 0, else take nothing and
   * return the ms after which they would.
   */
  tryCharge(records: number, bytes: number, now: number): number {
    const a = this.messages === null ? 0 : this.messages.shortfall(records, now);
    const b = this.bytes === null ? 0 : this.bytes.shortfall(bytes, now);
    if (a > 0 || b > 0) {
      this.markStarved();
      return a > b ? a : b;
    }
    this.admitted(records, bytes, now);
    return 0;
  }

  /** Admit one datagram if both buckets cover it; otherwise it is to be dropped. */
  admit(bytes: number, now: number): boolean {
    if (this.messages !== null && this.messages.available(now) < 1) return this.refused();
    if (this.bytes !== null && this.bytes.available(now) < bytes) return this.refused();
    this.admitted(1, bytes, now);
    return true;
  }

  private admitted(records: number, bytes: number, now: number): void {
    this.messages?.take(records, now);
    this.bytes?.take(bytes, now);
    this.records += records;
    this.bytesAdmitted += bytes;
  }

  private refused(): false {
    this.markStarved();
    return false;
  }

  private markStarved(): void {
    if (this.starved) return;
    this.starved = true;
    this.onStarved?.();
  }
}

function clampShare(share: number): number {
  return share > MIN_SHARE ? Math.min(1, share) : MIN_SHARE;
}

function resize(bucket: TokenBucket | null, rate: number, burstMs: number, now: number): TokenBucket | null {
  if (rate <= 0) return null;
  if (bucket === null) return bucketFor(rate, burstMs, now);
  bucket.available(now); // refilled at the old rate up to now
  bucket.set(rate, Math.max(1, (rate * burstMs) / 1000));
  return bucket;
}
