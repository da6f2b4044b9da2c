/**
 * Bounded work per event-loop turn: long loops (a large request body, a
 * deep queue behind a lookup, a disk-buffer replay) do a slice, then yield
 * with setImmediate so that timers, I/O and other sessions run in between.
 * The slices below keep one turn to a few milliseconds of work each.
 */

/** Records a loop handles per turn (decoding, routing, encoding). */
export const RECORDS_PER_TURN = 2048;
/** Bytes a loop handles per turn (replaying a disk buffer). */
export const BYTES_PER_TURN = 512 * 1024;

/** Resolves in a later event-loop turn, after pending I/O callbacks. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
