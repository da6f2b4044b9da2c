/**
 * What a delivery sink plugs into the shared chain (see chain.ts): an
 * encoder that turns a record into the bytes the queue holds, and a
 * transport that gets those bytes to the receiver.
 *
 * Errors say whether to retry (as in the OpenTelemetry Collector's
 * consumererror): a PermanentError drops the batch at once, counted by its
 * reason; anything else a transport throws is retried with backoff.
 */
import type { LogRecord } from '../../core/record.js';

/** Why records were dropped: a fixed set, so the metric's labels stay bounded. */
export type DropReason =
  /** The queue was at queue_max: the batch was refused. */
  | 'queue_full'
  /** Written after stop() began. */
  | 'stopped'
  /** Still queued at the stop deadline, or when the sink was destroyed. */
  | 'shutdown'
  /** UDP: the socket's send queue was full. */
  | 'socket_full'
  | 'kernel_full'
  /** UDP: the operating system reported an error for the datagram. */
  | 'send_error'
  /** The receiver refuses records this large. */
  | 'too_large'
  /** The receiver refused the record for another permanent reason. */
  | 'rejected';

export class PermanentError extends Error {
  constructor(readonly reason: DropReason, message: string) {
    super(message);
    this.name = 'PermanentError';
  }
}

export interface DeliveryEncoder {
  /** The queued form of one record of `tenant`: whole frames, which the transport can split again. */
  encode(tenant: string, record: LogRecord): string;
}

/**
 * One send: the chunks taken from the queue, and what the transport reports
 * back. The chain owns one and reuses it for every send.
 */
export class DeliveryBatch {
  chunks: Buffer[] = [];
  bytes = 0;
  /**
   * Leading chunks already delivered. When the send then fails, these are
   * settled anyway and only the rest is retried (fewer duplicates).
   */
  deliveredChunks = 0;
  /**
   * Records the transport dropped for a permanent reason (and counted
   * itself); the rest of the batch is delivered. Report each with drop() when
   * its position is known, so only its own write()'s ack fails, or with
   * dropUnplaced(), which fails every ack the batch settles.
   */
  droppedRecords = 0;
  /** Pairs of (chunk index, byte offset) of records reported with drop(). */
  readonly droppedAt: number[] = [];
  unplacedDrops = false;

  drop(chunk: number, offset: number): void {
    this.droppedRecords++;
    this.droppedAt.push(chunk, offset);
  }

  dropUnplaced(records: number): void {
    this.droppedRecords += records;
    this.unplacedDrops = true;
  }

  reset(chunks: Buffer[]): void {
    this.chunks = chunks;
    let bytes = 0;
    for (const chunk of chunks) bytes += chunk.length;
    this.bytes = bytes;
    this.deliveredChunks = 0;
    this.droppedRecords = 0;
    this.droppedAt.length = 0;
    this.unplacedDrops = false;
  }
}

export interface DeliveryTransport {
  /**
   * Get ready without waiting for the receiver (read certificates, create a
   * socket): throws only for what retrying cannot fix. Connecting is send()'s
   * job, so a receiver that is down delays delivery, not the node's start.
   */
  open(): Promise<void>;
  /**
   * Deliver every frame of `batch.chunks` by this transport's definition of
   * delivered. Resolves when done; rejects to have the batch retried, or
   * with a PermanentError to have it dropped.
   */
  send(batch: DeliveryBatch): Promise<void>;
  /** After the last send: close gracefully (flush what the connection holds), by `deadline`. */
  close(deadline: number): Promise<void>;
  /** Close now; a send in progress rejects. */
  destroy(): void;
  /** Connection state for health(), or null when there is none to report. */
  describe(): string | null;
}
