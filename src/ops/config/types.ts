/**
 * The resolved configuration the node runs with: every default applied, every
 * duration in milliseconds and every size in bytes. The YAML a user writes is
 * described by the schema in schema.ts; load.ts turns it into this.
 */

import type { TenantLimits } from '../../core/limits.js';
import type { HttpSourceConfig } from '../../sources/http/source.js';
import type { RelpSourceConfig } from '../../sources/relp/source.js';
import type { SyslogSinkConfig } from '../../sinks/syslog/config.js';
import type { NatsSinkConfig } from '../../sinks/nats/config.js';
import type { DiskBufferConfig } from '../../sinks/buffer/config.js';
import type { HostmetaClientConfig, HostmetaServiceConfig } from '../../services/hostmeta/config.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export interface SyslogUdpSourceConfig {
  enabled: boolean;
  address: string;
  port: number;
  /** SO_RCVBUF in bytes; 0 keeps the operating system's default. */
  receiveBufferBytes: number;
}

export interface SyslogTcpSourceConfig {
  enabled: boolean;
  address: string;
  port: number;
  /** A frame longer than this closes its connection. */
  maxFrameBytes: number;
  /** Connections this listener holds at once; past it new ones are refused (counted). 0: no cap. */
  maxConnections: number;
  /** A connection that sends nothing for this long is closed (counted). 0: never. */
  idleTimeoutMs: number;
  /** A frame begun and not completed within this long closes its connection (slowloris). 0: never. */
  frameTimeoutMs: number;
}

export interface SyslogTlsSourceConfig {
  /** True when a certificate and key are configured. */
  enabled: boolean;
  address: string;
  port: number;
  certificateFile: string | null;
  keyFile: string | null;
  clientCaFile: string | null;
  clientCertificates: 'none' | 'request' | 'require';
  maxFrameBytes: number;
  /** Connections this listener holds at once; past it new ones are refused (counted). 0: no cap. */
  maxConnections: number;
  /** A connection that sends nothing for this long is closed (counted). 0: never. */
  idleTimeoutMs: number;
  /** A frame begun and not completed within this long closes its connection (slowloris). 0: never. */
  frameTimeoutMs: number;
}

export interface CertificateRule {
  /** Which certificate field the pattern is matched against. */
  field: 'cn' | 'san';
  /** Glob: `*` matches any run of characters. */
  pattern: string;
}

export interface TenantConfig {
  id: string;
  /** CIDR blocks (always with a prefix) whose unauthenticated traffic belongs to this tenant. */
  networks: string[];
  /** SHA-256 (hex) of each token that names this tenant. */
  tokenHashes: string[];
  certificates: CertificateRule[];
  limits: TenantLimits;
}

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

/** Every sink may sit behind a disk buffer (null: none). */
export type SinkConfig = (FileSinkConfig | SyslogSinkConfig | NatsSinkConfig) & { diskBuffer: DiskBufferConfig | null };

export interface SupervisionConfig {
  initialBackoffMs: number;
  maxBackoffMs: number;
  stableAfterMs: number;
  crashLoopAfter: number;
}

export interface SluiceConfig {
  dataDir: string;
  log: { level: LogLevel };
  /** Worker processes `sluice start` runs; 'auto': os.availableParallelism(). */
  workers: number | 'auto';
  supervision: SupervisionConfig;
  sources: {
    syslogUdp: SyslogUdpSourceConfig;
    syslogTcp: SyslogTcpSourceConfig;
    syslogTls: SyslogTlsSourceConfig;
    relp: RelpSourceConfig;
    http: HttpSourceConfig;
  };
  tenants: TenantConfig[];
  sinks: SinkConfig[];
  shutdownTimeoutMs: number;
  hostmeta: {
    service: HostmetaServiceConfig & { enabled: boolean };
    /** `url` null: the service this node runs. */
    client: Omit<HostmetaClientConfig, 'url'> & { enabled: boolean; url: string | null };
  };
}
