/**
 * When agents send, as pure arithmetic on the monotonic clock (µs), so the
 * worker's timer only asks "what is due by now?" and a late timer catches up
 * instead of silently sending less.
 */

/**
 * n agents each sending every `periodMicros`, their start times spread
 * uniformly over one period: event e belongs to agent e % n and falls at
 * start + offset + e · period / n. The aggregate is one event every period/n,
 * as smooth as a single sender, and each agent still keeps its own period.
 */
export class SpreadSchedule {
  private next = 0;
  private readonly stepMicros: number;

  /**
   * @param offsetFraction where in the first step this schedule begins (0 ≤ f < 1),
   *   so several workers with the same agent count interleave instead of coinciding
   */
  constructor(
    readonly agents: number,
    periodMicros: number,
    private readonly startMicros: number,
    private readonly endMicros: number,
    offsetFraction = 0,
  ) {
    this.stepMicros = periodMicros / agents;
    this.startMicros += offsetFraction * this.stepMicros;
  }

  /** Calls `fire(agentIndex)` for every event due by `nowMicros` and before the end, in order. */
  due(nowMicros: number, fire: (agentIndex: number) => void): void {
    if (this.agents === 0) return;
    const limit = Math.min(nowMicros, this.endMicros - 1);
    for (;;) {
      const at = this.startMicros + this.next * this.stepMicros;
      if (at > limit) return;
      fire(this.next % this.agents);
      this.next++;
    }
  }

  /** Events so far (for tests and progress). */
  get fired(): number {
    return this.next;
  }
}

/** Something that happens every `intervalMicros`, the first time at start + first · interval. */
export class PeriodicSchedule {
  private next: number;

  constructor(
    private readonly intervalMicros: number,
    private readonly startMicros: number,
    private readonly endMicros: number,
    first = 0,
  ) {
    this.next = first;
  }

  /** How many occurrences fell due by `nowMicros` (and before the end) since the last call. */
  due(nowMicros: number): number {
    const limit = Math.min(nowMicros, this.endMicros - 1);
    let count = 0;
    while (this.startMicros + this.next * this.intervalMicros <= limit) {
      this.next++;
      count++;
    }
    return count;
  }
}
