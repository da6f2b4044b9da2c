/**
 * One supervisor for every level: the primary keeps its worker processes
 * running with it, and a node keeps its components (listeners, sinks, the
 * host metadata client) running with it.
 *
 * A child is a function that runs it and settles when it has ended (a worker
 * process exited, a component failed). The supervisor starts it again after
 * an exponential backoff with jitter; a run that lasted `stableMs` resets the
 * backoff. After `crashLoopAfter` failed runs in a row the child is in a crash
 * loop: reported (event, gauge, state()) and still retried at the longest
 * backoff — a supervisor never gives up and never takes its owner down.
 */
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import { timerDelay } from './clock.js';

export interface SupervisorPolicy {
  backoff: BackoffPolicy;
  /** A run that lasts this long counts as healthy: the next failure starts the backoff over. */
  stableMs: number;
  /** Failed runs in a row after which the child is reported as in a crash loop. */
  crashLoopAfter: number;
}

export const DEFAULT_SUPERVISOR_POLICY: SupervisorPolicy = {
  backoff: { initialMs: 100, maxMs: 30_000 },
  stableMs: 30_000,
  crashLoopAfter: 5,
};

/** What the supervisor tells its owner (who logs events and keeps metrics). */
export interface SupervisorEvents {
  /** A run ended unplanned; the child starts again in `delayMs`. */
  restarting?(child: string, info: { error: string; failures: number; delayMs: number; crashLoop: boolean }): void;
  /** The child entered the crash-loop state (once per loop). */
  crashLoop?(child: string, info: { failures: number; error: string }): void;
  /** A child that had failed has now run for `stableMs`: healthy again. */
  recovered?(child: string, info: { failures: number }): void;
}

export interface ChildState {
  name: string;
  running: boolean;
  /** Failed runs since the last stable one. */
  failures: number;
  crashLoop: boolean;
  lastError: string | null;
  /** Epoch ms of the next start while waiting out a backoff, else null. */
  nextStartAt: number | null;
}

/**
 * Runs the child once. Resolve or reject when the child has ended; a run that
 * ends while the supervisor is not stopping it counts as a failure, whichever
 * way it settles (a worker that exits 0 on its own has still gone away).
 */
export type ChildRun = () => Promise<void>;

class Child {
  running = false;
  failures = 0;
  crashLoop = false;
  lastError: string | null = null;
  nextStartAt: number | null = null;
  stopped = false;
  timer: NodeJS.Timeout | null = null;
  stableTimer: NodeJS.Timeout | null = null;
  /** Settles when the current run (if any) has ended. */
  ended: Promise<void> = Promise.resolve();
  wake: (() => void) | null = null;

  constructor(readonly name: string, readonly run: ChildRun) {}
}

export class Supervisor {
  private readonly children = new Map<string, Child>();

  constructor(
    private readonly policy: SupervisorPolicy = DEFAULT_SUPERVISOR_POLICY,
    private readonly events: SupervisorEvents = {},
    private readonly random: () => number = Math.random,
  ) {}

  /** Start supervising `name` now. Throws if that name is already supervised. */
  add(name: string, run: ChildRun): void {
    if (this.children.has(name)) throw new Error(`${name} is already supervised`);
    const child = new Child(name, run);
    this.children.set(name, child);
    this.loop(child);
  }

  /**
   * Stop supervising `name`: no restart after its current run ends. The
   * caller ends that run itself (drain the worker, stop the component);
   * resolves once it has ended.
   */
  async remove(name: string): Promise<void> {
    const child = this.children.get(name);
    if (child === undefined) return;
    this.children.delete(name);
    child.stopped = true;
    if (child.timer !== null) clearTimeout(child.timer);
    if (child.stableTimer !== null) clearTimeout(child.stableTimer);
    child.wake?.();
    await child.ended;
  }

  /** Stop supervising everything (the owner is shutting down). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.children.keys()].map((name) => this.remove(name)));
  }

  has(name: string): boolean {
    return this.children.has(name);
  }

  state(name: string): ChildState | undefined {
    const c = this.children.get(name);
    return c === undefined ? undefined : view(c);
  }

  states(): ChildState[] {
    return [...this.children.values()].map(view);
  }

  private loop(child: Child): void {
    const once = async (): Promise<void> => {
      while (!child.stopped) {
        child.running = true;
        child.nextStartAt = null;
        child.stableTimer = setTimeout(() => {
          child.stableTimer = null;
          if (child.failures > 0) this.events.recovered?.(child.name, { failures: child.failures });
          child.failures = 0;
          child.crashLoop = false;
        }, timerDelay(this.policy.stableMs));
        let error = 'exited';
        let ended: () => void = () => undefined;
        child.ended = new Promise((resolve) => { ended = resolve; });
        try {
          await child.run();
        } catch (err) {
          error = err instanceof Error ? err.message : String(err);
        }
        child.running = false;
        if (child.stableTimer !== null) clearTimeout(child.stableTimer);
        child.stableTimer = null;
        ended();
        if (child.stopped) return;
        child.failures++;
        child.lastError = error;
        const delayMs = Math.round(backoffDelay(child.failures - 1, this.policy.backoff, this.random));
        const enteringLoop = !child.crashLoop && child.failures >= this.policy.crashLoopAfter;
        if (enteringLoop) child.crashLoop = true;
        this.events.restarting?.(child.name, { error, failures: child.failures, delayMs, crashLoop: child.crashLoop });
        if (enteringLoop) this.events.crashLoop?.(child.name, { failures: child.failures, error });
        child.nextStartAt = Date.now() + delayMs;
        await new Promise<void>((resolve) => {
          child.wake = resolve;
          child.timer = setTimeout(resolve, timerDelay(delayMs));
        });
        child.timer = null;
        child.wake = null;
      }
    };
    void once();
  }
}

function view(c: Child): ChildState {
  return { name: c.name, running: c.running, failures: c.failures, crashLoop: c.crashLoop, lastError: c.lastError, nextStartAt: c.nextStartAt };
}
