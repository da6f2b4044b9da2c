/**
 * A session's responses, in transaction order.
 *
 * Replies are queued in the order their commands arrived. A batch reply
 * covers a run of consecutive `syslog` transactions submitted together with
 * one AckToken; it is decided when the token settles, which may be after
 * later replies were decided (another tenant's batch, a refusal). The queue
 * writes from its head as long as the head is decided, so responses always
 * leave in txnr order however the acknowledgements arrive.
 */
import { AckStatus, AckToken } from '../../core/ack.js';
import { nextTxnr } from './framing.js';

/** The DATA of a `rsp` for each end-to-end status. */
export const ACK_REPLY: Record<AckStatus, string> = {
  [AckStatus.Committed]: '200 OK',
  [AckStatus.Dropped]: '500 record dropped: no sink stored it',
  [AckStatus.Failed]: '500 record not stored: a sink failed',
};

/** Where a queue's decided replies go. */
export interface ReplyOutput {
  /**
   * Frames ready to be written, concatenated in txnr order; `answered` of
   * them answer `syslog` transactions.
   */
  sendReplies(frames: string, answered: number): void;
  /** A batch of `count` `syslog` transactions was acknowledged with `status`. */
  batchSettled(status: AckStatus, count: number): void;
}

class Reply {
  next: Reply | null = null;
  /** The rsp DATA; null until decided. */
  data: string | null;

  constructor(
    readonly firstTxnr: number,
    /** How many consecutive transactions this reply answers (all with the same DATA). */
    public count: number,
    data: string | null,
    /** Whether these are `syslog` transactions (they count towards the window). */
    readonly syslog: boolean,
  ) {
    this.data = data;
  }
}

/** The reply to one batch of records: decided by its token. */
export class BatchReply extends Reply {
  readonly token: AckToken;

  constructor(queue: ReplyQueue, firstTxnr: number) {
    super(firstTxnr, 1, null, true);
    // One callback per batch (not per record): the batch settles as a whole.
    this.token = new AckToken((status) => queue.settle(this, status));
  }
}

export class ReplyQueue {
  private head: Reply | null = null;
  private tail: Reply | null = null;
  /** `syslog` transactions received and not yet answered: what the window bounds. */
  unanswered = 0;

  constructor(private readonly output: ReplyOutput) {}

  /** Every reply queued so far has been written. */
  get empty(): boolean {
    return this.head === null;
  }

  /** Start a batch at `txnr`; its reply is decided when its token settles. */
  openBatch(txnr: number): BatchReply {
    const batch = new BatchReply(this, txnr);
    this.append(batch);
    this.unanswered++;
    return batch;
  }

  /** The next transaction joins `batch`, which must be the last reply queued and not yet decided. */
  extendBatch(batch: BatchReply): void {
    if (batch !== this.tail || batch.data !== null) throw new Error('a batch can only grow while it is the last, undecided reply');
    batch.count++;
    this.unanswered++;
  }

  /** A reply decided now (a refusal, the answer to `open` or `close`); written as soon as all before it are. */
  answer(txnr: number, data: string, syslog: boolean): void {
    this.append(new Reply(txnr, 1, data, syslog));
    if (syslog) this.unanswered++;
    this.flush();
  }

  /** Called by a batch's token. */
  settle(batch: BatchReply, status: AckStatus): void {
    batch.data = ACK_REPLY[status];
    this.output.batchSettled(status, batch.count);
    this.flush();
  }

  private append(reply: Reply): void {
    if (this.tail === null) this.head = reply;
    else this.tail.next = reply;
    this.tail = reply;
  }

  /** Write every decided reply at the head, as one string. */
  private flush(): void {
    let frames = '';
    let answered = 0;
    let reply = this.head;
    while (reply !== null && reply.data !== null) {
      const data = reply.data;
      const suffix = ` rsp ${Buffer.byteLength(data)} ${data}\n`;
      let txnr = reply.firstTxnr;
      for (let k = 0; k < reply.count; k++) {
        frames += txnr + suffix;
        txnr = nextTxnr(txnr);
      }
      if (reply.syslog) answered += reply.count;
      reply = reply.next;
    }
    if (reply === this.head) return;
    this.head = reply;
    if (reply === null) this.tail = null;
    this.unanswered -= answered;
    this.output.sendReplies(frames, answered);
  }
}
