/**
 * Per-tenant rate limits: messages per second and bytes per second, each a
 * token bucket shared by every session of the tenant. Over its limit a tenant
 * is slowed (stream sessions pause reading; TCP backpressure reaches the
 * agents) or, for datagrams, dropped and counted. Other tenants never wait on
 * it: each has its own buckets.
 */
import { TokenBucket } from './token-bucket.js';

export interface TenantLimits {
  /** 0: unlimited. */
  messagesPerSecond: number;
  /** 0: unlimited. */
  bytesPerSecond: number;
  /** Bucket depth, as time at the rate: how much a quiet tenant may send at once. */
  burstMs: number;
  /** Stream connections the tenant may hold open at once (per source); 0: no cap. */
  maxConnections: number;
}

export const UNLIMITED: TenantLimits = { messagesPerSecond: 0, bytesPerSecond: 0, burstMs: 1000, maxConnections: 0 };

function bucketFor(rate: number, burstMs: number, now: number): TokenBucket | null {
  return rate > 0 ? new TokenBucket(rate, Math.max(1, (rate * burstMs) / 1000), now) : null;
}

export class TenantLimiter {
  private messages: TokenBucket | null;
  private bytes: TokenBucket | null;

  constructor(private current: TenantLimits, now = Date.now()) {
    this.messages = bucketFor(current.messagesPerSecond, current.burstMs, now);
    this.bytes = bucketFor(current.bytesPerSecond, current.burstMs, now);
  }

  get limits(): TenantLimits {
    return this.current;
  }

  /** Whether one more connection fits the tenant's cap, given how many it holds. */
  admitConnection(open: number): boolean {
    return this.current.maxConnections <= 0 || open < this.current.maxConnections;
  }

  get unlimited(): boolean {
    return this.messages === null && this.bytes === null;
  }

  /** Change the limits at runtime (the admin API's one way to do it). */
  set(limits: TenantLimits, now = Date.now()): void {
    this.current = limits;
    this.messages = resize(this.messages, limits.messagesPerSecond, limits.burstMs, now);
    this.bytes = resize(this.bytes, limits.bytesPerSecond, limits.burstMs, now);
  }

  /** Charge a batch already read. Returns how long (ms) the sender should pause to stay within the limits. */
  charge(records: number, bytes: number, now: number): number {
    const a = this.messages === null ? 0 : this.messages.take(records, now);
    const b = this.bytes === null ? 0 : this.bytes.take(bytes, now);
    return a > b ? a : b;
  }

  /**
   * All or nothing, for requests that can be answered "retry later": take the
   * tokens if both buckets cover the batch and return 0, else take nothing and
   * return the ms after which they would.
   */
  tryCharge(records: number, bytes: number, now: number): number {
    const a = this.messages === null ? 0 : this.messages.shortfall(records, now);
    const b = this.bytes === null ? 0 : this.bytes.shortfall(bytes, now);
    if (a > 0 || b > 0) return a > b ? a : b;
    this.messages?.take(records, now);
    this.bytes?.take(bytes, now);
    return 0;
  }

  /** Admit one datagram if both buckets cover it; otherwise it is to be dropped. */
  admit(bytes: number, now: number): boolean {
    if (this.messages !== null && !this.messages.tryTake(1, now)) return false;
    if (this.bytes !== null && !this.bytes.tryTake(bytes, now)) {
      this.messages?.take(-1, now); // give back the message token: the datagram is not admitted
      return false;
    }
    return true;
  }
}

function resize(bucket: TokenBucket | null, rate: number, burstMs: number, now: number): TokenBucket | null {
  if (rate <= 0) return null;
  if (bucket === null) return bucketFor(rate, burstMs, now);
  bucket.set(rate, Math.max(1, (rate * burstMs) / 1000));
  return bucket;
}
