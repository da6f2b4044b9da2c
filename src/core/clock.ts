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
