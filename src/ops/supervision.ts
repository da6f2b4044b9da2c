/**
 * The node's side of supervision: the configured policy, and what a
 * supervisor's events become (log lines with codes, the restart counter, the
 * crash-loop gauge). The primary uses it for its workers, a node for its
 * listeners.
 */
import { Type } from '@sinclair/typebox';
import { duration, section } from '../core/config-schema.js';
import { DEFAULT_SUPERVISOR_POLICY, type SupervisorEvents, type SupervisorPolicy } from '../core/supervisor.js';
import type { Telemetry } from '../telemetry/telemetry.js';

export interface SupervisionConfig {
  initialBackoffMs: number;
  maxBackoffMs: number;
  stableAfterMs: number;
  crashLoopAfter: number;
}

const policy = DEFAULT_SUPERVISOR_POLICY;

/** `supervision` in the YAML configuration. */
export const SupervisionSchema = section(
  {
    initial_backoff: duration(policy.backoff.initialMs, 'Wait before restarting a worker (or a component) after its first failure; each failure in a row doubles it, with jitter.'),
    max_backoff: duration(policy.backoff.maxMs, 'Longest wait between restarts.'),
    stable_after: duration(policy.stableMs, 'A worker or component that has run this long is healthy again: its next failure starts the backoff over.'),
    crash_loop_after: Type.Integer({
      description: 'Failures in a row after which a worker or component is reported as in a crash loop (event SLU0803E, gauge `sluice_crash_loop`, a /readyz note). It is still restarted at the longest backoff; the node never exits over it.',
      default: policy.crashLoopAfter,
      minimum: 1,
    }),
  },
  'How the primary restarts its workers, and a worker its components: exponential backoff with jitter, never giving up.',
);

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
