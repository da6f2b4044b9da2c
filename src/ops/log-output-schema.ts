/** The schema of the node's own log settings, LogConfig (log-output.ts). */
import { Type } from '@sinclair/typebox';
import { section, size } from '../core/config-schema.js';
import type { LogLevel } from '../telemetry/logger.js';
import { DEFAULT_LOG_CONFIG, FACILITY_CODES, LOG_FACILITIES } from './log-output.js';

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const satisfies readonly LogLevel[];

const defaults = DEFAULT_LOG_CONFIG;
const defaultFacility = LOG_FACILITIES.find((f) => FACILITY_CODES[f] === defaults.syslog.facility);

/** `log` in the YAML configuration. */
export const LogSchema = section(
  {
    level: Type.Union(
      LOG_LEVELS.map((level) => Type.Literal(level)),
      {
        description: 'Least severe level the node logs about itself; `silent` turns its own logging off.',
        default: defaults.level,
      },
    ),
    output: Type.Union([Type.Literal('stderr'), Type.Literal('syslog')], {
      description: 'Where the log goes: `stderr` (one JSON object per line, written synchronously) or `syslog` (RFC 5424 messages to the receiver under `syslog`; see docs/logging.md).',
      default: defaults.output,
    }),
    syslog: section(
      {
        protocol: Type.Union([Type.Literal('udp'), Type.Literal('tcp')], {
          description: '`udp` (RFC 5426) or `tcp` (RFC 6587 octet counting). A local socket such as /dev/log cannot be used: Node.js has no Unix datagram sockets; point this at the local syslog daemon\'s UDP or TCP input instead.',
          default: defaults.syslog.protocol,
        }),
        host: Type.String({ description: 'Receiver host name or address.', default: defaults.syslog.host, minLength: 1 }),
        port: Type.Integer({ description: 'Receiver port; 0 means 514.', default: 0, minimum: 0, maximum: 65535 }),
        facility: Type.Union(LOG_FACILITIES.map((f) => Type.Literal(f)), { description: 'Syslog facility of every message.', default: defaultFacility }),
        app_name: Type.String({
          description: 'RFC 5424 APP-NAME of every message.', default: defaults.syslog.appName, pattern: '^[\\x21-\\x7e]{1,48}$',
          'x-expected': '1 to 48 printable ASCII characters without spaces',
        }),
        max_message: size(defaults.syslog.maxMessageBytes, 'Longer messages are cut (on a character boundary). From 480 to 65507 bytes (the largest UDP payload).', {
          min: 480, minText: '480 bytes', max: 65_507, maxText: '65507 bytes',
        }),
        max_queue: size(defaults.syslog.maxQueueBytes, 'Log bytes held while the receiver is connecting, away or slow; past it lines are dropped and counted (`sluice_log_dropped_lines_total`), never waited for. From 64KiB to 64MiB.', {
          min: 65_536, minText: '64KiB', max: 67_108_864, maxText: '64MiB',
        }),
      },
      'The syslog receiver, used when `output` is `syslog`.',
    ),
  },
  "The node's own log (docs/logging.md).",
);
