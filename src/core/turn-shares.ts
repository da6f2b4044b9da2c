/**
 * Each tenant's share of an event-loop turn's work: a tenant that floods,
 * with no rate limit set, must not lengthen the turn every other tenant's
 * records wait behind.
 *
 * Work is counted in bytes read (what a turn then parses, routes and writes
 * grows with them). A turn's budget (TURN_WORK_BYTES) is split evenly among
 * the tenants that read in it or in the turn before; each tenant's balance is
 * refilled by its share at every turn's end (never beyond one share) and
 * charged by what its sessions read. A tenant under its share is served at
 * once. A session that takes its tenant's balance to zero or below is
 * deferred: it stops reading (TCP backpressure reaches the agent) until its
 * tenant's balance is positive again at a turn's end, when its deferred
 * sessions are resumed oldest first, as many as the balance covers reads of
 * READ_BYTES. A flooder thus reads about its share per turn, one read at a
 * time, and, since the node keeps turning while it has sessions deferred, it
 * still gets whatever capacity the others leave.
 */
import type { Counter } from 'prom-client';
import type { Telemetry } from '../telemetry/telemetry.js';
import type { Tenant } from './identity.js';
import type { EndOfTurn, TurnListener } from './turns.js';

/** The work of one event-loop turn, in bytes read, that the tenants reading in it share. */
export const TURN_WORK_BYTES = 128 * 1024;
/** The least share a tenant gets, however many tenants read: a few records' worth. */
export const MIN_TENANT_TURN_BYTES = 8 * 1024;
/** What one stream read may bring (libuv's read size): a resumed session may read this much at once. */
export const READ_BYTES = 64 * 1024;

/** A tenant's share of a turn of `budget` bytes among `tenants` reading tenants. */
export function tenantTurnShare(budget: number, tenants: number): number {
  return Math.max(MIN_TENANT_TURN_BYTES, Math.floor(budget / Math.max(1, tenants)));
}

/** What waits for its tenant's next share: a session that stopped reading, an HTTP request. */
export interface TurnShareWaiter {
  /** Its tenant's balance is positive again: it may read. */
  resumeTurn(): void;
}

/** One tenant's account (made on its first read). */
export class TenantTurnAccount {
  /** Bytes it may still read before its sessions are deferred; below 0: its debt. */
  balance = 0;
  /** The turn its balance was last refilled for. */
  refilledTurn = -1;
  /** The turn it last read in (counts it among the reading tenants). */
  readTurn = -1;
  /** Deferred, oldest first. */
  readonly waiting: TurnShareWaiter[] = [];
  constructor(readonly deferred: Counter.Internal) {}
}

export class TurnShares implements TurnListener {
  private turn = 0;
  private readingNow = 0;
  private readingLastTurn = 0;
  /** Each turn's share, fixed at its start (from the tenants that read in the turn before). */
  private turnShare: number;
  private enlisted = false;
  private readonly owing = new Set<TenantTurnAccount>();
  /** Weak: a tenant replaced by a configuration reload takes its account with it. */
  private readonly accounts = new WeakMap<Tenant, TenantTurnAccount>();

  constructor(
    private readonly turnEnd: EndOfTurn,
    private readonly telemetry: Telemetry,
    readonly budget = TURN_WORK_BYTES,
  ) {
    this.turnShare = tenantTurnShare(budget, 0);
  }

  /** This turn's share of each tenant. */
  get share(): number {
    return this.turnShare;
  }

  account(tenant: Tenant): TenantTurnAccount {
    let account = this.accounts.get(tenant);
    if (account === undefined) {
      account = new TenantTurnAccount(this.telemetry.tenantTurnDeferred.labels({ tenant: this.telemetry.tenantLabel(tenant.id) }));
      this.accounts.set(tenant, account);
    }
    return account;
  }

  /** `bytes` read for `account`'s tenant; false when it has used its share of the turn (then defer what reads for it). */
  charge(account: TenantTurnAccount, bytes: number): boolean {
    if (account.readTurn !== this.turn) {
      account.readTurn = this.turn;
      this.readingNow++;
    }
    this.refill(account);
    account.balance -= bytes;
    this.enlist();
    return account.balance > 0;
  }

  /** `waiter` waits for its tenant's next share (counted as a deferral). */
  defer(account: TenantTurnAccount, waiter: TurnShareWaiter): void {
    account.waiting.push(waiter);
    account.deferred.inc();
    this.owing.add(account);
    this.enlist();
  }

  /** Resolves once `account`'s tenant has a share again (counted as a deferral). */
  nextShare(account: TenantTurnAccount): Promise<void> {
    return new Promise((resolve) => this.defer(account, { resumeTurn: resolve }));
  }

  turnEnded(): void {
    this.enlisted = false;
    this.readingLastTurn = this.readingNow;
    this.readingNow = 0;
    this.turn++;
    this.turnShare = tenantTurnShare(this.budget, this.readingLastTurn);
    for (const account of this.owing) {
      this.refill(account);
      let balance = account.balance;
      const waiting = account.waiting;
      let resumed = 0;
      while (balance > 0 && resumed < waiting.length) {
        balance -= READ_BYTES;
        resumed++;
      }
      if (resumed === 0) continue;
      const go = waiting.splice(0, resumed);
      if (waiting.length === 0) this.owing.delete(account);
      for (const waiter of go) waiter.resumeTurn();
    }
    // While anything waits the loop keeps turning (an Immediate per turn), so the waiters' balances refill.
    if (this.owing.size > 0) this.enlist();
  }

  private refill(account: TenantTurnAccount): void {
    const turns = this.turn - account.refilledTurn;
    if (turns === 0) return;
    account.refilledTurn = this.turn;
    account.balance = Math.min(account.balance + turns * this.turnShare, this.turnShare);
  }

  private enlist(): void {
    if (this.enlisted) return;
    this.enlisted = true;
    this.turnEnd.enlist(this);
  }
}
