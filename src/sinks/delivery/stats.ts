/**
 * What the sender chain and its transports report, and a sink's metrics and
 * events behind it (SinkStats), with the counter children resolved once per
 * sink and once per tenant queue, so the chain increments them per batch.
 *
 * The node's own syslog log output runs on the same chain without metrics
 * of its own (it sits below Telemetry): it implements DeliveryStats with
 * plain counts (ops/log-output.ts).
 */
import type { Counter, Gauge } from 'prom-client';
import type { QueueSource, Telemetry } from '../../telemetry/telemetry.js';
import type { DropReason } from './transport.js';

/** One tenant's counters of one sink. */
export interface TenantStats {
  /** Records and bytes of the tenant the transport delivered. */
  delivered(records: number, bytes: number): void;
  /** Records of the tenant given up on (any reason). */
  dropped(records: number): void;
  /** A send holding `bytes` of the tenant failed; they go again after a backoff. */
  retrying(bytes: number): void;
}

export interface DeliveryStats {
  readonly sink: string;
  /** The counters of `tenant`: the chain asks once per tenant queue. */
  tenant(tenant: string): TenantStats;
  /** Records and bytes delivered by a send (the sink's total). */
  written(records: number, bytes: number): void;
  /** Where the sink's queued bytes, in all and per tenant, are read (at scrape time). */
  watchQueues(queues: QueueSource): void;
  /** Records given up on: counted by reason, logged (throttled). */
  drop(reason: DropReason, records: number, error?: string): void;
  /** A send (of `tenant`'s records, on a lane of its own; null: of any) failed and will be retried after `retryInMs`. */
  sendFailed(error: string, attempt: number, retryInMs: number, tenant: string | null): void;
  /** Records cut to the receiver's largest message. */
  truncated(records: number): void;
  connected(peer: string): void;
  /** `error` null: closed on purpose (shutdown), not worth a warning. */
  disconnected(peer: string, error: string | null): void;
}

class SinkTenantStats implements TenantStats {
  private readonly deliveredRecords: Counter.Internal;
  private readonly deliveredBytes: Counter.Internal;
  private readonly droppedRecords: Counter.Internal;
  private readonly failedSends: Counter.Internal;
  private readonly retriedBytes: Counter.Internal;

  constructor(telemetry: Telemetry, sink: string, tenant: string) {
    const labels = { sink, tenant: telemetry.tenantLabel(tenant) };
    this.deliveredRecords = telemetry.tenantDeliveredRecords.labels(labels);
    this.deliveredBytes = telemetry.tenantDeliveredBytes.labels(labels);
    this.droppedRecords = telemetry.tenantDroppedRecords.labels(labels);
    this.failedSends = telemetry.tenantFailedSends.labels(labels);
    this.retriedBytes = telemetry.tenantRetriedBytes.labels(labels);
  }

  delivered(records: number, bytes: number): void {
    if (records > 0) this.deliveredRecords.inc(records);
    if (bytes > 0) this.deliveredBytes.inc(bytes);
  }

  dropped(records: number): void {
    if (records > 0) this.droppedRecords.inc(records);
  }

  retrying(bytes: number): void {
    this.failedSends.inc();
    this.retriedBytes.inc(bytes);
  }
}

/** One sink's metrics and events. */
export class SinkStats implements DeliveryStats {
  readonly writtenRecords: Counter.Internal;
  readonly writtenBytes: Counter.Internal;
  readonly duplicates: Counter.Internal;
  private readonly truncatedRecords: Counter.Internal;
  private readonly connectedGauge: Gauge.Internal<'sink'>;
  private readonly dropped = new Map<DropReason, Counter.Internal>();

  /**
   * `sendFailedEvent`: what a failed send logs (and counts as
   * sluice_sink_errors_total): the file sink keeps the code it always had.
   */
  constructor(readonly sink: string, readonly telemetry: Telemetry, private readonly sendFailedEvent: 'sinkSendFailed' | 'fileWriteFailed' = 'sinkSendFailed') {
    const labels = { sink };
    this.writtenRecords = telemetry.sinkRecords.labels(labels);
    this.writtenBytes = telemetry.sinkBytes.labels(labels);
    this.duplicates = telemetry.sinkDuplicates.labels(labels);
    this.truncatedRecords = telemetry.sinkTruncated.labels(labels);
    this.connectedGauge = telemetry.sinkConnected.labels(labels);
    this.connectedGauge.set(0);
  }

  tenant(tenant: string): TenantStats {
    return new SinkTenantStats(this.telemetry, this.sink, tenant);
  }

  written(records: number, bytes: number): void {
    if (records > 0) this.writtenRecords.inc(records);
    if (bytes > 0) this.writtenBytes.inc(bytes);
  }

  watchQueues(queues: QueueSource): void {
    this.telemetry.watchSinkQueues(this.sink, queues);
  }

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

  /** Counts sluice_sink_errors_total (through its event). */
  sendFailed(error: string, attempt: number, retryInMs: number, tenant: string | null): void {
    const fields = { sink: this.sink, tenant: tenant ?? undefined, error, attempt, retry_in_ms: Math.round(retryInMs) };
    if (this.sendFailedEvent === 'fileWriteFailed') this.telemetry.emit('fileWriteFailed', fields);
    else this.telemetry.emit('sinkSendFailed', fields);
  }

  truncated(records: number): void {
    this.truncatedRecords.inc(records);
  }

  connected(peer: string): void {
    this.connectedGauge.set(1);
    this.telemetry.emit('sinkConnected', { sink: this.sink, peer });
  }

  disconnected(peer: string, error: string | null): void {
    this.connectedGauge.set(0);
    if (error !== null) this.telemetry.emit('sinkDisconnected', { sink: this.sink, peer, error });
  }
}
