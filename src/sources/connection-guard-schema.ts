/** The schema of ConnectionBounds (connection-guard.ts). */
import { Type } from '@sinclair/typebox';
import { duration } from '../core/config-schema.js';
import { DEFAULT_CONNECTION_BOUNDS } from './connection-guard.js';

/** The schema keys of ConnectionBounds, shared by every stream listener (syslog TCP and TLS, RELP). */
export function connectionBoundProperties() {
  const defaults = DEFAULT_CONNECTION_BOUNDS;
  return {
    max_connections: Type.Integer({ description: 'Connections this listener holds at once on the node (all workers together); past it new ones are refused and counted. 0: no cap.', default: defaults.maxConnections, minimum: 0 }),
    idle_timeout: duration(defaults.idleTimeoutMs, 'A connection that sends nothing for this long is closed and counted; 0 keeps idle agents connected for ever.'),
    frame_timeout: duration(defaults.frameTimeoutMs, 'A frame begun and not completed within this long closes its connection (slowloris); 0: never.'),
  };
}
