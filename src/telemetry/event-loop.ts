/**
 * Event-loop delay, measured with perf_hooks.monitorEventLoopDelay (a native
 * timer samples how late the loop runs it; nothing on the hot path):
 *
 * - for scrapes: p50, p99 and max since the previous scrape, as gauges
 *   (sluice_event_loop_delay_*_seconds; the histogram resets on each scrape);
 * - per second: a window whose p99 passes WARN_P99_MS logs SLU0050W
 *   (throttled), and windows in which the process was busy (used at least
 *   BUSY_CPU_SHARE of a core) are summed up for the run: the worst and the
 *   median one-second p99, and the largest delay. Every window's p99 under a
 *   bound means the p99 over all of them is under it too, so the worst
 *   window is an upper bound of the run's p99 under load. The node measures
 *   from ready to the start of its shutdown; the summary rides on its
 *   node-stopped line.
 */
import { createHistogram, monitorEventLoopDelay, type IntervalHistogram, type RecordableHistogram } from 'node:perf_hooks';
import type { Telemetry } from './telemetry.js';

/** Sampling resolution of the native timer. */
const RESOLUTION_MS = 10;
const WINDOW_MS = 1000;
/** A one-second window with a p99 above this is logged. */
export const WARN_P99_MS = 100;
/** A second counts as under load when the process used at least this share of a core in it. */
const BUSY_CPU_SHARE = 0.25;

const NS_PER_MS = 1e6;

export interface EventLoopSummary {
  /** Seconds in which the process was busy. */
  busy_seconds: number;
  /** Worst one-second p99 among busy seconds (ms): an upper bound of their overall p99. */
  event_loop_delay_p99_worst_ms: number;
  /** Median one-second p99 among busy seconds (ms). */
  event_loop_delay_p99_median_ms: number;
  /** Largest delay seen while running (ms). */
  event_loop_delay_max_ms: number;
}

export class EventLoopMonitor {
  private readonly sinceScrape: IntervalHistogram;
  private readonly window: IntervalHistogram;
  /** One-second p99s of busy seconds, in microseconds. */
  private readonly busyP99s: RecordableHistogram = createHistogram();
  private busySeconds = 0;
  private worstBusyP99 = 0;
  private maxDelay = 0;
  private timer: NodeJS.Timeout | null = null;
  private cpu = process.cpuUsage();
  private windowStart = 0;

  constructor(private readonly telemetry: Telemetry) {
    this.sinceScrape = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.window = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  }

  start(): void {
    if (this.timer !== null) return;
    this.sinceScrape.enable();
    this.window.enable();
    this.cpu = process.cpuUsage();
    this.windowStart = performance.now();
    this.timer = setInterval(this.closeWindow, WINDOW_MS);
    this.timer.unref();
    this.telemetry.eventLoopDelaySource = this.scrape;
  }

  stop(): void {
    if (this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
    this.sinceScrape.disable();
    this.window.disable();
    if (this.telemetry.eventLoopDelaySource === this.scrape) this.telemetry.eventLoopDelaySource = null;
  }

  /** What the run looked like so far (for the node-stopped line and the benchmark). */
  summary(): EventLoopSummary {
    const round = (ms: number): number => Math.round(ms * 100) / 100;
    return {
      busy_seconds: this.busySeconds,
      event_loop_delay_p99_worst_ms: round(this.worstBusyP99 / NS_PER_MS),
      event_loop_delay_p99_median_ms: round(this.busySeconds === 0 ? 0 : this.busyP99s.percentile(50) / 1000),
      event_loop_delay_max_ms: round(Math.max(this.maxDelay, this.window.count > 0 ? this.window.max : 0) / NS_PER_MS),
    };
  }

  /** p50, p99, max since the previous scrape, in seconds; then start over. */
  private readonly scrape = (): { p50: number; p99: number; max: number } => {
    const h = this.sinceScrape;
    const values = h.count === 0 ? { p50: 0, p99: 0, max: 0 } : { p50: h.percentile(50) / 1e9, p99: h.percentile(99) / 1e9, max: h.max / 1e9 };
    h.reset();
    return values;
  };

  private readonly closeWindow = (): void => {
    const h = this.window;
    const now = performance.now();
    const elapsedMs = now - this.windowStart;
    const used = process.cpuUsage(this.cpu);
    this.cpu = process.cpuUsage();
    this.windowStart = now;
    if (h.count === 0) return;
    const p99 = h.percentile(99);
    if (h.max > this.maxDelay) this.maxDelay = h.max;
    if (elapsedMs > 0 && (used.user + used.system) / 1000 >= BUSY_CPU_SHARE * elapsedMs) {
      this.busySeconds++;
      if (p99 > this.worstBusyP99) this.worstBusyP99 = p99;
      this.busyP99s.record(Math.max(1, Math.round(p99 / 1000)));
    }
    if (p99 / NS_PER_MS > WARN_P99_MS) {
      this.telemetry.emit('eventLoopDelayed', { p99_ms: Math.round(p99 / NS_PER_MS), max_ms: Math.round(h.max / NS_PER_MS) });
    }
    h.reset();
  };
}
