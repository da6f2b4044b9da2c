/**
 * One RELP connection: frames in, records to the session's lane, responses
 * out in transaction order once every acknowledging sink has committed.
 *
 * The session batcher (../session-batcher.ts) submits the records of one
 * event-loop turn in runs of one tenant, each with one AckToken (its batch
 * reply); the ReplyQueue turns settled tokens into `rsp` frames. Reading
 * pauses while the unanswered transactions reach the window
 * (PauseReason.Window), while its answers fill the socket's send buffer
 * because the agent does not read them (PauseReason.Replies, until 'drain'),
 * the session is ending, or any other reason holds (the lane, the memory
 * governor), so TCP backpressure reaches the agent.
 * A chunk is always parsed to its end (keeping part of it would pin it), so a
 * client that ignores its own window can overshoot ours by one chunk.
 */
import type net from 'node:net';
import { AckStatus } from '../../core/ack.js';
import type { Reconnectable } from '../../core/component.js';
import { PauseReason } from '../../core/sessions.js';
import type { RefusalReason, SessionIdentity } from '../../core/identity.js';
import { SessionBatcher, type StreamContext } from '../session-batcher.js';
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

/** What every session of one source shares. */
export interface RelpSessionContext extends StreamContext {
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

export class RelpSession extends SessionBatcher<RelpSessionContext> implements ReplyOutput, Reconnectable {
  readonly protocol = 'relp';
  /** Resolves when the connection is closed. */
  readonly closed: Promise<void>;
  /** Resolves once the session has ended its side: every reply (and serverclose, if asked) handed to the kernel, or the socket closed. */
  readonly ended: Promise<void>;
  protected readonly frames: RelpFrameParser;
  private readonly replies: ReplyQueue;
  private expectedTxnr = 1;
  private opened = false;
  /** The reply of the run being read (see SessionBatcher.startsRun). */
  private batchReply: BatchReply | null = null;
  private violation: RelpProtocolViolation | null = null;
  private violationDetail = '';
  private ending: Ending | null = null;
  /** Our side is closed (after the last reply); input is discarded until the peer closes. */
  private finished = false;
  /** Replies decided while the memory governor pauses this session: sent when it resumes (acks delayed under pressure). */
  private delayedReplies = '';
  /** Made the first time the agent's answers fill the send buffer (most sessions never do). */
  private repliesDrained: (() => void) | null = null;
  private resolveClosed!: () => void;
  private resolveEnded!: () => void;

  constructor(context: RelpSessionContext, socket: net.Socket, identity: SessionIdentity) {
    super(context, socket, identity);
    this.frames = new RelpFrameParser(context.maxFrameBytes, this.onFrame);
    this.replies = new ReplyQueue(this);
    this.closed = new Promise((resolve) => { this.resolveClosed = resolve; });
    this.ended = new Promise((resolve) => { this.resolveEnded = resolve; });
  }

  /** The tenant of the connection itself (network or certificate), if any. */
  get tenant(): string | null {
    return this.identity.tenant?.id ?? null;
  }

  /** `syslog` transactions received and not yet answered. */
  get unanswered(): number {
    return this.replies.unanswered;
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
      this.endWith('serverclose');
      // A frame read halfway stays unanswered: the agent resends it after reconnecting.
      this.frames.halt();
      this.finishIfAnswered();
    }
    return this.ended;
  }

  /** Also the answers not yet sent: delayed, or waiting in the socket for an agent that does not read them. */
  override queuedBytes(): number {
    return super.queuedBytes() + this.delayedReplies.length + this.socket.writableLength;
  }

  override resumeReading(): void {
    this.sendDelayedReplies();
    if (this.ending !== null) this.finishIfAnswered();
    super.resumeReading();
  }

  sendReplies(frames: string, _answered: number): void {
    // A paused session's agent gets its answers late, so it stops at its own window instead of
    // filling the socket buffers; a session that is ending is answered at once.
    if (this.pausedFor(PauseReason.Memory) && this.ending === null) {
      this.delayedReplies += frames;
      // These transactions are answered now (their answers only go out later): the window follows, or a session the
      // window paused would stay paused once the governor resumes it, with nothing left to read or answer to wake it.
      this.updateWindow();
      return;
    }
    this.sendDelayedReplies();
    this.write(frames);
    if (this.ending !== null) this.finishIfAnswered();
    this.updateWindow();
  }

  private sendDelayedReplies(): void {
    if (this.delayedReplies === '') return;
    const frames = this.delayedReplies;
    this.delayedReplies = '';
    this.write(frames);
  }

  /**
   * Answers out; past the socket's high-water mark (an agent that does not
   * read its answers) reading stops until the kernel takes them ('drain'), so
   * such an agent cannot make the node buffer answers without bound.
   */
  private write(frames: string): void {
    if (!this.socket.writable || this.socket.write(frames) || this.pausedFor(PauseReason.Replies)) return;
    this.pause(PauseReason.Replies);
    this.socket.once('drain', this.repliesDrained ??= () => this.resume(PauseReason.Replies));
  }

  batchSettled(status: AckStatus, count: number): void {
    if (status !== AckStatus.Committed) {
      this.context.telemetry.emit('relpNotCommitted', {
        source: this.context.sourceName, reason: status === AckStatus.Dropped ? 'dropped' : 'failed', peer: this.peer, records: count,
      }, count);
    }
  }

  protected afterRead(ok: boolean): boolean {
    if (!ok) {
      this.context.telemetry.emit('frameRejected', {
        source: this.context.sourceName, reason: this.frames.error ?? 'unknown', tenant: this.tenant, peer: this.peer, bytes: this.frames.errorBytes,
      });
      this.socket.destroy();
      return false;
    }
    if (this.violation !== null) {
      this.reportViolation();
      // An `open` refused by its offers gets its 500 first; any other violation closes at once.
      if (this.ending === null) {
        this.socket.destroy();
        return false;
      }
    }
    this.updateWindow();
    return true;
  }

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
        this.submitRun();
        this.replies.answer(txnr, '200 OK', false);
        this.endWith('close');
        this.frames.halt();
        this.finishIfAnswered();
        break;
      case RelpCommand.Rsp:
      case RelpCommand.ServerClose:
        this.violate('unexpected_command', command === RelpCommand.Rsp ? 'rsp' : 'serverclose');
        break;
      default:
        this.violate('unknown_command', this.frames.otherCommand);
    }
  };

  private onOpen(txnr: number, offers: string): void {
    if (this.opened) {
      // librelp's answer: some librelp clients repeat `open` inside a session. The run
      // before it is closed first: its reply must stay the last one a `syslog` can join.
      this.submitRun();
      this.replies.answer(txnr, '200 connection already open - ignored', false);
      return;
    }
    const answer = answerOpen(offers);
    this.replies.answer(txnr, answer.response, false);
    if (answer.accepted) {
      this.opened = true;
    } else {
      this.violate(answer.refusal, offers.slice(0, 200));
      this.endWith('close');
      this.finishIfAnswered();
    }
  }

  private onSyslog(txnr: number, buf: Buffer, start: number, end: number): void {
    const rec = this.decode(buf, start, end);
    const tenant = this.attribute(rec);
    if (tenant === null) {
      // The refusal is decided now, but it is still answered after the transactions before it. Then the
      // session ends (serverclose): librelp takes any 500 for a session error and reconnects anyway, and a
      // client that sends no acceptable credentials must not hold a session open. Transactions after this
      // one are left unanswered: the agent resends them once it has reconnected.
      this.submitRun();
      this.replies.answer(txnr, REFUSAL_REPLY[this.identity.refusal], true);
      void this.serverClose(false);
      return;
    }
    if (this.startsRun(tenant)) {
      // One reply for the run: its transactions are consecutive, answered together once its sinks commit.
      this.batchReply = this.replies.openBatch(txnr);
      this.openRun(tenant, this.batchReply.token);
    } else {
      this.replies.extendBatch(this.batchReply!);
    }
    this.addToRun(rec);
  }

  /** Reading stops while the unanswered transactions fill the window. */
  private updateWindow(): void {
    if (this.replies.unanswered >= this.context.window) this.pause(PauseReason.Window);
    else this.resume(PauseReason.Window);
  }

  private endWith(ending: Ending): void {
    this.ending = ending;
    this.pause(PauseReason.Ending);
  }

  /** Once the last queued reply is written: serverclose if we asked, then our end of the connection. */
  private finishIfAnswered(): void {
    if (this.finished || this.ending === null || !this.replies.empty) return;
    this.sendDelayedReplies();
    this.finished = true;
    // After our end, read only to see the peer close.
    this.discardInput();
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
    this.frames.halt();
  }

  private reportViolation(): void {
    this.context.telemetry.emit('relpProtocolError', {
      source: this.context.sourceName, reason: this.violation, tenant: this.tenant, peer: this.peer, detail: this.violationDetail,
    });
  }

  /** The peer closed its sending side: answer what it sent, then close ours (the server allows half-open sockets). */
  onEnd(): void {
    if (!this.frames.finish()) {
      this.context.telemetry.emit('frameRejected', {
        source: this.context.sourceName, reason: this.frames.error ?? 'unknown', tenant: this.tenant, peer: this.peer, bytes: this.frames.errorBytes,
      });
    }
    this.flush();
    if (this.ending === null) this.endWith('peer_ended');
    this.finishIfAnswered();
  }

  protected released(): void {
    this.context.onClose(this);
    this.resolveEnded();
    this.resolveClosed();
  }
}
