/**
 * RFC 6587 framing for syslog over a byte stream, detected per frame:
 * a frame that starts with a digit followed by digits and a space is
 * octet-counted (`LEN SP MSG`); anything else runs to the next LF.
 * A digit run not followed by a space is the start of an LF-terminated
 * frame (messages without PRI that start with a timestamp).
 *
 * Frames wholly inside one chunk are handed out as (chunk, start, end) with no
 * copy; the consumer must copy what it keeps (it decodes to a string). The
 * bytes of a frame that spans chunks are always copied into a buffer owned by
 * the framer, so no socket chunk is ever retained past its processing — the
 * Node.js form of the sub-binary leak.
 */

export type FrameErrorReason = 'too_large' | 'bad_octet_count' | 'truncated';

export type FrameHandler = (buf: Buffer, start: number, end: number) => void;

const LF = 0x0a;
const CR = 0x0d;
const NUL = 0x00;
const SP = 0x20;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
/** More digits than this cannot be a sane length: fall back to LF framing. */
const MAX_COUNT_DIGITS = 9;

const enum Mode {
  /** Between frames. */
  Idle,
  /** Reading the digits of what may be an octet count. */
  Count,
  /** Reading the body of an octet-counted frame. */
  Body,
  /** Reading an LF-terminated frame. */
  Line,
}

export class SyslogFramer {
  /** Why framing stopped, once push() has returned false. */
  error: FrameErrorReason | null = null;
  /** Size of the offending frame, for the error report. */
  errorBytes = 0;

  private mode = Mode.Idle;
  private count = 0;
  private countDigits = 0;
  private countText = '';
  private body: Buffer | null = null;
  private bodyFilled = 0;
  private lineParts: Buffer[] = [];
  private lineBytes = 0;

  constructor(private readonly maxFrame: number, private readonly onFrame: FrameHandler) {}

  /** Bytes held for a frame that spans chunks (for memory accounting). */
  get heldBytes(): number {
    return this.bodyFilled + this.lineBytes;
  }

  /** Feed one chunk. Returns false on a framing error; the connection must then be closed. */
  push(chunk: Buffer): boolean {
    if (this.error !== null) return false;
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      switch (this.mode) {
        case Mode.Idle: {
          const c = chunk[i]!;
          if (c === LF || c === CR || c === NUL) {
            i++;
          } else if (c >= DIGIT_0 && c <= DIGIT_9) {
            this.mode = Mode.Count;
            this.count = 0;
            this.countDigits = 0;
            this.countText = '';
          } else {
            this.mode = Mode.Line;
          }
          break;
        }
        case Mode.Count: {
          while (i < n && this.countDigits < MAX_COUNT_DIGITS) {
            const c = chunk[i]!;
            if (c < DIGIT_0 || c > DIGIT_9) break;
            this.count = this.count * 10 + (c - DIGIT_0);
            this.countDigits++;
            this.countText += String.fromCharCode(c);
            i++;
          }
          if (i === n) break;
          if (chunk[i] === SP) {
            i++;
            if (this.count === 0) return this.fail('bad_octet_count', 0);
            if (this.count > this.maxFrame) return this.fail('too_large', this.count);
            this.mode = Mode.Body;
            this.bodyFilled = 0;
          } else {
            // Not an octet count: the digits begin an LF-terminated frame.
            this.lineParts.push(Buffer.from(this.countText, 'latin1'));
            this.lineBytes = this.countDigits;
            this.mode = Mode.Line;
          }
          break;
        }
        case Mode.Body: {
          const need = this.count - this.bodyFilled;
          if (this.body === null && n - i >= need) {
            this.onFrame(chunk, i, i + need);
            i += need;
            this.mode = Mode.Idle;
            break;
          }
          if (this.body === null) this.body = Buffer.allocUnsafe(this.count);
          const take = Math.min(need, n - i);
          chunk.copy(this.body, this.bodyFilled, i, i + take);
          this.bodyFilled += take;
          i += take;
          if (this.bodyFilled === this.count) {
            const body = this.body;
            this.body = null;
            this.bodyFilled = 0;
            this.mode = Mode.Idle;
            this.onFrame(body, 0, body.length);
          }
          break;
        }
        case Mode.Line: {
          const lf = chunk.indexOf(LF, i);
          const end = lf < 0 ? n : lf;
          const total = this.lineBytes + (end - i);
          if (total > this.maxFrame) return this.fail('too_large', total);
          if (lf < 0) {
            this.lineParts.push(Buffer.from(chunk.subarray(i, n)));
            this.lineBytes = total;
            i = n;
          } else if (this.lineParts.length === 0) {
            this.onFrame(chunk, i, lf);
            i = lf + 1;
            this.mode = Mode.Idle;
          } else {
            this.lineParts.push(chunk.subarray(i, lf));
            const line = Buffer.concat(this.lineParts, total);
            this.lineParts = [];
            this.lineBytes = 0;
            i = lf + 1;
            this.mode = Mode.Idle;
            this.onFrame(line, 0, line.length);
          }
          break;
        }
      }
    }
    return true;
  }

  /**
   * The stream ended. A pending LF frame is delivered (its sender simply
   * omitted the last trailer); a partial octet-counted frame is an error.
   */
  finish(): boolean {
    if (this.error !== null) return false;
    if (this.mode === Mode.Body) return this.fail('truncated', this.bodyFilled);
    if (this.mode === Mode.Count) {
      this.lineParts.push(Buffer.from(this.countText, 'latin1'));
      this.lineBytes = this.countDigits;
    }
    // Digits never reached the Line check: a limit below 9 bytes (the longest count) is enforced here.
    if (this.lineBytes > this.maxFrame) return this.fail('too_large', this.lineBytes);
    if (this.lineParts.length > 0) {
      const line = Buffer.concat(this.lineParts, this.lineBytes);
      this.lineParts = [];
      this.lineBytes = 0;
      this.onFrame(line, 0, line.length);
    }
    this.mode = Mode.Idle;
    return true;
  }

  private fail(reason: FrameErrorReason, bytes: number): false {
    this.error = reason;
    this.errorBytes = bytes;
    this.body = null;
    this.lineParts = [];
    this.lineBytes = 0;
    this.bodyFilled = 0;
    return false;
  }
}
