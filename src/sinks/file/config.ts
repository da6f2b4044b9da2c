/**
 * The resolved configuration of a file sink: every default applied,
 * durations in milliseconds, sizes in bytes.
 */

export interface FileSinkConfig {
  name: string;
  type: 'file';
  /** Tenant ids this sink receives; `['*']` means every tenant. */
  tenants: string[];
  /** Root folder; files go to `<path>/<tenant>/`. */
  path: string;
  rotateBytes: number;
  /** 0 disables rotation by time. */
  rotateIntervalMs: number;
  /** Rotated files kept per tenant; 0 keeps all. */
  maxFiles: number;
  /** Encoded bytes buffered before a write is issued. */
  batchBytes: number;
  /** Longest a record waits in the batch before it is written. */
  batchDelayMs: number;
  /** Queued bytes per sink above which sources are asked to slow down. */
  queueHighWaterBytes: number;
  /** Acknowledged batches are fsync'd together at most this often (group commit). */
  fsyncIntervalMs: number;
}
