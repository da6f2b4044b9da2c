/**
 * A worker's side of a live tail: lines go to the primary over the IPC
 * channel, and at most TAIL_IPC_MAX_BYTES of them wait in this process for
 * the channel. Past that (a flood, a primary busy elsewhere) lines are
 * dropped and the count rides on the next message, so an admin tail never
 * grows a worker's memory: node:child_process queues every `process.send`
 * without limit while the channel is full.
 */
import type { TailSink } from '../control.js';
import type { FromWorker } from './protocol.js';

/** Bytes of one tail's lines handed to IPC and not yet written to the channel. */
export const TAIL_IPC_MAX_BYTES = 256 * 1024;

export type SendToPrimary = (message: FromWorker, written: () => void) => void;

export class TailForwarder implements TailSink {
  private inFlightBytes = 0;
  private droppedSinceSent = 0;
  private stopped = false;

  constructor(private readonly subscription: number, private readonly send: SendToPrimary, private readonly maxBytes = TAIL_IPC_MAX_BYTES) {}

  lines(lines: string[]): void {
    if (this.stopped) return;
    if (this.inFlightBytes >= this.maxBytes) {
      this.droppedSinceSent += lines.length;
      return;
    }
    let bytes = 0;
    for (const line of lines) bytes += line.length;
    this.post(lines, bytes);
  }

  dropped(count: number): void {
    this.droppedSinceSent += count;
  }

  stop(): void {
    this.stopped = true;
  }

  private post(lines: string[], bytes: number): void {
    const dropped = this.droppedSinceSent;
    this.droppedSinceSent = 0;
    this.inFlightBytes += bytes;
    this.send({ sluice: 'tail', subscription: this.subscription, lines, dropped }, () => {
      this.inFlightBytes -= bytes;
      // Drops with no line after them would otherwise wait for the next matching record to be told.
      if (this.inFlightBytes === 0 && this.droppedSinceSent > 0 && !this.stopped) this.post([], 0);
    });
  }
}
