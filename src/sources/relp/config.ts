/**
 * The resolved configuration of the RELP source: every default applied,
 * durations in milliseconds, sizes in bytes.
 */
import { DEFAULT_CONNECTION_BOUNDS, type ConnectionBounds } from '../connection-guard.js';

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
