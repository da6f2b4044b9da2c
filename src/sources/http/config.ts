/**
 * The resolved configuration of the HTTP source: every default applied,
 * durations in milliseconds, sizes in bytes.
 */
import { DEFAULT_MAX_RECORDS } from './decode.js';

export interface HttpSourceConfig {
  enabled: boolean;
  address: string;
  port: number;
  /** Largest request body, also after gunzip; larger: 413. */
  maxBodyBytes: number;
  /** Records one request may carry; more: 413. */
  maxRecords: number;
  /** Longest a request waits for its records to be committed before it is answered 503. */
  ackTimeoutMs: number;
  /** Connections held at once; past it new ones are closed at accept (counted). 0: no cap. */
  maxConnections: number;
  /** Longest a client may take to send a whole request, headers and body (slowloris). */
  requestTimeoutMs: number;
}

export const DEFAULT_HTTP_SOURCE_CONFIG: Readonly<HttpSourceConfig> = Object.freeze({
  enabled: true, address: '127.0.0.1', port: 4318, maxBodyBytes: 4 * 1024 * 1024, maxRecords: DEFAULT_MAX_RECORDS, ackTimeoutMs: 30_000,
  maxConnections: 50_000, requestTimeoutMs: 30_000,
});
