/**
 * A tenant's limits are the node's, whatever the number of workers: the
 * primary hands each worker a part of them and moves the parts by demand.
 *
 * - Rates (messages and bytes per second, and the burst with them): each
 *   worker gets a share; the shares of the serving workers add up to 1. A
 *   worker that is not short of tokens gets what it used plus headroom; what
 *   is left is split evenly among the workers that were short (a session held,
 *   a datagram dropped, a request answered 429). The buckets keep their
 *   balance when a share changes (capped at the new depth), so the node never
 *   admits more than rate × time + burst.
 * - Connections (max_connections): each worker may hold its open connections
 *   plus a part of what the node has free, more for a worker that refused one.
 *   A tenth of what is free is kept back for workers that start. A worker's
 *   allowance only grows out of what no worker may use any more:
 *   a cut counts once the worker has reported it (and a draining worker's
 *   allowance until it exits), so the node never holds more than the cap.
 *
 * Workers report every REPORT_INTERVAL_MS, and at once when a tenant starts
 * to want more than they hold.
 */
import type { LimitAllotment } from '../../core/limits.js';

/** How often a worker reports its use of the shared limits. */
export const REPORT_INTERVAL_MS = 250;
/** A worker short of tokens reports at once, but not more often than this. */
export const URGENT_REPORT_MS = 50;

/** One tenant's use of its limits in one worker since the worker's last report. */
export interface TenantUse {
  /** Fraction of the node's rate the worker admitted (the larger of messages and bytes). */
  load: number;
  /** Something waited or was refused for want of tokens. */
  starved: boolean;
  /** The tenant's open stream connections in the worker. */
  connections: number;
  /** The connection allowance the worker applies now. */
  allowance: number;
  connectionsRefused: boolean;
  /** The node's cap (0: none), as the worker has it (it changes at runtime). */
  maxConnections: number;
}

export type UseReport = Record<string, TenantUse>;
export type Allotments = Record<string, LimitAllotment>;

/** An idle worker's share of a rate, all such workers together (so a new session there is not starved for long). */
const IDLE_SHARES = 0.04;
/** Headroom over what a worker used: its use may grow a little without waiting for the next report. */
const HEADROOM = 1.25;
/** A worker short of connections gets this many times the part of one that was not. */
const REFUSED_WEIGHT = 4;
/** The part of a cap's free connections kept back for workers that start. */
const RESERVE = 0.1;
/** A share that grows by less than this (relative) is not sent. */
const SHARE_CHANGE = 0.01;

/** What the primary sends one worker at once: its changed parts, numbered so its reports can say which it has applied. */
export interface AllotMessage {
  seq: number;
  allotments: Allotments;
}

export class LimitShares {
  private readonly reports = new Map<number, UseReport>();
  private readonly sent = new Map<number, Allotments>();
  /** Connection allowances sent to a worker and not yet applied by it (as its reports say), in order. */
  private readonly inFlight = new Map<number, { seq: number; tenant: string; connections: number }[]>();
  /** The connection allowance each worker applies (as of the allotments it has applied, or its report). */
  private readonly applied = new Map<number, Map<string, number>>();
  private nextSeq = 1;

  /**
   * A worker's report: the tenants whose use changed since its last one (the
   * others stand as last reported), having applied the allotments up to `appliedSeq`.
   */
  report(worker: number, report: UseReport, appliedSeq = 0): void {
    const known = this.reports.get(worker);
    if (known === undefined) this.reports.set(worker, { ...report });
    else Object.assign(known, report);
    const applied = this.applied.get(worker) ?? this.applied.set(worker, new Map()).get(worker)!;
    const flying = this.inFlight.get(worker) ?? [];
    while (flying.length > 0 && flying[0]!.seq <= appliedSeq) {
      const landed = flying.shift()!;
      applied.set(landed.tenant, landed.connections);
    }
    for (const [tenant, use] of Object.entries(report)) if (!flying.some((f) => f.tenant === tenant)) applied.set(tenant, use.allowance);
  }

  /** The worker exited: what it held is free. */
  forget(worker: number): void {
    this.reports.delete(worker);
    this.sent.delete(worker);
    this.inFlight.delete(worker);
    this.applied.delete(worker);
  }

  /**
   * The serving workers' new parts of each tenant's limits (of `only`, when
   * given: those a report just changed): only the parts that changed (by more
   * than SHARE_CHANGE, or any connection). Workers not
   * serving (draining) get nothing new, but what they were given counts until
   * they are forgotten.
   */
  allot(serving: readonly number[], only: Iterable<string> | null = null): Map<number, AllotMessage> {
    const tenants = new Set<string>(only ?? []);
    if (only === null) for (const report of this.reports.values()) for (const id of Object.keys(report)) tenants.add(id);
    const changed = new Map<number, AllotMessage>();
    if (serving.length === 0) return changed;
    for (const tenant of tenants) {
      const shares = rateShares(serving.map((w) => this.reports.get(w)?.[tenant]));
      const connections = this.connectionAllowances(tenant, serving);
      serving.forEach((w, i) => {
        const allotment: LimitAllotment = { share: shares[i]!, connections: connections?.[i] ?? null };
        const sent = this.sent.get(w) ?? this.sent.set(w, {}).get(w)!;
        const before = sent[tenant];
        // A small growth is not worth a message; every cut is sent, so the shares held never add up to more than 1.
        if (before !== undefined && before.connections === allotment.connections
          && allotment.share >= before.share && allotment.share - before.share <= SHARE_CHANGE * before.share) return;
        sent[tenant] = allotment;
        const message = changed.get(w) ?? changed.set(w, { seq: this.nextSeq++, allotments: {} }).get(w)!;
        message.allotments[tenant] = allotment;
        if (allotment.connections !== null) {
          (this.inFlight.get(w) ?? this.inFlight.set(w, []).get(w)!).push({ seq: message.seq, tenant, connections: allotment.connections });
        }
      });
    }
    return changed;
  }

  /**
   * The most connections a worker may hold now or once the messages on
   * their way have landed: what it applies, any allowance still in flight (a
   * growth sent before a cut may land first), and what it holds open (a cut
   * closes nothing: connections accepted before it stay).
   */
  private committed(worker: number, tenant: string): number {
    const reported = this.reports.get(worker)?.[tenant];
    let most = Math.max(this.applied.get(worker)?.get(tenant) ?? reported?.allowance ?? 0, reported?.connections ?? 0);
    for (const f of this.inFlight.get(worker) ?? []) if (f.tenant === tenant && f.connections > most) most = f.connections;
    return most;
  }

  private connectionAllowances(tenant: string, serving: readonly number[]): number[] | null {
    let cap = 0;
    let open = 0;
    for (const report of this.reports.values()) {
      const use = report[tenant];
      if (use === undefined) continue;
      cap = Math.max(cap, use.maxConnections);
      open += use.connections;
    }
    if (cap <= 0) return null;
    const known = new Set([...this.reports.keys(), ...this.sent.keys(), ...this.inFlight.keys()]);
    const uses = serving.map((w) => this.reports.get(w)?.[tenant]);
    const free = Math.max(0, cap - open);
    const weights = uses.map((u) => (u?.connectionsRefused === true ? REFUSED_WEIGHT : 1));
    // A tenth of what is free stays unallotted, so a worker that starts (a rolling restart) gets a part at once.
    const parts = splitWhole(free - Math.floor(free * RESERVE), weights);
    const targets = uses.map((u, i) => (u?.connections ?? 0) + parts[i]!);
    // Cuts go out at once; growth only from what no worker may be holding.
    let slack = cap;
    for (const w of known) slack -= this.committed(w, tenant);
    return serving.map((w, i) => {
      const held = this.committed(w, tenant);
      if (targets[i]! <= held) return targets[i]!;
      const grant = Math.max(0, Math.min(targets[i]! - held, slack));
      slack -= grant;
      return held + grant;
    });
  }
}

/** Shares of a rate (adding up to 1) for workers with these uses (undefined: no report yet). */
export function rateShares(uses: readonly (TenantUse | undefined)[]): number[] {
  const n = uses.length;
  if (n === 0) return [];
  const floor = IDLE_SHARES / n;
  const short = uses.filter((u) => u?.starved === true).length;
  const need = uses.map((u) => (u?.starved === true ? 0 : Math.max(floor, (u?.load ?? 0) * HEADROOM)));
  const fixed = need.reduce((sum, x) => sum + x, 0);
  if (short === 0) return need.map((x) => x / fixed);
  const left = Math.max(floor * short, 1 - fixed);
  const scale = fixed > 0 ? (1 - left) / fixed : 0;
  return uses.map((u, i) => (u?.starved === true ? left / short : need[i]! * scale));
}

/** `whole` split in proportion to `weights`, in whole numbers adding up to it (remainders to the first). */
function splitWhole(whole: number, weights: readonly number[]): number[] {
  const total = weights.reduce((sum, w) => sum + w, 0);
  if (total <= 0) return weights.map(() => 0);
  const parts = weights.map((w) => Math.floor((whole * w) / total));
  let left = whole - parts.reduce((sum, p) => sum + p, 0);
  const order = weights.map((w, i) => ({ w, i })).sort((a, b) => b.w - a.w);
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) parts[order[k]!.i]!++;
  return parts;
}
