/**
 * Idle TCP connections held against a server by bench/idle-holder.ts child
 * processes, 5,000 per process (well within one process's file limit).
 */
import path from 'node:path';
import { ROOT } from './peers.js';
import type { ProcessGroup, TrackedProcess } from './processes.js';

const HOLDER = path.join(ROOT, 'dist', 'bench', 'idle-holder.js');
const CONNECTIONS_PER_PROCESS = 5000;

export interface HolderCounts {
  open: number;
  failed: number;
  closedByServer: number;
  errors: Record<string, number>;
}

interface Holder {
  proc: TrackedProcess;
  lines: HolderCounts[];
}

function addCounts(all: HolderCounts[]): HolderCounts {
  const total: HolderCounts = { open: 0, failed: 0, closedByServer: 0, errors: {} };
  for (const c of all) {
    total.open += c.open;
    total.failed += c.failed;
    total.closedByServer += c.closedByServer;
    for (const [code, n] of Object.entries(c.errors)) total.errors[code] = (total.errors[code] ?? 0) + n;
  }
  return total;
}

export class IdleConnections {
  private constructor(private readonly holders: Holder[]) {}

  /** Open `count` connections to 127.0.0.1:port; resolves once every attempt has settled. */
  static async open(port: number, count: number, group: ProcessGroup, timeoutMs = 180_000): Promise<{ idle: IdleConnections; counts: HolderCounts }> {
    const holders: Holder[] = [];
    for (let remaining = count; remaining > 0; remaining -= CONNECTIONS_PER_PROCESS) {
      const share = Math.min(remaining, CONNECTIONS_PER_PROCESS);
      const proc = group.spawnWithFileLimit('idle-holder', process.execPath, [HOLDER, '--port', String(port), '--count', String(share)],
        { stdio: ['pipe', 'pipe', 'pipe'] });
      const holder: Holder = { proc, lines: [] };
      let buffered = '';
      proc.child.stdout!.on('data', (s: string | Buffer) => {
        buffered += s.toString();
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          holder.lines.push(JSON.parse(buffered.slice(0, nl)) as HolderCounts);
          buffered = buffered.slice(nl + 1);
        }
      });
      holders.push(holder);
    }
    const idle = new IdleConnections(holders);
    const counts = await idle.waitForLines(1, timeoutMs);
    return { idle, counts };
  }

  private async waitForLines(n: number, timeoutMs: number): Promise<HolderCounts> {
    const deadline = Date.now() + timeoutMs;
    while (this.holders.some((h) => h.lines.length < n)) {
      const dead = this.holders.find((h) => !h.proc.running);
      if (dead) throw new Error(`idle-holder exited: ${JSON.stringify(dead.proc.status)} ${dead.proc.stderrTail().slice(-1000)}`);
      if (Date.now() > deadline) throw new Error('idle-holder did not report in time');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return addCounts(this.holders.map((h) => h.lines[n - 1]!));
  }

  /** How many are still open, and how many the server closed. */
  async status(): Promise<HolderCounts> {
    const n = Math.max(...this.holders.map((h) => h.lines.length)) + 1;
    for (const h of this.holders) h.proc.child.stdin!.write('status\n');
    return this.waitForLines(n, 30_000);
  }

  async close(): Promise<void> {
    for (const h of this.holders) h.proc.child.stdin!.end();
    await Promise.all(this.holders.map((h) => h.proc.stop(10_000)));
  }
}
