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

/** What acts once at the end of an event-loop turn in which it enlisted. */
export interface TurnListener {
  turnEnded(): void;
}

/**
 * The end of the current event-loop turn, for everything that enlisted in it:
 * one setImmediate per turn, not one per enlisting session (at 10,000 agents
 * each read carries one message, and an Immediate per read would be most of
 * what a read allocates). Listeners run in the order they enlisted; one that
 * enlists while the others run is called at the next turn's end. A listener
 * enlists at most once per turn (it keeps its own flag).
 */
export class EndOfTurn {
  private enlisted: TurnListener[] = [];
  /** The array being run (swapped with `enlisted`, so neither is reallocated). */
  private running: TurnListener[] = [];
  private scheduled = false;

  enlist(listener: TurnListener): void {
    this.enlisted.push(listener);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.end);
    }
  }

  private readonly end = (): void => {
    const listeners = this.enlisted;
    this.enlisted = this.running;
    this.running = listeners;
    this.scheduled = false;
    for (let i = 0; i < listeners.length; i++) listeners[i]!.turnEnded();
    listeners.length = 0;
  };
}
