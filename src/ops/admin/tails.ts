/**
 * Live tails on the admin server: how many may be open (slots, and a
 * tenant's share of them), and the one reader each tail writes to, which
 * holds a bounded number of bytes and tells its reader what it dropped.
 */
import type { ServerResponse } from 'node:http';
import type { Telemetry } from '../../telemetry/telemetry.js';
import type { TailSink } from '../control.js';

/** A reader further behind than this many bytes loses lines (counted, and told when it reads again). */
export const TAIL_MAX_BEHIND_BYTES = 1024 * 1024;
/** How often an idle tail says it is alive (and reports drops a reader behind did not hear of). */
const TAIL_HEARTBEAT_MS = 5000;

export type SlotRefusal = 'tail_slots' | 'tenant_tail_share';

/**
 * Tail slots: `slots` in all; one tenant's scoped tokens hold at most
 * `perTenant` of them together, and all tenants' scoped tokens at most
 * `slots - perTenant`, so whole-node tokens always find at least a tenant's
 * share free.
 */
export class TailSlots {
  private open = 0;
  private scoped = 0;
  private readonly byTenant = new Map<string, number>();
  readonly perTenant: number;

  constructor(readonly slots: number, share: number) {
    this.perTenant = Math.max(1, Math.floor(slots * share));
  }

  /** Take a slot for a whole-node (`tenant` null) or tenant-scoped caller: the release function, or why not. */
  take(tenant: string | null): (() => void) | SlotRefusal {
    if (this.open >= this.slots) return 'tail_slots';
    if (tenant !== null) {
      if ((this.byTenant.get(tenant) ?? 0) >= this.perTenant) return 'tenant_tail_share';
      if (this.scoped >= this.slots - this.perTenant) return 'tail_slots';
      this.byTenant.set(tenant, (this.byTenant.get(tenant) ?? 0) + 1);
      this.scoped++;
    }
    this.open++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.open--;
      if (tenant === null) return;
      this.scoped--;
      const held = (this.byTenant.get(tenant) ?? 1) - 1;
      if (held === 0) this.byTenant.delete(tenant);
      else this.byTenant.set(tenant, held);
    };
  }

  get inUse(): number {
    return this.open;
  }
}

/**
 * One tail's server-sent-event stream: `data:` per line; a reader more than
 * TAIL_MAX_BEHIND_BYTES behind loses lines, and once it has read that far
 * again it gets `event: dropped` with how many it lost (on this server and
 * before, in a worker) before the next line.
 */
export class TailStream implements TailSink {
  private untold = 0;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(private readonly res: ServerResponse, private readonly telemetry: Telemetry, private readonly maxBehindBytes = TAIL_MAX_BEHIND_BYTES) {
    this.heartbeat = setInterval(() => {
      if (this.behind()) return;
      if (this.untold > 0) this.tellDropped();
      else res.write(': keep-alive\n\n');
    }, TAIL_HEARTBEAT_MS);
    res.on('drain', () => {
      if (this.untold > 0) this.tellDropped();
    });
  }

  lines(lines: string[]): void {
    if (this.behind()) {
      this.untold += lines.length;
      this.telemetry.adminTailDropped.inc({ stage: 'client' }, lines.length);
      return;
    }
    if (this.untold > 0) this.tellDropped();
    let text = '';
    for (const line of lines) text += `data: ${line}\n\n`;
    this.res.write(text);
  }

  /** Lines a worker dropped before they reached this server. */
  dropped(count: number): void {
    this.untold += count;
    this.telemetry.adminTailDropped.inc({ stage: 'worker' }, count);
  }

  close(): void {
    clearInterval(this.heartbeat);
  }

  private behind(): boolean {
    return this.res.writableLength > this.maxBehindBytes;
  }

  private tellDropped(): void {
    this.res.write(`event: dropped\ndata: {"dropped":${this.untold}}\n\n`);
    this.untold = 0;
  }
}
