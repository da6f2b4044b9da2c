/**
 * Latency histograms (HdrHistogram): values recorded in microseconds,
 * reported in milliseconds. Processes exchange histograms in HdrHistogram's
 * compressed encoding and merge them here, never as lists of values.
 */
import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js';

export type { Histogram };

/** An hour: beyond any latency worth a number, and it bounds the bucket array. */
export const HIGHEST_TRACKABLE_MICROS = 3_600_000_000;

/**
 * A histogram of microseconds from 1 µs to an hour. 3 significant digits for
 * the run's totals; 2 suffice for the per-second ones (one per second of the
 * run, so their size matters) and take a tenth of the memory.
 */
export function newHistogram(significantDigits: 2 | 3 = 3): Histogram {
  return build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_TRACKABLE_MICROS,
    numberOfSignificantValueDigits: significantDigits,
    autoResize: false,
  });
}

/** Clamped into the trackable range: a clock read a microsecond apart can yield -1. */
export function recordMicros(histogram: Histogram, micros: number): void {
  histogram.recordValue(micros <= 0 ? 0 : micros >= HIGHEST_TRACKABLE_MICROS ? HIGHEST_TRACKABLE_MICROS : Math.round(micros));
}

/**
 * Latency per tenant over the whole run, and again for the messages sent at
 * or after a cut (`--steady-after` past the start of sending): the steady part,
 * apart from the cold start. The steady part is kept for t0 and for every other
 * tenant together, the two figures reported, not per tenant: a histogram takes
 * 95 KB and there may be 255 tenants.
 */
export class RunLatencies {
  readonly byTenant: Histogram[] = [];
  readonly steadyFirstTenant = newHistogram();
  readonly steadyOtherTenants = newHistogram();
  /** Monotonic µs; nothing counts as steady until sending has begun. */
  private steadyFromMicros = Number.POSITIVE_INFINITY;

  constructor(tenants: number, private readonly steadyAfterMicros: number) {
    for (let t = 0; t < tenants; t++) this.byTenant.push(newHistogram());
  }

  /** Sending began at `goMicros`. */
  begin(goMicros: number): void {
    this.steadyFromMicros = goMicros + this.steadyAfterMicros;
  }

  record(tenant: number, sendMicros: number, latencyMicros: number): void {
    recordMicros(this.byTenant[tenant]!, latencyMicros);
    if (sendMicros >= this.steadyFromMicros) recordMicros(tenant === 0 ? this.steadyFirstTenant : this.steadyOtherTenants, latencyMicros);
  }
}

export function encodeHistogram(histogram: Histogram): string {
  return encodeIntoCompressedBase64(histogram);
}

/** One histogram holding every value of the encoded ones. */
export function mergeEncoded(encoded: readonly string[]): Histogram {
  const merged = newHistogram();
  for (const text of encoded) {
    const decoded = decodeFromCompressedBase64(text);
    merged.add(decoded);
    decoded.destroy();
  }
  return merged;
}

export function mergeHistograms(histograms: readonly Histogram[]): Histogram {
  const merged = newHistogram();
  for (const histogram of histograms) merged.add(histogram);
  return merged;
}

export interface LatencySummaryMs {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  count: number;
}

/** p50 … max and the count, as the cells of a table row; `none` for each value when nothing was measured. */
export function summaryCells(s: LatencySummaryMs | null, none: string): (string | number)[] {
  return s === null ? [none, none, none, none, none, 0] : [s.p50, s.p90, s.p99, s.p999, s.max, s.count];
}

/** µs → ms, to the microsecond. */
export function microsToMs(micros: number): number {
  return Math.round(micros) / 1000;
}

export function summarizeMs(histogram: Histogram): LatencySummaryMs {
  if (histogram.totalCount === 0) return { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, count: 0 };
  return {
    p50: microsToMs(histogram.getValueAtPercentile(50)),
    p90: microsToMs(histogram.getValueAtPercentile(90)),
    p99: microsToMs(histogram.getValueAtPercentile(99)),
    p999: microsToMs(histogram.getValueAtPercentile(99.9)),
    max: microsToMs(histogram.maxValue),
    count: histogram.totalCount,
  };
}

/** Points per decade of 1/(1 − p) on the percentile plot. */
const CURVE_POINTS_PER_DECADE = 20;

/**
 * Latency by percentile for a plot whose x axis is 1/(1 − p) on a log scale
 * (as HdrHistogram's plots: 90% at 10, 99% at 100, 99.9% at 1000 …). One x
 * grid for all histograms, up to the percentile the largest count resolves;
 * beyond its own count a histogram simply yields its maximum.
 */
export function percentileCurve(histograms: readonly Histogram[]): { x: number[]; ms: number[][] } {
  const largest = Math.max(1, ...histograms.map((h) => h.totalCount));
  const decades = Math.max(1, Math.ceil(Math.log10(largest)));
  const x: number[] = [];
  for (let k = 0; k <= decades * CURVE_POINTS_PER_DECADE; k++) x.push(10 ** (k / CURVE_POINTS_PER_DECADE));
  const ms = histograms.map((h) => x.map((inverse) => {
    if (h.totalCount === 0) return 0;
    const percentile = 100 * (1 - 1 / inverse);
    return microsToMs(inverse >= h.totalCount ? h.maxValue : h.getValueAtPercentile(percentile));
  }));
  return { x, ms };
}
