/**
 * The machine's own contribution to event-loop delay: an idle Node.js
 * process that only measures its event-loop delay (perf_hooks, 10 ms
 * resolution, as the node does) while a workload runs. On a quiet machine it
 * sees about a millisecond; on a shared one, the scheduling delays every
 * process suffers. The node's numbers are read next to it.
 */
import type { ProcessGroup, TrackedProcess } from './processes.js';

export interface NoiseFloor {
  p99Ms: number;
  maxMs: number;
}

const SCRIPT = `
const { monitorEventLoopDelay } = require('node:perf_hooks');
const h = monitorEventLoopDelay({ resolution: 10 });
h.enable();
const keepAlive = setInterval(() => {}, 1000);
process.on('SIGTERM', () => {
  h.disable();
  clearInterval(keepAlive);
  process.stdout.write(JSON.stringify({ p99Ms: h.percentile(99) / 1e6, maxMs: h.max / 1e6 }) + '\\n');
});
`;

export class NoiseFloorProbe {
  private constructor(private readonly proc: TrackedProcess) {}

  static start(group: ProcessGroup): NoiseFloorProbe {
    return new NoiseFloorProbe(group.spawn('noise-floor', process.execPath, ['-e', SCRIPT]));
  }

  /** Stop the probe; its p99 and max over the time it ran, or undefined if it said nothing. */
  async stop(): Promise<NoiseFloor | undefined> {
    await this.proc.stop(2000);
    try {
      const found = JSON.parse(this.proc.stdoutTail().trim().split('\n').at(-1) ?? '') as NoiseFloor;
      return { p99Ms: Math.round(found.p99Ms * 100) / 100, maxMs: Math.round(found.maxMs * 100) / 100 };
    } catch {
      return undefined;
    }
  }
}
