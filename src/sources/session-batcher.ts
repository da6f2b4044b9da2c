/**
 * The session batcher: what every stream session (syslog over TCP or TLS,
 * RELP) does with the bytes it reads, written once.
 *
 *   read ─► frames ─► decode ─► attribute ─► run ──(turn end, tenant change,
 *    │      (protocol)          (tenant,     (one tenant's    size, protocol)──► lane.submit ─► false: pause
 *    │                           host key)    records, one ack)                                  until whenReady
 *    └► counters, clocks (idle, frame timeouts), the session's and its tenant's share of the turn
 *
 * A run is one tenant's consecutive records of one session with one
 * acknowledgement (RELP's batch reply; none for plain syslog): the unit the
 * lane routes, a host lookup could be made for (one per run where the host is
 * the same) and a per-tenant share of the turn could be charged by. Runs are
 * submitted at the end of the event-loop turn (one shared Immediate for every
 * session: core/turns.ts EndOfTurn), when the tenant changes, at
 * MAX_RUN_RECORDS, or when the protocol closes one (RELP: a refusal, `open`,
 * `close`); byte and error counters go out at the turn's end as well.
 *
 * Whether the session reads is one bit set on its registry entry
 * (PauseReason, core/sessions.ts): its lane (pipeline backpressure or its
 * tenant's rate limit), the memory governor (pauseReading/resumeReading), its
 * share of the turn, its tenant's share of the turn (core/turn-shares.ts),
 * RELP's window and ending. Each owner sets and clears only its own bit; the
 * socket is paused when the first is set and resumed when the last clears,
 * so there is one resume path.
 *
 * A protocol subclass supplies the frame reader and what each frame means
 * (TCP: every frame a record; RELP: transactions answered in order). Socket
 * events reach the session through shared functions and a symbol on the
 * socket, not closures per connection.
 */
import type net from 'node:net';
import type { Counter } from 'prom-client';
import type { AckToken } from '../core/ack.js';
import { isoTime } from '../core/clock.js';
import { normalizeAddress, type SessionIdentity, type Tenant } from '../core/identity.js';
import { MemoryState } from '../core/memory.js';
import type { Lane, Pipeline } from '../core/pipeline.js';
import { SourceInfo, type LogRecord } from '../core/record.js';
import { LANE_PAUSE, PauseReason, type SessionControl, type SessionEntry } from '../core/sessions.js';
import type { TenantTurnAccount, TurnShareWaiter } from '../core/turn-shares.js';
import { RECORDS_PER_TURN, type TurnListener } from '../core/turns.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import type { GuardedSession } from './connection-guard.js';
import { decodeSyslogFrame } from './syslog/decode.js';

/**
 * Bytes one session may read in one event-loop turn before it yields to the
 * others: libuv reads a busy socket up to 32 times 64 KiB per turn, so a
 * flooding connection would otherwise hold the loop for 2 MiB of frames while
 * every other connection waits. Past this it pauses (PauseReason.Turn) until
 * the turn ends: connections are served in turn, at most this much each.
 */
export const TURN_BYTES = 64 * 1024;

/** Records one run may hold before it is submitted: bounds the work one batch makes downstream. */
export const MAX_RUN_RECORDS = RECORDS_PER_TURN;

/** Counter children resolved once per source, so sessions increment without label lookups. */
export interface StreamCounters {
  records: Counter.Internal;
  bytes: Counter.Internal;
  parseErrors: Counter.Internal;
  invalidUtf8: Counter.Internal;
}

export function streamCounters(telemetry: Telemetry, source: string): StreamCounters {
  const labels = { source };
  return {
    records: telemetry.recordsReceived.labels(labels),
    bytes: telemetry.bytesReceived.labels(labels),
    parseErrors: telemetry.parseErrors.labels(labels),
    invalidUtf8: telemetry.invalidUtf8.labels(labels),
  };
}

/** What every session of one source shares (one object per source, not fields per session). */
export interface StreamContext {
  readonly sourceName: string;
  /** The records' source.protocol and the session list's. */
  readonly protocol: 'tcp' | 'tls' | 'relp';
  readonly pipeline: Pipeline;
  readonly telemetry: Telemetry;
  readonly counters: StreamCounters;
  readonly maxFrameBytes: number;
}

/** A protocol's frame reader (SyslogFramer, RelpFrameParser): frames go to the callback it was made with. */
export interface FrameReader {
  /** Feed one chunk. Returns false on a framing error; the connection must then be closed. */
  push(chunk: Buffer): boolean;
  /** Bytes of an incomplete frame it holds. */
  readonly heldBytes: number;
}

/** The session a socket belongs to: socket events go to shared functions rather than closures per connection. */
const SESSION = Symbol('session');
type SessionSocket = net.Socket & { [SESSION]: SessionBatcher };

function sessionData(this: SessionSocket, chunk: Buffer): void {
  this[SESSION].onData(chunk);
}
function sessionEnd(this: SessionSocket): void {
  this[SESSION].onEnd();
}
function sessionError(this: SessionSocket, err: NodeJS.ErrnoException): void {
  this[SESSION].onError(err);
}
function sessionClose(this: SessionSocket): void {
  this[SESSION].onSocketClose();
}

/** The empty run between runs (never pushed to: a record on an empty run opens a new array). */
const NO_RECORDS: LogRecord[] = [];

export abstract class SessionBatcher<Context extends StreamContext = StreamContext> implements SessionControl, GuardedSession, TurnListener, TurnShareWaiter {
  readonly peer: string;
  /** When data last arrived (epoch ms), for the idle timeout. */
  lastDataAt = Date.now();
  /** Since when a frame has been incomplete (0: none is), for the frame timeout. */
  partialSince = 0;
  protected readonly source: SourceInfo;
  protected readonly entry: SessionEntry;
  protected readonly lane: Lane;
  /** The protocol's frame reader, set by the subclass's constructor. */
  protected abstract readonly frames: FrameReader;
  /** The read being handled: its time, shared by the records it carries. */
  private nowMs = 0;
  private received = '';
  private run: LogRecord[] = NO_RECORDS;
  private runTenant: Tenant | null = null;
  private runAck: AckToken | null = null;
  private unflushedBytes = 0;
  private parseErrors = 0;
  private invalidUtf8 = 0;
  /** Bytes read since the turn began (see TURN_BYTES). */
  private turnBytes = 0;
  /** The tenant whose turn account reads are charged to, and the account (see chargeTenant). */
  private shareTenant: Tenant | null = null;
  private shareAccount: TenantTurnAccount | null = null;
  /** Waiting for this turn's end (enlisted in pipeline.turnEnd). */
  private enlisted = false;
  /** Whether the socket is reading, as this session last set it. */
  private reading = true;
  /** Input is read and thrown away, whatever pauses it: the session only waits to see the peer close. */
  private discarding = false;
  /** Made the first time the lane asks this session to wait (most never are). */
  private laneReady: (() => void) | null = null;

  constructor(
    protected readonly context: Context,
    protected readonly socket: net.Socket,
    protected readonly identity: SessionIdentity,
  ) {
    this.source = new SourceInfo(context.protocol, normalizeAddress(socket.remoteAddress ?? ''), socket.remotePort ?? 0);
    this.peer = `${this.source.address}:${this.source.port}`;
    const pipeline = context.pipeline;
    this.lane = pipeline.openLane(context.sourceName);
    this.entry = pipeline.sessions.open(context.sourceName, context.protocol, this.peer, identity.tenant?.id ?? null, this);
    this.lane.session = this.entry.id;
    (socket as SessionSocket)[SESSION] = this;
    socket.on('data', sessionData);
    socket.on('end', sessionEnd);
    socket.on('error', sessionError);
    socket.on('close', sessionClose);
  }

  /** The tenant of the connection itself (network or certificate), which its connection counts against; null if none. */
  get connectionTenant(): Tenant | null {
    return this.identity.tenant;
  }

  get openedAt(): number {
    return this.entry.openedAt;
  }

  /** Not reading by the node's own choice (any PauseReason), so not idle: the guard's clocks wait. */
  get pausedByNode(): boolean {
    return !this.reading;
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Closed by the node for a reason of its own (timeouts, the admin API): counted, then gone. */
  close(reason: string): void {
    this.context.telemetry.emit('connectionClosed', {
      source: this.context.sourceName, reason, peer: this.peer, tenant: this.identity.tenant?.id,
    });
    this.socket.destroy();
  }

  expel(reason: string): void {
    this.close(reason);
  }

  /** Bytes read and not yet handed on: an incomplete frame and this turn's reads. */
  queuedBytes(): number {
    return this.frames.heldBytes + this.unflushedBytes;
  }

  pauseReading(): void {
    this.pause(PauseReason.Memory);
  }

  resumeReading(): void {
    this.resume(PauseReason.Memory);
  }

  /** Set a reason not to read; the socket pauses with the first. */
  pause(reason: number): void {
    this.entry.paused |= reason;
    this.applyReading();
  }

  /** Clear a reason; the socket reads again once none holds. */
  resume(reason: number): void {
    const paused = this.entry.paused;
    if ((paused & reason) === 0) return;
    this.entry.paused = paused & ~reason;
    this.applyReading();
  }

  /** Whether `reason` holds. */
  pausedFor(reason: number): boolean {
    return (this.entry.paused & reason) !== 0;
  }

  private applyReading(): void {
    const read = this.entry.paused === 0 || this.discarding;
    if (read === this.reading || this.socket.destroyed) return;
    this.reading = read;
    if (read) this.socket.resume();
    else this.socket.pause();
  }

  /** From now on input is thrown away unread and no reason pauses the socket (so the peer's close is seen). */
  protected discardInput(): void {
    this.discarding = true;
    this.applyReading();
  }

  onData(chunk: Buffer): void {
    if (this.discarding) return;
    const memory = this.context.pipeline.memory;
    // Past the hard mark a session that reads is paused at once, not at the next sample.
    if (memory.state === MemoryState.Hard) memory.holdNow(this.entry);
    const now = Date.now();
    this.nowMs = now;
    this.lastDataAt = now;
    this.received = isoTime(now);
    const ok = this.frames.push(chunk);
    // A frame left incomplete starts (or keeps) its clock; a complete stream stops it.
    if (this.frames.heldBytes === 0) this.partialSince = 0;
    else if (this.partialSince === 0) this.partialSince = now;
    this.unflushedBytes += chunk.length;
    this.turnBytes += chunk.length;
    if (!this.afterRead(ok)) return;
    if (!this.enlisted) {
      // Reads that arrive in one event-loop turn go down the pipeline as one run:
      // per-batch costs (counters, lane, enrichment lookup, sink write) are paid once.
      this.enlisted = true;
      this.context.pipeline.turnEnd.enlist(this);
    }
    if (this.turnBytes >= TURN_BYTES) this.pause(PauseReason.Turn);
    this.chargeTenant(chunk.length);
  }

  /**
   * The read counts against its tenant's share of the turn (the connection's
   * tenant, else the tenant of its last record); over it, the session waits
   * for the tenant's next share.
   */
  private chargeTenant(bytes: number): void {
    const tenant = this.identity.tenant ?? this.runTenant;
    if (tenant === null) return;
    const shares = this.context.pipeline.turnShares;
    if (tenant !== this.shareTenant) {
      this.shareTenant = tenant;
      this.shareAccount = shares.account(tenant);
    }
    const account = this.shareAccount!;
    if (shares.charge(account, bytes) || this.pausedFor(PauseReason.Share)) return;
    this.pause(PauseReason.Share);
    shares.defer(account, this);
  }

  /** Its tenant has a share of the turn again. */
  resumeTurn(): void {
    this.resume(PauseReason.Share);
  }

  /** What the protocol makes of a read once its frames are handled; false when the connection is going (destroyed). */
  protected abstract afterRead(ok: boolean): boolean;

  /** The peer ended its side of the stream. */
  abstract onEnd(): void;

  /** Once per turn with data: the run and the counters go out, and a session that yielded reads again. */
  turnEnded(): void {
    this.enlisted = false;
    this.turnBytes = 0;
    this.flush();
    this.resume(PauseReason.Turn);
  }

  /** A frame's bytes to a record (of this read's time), its parse problems counted. */
  protected decode(buf: Buffer, start: number, end: number): LogRecord {
    const rec = decodeSyslogFrame(buf, start, end, this.source, this.received, this.nowMs);
    if (rec.parseError) this.parseErrors++;
    if (rec.invalidUtf8) this.invalidUtf8++;
    return rec;
  }

  /** The record's tenant (and host key), or null: refused, logged and counted (the reason in identity.refusal). */
  protected attribute(rec: LogRecord): Tenant | null {
    const tenant = this.identity.attribute(rec, this.source.address);
    if (tenant === null) {
      this.context.telemetry.emit('recordRefused', { source: this.context.sourceName, reason: this.identity.refusal, peer: this.peer });
      this.entry.errors++;
    }
    return tenant;
  }

  /** Whether a record of `tenant` needs a run of its own (then openRun before addToRun). */
  protected startsRun(tenant: Tenant): boolean {
    const length = this.run.length;
    return length === 0 || tenant !== this.runTenant || length >= MAX_RUN_RECORDS;
  }

  /** Submit the current run and begin one of `tenant`, acknowledged by `ack` (null: not acknowledged). */
  protected openRun(tenant: Tenant, ack: AckToken | null): void {
    this.submitRun();
    this.run = [];
    this.runTenant = tenant;
    this.runAck = ack;
  }

  protected addToRun(rec: LogRecord): void {
    this.run.push(rec);
  }

  /** Hand the current run to the lane; a lane that asks to slow down pauses the session until it is ready. */
  protected submitRun(): void {
    const records = this.run;
    const tenant = this.runTenant;
    if (records.length === 0 || tenant === null) return;
    const ack = this.runAck;
    this.run = NO_RECORDS;
    this.runAck = null;
    this.context.counters.records.inc(records.length);
    const entry = this.entry;
    entry.records += records.length;
    entry.tenant = tenant.id;
    entry.noteHosts(records);
    if (!this.lane.submit(tenant, records, ack)) this.waitForLane();
  }

  private waitForLane(): void {
    const waiting = (this.entry.paused & LANE_PAUSE) !== 0;
    this.pause(this.lane.rateLimited ? PauseReason.RateLimit : PauseReason.Pipeline);
    // One waiter per session: the lane keeps it until it is ready (or the session closes).
    if (!waiting) this.lane.whenReady(this.laneReady ??= () => this.resume(LANE_PAUSE));
  }

  /** The counters of what was read, then the run. */
  protected flush(): void {
    const counters = this.context.counters;
    const entry = this.entry;
    if (this.unflushedBytes > 0) {
      counters.bytes.inc(this.unflushedBytes);
      entry.bytes += this.unflushedBytes;
      this.unflushedBytes = 0;
    }
    if (this.parseErrors > 0) {
      entry.errors += this.parseErrors;
      counters.parseErrors.inc(this.parseErrors);
      this.parseErrors = 0;
    }
    if (this.invalidUtf8 > 0) {
      counters.invalidUtf8.inc(this.invalidUtf8);
      this.invalidUtf8 = 0;
    }
    this.submitRun();
  }

  onError(err: NodeJS.ErrnoException): void {
    this.context.telemetry.emit('socketError', { source: this.context.sourceName, peer: this.peer, error: err.code ?? err.message });
  }

  /** What was read still goes through; the lane forgets the session's waiter; the registry and the source forget the session. */
  onSocketClose(): void {
    this.flush();
    this.lane.close();
    this.context.pipeline.sessions.close(this.entry);
    this.released();
  }

  /** The connection is closed and the registry has forgotten it: the source forgets it too. */
  protected abstract released(): void;
}
