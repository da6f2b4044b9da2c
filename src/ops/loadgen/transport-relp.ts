/**
 * RELP (librelp's doc/relp.html), one session per agent as rsyslog's omrelp
 * keeps one: `open` with offers, answered `200`, then each message one
 * `syslog` transaction, at most RELP_WINDOW of them unanswered (messages
 * beyond the window wait in the connection). Each `rsp 200` is the ack of
 * its message: latency is send → ack. Any other answer, or `serverclose`,
 * fails the session, as it fails omrelp's, and the agent opens another.
 * `close` goes after the last message, and the socket ends once it is
 * answered.
 *
 * The answers are read by a parser of its own rather than the node's
 * (src/sources/relp/framing.ts): the load generator is there to check a
 * server, so it should not share that server's reading of the frames.
 */
import net from 'node:net';
import { VERSION } from '../../telemetry/version.js';
import { monotonicMicros } from './clock.js';
import {
  CONNECT_TIMEOUT, PEER_CLOSED, RELP_SERVERCLOSE, STREAM_CLOSE_GRACE_MS, classifyError,
  type AgentConnection, type ConnectionListener, type OutgoingMessage, type Transport, type TransportTarget,
} from './transport.js';

/** Unanswered `syslog` transactions a session may have: librelp's (and so omrelp's) default window. */
export const RELP_WINDOW = 128;
/** TXNR and DATALEN are 1–9 digits; transaction numbers wrap from this one to 1. */
const MAX_TXNR = 999_999_999;
const MAX_NUMBER_DIGITS = 9;
const MAX_COMMAND_LETTERS = 32;
const OPEN_TXNR = 1;
const OPEN_OFFERS = `relp_version=0\nrelp_software=sluice-loadgen,${VERSION}\ncommands=syslog`;
const OPEN_FRAME = `${OPEN_TXNR} open ${Buffer.byteLength(OPEN_OFFERS)} ${OPEN_OFFERS}\n`;
const STATUS_OK = 200;
/** In-flight ring slots a session starts with: most agents send far below the window. */
const INITIAL_IN_FLIGHT_SLOTS = 4;

/** Error codes of this transport (beside errno codes, PEER_CLOSED, CONNECT_TIMEOUT and RELP_SERVERCLOSE). */
export const RELP_BAD_FRAME = 'RELP_BAD_FRAME';
/** An answer to no transaction this session has open, or a command a server does not send. */
export const RELP_UNEXPECTED = 'RELP_UNEXPECTED';

/** `RELP_<status>` for a refused `syslog`, `RELP_OPEN_<status>` for a refused `open`; NO_STATUS when DATA has no 3-digit code. */
export function refusalCode(status: number, open: boolean): string {
  return `RELP_${open ? 'OPEN_' : ''}${status < 0 ? 'NO_STATUS' : status}`;
}

function nextTxnr(txnr: number): number {
  return txnr >= MAX_TXNR ? 1 : txnr + 1;
}

/** How many transactions `to` comes after `from`, across the wrap. */
function txnrDistance(from: number, to: number): number {
  return (to - from + MAX_TXNR) % MAX_TXNR;
}

// ---------------------------------------------------------------------------
// Answers from the server

/** What a server sends a client: answers (`rsp`), the `serverclose` hint, or something else (an error). */
export const RelpAnswerKind = { Rsp: 0, ServerClose: 1, Other: 2 } as const;
export type RelpAnswerKind = (typeof RelpAnswerKind)[keyof typeof RelpAnswerKind];

export type RelpAnswerError = 'bad_txnr' | 'bad_command' | 'bad_datalen' | 'bad_trailer';

/** `status`: the 3-digit code an `rsp`'s DATA starts with (200 is OK), or -1 when it starts otherwise. */
export type RelpAnswerHandler = (txnr: number, kind: RelpAnswerKind, status: number) => void;

const LF = 0x0a;
const SP = 0x20;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const RSP = Buffer.from('rsp');
const SERVERCLOSE = Buffer.from('serverclose');

const enum State {
  Txnr,
  Command,
  DataLen,
  Data,
  Trailer,
}

function isLetter(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
}

/**
 * An incremental reader of `TXNR SP COMMAND SP DATALEN [SP DATA] LF`: frames
 * may arrive split anywhere, several to a read. Nothing is copied or kept
 * but the numbers: DATA is read only for an `rsp`'s status code and skipped
 * by its length otherwise.
 */
export class RelpAnswerParser {
  /** Why parsing stopped, once push() has returned false. */
  error: RelpAnswerError | null = null;

  private state = State.Txnr;
  private digits = 0;
  private txnr = 0;
  private dataLen = 0;
  private dataRead = 0;
  private commandLength = 0;
  /** Whether the command read so far is still a prefix of `rsp` / `serverclose`. */
  private maybeRsp = true;
  private maybeServerClose = true;
  private statusValue = 0;
  private statusDigits = 0;
  /** A non-digit ended the status code (or none was there). */
  private statusEnded = false;
  private halted = false;

  constructor(private readonly onAnswer: RelpAnswerHandler) {}

  /** Hand out no more answers (the session is over); later input is ignored. */
  halt(): void {
    this.halted = true;
  }

  /** Feed one chunk. Returns false on a framing error, after which the session must end. */
  push(chunk: Buffer): boolean {
    if (this.error !== null) return false;
    const n = chunk.length;
    let i = 0;
    while (i < n && !this.halted) {
      const c = chunk[i]!;
      switch (this.state) {
        case State.Txnr:
          if (c >= DIGIT_0 && c <= DIGIT_9) {
            if (this.digits === MAX_NUMBER_DIGITS) return this.fail('bad_txnr');
            this.txnr = this.txnr * 10 + (c - DIGIT_0);
            this.digits++;
          } else if (c === SP && this.digits > 0) {
            this.state = State.Command;
            this.commandLength = 0;
            this.maybeRsp = true;
            this.maybeServerClose = true;
          } else {
            return this.fail('bad_txnr');
          }
          i++;
          break;
        case State.Command:
          if (isLetter(c)) {
            if (this.commandLength === MAX_COMMAND_LETTERS) return this.fail('bad_command');
            this.maybeRsp &&= RSP[this.commandLength] === c;
            this.maybeServerClose &&= SERVERCLOSE[this.commandLength] === c;
            this.commandLength++;
          } else if (c === SP && this.commandLength > 0) {
            this.state = State.DataLen;
            this.digits = 0;
            this.dataLen = 0;
          } else {
            return this.fail('bad_command');
          }
          i++;
          break;
        case State.DataLen:
          if (c >= DIGIT_0 && c <= DIGIT_9) {
            if (this.digits === MAX_NUMBER_DIGITS) return this.fail('bad_datalen');
            this.dataLen = this.dataLen * 10 + (c - DIGIT_0);
            this.digits++;
            i++;
          } else if (this.digits === 0) {
            return this.fail('bad_datalen');
          } else if (this.dataLen === 0) {
            // No DATA, so no SP either: this byte must be the trailer.
            this.startData();
            this.state = State.Trailer;
          } else if (c === SP) {
            this.startData();
            this.state = State.Data;
            i++;
          } else {
            return this.fail('bad_datalen');
          }
          break;
        case State.Data: {
          if (!this.statusEnded) {
            // The status code: the first digits of DATA, read one byte at a time.
            if (c >= DIGIT_0 && c <= DIGIT_9 && this.statusDigits < 3) {
              this.statusValue = this.statusValue * 10 + (c - DIGIT_0);
              this.statusDigits++;
            } else {
              this.statusEnded = true;
              if (c >= DIGIT_0 && c <= DIGIT_9) this.statusDigits = 0;
            }
            i++;
            this.dataRead++;
          } else {
            // The rest of DATA is skipped by its length.
            const take = Math.min(this.dataLen - this.dataRead, n - i);
            i += take;
            this.dataRead += take;
          }
          if (this.dataRead === this.dataLen) this.state = State.Trailer;
          break;
        }
        case State.Trailer:
          if (c !== LF) return this.fail('bad_trailer');
          i++;
          this.deliver();
          break;
      }
    }
    return true;
  }

  private startData(): void {
    this.dataRead = 0;
    this.statusValue = 0;
    this.statusDigits = 0;
    this.statusEnded = false;
  }

  private deliver(): void {
    const txnr = this.txnr;
    const kind = this.maybeRsp && this.commandLength === RSP.length ? RelpAnswerKind.Rsp
      : this.maybeServerClose && this.commandLength === SERVERCLOSE.length ? RelpAnswerKind.ServerClose
        : RelpAnswerKind.Other;
    const status = this.statusDigits === 3 ? this.statusValue : -1;
    this.state = State.Txnr;
    this.txnr = 0;
    this.digits = 0;
    this.onAnswer(txnr, kind, status);
  }

  private fail(reason: RelpAnswerError): false {
    this.error = reason;
    return false;
  }
}

// ---------------------------------------------------------------------------
// Sessions

export class RelpTransport implements Transport {
  readonly protocol = 'relp' as const;
  readonly acknowledged = true;

  constructor(private readonly target: TransportTarget) {}

  open(localAddress: string, listener: ConnectionListener): AgentConnection {
    return new RelpConnection(this.target, localAddress, listener);
  }
}

class RelpConnection implements AgentConnection {
  private readonly socket: net.Socket;
  private readonly parser = new RelpAnswerParser((txnr, kind, status) => this.onAnswer(txnr, kind, status));
  private readonly openedAt = monotonicMicros();
  /** `open` was answered 200: `syslog` transactions may go. */
  private established = false;
  /** The agent called close: `close` goes once every message has; the listener hears only acks now. */
  private closing = false;
  /** Destroyed, failed, or closed: the listener hears nothing more. */
  private finished = false;
  /** The next command's transaction number (`open` went first, with OPEN_TXNR). */
  private txnr = nextTxnr(OPEN_TXNR);
  /** The transaction number of `close` once sent, else 0. */
  private closeTxnr = 0;
  /**
   * Send times of the unanswered `syslog` transactions, a ring whose size is
   * a power of two; they are consecutive transactions from `oldestTxnr` on.
   * NaN marks one answered ahead of an older one.
   */
  private inFlight = new Float64Array(INITIAL_IN_FLIGHT_SLOTS);
  private inFlightHead = 0;
  private inFlightCount = 0;
  private oldestTxnr = 0;
  /** Messages beyond the window (or sent before `open` was answered), in order from `waitingHead`. */
  private waiting: (OutgoingMessage | undefined)[] = [];
  private waitingHead = 0;
  private waitingBytes = 0;

  constructor(target: TransportTarget, localAddress: string, private readonly listener: ConnectionListener) {
    this.socket = net.connect({ host: target.host, port: target.port, localAddress, noDelay: true });
    // Bounds the TCP connect and the `open` handshake together (it is inactivity, so each of them).
    this.socket.setTimeout(target.connectTimeoutMs);
    this.socket.once('connect', () => this.socket.write(OPEN_FRAME));
    this.socket.on('data', this.onData);
    this.socket.on('timeout', this.onTimeout);
    this.socket.on('error', this.onError);
    this.socket.on('end', this.onEnd);
  }

  get pendingBytes(): number {
    return this.socket.writableLength + this.waitingBytes;
  }

  get unacknowledged(): number {
    return this.inFlightCount + (this.waiting.length - this.waitingHead);
  }

  send(batch: readonly OutgoingMessage[]): void {
    if (this.finished || this.closing) return;
    for (const message of batch) {
      this.waiting.push(message);
      this.waitingBytes += message.text.length;
    }
    if (this.established) this.sendWaiting();
  }

  close(): void {
    if (this.finished) {
      this.socket.destroy();
      return;
    }
    if (this.closing) return;
    this.closing = true;
    this.socket.setTimeout(STREAM_CLOSE_GRACE_MS);
    this.sendCloseWhenDone();
  }

  destroy(): void {
    this.end();
  }

  /** As many waiting messages as the window takes, in one write. */
  private sendWaiting(): void {
    let frames = '';
    const waiting = this.waiting;
    while (this.waitingHead < waiting.length && this.inFlightCount < RELP_WINDOW) {
      const message = waiting[this.waitingHead]!;
      waiting[this.waitingHead++] = undefined;
      this.waitingBytes -= message.text.length;
      const txnr = this.takeTxnr();
      this.track(txnr, message.sendMicros);
      // ASCII: the text's length is its size in bytes.
      frames += `${txnr} syslog ${message.text.length} ${message.text}\n`;
    }
    if (this.waitingHead === waiting.length) {
      waiting.length = 0;
      this.waitingHead = 0;
    } else if (this.waitingHead >= 1024 && this.waitingHead * 2 >= waiting.length) {
      // A long backlog (a flooding agent): drop the sent half so the array does not grow forever.
      waiting.splice(0, this.waitingHead);
      this.waitingHead = 0;
    }
    if (frames !== '') this.socket.write(frames);
    this.sendCloseWhenDone();
  }

  private sendCloseWhenDone(): void {
    if (!this.closing || !this.established || this.closeTxnr !== 0 || this.waitingHead < this.waiting.length) return;
    this.closeTxnr = this.takeTxnr();
    this.socket.write(`${this.closeTxnr} close 0\n`);
  }

  private takeTxnr(): number {
    const txnr = this.txnr;
    this.txnr = nextTxnr(txnr);
    return txnr;
  }

  private track(txnr: number, sendMicros: number): void {
    if (this.inFlightCount === this.inFlight.length) this.growInFlight();
    if (this.inFlightCount === 0) this.oldestTxnr = txnr;
    this.inFlight[(this.inFlightHead + this.inFlightCount) & (this.inFlight.length - 1)] = sendMicros;
    this.inFlightCount++;
  }

  private growInFlight(): void {
    const old = this.inFlight;
    const grown = new Float64Array(old.length * 2);
    for (let k = 0; k < this.inFlightCount; k++) grown[k] = old[(this.inFlightHead + k) & (old.length - 1)]!;
    this.inFlight = grown;
    this.inFlightHead = 0;
  }

  /** The send time of the unanswered `syslog` transaction `txnr`, now answered; undefined if there is none. */
  private settle(txnr: number): number | undefined {
    const offset = txnrDistance(this.oldestTxnr, txnr);
    if (offset >= this.inFlightCount) return undefined;
    const mask = this.inFlight.length - 1;
    const slot = (this.inFlightHead + offset) & mask;
    const sendMicros = this.inFlight[slot]!;
    if (Number.isNaN(sendMicros)) return undefined;
    this.inFlight[slot] = NaN;
    // Servers answer in order, so this is nearly always the head; an answer ahead of older ones waits for them.
    while (this.inFlightCount > 0 && Number.isNaN(this.inFlight[this.inFlightHead]!)) {
      this.inFlightHead = (this.inFlightHead + 1) & mask;
      this.inFlightCount--;
      this.oldestTxnr = nextTxnr(this.oldestTxnr);
    }
    return sendMicros;
  }

  private readonly onData = (chunk: Buffer): void => {
    if (!this.parser.push(chunk)) {
      this.fail(RELP_BAD_FRAME);
      return;
    }
    // Once per read, not per answer: the answers of one read free the window together.
    if (this.established && !this.finished) this.sendWaiting();
  };

  private onAnswer(txnr: number, kind: RelpAnswerKind, status: number): void {
    if (kind === RelpAnswerKind.ServerClose) {
      this.fail(RELP_SERVERCLOSE);
      return;
    }
    if (kind !== RelpAnswerKind.Rsp) {
      this.fail(RELP_UNEXPECTED);
      return;
    }
    if (!this.established) {
      if (txnr !== OPEN_TXNR) this.fail(RELP_UNEXPECTED);
      else if (status !== STATUS_OK) this.fail(refusalCode(status, true));
      else this.onOpened();
      return;
    }
    if (this.closeTxnr !== 0 && txnr === this.closeTxnr) {
      // Answered after every transaction before it: the session is over.
      this.parser.halt();
      this.finished = true;
      this.socket.end();
      return;
    }
    const sendMicros = this.settle(txnr);
    if (sendMicros === undefined) this.fail(RELP_UNEXPECTED);
    else if (status === STATUS_OK) this.listener.acknowledged(sendMicros);
    else this.fail(refusalCode(status, false));
  }

  private onOpened(): void {
    this.established = true;
    if (!this.closing) {
      this.socket.setTimeout(0);
      this.listener.connected(monotonicMicros() - this.openedAt);
    }
    this.sendWaiting();
  }

  private readonly onTimeout = (): void => {
    this.fail(CONNECT_TIMEOUT);
  };

  private readonly onError = (err: NodeJS.ErrnoException): void => {
    this.fail(err.code ?? 'EUNKNOWN');
  };

  private readonly onEnd = (): void => {
    this.fail(PEER_CLOSED);
  };

  /** The session is lost; the agent hears of it unless it had closed or destroyed it. */
  private fail(code: string): void {
    const report = !this.finished && !this.closing;
    this.end();
    if (report) this.listener.failed(classifyError(code, this.established), code, true);
  }

  /** Nothing more is sent, read or reported; what was unanswered stays so. */
  private end(): void {
    this.finished = true;
    this.parser.halt();
    this.socket.destroy();
    this.inFlightCount = 0;
    this.waiting = [];
    this.waitingHead = 0;
    this.waitingBytes = 0;
  }
}
