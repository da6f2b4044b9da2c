/**
 * A prom-client counter whose label children count in a plain number.
 *
 * prom-client's child `inc` hashes and validates its labels and updates the
 * metric's map on every call: about a microsecond, paid per read and per
 * batch on the hot path (at 10,000 agents each read carries one record, so
 * some ten increments a record). A child of this counter adds to a number
 * instead, and the numbers are added to the metric when it is collected (a
 * scrape, `get()`), so what is read is always complete. Incrementing the
 * counter itself (`inc(labels, n)`) is unchanged.
 */
import { Counter, type CounterConfiguration, type LabelValues } from 'prom-client';

/** A label child that adds to a number until its counter is collected. */
class Tally implements Counter.Internal {
  pending = 0;
  constructor(readonly child: Counter.Internal) {}

  inc(value = 1): void {
    if (!(value >= 0) || value === Infinity) throw new RangeError(`a counter only grows by a finite amount, not ${value}`);
    this.pending += value;
  }

  flush(): void {
    if (this.pending === 0) return;
    const value = this.pending;
    this.pending = 0;
    this.child.inc(value);
  }
}

export class TallyCounter<L extends string = string> extends Counter<L> {
  /** One tally per label set, by the label values joined. */
  private readonly tallies = new Map<string, Tally>();

  constructor(config: Omit<CounterConfiguration<L>, 'collect'>) {
    super({
      ...config,
      collect(this: Counter<L>) {
        (this as TallyCounter<L>).flush();
      },
    });
  }

  override labels(...values: string[]): Counter.Internal;
  override labels(labels: LabelValues<L>): Counter.Internal;
  override labels(...args: [LabelValues<L>] | string[]): Counter.Internal {
    const key = this.keyOf(args);
    let tally = this.tallies.get(key);
    if (tally === undefined) {
      tally = new Tally(super.labels(...(args as string[])));
      this.tallies.set(key, tally);
    }
    return tally;
  }

  /** Add every tally's count to the metric. */
  flush(): void {
    for (const tally of this.tallies.values()) tally.flush();
  }

  override reset(): void {
    // The base constructor resets before this class's fields exist.
    if (this.tallies !== undefined) for (const tally of this.tallies.values()) tally.pending = 0;
    super.reset();
  }

  override remove(...args: [LabelValues<L>] | string[]): void {
    this.tallies.delete(this.keyOf(args));
    super.remove(...(args as string[]));
  }

  /** The label values in the metric's label order, joined: as labels() takes them, by position or by name. */
  private keyOf(args: [LabelValues<L>] | string[]): string {
    const first = args[0];
    if (typeof first !== 'object') return (args as string[]).join('\u0000');
    const names = (this as unknown as { labelNames: readonly string[] }).labelNames;
    return names.map((name) => String((first as Record<string, unknown>)[name] ?? '')).join('\u0000');
  }
}
