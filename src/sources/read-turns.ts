/**
 * Reading in turns, per tenant: how much the connections of one tenant may
 * read in one event-loop turn before they yield to other tenants'.
 *
 * Each connection already yields after READ_TURN_BYTES (see tcp.ts). On top
 * of that a tenant's connections together may read TENANT_TURN_BYTES per
 * turn; past it, every connection of the tenant that read in that turn is
 * parked, and parked connections are resumed in order, as many per turn as
 * the budget covers. A tenant with
 * many flooding connections then gets about TENANT_TURN_BYTES of the loop per
 * turn however many connections it opens, and a turn stays short for the
 * others: deficit round-robin at the source, with turns for rounds.
 */
import type { Tenant } from '../core/identity.js';

/** Bytes one connection reads in a turn before it yields. */
export const READ_TURN_BYTES = 64 * 1024;
/** Bytes all connections of one tenant read in a turn before they yield. */
export const TENANT_TURN_BYTES = 256 * 1024;
/** Parked connections resumed per turn: each reads about READ_TURN_BYTES before it yields again. */
const RESUMES_PER_TURN = Math.max(1, Math.floor(TENANT_TURN_BYTES / READ_TURN_BYTES));

class TenantReads {
  turn = -1;
  bytes = 0;
  readonly parked: (() => void)[] = [];
  /** Index of the next parked connection to resume (a queue without shifting). */
  head = 0;
}

export class ReadTurns {
  private turn = 0;
  private advancing = false;
  private readonly tenants = new WeakMap<Tenant, TenantReads>();
  private readonly waiting = new Set<TenantReads>();

  /** A connection of `tenant` read `bytes`. Returns false once the tenant has had its turn's worth. */
  charge(tenant: Tenant, bytes: number): boolean {
    this.scheduleAdvance();
    let reads = this.tenants.get(tenant);
    if (reads === undefined) {
      reads = new TenantReads();
      this.tenants.set(tenant, reads);
    }
    if (reads.turn !== this.turn) {
      reads.turn = this.turn;
      reads.bytes = 0;
    }
    reads.bytes += bytes;
    return reads.bytes < TENANT_TURN_BYTES;
  }

  /** The turn reads are being charged to now. */
  get current(): number {
    return this.turn;
  }

  /** Whether the tenant used its share of `turn`: its connections that read in it park. */
  exhaustedIn(tenant: Tenant, turn: number): boolean {
    const reads = this.tenants.get(tenant);
    return reads !== undefined && reads.turn === turn && reads.bytes >= TENANT_TURN_BYTES;
  }

  /** A yielding connection of an exhausted tenant: `resume` runs in a later turn, in order. */
  park(tenant: Tenant, resume: () => void): void {
    const reads = this.tenants.get(tenant)!;
    reads.parked.push(resume);
    this.waiting.add(reads);
    this.scheduleAdvance();
  }

  private scheduleAdvance(): void {
    if (this.advancing) return;
    this.advancing = true;
    setImmediate(this.advance);
  }

  private readonly advance = (): void => {
    this.advancing = false;
    this.turn++;
    for (const reads of this.waiting) {
      const end = Math.min(reads.parked.length, reads.head + RESUMES_PER_TURN);
      for (; reads.head < end; reads.head++) {
        const resume = reads.parked[reads.head]!;
        reads.parked[reads.head] = noop; // release the closure
        resume();
      }
      if (reads.head === reads.parked.length) {
        reads.parked.length = 0;
        reads.head = 0;
        this.waiting.delete(reads);
      }
    }
    if (this.waiting.size > 0) this.scheduleAdvance();
  };
}

const noop = (): void => {};

/** One per process: tenants are the node's, connections of every stream listener share it. */
export const readTurns = new ReadTurns();
