/**
 * The resolved configuration of a syslog forwarding sink: every default
 * applied, durations in milliseconds, sizes in bytes.
 */
import { checkDeliveryConfig, DEFAULT_DELIVERY, type DeliveryConfig } from '../delivery/config.js';
import type { SyslogFormat } from './encode.js';

export type SyslogProtocol = 'udp' | 'tcp' | 'tls';

export interface SyslogTlsOptions {
  /** PEM file of the CA(s) the receiver's certificate must chain to; null: the system's CAs. */
  caFile: string | null;
  /** PEM certificate and key presented to receivers that ask for a client certificate; both or neither. */
  certFile: string | null;
  keyFile: string | null;
  /** Name the receiver's certificate must carry; null: `host`. */
  serverName: string | null;
}

export interface SyslogSinkConfig extends DeliveryConfig {
  name: string;
  type: 'syslog';
  /** Tenant ids this sink receives; `['*']` means every tenant. */
  tenants: string[];
  /** `udp` (RFC 5426, no acknowledgement), `tcp` (RFC 6587 octet counting) or `tls` (RFC 5425). */
  protocol: SyslogProtocol;
  host: string;
  port: number;
  format: SyslogFormat;
  /** Messages longer than this many bytes (header included) are cut, and counted; 0: never cut. */
  maxMessageBytes: number;
  /**
   * SD-ID of an element added to every RFC 5424 message with the record's
   * tenant and host key (`[<id> tenant="…" host="…"]`); null: none added.
   */
  identitySdId: string | null;
  /** UDP: datagrams handed to the socket and not yet sent, beyond which more are dropped (`socket_full`). */
  maxPendingDatagrams: number;
  /** TCP/TLS: longest a connection attempt may take before it counts as failed (and is retried). */
  connectTimeoutMs: number;
  /** TLS only. */
  tls: SyslogTlsOptions;
}

export const DEFAULT_SYSLOG_PORTS: Readonly<Record<SyslogProtocol, number>> = { udp: 514, tcp: 514, tls: 6514 };

export const DEFAULT_SYSLOG_SINK: Readonly<SyslogSinkConfig> = {
  name: 'syslog',
  type: 'syslog',
  tenants: ['*'],
  protocol: 'udp',
  host: '127.0.0.1',
  port: DEFAULT_SYSLOG_PORTS.udp,
  format: 'rfc5424',
  // What rsyslog accepts by default, and what RFC 5425 asks TLS receivers to take.
  maxMessageBytes: 8192,
  identitySdId: null,
  // Well above what two batches of short messages hand the socket before their callbacks run.
  maxPendingDatagrams: 4096,
  connectTimeoutMs: 5000,
  tls: { caFile: null, certFile: null, keyFile: null, serverName: null },
  ...DEFAULT_DELIVERY,
};

/** Largest UDP payload over IPv4. */
const MAX_DATAGRAM = 65_507;
const SD_ID = /^[\x21-\x7e]{1,32}$/;

/** Problems with a syslog sink config, as sentences; empty when it is usable. */
export function checkSyslogSinkConfig(config: SyslogSinkConfig): string[] {
  const problems = checkDeliveryConfig(config);
  if (config.host === '') problems.push('host must not be empty');
  if (!(Number.isInteger(config.port) && config.port > 0 && config.port < 65_536)) problems.push('port must be 1-65535');
  if (config.maxMessageBytes !== 0 && config.maxMessageBytes < 480) problems.push('max message size must be 0 or at least 480 bytes (RFC 5426)');
  if (config.protocol === 'udp' && (config.maxMessageBytes === 0 || config.maxMessageBytes > MAX_DATAGRAM)) {
    problems.push(`over UDP the max message size must be 480-${MAX_DATAGRAM} bytes`);
  }
  if (config.identitySdId !== null && (!SD_ID.test(config.identitySdId) || /[=\]"]/.test(config.identitySdId))) {
    problems.push('identity SD-ID must be 1-32 printable ASCII characters other than = ] "');
  }
  if (!(config.maxPendingDatagrams > 0)) problems.push('max pending datagrams must be above 0');
  if (!(config.connectTimeoutMs > 0)) problems.push('connect timeout must be above 0');
  if ((config.tls.certFile === null) !== (config.tls.keyFile === null)) problems.push('a TLS certificate and its key go together');
  return problems;
}
