/**
 * A load generator process's own event-loop delay. A stalled loop sends late
 * (workers) or sees records late (the probe), so a run whose generator
 * stalled says so next to its latencies instead of passing the stall off as
 * the node's.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { LoopDelay } from './ipc.js';

/** Sampling resolution of the monitor, ms. */
const RESOLUTION_MS = 10;

export class LoopDelayMonitor {
  private histogram: IntervalHistogram | null = null;

  start(): void {
    this.histogram ??= monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.histogram.enable();
  }

  /** What was measured since start (zeros if never started); idempotent. */
  stop(): LoopDelay {
    const h = this.histogram;
    if (h === null) return { p99Ms: 0, maxMs: 0 };
    h.disable();
    // Nanoseconds; the monitor's own resolution is included in every sample, so it is taken off.
    const ms = (ns: number): number => Math.max(0, Math.round(ns / 1e3 - RESOLUTION_MS * 1e3) / 1e3);
    return h.count === 0 ? { p99Ms: 0, maxMs: 0 } : { p99Ms: ms(h.percentile(99)), maxMs: ms(h.max) };
  }
}
