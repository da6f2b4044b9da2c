/**
 * Time: receive timestamps, timer delays and deadlines.
 *
 * Formatting a Date costs far more than a record's other work, and thousands
 * of records share each millisecond, so the ISO string is cached per
 * millisecond.
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

/**
 * Whether `work` settles (resolves or rejects) before `deadline` (epoch ms);
 * it is not waited for past it. The one way every stop and bounded wait asks
 * "did this finish in time?".
 */
export async function settlesBefore(work: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => { timer = setTimeout(resolve, timerDelay(deadline - Date.now()), false); });
  try {
    return await Promise.race([work.then(() => true, () => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}
