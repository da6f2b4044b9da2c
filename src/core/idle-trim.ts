/**
 * Gives back the memory an idle process's heap reserved under load and no
 * longer uses.
 *
 * V8 grows its young generation under allocation (to 16 MiB a semi-space
 * by default; loading the modules at start is enough to grow it) and shrinks
 * it only in a full collection made while allocation is slow, which an idle
 * process never starts on its own: a worker at rest keeps what its start-up
 * or its last burst reserved. Measured on a worker after start: 39 MB of
 * anonymous memory, 28 MB after a trim (heap total 32 → 17 MB).
 *
 * Every IDLE_CHECK_MS (unref'd), when the event loop was busy less than
 * IDLE_UTILIZATION of the interval and the heap has reserved TRIM_SLACK_BYTES
 * more than it uses, the process collects in full and then the young
 * generation (the full collection shrinks it, the young one hands the freed
 * pages back). V8 judges "slow" over its last few seconds of allocation, so
 * an attempt right after a burst may not shrink: it is tried again at the
 * next check, at most MAX_ATTEMPTS times until the heap grows again. A busy
 * process is never collected by this: under load the young generation is
 * what keeps collections cheap.
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { Telemetry } from '../telemetry/telemetry.js';
import { PROCESS_MEMORY, type ProcessMemory } from './memory.js';

export const IDLE_CHECK_MS = 5000;
/** Busy less than this fraction of the interval: idle. */
export const IDLE_UTILIZATION = 0.02;
/** Heap reserved beyond what it uses that is worth a collection. */
export const TRIM_SLACK_BYTES = 4 * 1024 * 1024;
/** Attempts while the heap has not grown by TRIM_SLACK_BYTES since the last one. */
export const MAX_ATTEMPTS = 2;

/** What the trim reads of the process (replaceable in tests). */
export interface IdleProbe {
  /** The event loop's busy fraction since the previous call. */
  utilization(): number;
  heap(): { heapTotal: number; heapUsed: number };
}

export function processIdleProbe(): IdleProbe {
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  return {
    utilization: () => {
      const now = performance.eventLoopUtilization();
      const since = performance.eventLoopUtilization(now, last);
      last = now;
      return since.utilization;
    },
    heap: () => process.memoryUsage(),
  };
}

export class IdleTrim {
  private timer: NodeJS.Timeout | null = null;
  /** Heap total after the last attempt; attempts since the heap last grew past it by the slack. */
  private lastTotal = 0;
  private attempts = 0;

  constructor(
    private readonly memory: Pick<ProcessMemory, 'collectGarbage'>,
    private readonly onTrim: (freedBytes: number) => void,
    private readonly probe: IdleProbe = processIdleProbe(),
  ) {}

  start(): void {
    if (this.timer !== null) return;
    this.probe.utilization();
    this.timer = setInterval(() => this.check(), IDLE_CHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** One check: collect if the process is idle and its heap holds enough it does not use. Returns whether it collected. */
  check(): boolean {
    if (this.probe.utilization() >= IDLE_UTILIZATION) return false;
    const before = this.probe.heap();
    if (before.heapTotal - before.heapUsed < TRIM_SLACK_BYTES) return false;
    if (before.heapTotal >= this.lastTotal + TRIM_SLACK_BYTES) this.attempts = 0;
    if (this.attempts >= MAX_ATTEMPTS) return false;
    if (!this.memory.collectGarbage('major')) return false;
    this.memory.collectGarbage('minor');
    this.attempts++;
    const after = this.probe.heap();
    this.lastTotal = after.heapTotal;
    // The collections themselves were work, not the process's: they must not make the next check look busy.
    this.probe.utilization();
    this.onTrim(Math.max(0, before.heapTotal - after.heapTotal));
    return true;
  }
}

/** This process's trim, counted in its telemetry (sluice_memory_idle_trims_total, …_trimmed_bytes_total). */
export function trimWhenIdle(telemetry: Telemetry): IdleTrim {
  return new IdleTrim(PROCESS_MEMORY, (freedBytes) => {
    telemetry.memoryIdleTrims.inc();
    telemetry.memoryIdleTrimmedBytes.inc(freedBytes);
  });
}
