/** The schema of the RELP source, RelpSourceConfig (config.ts). */
import { Type } from '@sinclair/typebox';
import { address, duration, port, section, size } from '../../core/config-schema.js';
import { connectionBoundProperties } from '../connection-guard-schema.js';
import { DEFAULT_RELP_SOURCE_CONFIG } from './config.js';

const defaults = DEFAULT_RELP_SOURCE_CONFIG;

/** `sources.relp` in the YAML configuration. */
export const RelpSourceSchema = section(
  {
    enabled: Type.Boolean({ description: 'Accept RELP, the acknowledged protocol of rsyslog\'s omrelp: a message is answered 200 only once committed.', default: defaults.enabled }),
    address: address('Address the RELP listener binds to.', defaults.address),
    port: port('RELP port; 0 picks a free port.', defaults.port),
    max_frame: size(defaults.maxFrameBytes, 'Largest message a RELP frame may carry; a larger one closes its connection. From 64 bytes to 16MiB.',
      { min: 64, minText: '64B', max: 16 * 1024 ** 2, maxText: '16MiB' }),
    window: Type.Integer({ description: 'Unanswered messages a session may have before the node stops reading it (librelp\'s default window is 128).', default: defaults.window, minimum: 1, maximum: 65536 }),
    drain_timeout: duration(defaults.drainTimeoutMs, 'On shutdown, how long sessions get to have their messages committed and answered before serverclose.'),
    ...connectionBoundProperties(),
  },
  'RELP (see relp.md).',
);
