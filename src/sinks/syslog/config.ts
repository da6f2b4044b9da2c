/**
 * The resolved configuration of a syslog forwarding sink: every default
 * applied, durations in milliseconds, sizes in bytes.
 */
import { Type } from '@sinclair/typebox';
import { optionalPath, section, size } from '../../core/config-schema.js';
import { sinkSchema } from '../config.js';
import { checkDeliveryConfig, DEFAULT_DELIVERY, deliveryProperties, type DeliveryConfig } from '../delivery/config.js';
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

const defaults = DEFAULT_SYSLOG_SINK;

/** A `type: syslog` entry of `sinks` in the YAML configuration. */
export const SyslogSinkSchema = sinkSchema('syslog', 'A sink forwarding to a syslog receiver.', {
  ...deliveryProperties(),
  syslog: section(
    {
      protocol: Type.Union([Type.Literal('udp'), Type.Literal('tcp'), Type.Literal('tls')], {
        description: '`udp` (RFC 5426: never waits, drops and counts when the socket is full), `tcp` (RFC 6587 octet counting) or `tls` (RFC 5425).',
        default: defaults.protocol,
      }),
      host: Type.String({ description: 'Receiver host name or address.', default: defaults.host, minLength: 1 }),
      port: Type.Integer({ description: 'Receiver port; 0 means the protocol\'s standard port (514, or 6514 for TLS).', default: 0, minimum: 0, maximum: 65535 }),
      format: Type.Union([Type.Literal('rfc5424'), Type.Literal('rfc3164')], { description: 'Message format.', default: defaults.format }),
      max_message: size(defaults.maxMessageBytes, 'Longer messages are cut (on a character boundary) and counted.'),
      identity_sd_id: Type.Union([Type.String({ pattern: '^[\\x21-\\x7e]{1,32}$' }), Type.Null()], {
        description: 'SD-ID of an element with the record\'s tenant and host key added to every RFC 5424 message; `null`: none.',
        default: defaults.identitySdId,
        'x-type': 'SD-ID or null',
        'x-expected': 'an SD-ID such as sluice@32473, or null',
      }),
      tls: section(
        {
          ca: optionalPath('PEM file of the CA(s) the receiver\'s certificate must chain to; `null`: the system\'s CAs.'),
          certificate: optionalPath('PEM client certificate, for receivers that ask for one.'),
          key: optionalPath('PEM key of `certificate`.'),
          server_name: Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
            description: 'Name the receiver\'s certificate must carry; `null`: `host`.', default: null, 'x-type': 'string or null', 'x-expected': 'a host name, or null',
          }),
        },
        'TLS settings (protocol `tls`).',
      ),
    },
    'Forwarding to a syslog receiver.',
  ),
});
