/**
 * The node's side of supervision: the configured policy, and what a
 * supervisor's events become (log lines with codes, the restart counter, the
 * crash-loop gauge). The primary uses it for its workers, a node for its
 * listeners.
 */
import type { SupervisorEvents, SupervisorPolicy } from '../core/supervisor.js';
import type { Telemetry } from '../telemetry/telemetry.js';

export interface SupervisionConfig {
  initialBackoffMs: number;
  maxBackoffMs: number;
  stableAfterMs: number;
  crashLoopAfter: number;
}

export function supervisorPolicy(config: SupervisionConfig): SupervisorPolicy {
  return { backoff: { initialMs: config.initialBackoffMs, maxMs: config.maxBackoffMs }, stableMs: config.stableAfterMs, crashLoopAfter: config.crashLoopAfter };
}

/** Supervisor events as log lines and metrics (the primary's workers and a node's listeners alike). */
export function supervisionEvents(telemetry: Telemetry): SupervisorEvents {
  return {
    restarting: (component, info) => telemetry.emit('childRestarting', { component, error: info.error, failures: info.failures, delay_ms: info.delayMs }),
    crashLoop: (component, info) => {
      telemetry.crashLooping.labels({ component }).set(1);
      telemetry.emit('crashLoop', { component, failures: info.failures, error: info.error });
    },
    recovered: (component, info) => {
      telemetry.crashLooping.labels({ component }).set(0);
      telemetry.emit('childRecovered', { component, failures: info.failures });
    },
  };
}
