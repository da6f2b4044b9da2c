/**
 * The load generator's time base. Workers stamp each message with its send
 * time and the probe, in another process, subtracts it from the time it sees
 * the record, so both need a clock every process of the host shares, with
 * microsecond resolution, that never steps: CLOCK_MONOTONIC (libuv's hrtime)
 * is that; wall time (Date.now) has milliseconds only and can jump.
 */
export function monotonicMicros(): number {
  const [seconds, nanos] = process.hrtime();
  return seconds * 1_000_000 + Math.floor(nanos / 1000);
}
