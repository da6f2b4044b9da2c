/** The schema of the restart policy, SupervisionConfig (supervision.ts). */
import { Type } from '@sinclair/typebox';
import { duration, section } from '../core/config-schema.js';
import { DEFAULT_SUPERVISOR_POLICY } from '../core/supervisor.js';

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
