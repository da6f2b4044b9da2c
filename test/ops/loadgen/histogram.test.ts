/**
 * Histograms travel between processes encoded; merged, they must say exactly
 * what one histogram of every value says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HIGHEST_TRACKABLE_MICROS, encodeHistogram, mergeEncoded, newHistogram, percentileCurve, recordMicros, summarizeMs,
} from '../../../src/ops/loadgen/histogram.js';

/** Deterministic pseudo-random numbers (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('histogram: merging encoded histograms equals recording every value in one', () => {
  const next = random(42);
  const all = newHistogram();
  const parts = [newHistogram(), newHistogram(), newHistogram()];
  for (let i = 0; i < 60_000; i++) {
    // Long-tailed like latencies: mostly ms, some seconds.
    const micros = Math.floor(200 * Math.exp(next() * 10));
    recordMicros(all, micros);
    recordMicros(parts[i % 3]!, micros);
  }
  const merged = mergeEncoded(parts.map(encodeHistogram));
  assert.equal(merged.totalCount, all.totalCount);
  for (let p = 0; p <= 100; p += 0.25) {
    assert.equal(merged.getValueAtPercentile(p), all.getValueAtPercentile(p), `p${p}`);
  }
  for (const p of [99.9, 99.99, 99.999]) assert.equal(merged.getValueAtPercentile(p), all.getValueAtPercentile(p), `p${p}`);
  assert.deepEqual({ ...summarizeMs(merged), max: 0 }, { ...summarizeMs(all), max: 0 });
  // The encoding keeps buckets, not the exact largest value: the maximum is that of its bucket (3 digits).
  assert.ok(merged.maxValue >= all.maxValue && merged.maxValue - all.maxValue <= all.maxValue / 1000,
    `max ${merged.maxValue} vs ${all.maxValue}`);
});

test('histogram: an empty histogram encodes, merges and summarises to zeros', () => {
  const merged = mergeEncoded([encodeHistogram(newHistogram()), encodeHistogram(newHistogram())]);
  assert.equal(merged.totalCount, 0);
  assert.deepEqual(summarizeMs(merged), { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, count: 0 });
});

test('histogram: values in µs are reported in ms, to 3 significant digits', () => {
  const h = newHistogram();
  for (let i = 1; i <= 1000; i++) recordMicros(h, i * 1000);
  const s = summarizeMs(h);
  assert.equal(s.count, 1000);
  for (const [reported, exact] of [[s.p50, 500], [s.p90, 900], [s.p99, 990], [s.p999, 999], [s.max, 1000]] as const) {
    assert.ok(reported >= exact && reported <= exact * 1.001, `${reported} ms for ${exact} ms`);
  }
});

test('histogram: out-of-range values are clamped, not thrown', () => {
  const h = newHistogram();
  recordMicros(h, -3);
  recordMicros(h, HIGHEST_TRACKABLE_MICROS * 10);
  assert.equal(h.totalCount, 2);
  assert.equal(h.getValueAtPercentile(50), 0);
  assert.ok(h.maxValue >= HIGHEST_TRACKABLE_MICROS && h.maxValue <= HIGHEST_TRACKABLE_MICROS * 1.001);
});

test('histogram: the percentile curve starts at p0, never decreases, and ends at the maximum', () => {
  const small = newHistogram();
  const large = newHistogram();
  for (let i = 1; i <= 100; i++) recordMicros(small, i * 10);
  for (let i = 1; i <= 20_000; i++) recordMicros(large, i);
  const curve = percentileCurve([small, large]);
  assert.equal(curve.x[0], 1, 'x = 1/(1 − p) is 1 at p = 0');
  assert.ok(curve.x.at(-1)! >= 20_000, 'the grid reaches the percentile the largest count resolves');
  for (const ms of curve.ms) {
    for (let i = 1; i < ms.length; i++) assert.ok(ms[i]! >= ms[i - 1]!, 'latency never decreases with the percentile');
  }
  assert.equal(curve.ms[0]!.at(-1), summarizeMs(small).max);
  assert.equal(curve.ms[1]!.at(-1), summarizeMs(large).max);
});
