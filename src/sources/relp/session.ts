/**
 * One RELP connection: frames in, records to the session's lane, responses
 * out in transaction order once every acknowledging sink has committed.
 *
 * Records read from one chunk are submitted in batches (one per run of one
 * tenant), each with one AckToken; the ReplyQueue turns settled tokens into
 * `rsp` frames. Reading pauses while the unanswered transactions reach the
 * window or the lane asks to slow down, so TCP backpressure reaches the agent.
 * A chunk is always parsed to its end (keeping part of it would pin it), so a
 * client that ignores its own window can overshoot ours by one chunk.
 */
import type net from 'node:net';
import type { Counter } from 'prom-client';
import { AckStatus } from '../../core/ack.js';
import { MemoryState } from '../../core/memory.js';
import type { Lane, Pipeline } from '../../core/pipeline.js';
import type { Reconnectable } from '../../core/component.js';
import type { SessionControl, SessionEntry } from '../../core/sessions.js';
import type { GuardedSession } from '../connection-guard.js';
import { normalizeAddress, type RefusalReason, type SessionIdentity, type Tenant } from '../../core/identity.js';
import { SourceInfo, type LogRecord } from '../../core/record.js';
import { isoTime } from '../../core/clock.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { decodeSyslogFrame } from '../syslog/decode.js';
import { formatFrame, nextTxnr, RelpCommand, RelpFrameParser } from './framing.js';
import { answerOpen } from './offers.js';
import { ReplyQueue, type BatchReply, type ReplyOutput } from './replies.js';

/** Session-level violations (framing errors carry the parser's reasons). */
export type RelpProtocolViolation =
  | 'txnr_sequence'
  | 'not_open'
  | 'unexpected_command'
  | 'unknown_command'
  | 'no_relp_version'
  | 'no_syslog_command';

/** The hint a server sends before it closes a session (txnr 0, no response expected). */
export const SERVERCLOSE_FRAME = formatFrame(0, 'serverclose', '');

const REFUSAL_REPLY: Record<RefusalReason, string> = {
  no_credentials: '500 refused: no credentials name a tenant',
  bad_token: '500 refused: unknown token',
  ambiguous_credentials: '500 refused: more than one token',
  credential_conflict: '500 refused: token of another tenant than the certificate',
};

/** Counter children resolved once per source. */
export interface RelpSessionCounters {
  records: Counter.Internal;
  bytes: Counter.Internal;
  parseErrors: Counter.Internal;
  invalidUtf8: Counter.Internal;
}

/** What every session of one source shares. */
export interface RelpSessionContext {
  sourceName: string;
  pipeline: Pipeline;
  telemetry: Telemetry;
  counters: RelpSessionCounters;
  maxFrameBytes: number;
  window: number;
  onClose(session: RelpSession): void;
}

/**
 * After a session asked to reconnect has answered everything and sent
 * `serverclose`, how long the agent gets to close its side before the node
 * does. An idle librelp client reads the hint only when it next sends; with
 * nothing left unanswered, closing then loses nothing, and frees the socket.
 */
export const RECONNECT_CLOSE_GRACE_MS = 1000;

/** Why the session is ending: the client's `close`, the server's serverclose, or the client's end of stream. */
type Ending = 'close' | 'serverclose' | 'peer_ended';

export class RelpSession implements ReplyOutput, SessionControl, GuardedSession, Reconnectable {
  readonly protocol = 'relp';
  readonly peer: string;
  /** Resolves when the connection is closed. */
  readonly closed: Promise<void>;
  /** Resolves once the session has ended its side: every reply (and serverclose, if asked) handed to the kernel, or the socket closed. */
  readonly ended: Promise<void>;
  private readonly source: SourceInfo;
  private readonly parser: RelpFrameParser;
  private readonly replies: ReplyQueue;
  private readonly lane: Lane;
  private readonly entry: SessionEntry;
  private expectedTxnr = 1;
  private opened = false;
  private batch: LogRecord[] = [];
  private batchTenant: Tenant | null = null;
  private batchReply: BatchReply | null = null;
  private received = '';
  private nowMs = 0;
  private parseErrors = 0;
  private invalidUtf8 = 0;
  private laneBlocked = false;
  private paused = false;
  private violation: RelpProtocolViolation | null = null;
  private violationDetail = '';
  private ending: Ending | null = null;
  /** Our side is closed (after the last reply); input is discarded until the peer closes. */
  private finished = false;
  /** When data last arrived (epoch ms), for the idle timeout. */
  lastDataAt = Date.now();
  /** Since when a frame has been incomplete (0: none is), for the frame timeout. */
  partialSince = 0;
  /** Replies decided while the memory governor pauses this session: sent when it resumes (acks delayed under pressure). */
  private delayedReplies = '';
  private resolveClosed!: () => void;
  private resolveEnded!: () => void;

  constructor(
    private readonly context: RelpSessionContext,
    private readonly socket: net.Socket,
    private readonly identity: SessionIdentity,
  ) {
    this.source = new SourceInfo('relp', normalizeAddress(socket.remoteAddress ?? ''), socket.remotePort ?? 0);
    this.peer = `${this.source.address}:${this.source.port}`;
    this.parser = new RelpFrameParser(context.maxFrameBytes, this.onFrame);
    this.replies = new ReplyQueue(this);
    this.lane = context.pipeline.openLane(context.sourceName);
    this.entry = context.pipeline.sessions.open(context.sourceName, 'relp', this.peer, identity.tenant?.id ?? null, this);
    this.lane.session = this.entry.id;
    this.closed = new Promise((resolve) => { this.resolveClosed = resolve; });
    this.ended = new Promise((resolve) => { this.resolveEnded = resolve; });
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onSocketClose);
  }

  /** The tenant of the connection itself (network or certificate), if any. */
  get tenant(): string | null {
    return this.identity.tenant?.id ?? null;
  }

  /** Not reading by the node's own choice (a full window or lane, the memory governor), so not idle. */
  get pausedByNode(): boolean {
    return this.entry.throttled || this.entry.governed;
  }

  /** The tenant the connection counts against for its tenant's connection cap. */
  get connectionTenant(): Tenant | null {
    return this.identity.tenant;
  }

  /** `syslog` transactions received and not yet answered. */
  get unanswered(): number {
    return this.replies.unanswered;
  }

  get openedAt(): number {
    return this.entry.openedAt;
  }

  /** Open (the agent's `open` answered) and not ending: a session load shedding may ask to reconnect. */
  get canReconnect(): boolean {
    return this.opened && this.ending === null;
  }

  /**
   * Load shedding: serverClose without hurrying batches a rate limit holds
   * (they are answered in their turn, the agent waits for them), then close
   * the connection after RECONNECT_CLOSE_GRACE_MS if the agent has not.
   */
  askToReconnect(): void {
    if (!this.canReconnect) return;
    void this.serverClose(false).then(() => {
      if (this.socket.destroyed) return;
      const timer = setTimeout(() => this.socket.destroy(), RECONNECT_CLOSE_GRACE_MS);
      void this.closed.then(() => clearTimeout(timer));
    });
  }

  /** Whether this side of the connection is closed, everything answered. */
  get isEnded(): boolean {
    return this.finished;
  }

  /**
   * Ask the agent to go away (shutdown, or load shedding: askToReconnect): stop reading,
   * answer every transaction already read, then send `serverclose` and close.
   * The hint goes after the last response because librelp stops reading at
   * the hint: responses behind it would be lost and their records resent.
   * `expediteHeld` routes batches held by a rate limit at once (shutdown only).
   * Resolves once our side is closed (see `ended`); the agent closes its own
   * side when it next reads, which an idle rsyslog may not do for a long time.
   */
  serverClose(expediteHeld: boolean): Promise<void> {
    // Also for a session already ending (asked to reconnect): shutdown does not wait out a rate limit.
    if (expediteHeld && (this.ending === null || this.ending === 'serverclose')) void this.lane.expedite();
    if (this.ending === null) {
      this.ending = 'serverclose';
      // A frame read halfway stays unanswered: the agent resends it after reconnecting.
      this.parser.halt();
      this.finishIfAnswered();
      this.updateReading();
    }
    return this.ended;
  }

  destroy(): void {
    this.socket.destroy();
  }

  expel(reason: string): void {
    this.close(reason);
  }

  close(reason: string): void {
    this.context.telemetry.emit('connectionClosed', { source: this.context.sourceName, reason, peer: this.peer, tenant: this.tenant });
    this.socket.destroy();
  }

  queuedBytes(): number {
    return this.parser.heldBytes + this.delayedReplies.length;
  }

  pauseReading(): void {
    this.entry.governed = true;
    this.updateReading();
  }

  resumeReading(): void {
    this.entry.governed = false;
    this.sendDelayedReplies();
    if (this.ending !== null) this.finishIfAnswered();
    this.updateReading();
  }

  sendReplies(frames: string, _answered: number): void {
    // A paused session's agent gets its answers late, so it stops at its own window instead of
    // filling the socket buffers; a session that is ending is answered at once.
    if (this.entry.governed && this.ending === null) {
      this.delayedReplies += frames;
      return;
    }
    this.sendDelayedReplies();
    if (this.socket.writable) this.socket.write(frames);
    if (this.ending !== null) this.finishIfAnswered();
    this.updateReading();
  }

  private sendDelayedReplies(): void {
    if (this.delayedReplies === '') return;
    const frames = this.delayedReplies;
    this.delayedReplies = '';
    if (this.socket.writable) this.socket.write(frames);
  }

  batchSettled(status: AckStatus, count: number): void {
    if (status !== AckStatus.Committed) {
      this.context.telemetry.emit('relpNotCommitted', {
        source: this.context.sourceName, reason: status === AckStatus.Dropped ? 'dropped' : 'failed', peer: this.peer, records: count,
      }, count);
    }
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.finished) return;
    // Past the hard mark a session that reads is paused at once, not at the next sample.
    const memory = this.context.pipeline.memory;
    if (memory.state === MemoryState.Hard) memory.holdNow(this.entry);
    this.nowMs = Date.now();
    this.lastDataAt = this.nowMs;
    this.received = isoTime(this.nowMs);
    const ok = this.parser.push(chunk);
    if (this.parser.heldBytes === 0) this.partialSince = 0;
    else if (this.partialSince === 0) this.partialSince = this.nowMs;
    this.submitBatch();
    this.flushCounters(chunk.length);
    if (!ok) {
      this.context.telemetry.emit('frameRejected', {
        source: this.context.sourceName, reason: this.parser.error ?? 'unknown', tenant: this.tenant, peer: this.peer, bytes: this.parser.errorBytes,
      });
      this.socket.destroy();
      return;
    }
    if (this.violation !== null) {
      this.reportViolation();
      // An `open` refused by its offers gets its 500 first; any other violation closes at once.
      if (this.ending === null) {
        this.socket.destroy();
        return;
      }
    }
    this.updateReading();
  };

  private readonly onFrame = (txnr: number, command: RelpCommand, buf: Buffer, start: number, end: number): void => {
    // txnr 0 carries hints, which are never answered; no hint from a client means anything to a server.
    if (txnr === 0) return;
    if (txnr !== this.expectedTxnr) {
      this.violate('txnr_sequence', `expected ${this.expectedTxnr}, got ${txnr}`);
      return;
    }
    this.expectedTxnr = nextTxnr(txnr);
    switch (command) {
      case RelpCommand.Syslog:
        if (this.opened) this.onSyslog(txnr, buf, start, end);
        else this.violate('not_open', 'syslog before open');
        break;
      case RelpCommand.Open:
        this.onOpen(txnr, buf.toString('utf8', start, end));
        break;
      case RelpCommand.Close:
        this.submitBatch();
        this.replies.answer(txnr, '200 OK', false);
        this.ending = 'close';
        this.parser.halt();
        this.finishIfAnswered();
        break;
      case RelpCommand.Rsp:
      case RelpCommand.ServerClose:
        this.violate('unexpected_command', command === RelpCommand.Rsp ? 'rsp' : 'serverclose');
        break;
      default:
        this.violate('unknown_command', this.parser.otherCommand);
    }
  };

  private onOpen(txnr: number, offers: string): void {
    if (this.opened) {
      // librelp's answer: some librelp clients repeat `open` inside a session. The batch
      // before it is closed first: its reply must stay the last one a `syslog` can join.
      this.submitBatch();
      this.replies.answer(txnr, '200 connection already open - ignored', false);
      return;
    }
    const answer = answerOpen(offers);
    this.replies.answer(txnr, answer.response, false);
    if (answer.accepted) {
      this.opened = true;
    } else {
      this.violate(answer.refusal, offers.slice(0, 200));
      this.ending = 'close';
      this.finishIfAnswered();
    }
  }

  private onSyslog(txnr: number, buf: Buffer, start: number, end: number): void {
    const rec = decodeSyslogFrame(buf, start, end, this.source, this.received, this.nowMs);
    if (rec.parseError) this.parseErrors++;
    if (rec.invalidUtf8) this.invalidUtf8++;
    const tenant = this.identity.attribute(rec, this.source.address);
    if (tenant === null) {
      const reason = this.identity.refusal;
      this.context.telemetry.emit('recordRefused', { source: this.context.sourceName, reason, peer: this.peer });
      this.entry.errors++;
      // The refusal is decided now, but it is still answered after the transactions before it.
      this.submitBatch();
      this.replies.answer(txnr, REFUSAL_REPLY[reason], true);
      return;
    }
    if (tenant !== this.batchTenant || this.batchReply === null) {
      this.submitBatch();
      this.batchTenant = tenant;
      this.batchReply = this.replies.openBatch(txnr);
    } else {
      this.replies.extendBatch(this.batchReply);
    }
    this.batch.push(rec);
  }

  private submitBatch(): void {
    const records = this.batch;
    const tenant = this.batchTenant;
    const reply = this.batchReply;
    if (records.length === 0 || tenant === null || reply === null) return;
    this.batch = [];
    this.batchTenant = null;
    this.batchReply = null;
    this.context.counters.records.inc(records.length);
    this.entry.records += records.length;
    this.entry.tenant = tenant.id;
    this.entry.noteHosts(records);
    if (!this.lane.submit(tenant, records, reply.token) && !this.laneBlocked) {
      this.laneBlocked = true;
      this.entry.throttled = true;
      this.lane.whenReady(this.onLaneReady);
    }
  }

  private readonly onLaneReady = (): void => {
    this.laneBlocked = false;
    this.entry.throttled = false;
    this.updateReading();
  };

  /** Read while the window has room and the lane takes more; after our end, read only to see the peer close. */
  private updateReading(): void {
    const hold = !this.finished
      && (this.ending !== null || this.laneBlocked || this.entry.governed || this.replies.unanswered >= this.context.window);
    if (hold === this.paused || this.socket.destroyed) return;
    this.paused = hold;
    if (hold) this.socket.pause();
    else this.socket.resume();
  }

  /** Once the last queued reply is written: serverclose if we asked, then our end of the connection. */
  private finishIfAnswered(): void {
    if (this.finished || this.ending === null || !this.replies.empty) return;
    this.sendDelayedReplies();
    this.finished = true;
    if (!this.socket.writable) {
      this.resolveEnded();
      return;
    }
    if (this.ending === 'serverclose') this.socket.write(SERVERCLOSE_FRAME);
    this.socket.end(this.resolveEnded);
  }

  private violate(violation: RelpProtocolViolation, detail: string): void {
    if (this.violation !== null) return;
    this.violation = violation;
    this.violationDetail = detail;
    this.parser.halt();
  }

  private reportViolation(): void {
    this.context.telemetry.emit('relpProtocolError', {
      source: this.context.sourceName, reason: this.violation, tenant: this.tenant, peer: this.peer, detail: this.violationDetail,
    });
  }

  private flushCounters(bytes: number): void {
    const counters = this.context.counters;
    counters.bytes.inc(bytes);
    this.entry.bytes += bytes;
    this.entry.errors += this.parseErrors;
    if (this.parseErrors > 0) {
      counters.parseErrors.inc(this.parseErrors);
      this.parseErrors = 0;
    }
    if (this.invalidUtf8 > 0) {
      counters.invalidUtf8.inc(this.invalidUtf8);
      this.invalidUtf8 = 0;
    }
  }

  /** The peer closed its sending side: answer what it sent, then close ours (the server allows half-open sockets). */
  private readonly onEnd = (): void => {
    if (!this.parser.finish()) {
      this.context.telemetry.emit('frameRejected', {
        source: this.context.sourceName, reason: this.parser.error ?? 'unknown', tenant: this.tenant, peer: this.peer, bytes: this.parser.errorBytes,
      });
    }
    this.ending ??= 'peer_ended';
    this.finishIfAnswered();
  };

  private readonly onError = (err: NodeJS.ErrnoException): void => {
    this.context.telemetry.emit('socketError', { source: this.context.sourceName, peer: this.peer, error: err.code ?? err.message });
  };

  private readonly onSocketClose = (): void => {
    this.lane.close();
    this.context.pipeline.sessions.close(this.entry);
    this.context.onClose(this);
    this.resolveEnded();
    this.resolveClosed();
  };
}
