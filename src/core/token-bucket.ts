/**
 * A token bucket: `rate` tokens per second, holding at most `burst`. The one
 * rate limiter every stage uses.
 *
 * take() may drive the balance below zero (debt) and says how long until it
 * is repaid: that is how a stream that was already read is slowed down rather
 * than dropped. tryTake() never goes into debt: for datagrams, which can only
 * be dropped.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(private rate: number, private burst: number, now: number) {
    this.tokens = burst;
    this.last = now;
  }

  /** Change rate and depth at runtime; the balance is kept (capped at the new depth). */
  set(rate: number, burst: number): void {
    this.rate = rate;
    this.burst = burst;
    if (this.tokens > burst) this.tokens = burst;
  }

  /** Tokens now (negative: debt). */
  available(now: number): number {
    this.refill(now);
    return this.tokens;
  }

  /** The bucket's depth. */
  get depth(): number {
    return this.burst;
  }

  /** Take `n` tokens, into debt if need be. Returns ms until the balance is back to zero (0: none owed). */
  take(n: number, now: number): number {
    this.refill(now);
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.rate) * 1000);
  }

  /** Take `n` tokens only if the balance covers them. */
  tryTake(n: number, now: number): boolean {
    this.refill(now);
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /**
   * ms until `n` tokens would be available (0: now). Takes nothing. A request
   * larger than the bucket needs only a full bucket (it then goes into debt),
   * or it could never pass.
   */
  shortfall(n: number, now: number): number {
    this.refill(now);
    const need = n < this.burst ? n : this.burst;
    return this.tokens >= need ? 0 : Math.ceil(((need - this.tokens) / this.rate) * 1000);
  }

  private refill(now: number): void {
    const elapsed = now - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
      this.last = now;
    }
  }
}
