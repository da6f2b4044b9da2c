/**
 * RELP framing (librelp doc/relp.html): `TXNR SP COMMAND SP DATALEN [SP DATA] LF`.
 *
 * TXNR and DATALEN are 1–9 digits, COMMAND is 1–32 letters; DATA is present
 * (after one SP) only when DATALEN > 0, and the LF trailer is checked before
 * a frame is handed out, so a frame with a wrong length is never dispatched.
 *
 * The header is parsed byte by byte (it is short); DATA is located by its
 * length, never scanned. A frame whose DATA and trailer lie in one chunk is
 * handed out as (chunk, start, end) with no copy: the consumer must copy what
 * it keeps (it decodes to a string at once). DATA that spans chunks is copied
 * into a buffer the parser owns, so no socket chunk outlives its processing.
 */

export type RelpFrameError =
  | 'bad_txnr'
  | 'bad_command'
  | 'bad_datalen'
  | 'too_large'
  | 'bad_trailer'
  | 'truncated';

/** Commands a server acts on; anything else arrives as Other (its name kept for the report). */
export const RelpCommand = { Syslog: 0, Open: 1, Close: 2, Rsp: 3, ServerClose: 4, Other: 5 } as const;
export type RelpCommand = (typeof RelpCommand)[keyof typeof RelpCommand];

/** `data` is only valid during the call: copy out what must outlive it. */
export type RelpFrameHandler = (txnr: number, command: RelpCommand, data: Buffer, start: number, end: number) => void;

/** TXNR and DATALEN are NUMBER = 1*9DIGIT. */
const MAX_NUMBER_DIGITS = 9;
const MAX_COMMAND_LETTERS = 32;
/** Transaction numbers are latched at this value; the next one is 1. */
export const MAX_TXNR = 999_999_999;

const LF = 0x0a;
const SP = 0x20;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const LOWER_A = 0x61;
const LOWER_Z = 0x7a;
const UPPER_A = 0x41;
const UPPER_Z = 0x5a;
const EMPTY = Buffer.alloc(0);

const enum State {
  Txnr,
  Command,
  DataLen,
  Data,
  Trailer,
}

/** The transaction number that follows `txnr` (wraps from 999,999,999 to 1). */
export function nextTxnr(txnr: number): number {
  return txnr >= MAX_TXNR ? 1 : txnr + 1;
}

/** One outgoing frame: `TXNR SP COMMAND SP DATALEN [SP DATA] LF` (DATA is ASCII here). */
export function formatFrame(txnr: number, command: string, data: string): string {
  const length = Buffer.byteLength(data);
  return length === 0 ? `${txnr} ${command} 0\n` : `${txnr} ${command} ${length} ${data}\n`;
}

function isLetter(c: number): boolean {
  return (c >= LOWER_A && c <= LOWER_Z) || (c >= UPPER_A && c <= UPPER_Z);
}

export class RelpFrameParser {
  /** Why parsing stopped, once push() has returned false. */
  error: RelpFrameError | null = null;
  /** The DATALEN of an oversized frame, for the error report. */
  errorBytes = 0;
  /** Name of the last command of kind Other (built only for those). */
  otherCommand = '';

  private state = State.Txnr;
  private digits = 0;
  private txnr = 0;
  private dataLen = 0;
  private command: RelpCommand = RelpCommand.Other;
  private readonly commandBytes = Buffer.alloc(MAX_COMMAND_LETTERS);
  private commandLength = 0;
  private body: Buffer | null = null;
  private bodyFilled = 0;
  private halted = false;

  constructor(private readonly maxDataBytes: number, private readonly onFrame: RelpFrameHandler) {}

  /** Bytes held for a frame that spans chunks (for memory accounting). */
  get heldBytes(): number {
    return this.body === null ? 0 : this.body.length;
  }

  /** Whether a frame has been started and not finished. */
  get midFrame(): boolean {
    return this.state !== State.Txnr || this.digits > 0;
  }

  /** Stop handing out frames (the session closes or drains); later input is ignored. */
  halt(): void {
    this.halted = true;
    this.body = null;
  }

  /** Feed one chunk. Returns false on a framing error; the connection must then be closed. */
  push(chunk: Buffer): boolean {
    if (this.error !== null) return false;
    const n = chunk.length;
    let i = 0;
    while (i < n && !this.halted) {
      switch (this.state) {
        case State.Txnr: {
          const c = chunk[i]!;
          if (c >= DIGIT_0 && c <= DIGIT_9) {
            if (this.digits === MAX_NUMBER_DIGITS) return this.fail('bad_txnr', 0);
            this.txnr = this.txnr * 10 + (c - DIGIT_0);
            this.digits++;
          } else if (c === SP && this.digits > 0) {
            this.state = State.Command;
            this.commandLength = 0;
          } else {
            return this.fail('bad_txnr', 0);
          }
          i++;
          break;
        }
        case State.Command: {
          const c = chunk[i]!;
          if (isLetter(c)) {
            if (this.commandLength === MAX_COMMAND_LETTERS) return this.fail('bad_command', 0);
            this.commandBytes[this.commandLength++] = c;
          } else if (c === SP && this.commandLength > 0) {
            this.command = this.classifyCommand();
            this.state = State.DataLen;
            this.digits = 0;
            this.dataLen = 0;
          } else {
            return this.fail('bad_command', 0);
          }
          i++;
          break;
        }
        case State.DataLen: {
          const c = chunk[i]!;
          if (c >= DIGIT_0 && c <= DIGIT_9) {
            if (this.digits === MAX_NUMBER_DIGITS) return this.fail('bad_datalen', 0);
            this.dataLen = this.dataLen * 10 + (c - DIGIT_0);
            this.digits++;
            i++;
          } else if (this.digits === 0) {
            return this.fail('bad_datalen', 0);
          } else if (this.dataLen === 0) {
            // No DATA, so no SP either: this byte must be the trailer.
            this.state = State.Trailer;
          } else if (c === SP) {
            if (this.dataLen > this.maxDataBytes) return this.fail('too_large', this.dataLen);
            this.state = State.Data;
            this.bodyFilled = 0;
            i++;
          } else {
            return this.fail('bad_datalen', 0);
          }
          break;
        }
        case State.Data: {
          const need = this.dataLen - this.bodyFilled;
          if (this.body === null && n - i > need) {
            // DATA and trailer are both in this chunk: no copy.
            if (chunk[i + need] !== LF) return this.fail('bad_trailer', 0);
            const start = i;
            i += need + 1;
            this.deliver(chunk, start, start + need);
            break;
          }
          if (this.body === null) this.body = Buffer.allocUnsafe(this.dataLen);
          const take = Math.min(need, n - i);
          chunk.copy(this.body, this.bodyFilled, i, i + take);
          this.bodyFilled += take;
          i += take;
          if (this.bodyFilled === this.dataLen) this.state = State.Trailer;
          break;
        }
        case State.Trailer: {
          if (chunk[i] !== LF) return this.fail('bad_trailer', 0);
          i++;
          const body = this.body;
          this.body = null;
          if (body === null) this.deliver(EMPTY, 0, 0);
          else this.deliver(body, 0, body.length);
          break;
        }
      }
    }
    return true;
  }

  /** The stream ended: a partial frame is an error (its sender will resend it unacknowledged). */
  finish(): boolean {
    if (this.error !== null) return false;
    if (!this.halted && this.midFrame) return this.fail('truncated', this.bodyFilled);
    return true;
  }

  private deliver(buf: Buffer, start: number, end: number): void {
    const txnr = this.txnr;
    const command = this.command;
    this.state = State.Txnr;
    this.txnr = 0;
    this.digits = 0;
    this.onFrame(txnr, command, buf, start, end);
  }

  /** Known commands by length and bytes: no string per frame. */
  private classifyCommand(): RelpCommand {
    const b = this.commandBytes;
    switch (this.commandLength) {
      case 3:
        if (b[0] === 0x72 && b[1] === 0x73 && b[2] === 0x70) return RelpCommand.Rsp;
        break;
      case 4:
        if (b.toString('latin1', 0, 4) === 'open') return RelpCommand.Open;
        break;
      case 5:
        if (b.toString('latin1', 0, 5) === 'close') return RelpCommand.Close;
        break;
      case 6:
        // "syslog", byte by byte: the one command on the hot path.
        if (b[0] === 0x73 && b[1] === 0x79 && b[2] === 0x73 && b[3] === 0x6c && b[4] === 0x6f && b[5] === 0x67) return RelpCommand.Syslog;
        break;
      case 11:
        if (b.toString('latin1', 0, 11) === 'serverclose') return RelpCommand.ServerClose;
        break;
    }
    this.otherCommand = b.toString('latin1', 0, this.commandLength);
    return RelpCommand.Other;
  }

  private fail(reason: RelpFrameError, bytes: number): false {
    this.error = reason;
    this.errorBytes = bytes;
    this.body = null;
    this.bodyFilled = 0;
    return false;
  }
}
