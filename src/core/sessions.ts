/**
 * Every open agent session (a stream connection) of a node, in one registry:
 * what operators list and sort (`sluice sessions`, the dashboard), what the
 * admin API disconnects, and what the memory governor weighs.
 *
 * Sources own their sessions; they register a handle here when a connection
 * opens and drop it when it closes. Counters are plain numbers that the
 * session bumps once per batch, so the registry costs nothing per record.
 */

/** What a source lets the registry do to one of its sessions. */
export interface SessionControl {
  /** Close the connection now (counted by the source under `reason`). */
  close(reason: string): void;
  /** Bytes this session has read and not yet seen written or acknowledged (framer, lane, replies). */
  queuedBytes(): number;
  /** Stop reading (TCP backpressure reaches the sender) until resumeReading; idempotent. */
  pauseReading(): void;
  resumeReading(): void;
}

export class SessionEntry {
  /** Hostname of the last record with one (agents usually send one host per connection). */
  host: string | null = null;
  tenant: string | null;
  records = 0;
  bytes = 0;
  /** Parse errors and refused records on this session. */
  errors = 0;
  /** Paused by its tenant's limit or a congested sink (not by the governor). */
  throttled = false;
  /** Paused by the memory governor. */
  governed = false;

  constructor(
    readonly id: string,
    readonly source: string,
    readonly protocol: string,
    readonly peer: string,
    tenant: string | null,
    readonly openedAt: number,
    readonly control: SessionControl,
  ) {
    this.tenant = tenant;
  }

  /** A plain snapshot (for JSON, IPC and sorting). */
  view(): SessionView {
    return {
      id: this.id, source: this.source, protocol: this.protocol, peer: this.peer, tenant: this.tenant, host: this.host,
      openedAt: this.openedAt, records: this.records, bytes: this.bytes, errors: this.errors,
      queuedBytes: this.control.queuedBytes(), throttled: this.throttled, governed: this.governed,
    };
  }
}

/** A session as the admin API, the dashboard and the CLI see it. */
export interface SessionView {
  id: string;
  source: string;
  protocol: string;
  peer: string;
  tenant: string | null;
  host: string | null;
  /** Epoch ms. */
  openedAt: number;
  records: number;
  bytes: number;
  errors: number;
  queuedBytes: number;
  throttled: boolean;
  governed: boolean;
}

export class SessionRegistry {
  private readonly entries = new Map<string, SessionEntry>();
  private nextId = 1;

  /** `idPrefix` keeps ids unique across the worker processes of one node. */
  constructor(private readonly idPrefix = '') {}

  open(source: string, protocol: string, peer: string, tenant: string | null, control: SessionControl): SessionEntry {
    const entry = new SessionEntry(`${this.idPrefix}${source}-${this.nextId++}`, source, protocol, peer, tenant, Date.now(), control);
    this.entries.set(entry.id, entry);
    return entry;
  }

  close(entry: SessionEntry): void {
    this.entries.delete(entry.id);
  }

  get(id: string): SessionEntry | undefined {
    return this.entries.get(id);
  }

  get size(): number {
    return this.entries.size;
  }

  values(): IterableIterator<SessionEntry> {
    return this.entries.values();
  }

  /** Counts for the session gauges (read at scrape time). */
  totals(): { open: number; queuedBytes: number; paused: number } {
    let queuedBytes = 0;
    let paused = 0;
    for (const entry of this.entries.values()) {
      queuedBytes += entry.control.queuedBytes();
      if (entry.throttled || entry.governed) paused++;
    }
    return { open: this.entries.size, queuedBytes, paused };
  }

  views(): SessionView[] {
    const views: SessionView[] = [];
    for (const entry of this.entries.values()) views.push(entry.view());
    return views;
  }
}
