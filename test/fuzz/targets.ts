/** Every fuzz target, one per parser, in the order the fuzz script runs them. */
import type { AnyFuzzTarget } from './common.js';
import { syslog3164Target, syslog5424Target } from './syslog-message.js';
import { syslogFramingTarget } from './syslog-framing.js';
import { relpTarget } from './relp.js';
import { otlpJsonTarget, otlpProtobufTarget } from './otlp.js';
import { ndjsonTarget } from './ndjson.js';

export const TARGETS: readonly AnyFuzzTarget[] = [
  syslog5424Target,
  syslog3164Target,
  syslogFramingTarget,
  relpTarget,
  otlpJsonTarget,
  otlpProtobufTarget,
  ndjsonTarget,
];
