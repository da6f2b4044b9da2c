/**
 * Receive timestamps. Formatting a Date costs far more than a record's other
 * work, and thousands of records share each millisecond, so the ISO string is
 * cached per millisecond.
 */
let cachedMs = -1;
let cachedIso = '';

export function isoTime(ms: number): string {
  if (ms !== cachedMs) {
    cachedMs = ms;
    cachedIso = new Date(ms).toISOString();
  }
  return cachedIso;
}

/** setTimeout fires at once for delays past 2^31-1 ms; configured durations may be longer. */
export function timerDelay(ms: number): number {
  return Math.min(Math.max(0, ms), 0x7fffffff);
}
