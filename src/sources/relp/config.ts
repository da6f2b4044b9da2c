/**
 * The resolved configuration of the RELP source: every default applied,
 * durations in milliseconds, sizes in bytes.
 */
import { Type } from '@sinclair/typebox';
import { address, duration, port, section, size } from '../../core/config-schema.js';
import { connectionBoundProperties, DEFAULT_CONNECTION_BOUNDS, type ConnectionBounds } from '../connection-guard.js';

export interface RelpSourceConfig extends ConnectionBounds {
  enabled: boolean;
  address: string;
  port: number;
  /** The largest DATA a frame may carry (librelp's default: 128 KiB); a larger DATALEN closes the connection. */
  maxFrameBytes: number;
  /** The most unanswered `syslog` transactions a session may have before it stops reading. */
  window: number;
  /**
   * On stop, how long sessions get to have their records committed and
   * answered and to close after `serverclose` (capped by the node's deadline).
   */
  drainTimeoutMs: number;
}

export const DEFAULT_RELP_SOURCE_CONFIG: Readonly<RelpSourceConfig> = {
  enabled: true,
  address: '127.0.0.1',
  port: 2514,
  maxFrameBytes: 128 * 1024,
  // librelp's default client window: a librelp agent never waits on ours.
  window: 128,
  drainTimeoutMs: 2000,
  ...DEFAULT_CONNECTION_BOUNDS,
};

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
