/** The schemas of the syslog listeners (UDP, TCP, TLS), their configs in config.ts. */
import { Type } from '@sinclair/typebox';
import { address, duration, optionalPath, port, section, size } from '../../core/config-schema.js';
import { connectionBoundProperties } from '../connection-guard-schema.js';
import { DEFAULT_HANDSHAKE_BOUNDS } from './tls-handshakes.js';

/** What every syslog stream listener (TCP, TLS) bounds per connection. */
function streamConnectionProperties() {
  return {
    max_frame: size(
      64 * 1024,
      'Longest message frame accepted; a longer frame closes its connection. From 64 bytes to 16MiB.',
      { min: 64, minText: '64B', max: 16 * 1024 ** 2, maxText: '16MiB' },
    ),
    ...connectionBoundProperties(),
  };
}

/** `sources.syslog_udp` in the YAML configuration. */
export const SyslogUdpSchema = section(
  {
    enabled: Type.Boolean({ description: 'Listen for syslog messages over UDP.', default: true }),
    address: address('Address the UDP socket binds to: an IPv4 or IPv6 literal, or `localhost`.'),
    port: port('UDP port; 0 picks a free port (useful in tests).', 5514),
    receive_buffer: size(4 * 1024 ** 2, 'Socket receive buffer (SO_RCVBUF); 0 keeps the operating system default. The kernel caps it at `net.core.rmem_max` (and doubles it).'),
    handoff_buffer: size(
      16 * 1024 ** 2,
      'Shared memory between the thread that reads the socket and the event loop that parses: datagrams wait here while the event loop is busy (a GC, a batch written); what does not fit is dropped and counted (`sluice_dropped_records_total{reason="handoff_full"}`). Each datagram takes its size plus 12 bytes and its sender\'s address. From 1MiB to 1GiB.',
      { min: 1024 ** 2, minText: '1MiB', max: 1024 ** 3, maxText: '1GiB' },
    ),
  },
  'Syslog over UDP.',
);

/** `sources.syslog_tcp` in the YAML configuration. */
export const SyslogTcpSchema = section(
  {
    enabled: Type.Boolean({ description: 'Listen for syslog messages over TCP.', default: true }),
    address: address('Address the TCP listener binds to: an IPv4 or IPv6 literal, or `localhost`.'),
    port: port('TCP port; 0 picks a free port (useful in tests).', 5514),
    ...streamConnectionProperties(),
  },
  'Syslog over TCP.',
);

/** `sources.syslog_tls` in the YAML configuration. */
export const SyslogTlsSchema = section(
  {
    address: address('Address the TLS listener binds to: an IPv4 or IPv6 literal, or `localhost`.'),
    port: port('TLS port; 0 picks a free port (useful in tests).', 6514),
    certificate: optionalPath('PEM file with the server certificate (and chain). The TLS listener runs when `certificate` and `key` are both set.'),
    key: optionalPath('PEM file with the private key of `certificate`.'),
    client_ca: optionalPath('PEM file of the CA(s) that sign client certificates; with it, clients can authenticate with a certificate (mTLS).'),
    client_certificates: Type.Union([Type.Literal('none'), Type.Literal('request'), Type.Literal('require')], {
      description:
        '`none`: no client certificate is asked for; `request`: asked for, a connection without one is identified by its network or tokens; `require`: a connection without a valid certificate is refused. Needs `client_ca` unless `none`.',
      default: 'none',
    }),
    ...streamConnectionProperties(),
    max_handshakes: Type.Integer({
      description: 'TLS handshakes in progress at once on this listener; a client that has sent its ClientHello past it waits (a plain socket, no TLS state) for a slot. A connection is wrapped in TLS only once its first bytes arrive, so a silent client costs no TLS state at all. See security.md.',
      default: DEFAULT_HANDSHAKE_BOUNDS.maxHandshakes, minimum: 1,
    }),
    handshake_timeout: duration(DEFAULT_HANDSHAKE_BOUNDS.handshakeTimeoutMs, 'A connection not through its TLS handshake this long after it was accepted is closed and counted (`handshake_timeout`), silent or slow. From 100ms.'),
  },
  'Syslog over TLS (RFC 5425).',
);
