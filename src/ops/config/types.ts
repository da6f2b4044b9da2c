/**
 * The resolved configuration the node runs with: every default applied, every
 * duration in milliseconds and every size in bytes. The YAML a user writes is
 * described by the schema in schema.ts; load.ts turns it into this.
 */

import type { TenantConfig } from '../../core/tenant-config.js';
import type { SyslogTcpSourceConfig, SyslogTlsSourceConfig, SyslogUdpSourceConfig } from '../../sources/syslog/config.js';
import type { HttpSourceConfig } from '../../sources/http/config.js';
import type { RelpSourceConfig } from '../../sources/relp/config.js';
import type { FileSinkConfig } from '../../sinks/file/config.js';
import type { SyslogSinkConfig } from '../../sinks/syslog/config.js';
import type { NatsSinkConfig } from '../../sinks/nats/config.js';
import type { DiskBufferConfig } from '../../sinks/buffer/config.js';
import type { MemoryConfig } from '../../core/memory.js';
import type { HostmetaClientConfig, HostmetaServiceConfig } from '../../services/hostmeta/config.js';
import type { ClusterConfig } from '../../services/cluster/config.js';
import type { AdminConfig } from '../admin/config.js';
import type { LogConfig } from '../log-output.js';
import type { SupervisionConfig } from '../supervision.js';

/** Every sink may sit behind a disk buffer (null: none). */
export type SinkConfig = (FileSinkConfig | SyslogSinkConfig | NatsSinkConfig) & { diskBuffer: DiskBufferConfig | null };

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
