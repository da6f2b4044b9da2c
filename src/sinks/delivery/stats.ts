/**
 * One delivery sink's metrics and events, with the counter children resolved
 * once per sink so the chain and its transport increment them per batch.
 */
import type { Counter, Gauge } from 'prom-client';
import type { Telemetry } from '../../telemetry/telemetry.js';
import type { DropReason } from './transport.js';

export class SinkStats {
  readonly written: Counter.Internal;
  readonly writtenBytes: Counter.Internal;
  readonly queued: Gauge.Internal<'sink'>;
  readonly duplicates: Counter.Internal;
  readonly truncated: Counter.Internal;
  private readonly connectedGauge: Gauge.Internal<'sink'>;
  private readonly dropped = new Map<DropReason, Counter.Internal>();

  constructor(readonly sink: string, readonly telemetry: Telemetry) {
    const labels = { sink };
    this.written = telemetry.sinkRecords.labels(labels);
    this.writtenBytes = telemetry.sinkBytes.labels(labels);
    this.queued = telemetry.sinkQueuedBytes.labels(labels);
    this.duplicates = telemetry.sinkDuplicates.labels(labels);
    this.truncated = telemetry.sinkTruncated.labels(labels);
    this.connectedGauge = telemetry.sinkConnected.labels(labels);
    this.connectedGauge.set(0);
  }

  /** Records given up on: counted by reason, logged (throttled). */
  drop(reason: DropReason, records: number, error?: string): void {
    if (records <= 0) return;
    let counter = this.dropped.get(reason);
    if (counter === undefined) {
      counter = this.telemetry.sinkDropped.labels({ sink: this.sink, reason });
      this.dropped.set(reason, counter);
    }
    counter.inc(records);
    this.telemetry.emit('sinkRecordsDropped', { sink: this.sink, reason, records, error });
  }

  /** A send failed and will be retried (counts sluice_sink_errors_total). */
  sendFailed(error: string, attempt: number, retryInMs: number): void {
    this.telemetry.emit('sinkSendFailed', { sink: this.sink, error, attempt, retry_in_ms: Math.round(retryInMs) });
  }

  connected(peer: string): void {
    this.connectedGauge.set(1);
    this.telemetry.emit('sinkConnected', { sink: this.sink, peer });
  }

  /** `error` null: closed on purpose (shutdown), not worth a warning. */
  disconnected(peer: string, error: string | null): void {
    this.connectedGauge.set(0);
    if (error !== null) this.telemetry.emit('sinkDisconnected', { sink: this.sink, peer, error });
  }
}
