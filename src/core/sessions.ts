/**
 * Every open agent session (a stream connection) of a node, in one registry:
 * what operators list and sort (`sluice sessions`, the dashboard), what the
 * admin API disconnects, and what the memory governor weighs.
 *
 * Sources own their sessions; they register a handle here when a connection
 * opens and drop it when it closes. Counters are plain numbers that the
 * session bumps once per batch, so the registry costs nothing per record.
 */

/**
 * Why a session is not reading, as a bit set on its entry (SessionEntry.paused):
 * a session reads iff no reason holds. Each reason has one owner that sets and
 * clears it; the stream sources' session batcher (sources/session-batcher.ts)
 * applies the set to the socket, so no owner needs to know of the others.
 */
export const PauseReason = {
  /** A sink of the tenant's route asks it to slow down, or the lane holds too much behind a host lookup. */
  Pipeline: 1,
  /** The tenant is over its rate limit: the lane holds a batch until its tokens are paid back. */
  RateLimit: 2,
  /** The memory governor paused it (SessionControl.pauseReading until resumeReading). */
  Memory: 4,
  /** It read its share of this event-loop turn; it reads again once the turn ends. */
  Turn: 8,
  /** RELP: its unanswered transactions reached the window. */
  Window: 16,
  /** It is ending (RELP: `close`, or serverclose on shedding and draining): what was read is answered, nothing more is read. */
  Ending: 32,
  /** RELP: its answers fill the socket's send buffer (the agent does not read them): read again on 'drain'. */
  Replies: 64,
  /** Its tenant read its share of the turn (core/turn-shares.ts): it reads again once the tenant has a share left at a turn's end. */
  Share: 128,
} as const;

/** The reasons its lane gives (submit returned false), cleared together when the lane is ready again. */
export const LANE_PAUSE = PauseReason.Pipeline | PauseReason.RateLimit;

/** What a source lets the registry do to one of its sessions. */
export interface SessionControl {
  /** Close the connection now (counted by the source under `reason`). */
  close(reason: string): void;
  /** Bytes this session has read and not yet seen written or acknowledged (framer, lane, replies). */
  queuedBytes(): number;
  /** The memory governor's pause: sets PauseReason.Memory (TCP backpressure reaches the sender) until resumeReading; idempotent. */
  pauseReading(): void;
  /** Clears PauseReason.Memory; the session reads again once no other reason holds. */
  resumeReading(): void;
}

/** What is told of every session's end (the memory governor forgets a session it holds). */
export interface SessionCloseObserver {
  closed(entry: SessionEntry): void;
}

/** What is told of every session's host and end (the cluster's host session locks). */
export interface SessionObserver extends SessionCloseObserver {
  /**
   * The session's host key became known (its first attributed record), or the
   * session turned out to carry several hosts (a relay): `hostKey` is then null
   * and stays so. `previousKey` is what it was.
   */
  hostChanged(entry: SessionEntry, previousKey: string | null): void;
}

export class SessionEntry {
  /** Hostname of the last record with one (agents usually send one host per connection). */
  host: string | null = null;
  /** The host key of the one host this session carries; null until known, and for a relay of several hosts. */
  hostKey: string | null = null;
  /** Records of more than one host came over this session. */
  multiHost = false;
  tenant: string | null;
  records = 0;
  bytes = 0;
  /** Parse errors and refused records on this session. */
  errors = 0;
  /** Why it is not reading (PauseReason bits; 0: it reads). Set by the session, never by the registry. */
  paused = 0;

  constructor(
    readonly id: string,
    readonly source: string,
    readonly protocol: string,
    readonly peer: string,
    tenant: string | null,
    readonly openedAt: number,
    readonly control: SessionControl,
    private readonly observers: readonly SessionObserver[] = [],
  ) {
    this.tenant = tenant;
  }

  /** Paused by its tenant's limit or a congested sink (not by the governor). */
  get throttled(): boolean {
    return (this.paused & LANE_PAUSE) !== 0;
  }

  /** Paused by the memory governor. */
  get governed(): boolean {
    return (this.paused & PauseReason.Memory) !== 0;
  }

  /**
   * Notes the hosts of an attributed batch (once per batch; while an observer
   * watches, a string compare per record, the keys being the same interned
   * strings on a one-host session).
   */
  noteHosts(records: readonly { hostname: string | null; host: string }[]): void {
    const last = records[records.length - 1];
    if (last === undefined) return;
    this.host = last.hostname ?? this.host;
    if (this.multiHost) return;
    if (this.observers.length === 0) {
      // Nobody watches hosts (a node alone): no per-record scan. An observer that starts later
      // takes this key for the session's host, and its next batch is scanned in full.
      this.hostKey ??= last.host;
      return;
    }
    const previous = this.hostKey;
    let key = previous ?? records[0]!.host;
    for (const rec of records) {
      if (rec.host !== key) {
        key = '';
        break;
      }
    }
    if (key === previous) return;
    if (key === '') {
      this.multiHost = true;
      this.hostKey = null;
    } else {
      this.hostKey = key;
    }
    for (const observer of this.observers) observer.hostChanged(this, previous);
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
  /** Told of every close. */
  private readonly observers: SessionCloseObserver[] = [];
  /** Told of hosts too: only these make sessions scan their records' hosts (SessionEntry.noteHosts). */
  private readonly hostObservers: SessionObserver[] = [];

  /** `idPrefix` keeps ids unique across the worker processes of one node. */
  constructor(private readonly idPrefix = '') {}

  open(source: string, protocol: string, peer: string, tenant: string | null, control: SessionControl): SessionEntry {
    const entry = new SessionEntry(`${this.idPrefix}${source}-${this.nextId++}`, source, protocol, peer, tenant, Date.now(), control, this.hostObservers);
    this.entries.set(entry.id, entry);
    return entry;
  }

  close(entry: SessionEntry): void {
    if (!this.entries.delete(entry.id)) return;
    for (const observer of this.observers) observer.closed(entry);
  }

  /** Told of every session's close, and its host if it watches hosts, from now on (sessions already open: see values()). */
  observe(observer: SessionCloseObserver | SessionObserver): void {
    this.observers.push(observer);
    if ('hostChanged' in observer) this.hostObservers.push(observer);
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
