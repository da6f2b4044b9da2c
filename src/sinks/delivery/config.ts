/**
 * What every delivery sink (syslog, NATS) configures of the chain it runs
 * on: batching, the queue's marks and the retry delays.
 */

export interface DeliveryConfig {
  /** Most encoded bytes one send carries; a batch this full is sent without waiting for batchDelayMs. */
  batchBytes: number;
  /** Longest a record waits for its batch to fill before it is sent. */
  batchDelayMs: number;
  /** Queued bytes at or above which write() returns false (sources slow down); onDrain fires once below half of it. */
  queueHighWaterBytes: number;
  /** Queued bytes at or above which write() refuses the batch (dropped, reason `queue_full`, ack failed). */
  queueMaxBytes: number;
  /** First delay before retrying a failed send; doubles per failure, with jitter, up to retryMaxMs. */
  retryInitialMs: number;
  retryMaxMs: number;
}

export const DEFAULT_DELIVERY: DeliveryConfig = {
  batchBytes: 256 * 1024,
  batchDelayMs: 10,
  queueHighWaterBytes: 8 * 1024 * 1024,
  queueMaxBytes: 16 * 1024 * 1024,
  retryInitialMs: 100,
  retryMaxMs: 30_000,
};

/** Problems with a delivery config, as sentences; empty when it is usable. */
export function checkDeliveryConfig(config: DeliveryConfig): string[] {
  const problems: string[] = [];
  if (!(config.batchBytes > 0)) problems.push('batch size must be above 0');
  if (!(config.batchDelayMs >= 0)) problems.push('batch delay must be 0 or more');
  if (!(config.queueHighWaterBytes > 0)) problems.push('queue high water must be above 0');
  if (!(config.queueMaxBytes >= config.queueHighWaterBytes)) problems.push('queue max must be at least the queue high water');
  if (!(config.retryInitialMs > 0 && config.retryMaxMs >= config.retryInitialMs)) problems.push('retry delays must be above 0, initial <= max');
  return problems;
}
