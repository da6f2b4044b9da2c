/**
 * Fairness between tenants where their records wait for one resource (a
 * sink's connection, the host metadata service, a sink's queue space).
 *
 * DeficitRoundRobin serves per-tenant queues in turn (Shreedhar & Varghese,
 * "Efficient Fair Queuing using Deficit Round Robin", 1995): each backlogged
 * flow may take up to `quantum` units (bytes) per turn, and what it did not
 * use carries over to its next turn. A flow backlogged over an interval gets
 * within quantum + largest item of any other backlogged flow's service, and
 * picking the next item costs O(1) when items are no larger than the
 * quantum. The round is an intrusive linked list: no allocation per item.
 *
 * FairShares turns a sink's high-water mark into per-tenant backpressure:
 * past the mark, only tenants holding more than their share (mark / tenants
 * with something queued) are asked to slow down, so a flooding tenant is
 * paused while the others keep flowing.
 */

/** One flow of a DeficitRoundRobin: a per-tenant queue embeds (or extends) this. */
export class DrrFlow {
  /** Units this flow may still take in its current turn. */
  deficit = 0;
  /** In the round (has, or had at its last visit, something queued). */
  active = false;
  /** Its current turn began (its quantum was added). */
  inTurn = false;
  next: DrrFlow | null = null;
}

export class DeficitRoundRobin<F extends DrrFlow> {
  private head: F | null = null;
  private tail: F | null = null;
  private count = 0;

  /**
   * `cost(flow)`: the cost of the flow's next item, 0 when it has none.
   * `quantum`: units per turn; keep it at least the largest item for O(1) picks.
   */
  constructor(readonly quantum: number, private readonly cost: (flow: F) => number) {
    if (!(quantum > 0)) throw new RangeError('quantum must be above 0');
  }

  /** Flows in the round. */
  get size(): number {
    return this.count;
  }

  /** The flow has something queued: it joins the round (at the end) unless it is in it. O(1). */
  activate(flow: F): void {
    if (flow.active) return;
    flow.active = true;
    flow.inTurn = false;
    flow.deficit = 0;
    flow.next = null;
    if (this.tail === null) this.head = flow;
    else this.tail.next = flow;
    this.tail = flow;
    this.count++;
  }

  /**
   * The flow whose next item is to be served now, or null when no flow has
   * anything, or when that item costs more than `room` (a batch that is
   * full: nothing changes, and the next pick starts there). The caller takes
   * the item and reports it with served().
   */
  pick(room = Infinity): F | null {
    for (;;) {
      const flow = this.head;
      if (flow === null) return null;
      const cost = this.cost(flow);
      if (cost <= 0) {
        this.removeHead();
        continue;
      }
      if (cost > room) return null;
      if (!flow.inTurn) {
        flow.inTurn = true;
        flow.deficit += this.quantum;
      }
      if (cost <= flow.deficit) return flow;
      // Its turn is over: what it did not use waits for its next turn.
      flow.inTurn = false;
      if (this.count > 1) this.rotate();
    }
  }

  /** The item pick() offered was taken, at `cost`. */
  served(flow: F, cost: number): void {
    flow.deficit -= cost;
    if (this.cost(flow) <= 0 && this.head === flow) this.removeHead();
  }

  /** Forget a flow (its queue is gone). O(n): for rare events only. */
  remove(flow: F): void {
    if (!flow.active) return;
    let prev: DrrFlow | null = null;
    for (let at: DrrFlow | null = this.head; at !== null; prev = at, at = at.next) {
      if (at !== flow) continue;
      if (prev === null) this.head = at.next as F | null;
      else prev.next = at.next;
      if (this.tail === at) this.tail = prev as F | null;
      this.detach(flow);
      return;
    }
  }

  private removeHead(): void {
    const flow = this.head!;
    this.head = flow.next as F | null;
    if (this.head === null) this.tail = null;
    this.detach(flow);
  }

  private detach(flow: F): void {
    flow.next = null;
    flow.active = false;
    flow.inTurn = false;
    // An idle flow keeps no credit (DRR: deficit resets when the queue empties).
    flow.deficit = 0;
    this.count--;
  }

  private rotate(): void {
    const flow = this.head!;
    this.head = flow.next as F | null;
    flow.next = null;
    this.tail!.next = flow;
    this.tail = flow;
  }
}

/** Multiple of the high-water mark at which every tenant is asked to slow down. */
export const HARD_BOUND = 4;

/** One tenant's part of a shared queue. */
export class TenantShare {
  queued = 0;
  /** write() told this tenant to slow down; a drain notice is owed. */
  paused = false;
  constructor(readonly tenant: string) {}
}

/**
 * Per-tenant accounting of one queue with a high-water mark.
 *
 * Below the mark nobody is slowed. At or above it, a tenant is asked to slow
 * down once it holds at least its share: mark / tenants with something
 * queued. At HARD_BOUND times the mark everybody is (the queue's bound,
 * whatever the mix of tenants: shares shrink as tenants join, so without it
 * the total could grow with the number of tenants). A paused tenant is told to go on (`onResume(tenant)`)
 * once it holds at most half its share, or when the whole queue is back
 * under half the mark (`onResume(null)`: every paused tenant).
 */
export class FairShares {
  total = 0;
  private readonly shares = new Map<string, TenantShare>();
  private backlogged = 0;
  private pausedCount = 0;

  constructor(private highWater: number, private readonly onResume: (tenant: string | null) => void) {}

  /**
   * The share of `tenant`, created on first use and kept (tenants are
   * configured, so they are few): callers hold it and pay no lookup per batch.
   */
  share(tenant: string): TenantShare {
    let share = this.shares.get(tenant);
    if (share === undefined) {
      share = new TenantShare(tenant);
      this.shares.set(tenant, share);
    }
    return share;
  }

  /** Every tenant's share (read at scrape time for the queued-bytes gauges). */
  tenants(): IterableIterator<TenantShare> {
    return this.shares.values();
  }

  get highWaterBytes(): number {
    return this.highWater;
  }

  setHighWater(bytes: number): void {
    this.highWater = bytes;
  }

  /** Whether any tenant is paused. */
  get anyPaused(): boolean {
    return this.pausedCount > 0;
  }

  /** Bytes queued for the tenant; returns false when the tenant should slow down. */
  add(share: TenantShare, bytes: number): boolean {
    if (share.queued === 0 && bytes > 0) this.backlogged++;
    share.queued += bytes;
    this.total += bytes;
    if (this.over(share)) {
      if (!share.paused) {
        share.paused = true;
        this.pausedCount++;
      }
      return false;
    }
    return true;
  }

  /** Bytes of the tenant left the queue (written, sent, or given up on). */
  remove(share: TenantShare, bytes: number): void {
    share.queued -= bytes;
    this.total -= bytes;
    if (share.queued <= 0) {
      share.queued = 0;
      this.backlogged--;
    }
    if (this.pausedCount === 0) return;
    if (this.total <= this.highWater / 2) {
      this.resumeAll();
      return;
    }
    if (share.paused && share.queued * Math.max(1, this.backlogged) <= this.highWater / 2) {
      share.paused = false;
      this.pausedCount--;
      this.onResume(share.tenant);
    }
  }

  /**
   * Whether the tenant is asked to slow down (what its last add() said, or
   * would say now). A tenant told so is owed a resume notice, so asking
   * counts as telling: it is marked paused too.
   */
  congested(tenant: string): boolean {
    const share = this.share(tenant);
    if (share.paused) return true;
    if (!this.over(share)) return false;
    share.paused = true;
    this.pausedCount++;
    return true;
  }

  /** Drop every tenant's count (the queue was given up on) and let everybody go on. */
  clear(): void {
    this.total = 0;
    this.backlogged = 0;
    for (const share of this.shares.values()) share.queued = 0;
    this.resumeAll();
  }

  /** Whether the tenant holds at least its share of the mark (mark / tenants with something queued). */
  overShare(share: TenantShare): boolean {
    return share.queued * Math.max(1, this.backlogged) >= this.highWater;
  }

  private over(share: TenantShare): boolean {
    if (this.total < this.highWater) return false;
    return this.total >= HARD_BOUND * this.highWater || this.overShare(share);
  }

  private resumeAll(): void {
    if (this.pausedCount === 0) return;
    for (const share of this.shares.values()) share.paused = false;
    this.pausedCount = 0;
    this.onResume(null);
  }
}
