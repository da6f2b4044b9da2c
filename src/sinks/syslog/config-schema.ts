/** The schema of a syslog forwarding sink, SyslogSinkConfig (config.ts). */
import { Type } from '@sinclair/typebox';
import { optionalPath, section, size } from '../../core/config-schema.js';
import { sinkSchema } from '../config-schema.js';
import { deliveryProperties } from '../delivery/config-schema.js';
import { DEFAULT_SYSLOG_SINK } from './config.js';

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
