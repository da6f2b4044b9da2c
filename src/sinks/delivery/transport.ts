/**
 * What a sink plugs into the one sender chain (see chain.ts): an encoder
 * that appends a record's bytes to the tenant's queue, and a transport that
 * gets those bytes to the receiver (a file, a syslog receiver, JetStream).
 *
 * Errors say whether to retry (as in the OpenTelemetry Collector's
 * consumererror): a PermanentError drops the batch at once, counted by its
 * reason; anything else a transport throws is retried with backoff by the
 * lane that sent it (chain.ts): the whole sink for a shared connection, only
 * its tenant for a transport with a lane per tenant (the file sink).
 */
import type { AckToken } from '../../core/ack.js';
import type { LineAppender } from '../../core/ndjson.js';

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

export interface DeliveryEncoder<R> {
  /**
   * Append the queued form of each of `items`, of `tenant`, to its queue:
   * whole frames (lines), which the transport can split again. (The loop is
   * the encoder's: one call per write, not one per record.)
   */
  encode(tenant: string, items: readonly R[], queue: LineAppender): void;
}

/**
 * One send: the chunks taken from the tenants' queues, and what the
 * transport reports back. Each lane of the chain owns one and reuses it for
 * every send.
 */
export class DeliveryBatch {
  chunks: Buffer[] = [];
  /** The tenant of every chunk, on a lane of its own; null on the shared lane. */
  tenant: string | null = null;
  bytes = 0;
  /** Per chunk: reported delivered (by a send that then failed). */
  private readonly done: boolean[] = [];
  /**
   * Records the transport dropped for a permanent reason (and counted
   * itself), per chunk; the rest of the batch is delivered. Report each with
   * drop() when its position is known, so only its own write()'s ack fails;
   * with dropIn() when only its chunk is, or dropUnplaced() when not even
   * that: then every ack the batch settles fails.
   */
  readonly droppedIn: number[] = [];
  /** Pairs of (chunk index, byte offset) of records reported with drop(). */
  readonly droppedAt: number[] = [];
  /** Dropped records whose chunk is not known (counted for the sink, not for a tenant). */
  unplacedDrops = 0;
  /** Some drop's position is unknown: every ack this batch settles fails. */
  failsAcks = false;

  /**
   * Chunk `index` is delivered by this transport's definition. Needed only
   * when a send then fails: chunks reported so (the first ones, in order) are
   * settled anyway and only the rest is retried (fewer duplicates). A send
   * that resolves delivered every chunk.
   */
  delivered(index: number): void {
    this.done[index] = true;
  }

  isDelivered(index: number): boolean {
    return this.done[index] === true;
  }

  drop(chunk: number, offset: number): void {
    this.droppedIn[chunk]!++;
    this.droppedAt.push(chunk, offset);
  }

  dropIn(chunk: number, records: number): void {
    this.droppedIn[chunk]! += records;
    this.failsAcks = true;
  }

  dropUnplaced(records: number): void {
    this.unplacedDrops += records;
    this.failsAcks = true;
  }

  /** Start a send of `chunks`, of `tenant` (null: of any tenant). */
  reset(chunks: Buffer[], tenant: string | null): void {
    this.chunks = chunks;
    this.tenant = tenant;
    let bytes = 0;
    for (const chunk of chunks) bytes += chunk.length;
    this.bytes = bytes;
    const n = chunks.length;
    this.done.length = n;
    this.done.fill(false);
    this.droppedIn.length = n;
    this.droppedIn.fill(0);
    this.droppedAt.length = 0;
    this.unplacedDrops = 0;
    this.failsAcks = false;
  }
}

export interface DeliveryTransport {
  /**
   * Get ready without waiting for the receiver (read certificates, create a
   * folder): throws only for what retrying cannot fix. Connecting is send()'s
   * job, so a receiver that is down delays delivery, not the node's start.
   */
  open(): Promise<void>;
  /**
   * Deliver every frame of `batch.chunks` by this transport's definition of
   * delivered. Resolves when done; rejects to have the batch retried, or with
   * a PermanentError to have it dropped.
   */
  send(batch: DeliveryBatch): Promise<void>;
  /**
   * Where delivered is not yet durable (a file written but not fsync'd): a
   * stand-in for `ack` that the queue settles once the records are delivered;
   * the transport commits `ack` itself once they are durable. Absent: the
   * queue settles `ack` itself.
   */
  holdAck?(tenant: string, ack: AckToken): AckToken;
  /** After the last send: close gracefully (flush what the connection holds), by `deadline`. */
  close(deadline: number): Promise<void>;
  /** Close now; a send in progress rejects. */
  destroy(): void;
  /** Whether everything sent so far has left this process; absent: it has once send() resolved. */
  idle?(): boolean;
  /** Connection state for health(), or null when there is none to report. */
  describe(): string | null;
}
