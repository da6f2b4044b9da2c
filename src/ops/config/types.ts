/**
 * The resolved configuration the node runs with: every default applied, every
 * duration in milliseconds and every size in bytes. The YAML a user writes is
 * described by the schema in schema.ts; load.ts turns it into this.
 */

import type { TenantLimits } from '../../core/limits.js';
import type { ConnectionBounds } from '../../sources/connection-guard.js';
import type { HttpSourceConfig } from '../../sources/http/source.js';
import type { RelpSourceConfig } from '../../sources/relp/source.js';
import type { SyslogSinkConfig } from '../../sinks/syslog/config.js';
import type { NatsSinkConfig } from '../../sinks/nats/config.js';
import type { DiskBufferConfig } from '../../sinks/buffer/config.js';
import type { MemoryConfig } from '../../core/memory.js';
import type { HostmetaClientConfig, HostmetaServiceConfig } from '../../services/hostmeta/config.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** Where the node's own log goes when `log.output` is `syslog`. */
export interface LogSyslogConfig {
  protocol: 'udp' | 'tcp';
  host: string;
  port: number;
  /** RFC 5424 facility code (0-23). */
  facility: number;
  appName: string;
  /** Messages longer than this many bytes are cut. */
  maxMessageBytes: number;
  /** Bytes held while the receiver is connecting, away or slow; past it lines are dropped and counted. */
  maxQueueBytes: number;
}

export interface LogConfig {
  level: LogLevel;
  output: 'stderr' | 'syslog';
  syslog: LogSyslogConfig;
}

export interface SyslogUdpSourceConfig {
  enabled: boolean;
  address: string;
  port: number;
  /** SO_RCVBUF in bytes; 0 keeps the operating system's default. */
  receiveBufferBytes: number;
}

export interface SyslogTcpSourceConfig extends ConnectionBounds {
  enabled: boolean;
  address: string;
  port: number;
  /** A frame longer than this closes its connection. */
  maxFrameBytes: number;
}

export interface SyslogTlsSourceConfig extends ConnectionBounds {
  /** True when a certificate and key are configured. */
  enabled: boolean;
  address: string;
  port: number;
  certificateFile: string | null;
  keyFile: string | null;
  clientCaFile: string | null;
  clientCertificates: 'none' | 'request' | 'require';
  maxFrameBytes: number;
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

export interface AdminTokenConfig {
  /** SHA-256 (hex) of the token. */
  tokenHash: string;
  /** The one tenant the token may see and change; null: the whole node. */
  tenant: string | null;
}

export interface AdminConfig {
  enabled: boolean;
  address: string;
  port: number;
  tokens: AdminTokenConfig[];
  /** Loopback callers read the dashboard, metrics and lists without a token. */
  openLoopbackReads: boolean;
  /** Tenants with metric series of their own (the rest share `other`). */
  tenantSeries: number;
}

export interface ClusterConfig {
  /** Empty: the node runs alone. */
  nats: string[];
  nodeId: string;
  bucketPrefix: string;
  replicas: number;
  heartbeatIntervalMs: number;
  memberTtlMs: number;
  leaderTtlMs: number;
  hostLocks: boolean;
  /** 0: never. */
  pruneHostsAfterMs: number;
  /** 0: never shed. */
  shedConnectionsOver: number;
  shedIntervalMs: number;
}

export interface SluiceConfig {
  dataDir: string;
  log: LogConfig;
  /** Worker processes `sluice start` runs; 'auto': os.availableParallelism(). */
  workers: number | 'auto';
  /** How the workers share stream connections (see operations.md). */
  connectionBalancing: 'kernel' | 'round_robin';
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
  memory: MemoryConfig;
  hostmeta: {
    service: HostmetaServiceConfig & { enabled: boolean };
    /**
     * `url` null: the service this node runs. The token sent is read from
     * `tokenFile` (null: `<dataDir>/hostmeta-token`, the file this node's own service writes).
     */
    client: Omit<HostmetaClientConfig, 'url' | 'token'> & { enabled: boolean; url: string | null; tokenFile: string | null };
  };
  admin: AdminConfig;
  cluster: ClusterConfig;
}
