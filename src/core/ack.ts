/**
 * End-to-end acknowledgement of one batch: a finalizer shared by every sink
 * the batch was routed to. The source's callback runs once, when the last
 * sink has settled, with the worst status any sink reported
 * (failed > dropped > committed).
 */

export const AckStatus = { Committed: 0, Dropped: 1, Failed: 2 } as const;
export type AckStatus = (typeof AckStatus)[keyof typeof AckStatus];

export type AckCallback = (status: AckStatus) => void;

export class AckToken {
  private pending = 0;
  private status: AckStatus = AckStatus.Committed;
  private sealed = false;
  /** When the batch was read (ms, monotonic): ack latency is measured from here. */
  private readonly createdAt = performance.now();
  /** Told the latency in seconds when the batch is committed (the pipeline sets it to its histogram). */
  onCommitted: ((seconds: number) => void) | null = null;

  constructor(private readonly done: AckCallback) {}

  /** Called by the router once per sink the batch is handed to. */
  retain(): void {
    this.pending++;
  }

  /** Called by the router after handing the batch to every sink. */
  seal(): void {
    this.sealed = true;
    if (this.pending === 0) this.finish();
  }

  /**
   * A token for a part of this batch routed on its own: this one settles once
   * every part has, and after seal() (called once the last part is handed on).
   */
  part(): AckToken {
    this.retain();
    return new AckToken((status) => this.settle(status));
  }

  commit(): void {
    this.settle(AckStatus.Committed);
  }

  drop(): void {
    this.settle(AckStatus.Dropped);
  }

  fail(): void {
    this.settle(AckStatus.Failed);
  }

  private settle(status: AckStatus): void {
    if (this.pending === 0) throw new Error('AckToken settled more times than it was retained');
    if (status > this.status) this.status = status;
    this.pending--;
    if (this.pending === 0 && this.sealed) this.finish();
  }

  private finish(): void {
    if (this.status === AckStatus.Committed && this.onCommitted !== null) this.onCommitted((performance.now() - this.createdAt) / 1000);
    this.done(this.status);
  }
}
