/**
 * Everything the benchmark starts — servers, load clients, connection holders —
 * and every temporary folder it makes belongs to one ProcessGroup, which stops
 * the processes by their own pid (SIGTERM, then SIGKILL for the ones that
 * linger, descendants included) and removes the folders: at the end of a run,
 * after a failure, and on SIGINT/SIGTERM.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { processTree } from './proc-stats.js';

/** Keep this much of a child's stderr (and stdout), for error messages. */
const TAIL_BYTES = 16 * 1024;

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class TrackedProcess {
  readonly pid: number;
  readonly exited: Promise<ExitStatus>;
  private exitStatus: ExitStatus | null = null;
  private stderrText = '';
  private stdoutText = '';

  constructor(readonly name: string, readonly child: ChildProcess) {
    if (child.pid === undefined) throw new Error(`${name}: could not start`);
    this.pid = child.pid;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitStatus = { code, signal };
        resolve(this.exitStatus);
      });
    });
    child.stderr?.setEncoding('utf8').on('data', (s: string) => { this.stderrText = keepTail(this.stderrText + s); });
    child.stdout?.setEncoding('utf8').on('data', (s: string) => { this.stdoutText = keepTail(this.stdoutText + s); });
  }

  get running(): boolean {
    return this.exitStatus === null;
  }

  get status(): ExitStatus | null {
    return this.exitStatus;
  }

  stderrTail(): string {
    return this.stderrText;
  }

  stdoutTail(): string {
    return this.stdoutText;
  }

  /** SIGTERM, then SIGKILL (to it and whatever it started) if it is still there after `graceMs`. */
  async stop(graceMs = 10_000): Promise<ExitStatus> {
    if (!this.running) return this.exitStatus!;
    const descendants = processTree(this.pid).filter((pid) => pid !== this.pid);
    signal(this.pid, 'SIGTERM');
    const timer = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), graceMs).unref());
    if (await Promise.race([this.exited, timer]) === 'late') {
      for (const pid of [this.pid, ...descendants, ...processTree(this.pid)]) signal(pid, 'SIGKILL');
    }
    return this.exited;
  }
}

function keepTail(text: string): string {
  return text.length > TAIL_BYTES ? text.slice(-TAIL_BYTES) : text;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

export class ProcessGroup {
  private readonly processes = new Set<TrackedProcess>();
  private readonly dirs = new Set<string>();
  /** Set once stopping has begun: nothing new may start after that. */
  private stopping = false;

  spawn(name: string, command: string, args: string[], options: SpawnOptions = {}): TrackedProcess {
    if (this.stopping) throw new Error(`not starting ${name}: the benchmark is stopping`);
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    const tracked = new TrackedProcess(name, child);
    this.processes.add(tracked);
    void tracked.exited.then(() => this.processes.delete(tracked));
    return tracked;
  }

  /**
   * Like spawn, with the soft open-files limit raised to the hard limit first:
   * `exec` keeps the pid, so the tracked pid is the program itself.
   */
  spawnWithFileLimit(name: string, command: string, args: string[], options: SpawnOptions = {}): TrackedProcess {
    return this.spawn(name, '/bin/sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', command, ...args], options);
  }

  tempDir(prefix: string): string {
    const dir = mkdtempSync(path.join(tmpdir(), prefix));
    this.dirs.add(dir);
    return dir;
  }

  removeDir(dir: string): void {
    rmSync(dir, { recursive: true, force: true });
    this.dirs.delete(dir);
  }

  /** Stop every process still running, then remove every temporary folder. */
  async stopAll(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.processes].map((p) => p.stop(graceMs)));
    for (const dir of [...this.dirs]) this.removeDir(dir);
  }

  /** Synchronous last resort for process exit: SIGKILL by pid, remove folders. */
  killAllNow(): void {
    this.stopping = true;
    for (const p of this.processes) {
      if (!p.running) continue;
      for (const pid of processTree(p.pid)) signal(pid, 'SIGKILL');
    }
    for (const dir of [...this.dirs]) this.removeDir(dir);
  }

  /**
   * On SIGINT/SIGTERM: stop everything, run `beforeExit` (e.g. save what was
   * measured so far) and exit 130; on any exit, kill what is left.
   */
  stopOnSignals(beforeExit: () => void = () => {}): void {
    let stopping = false;
    const onSignal = (name: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`\n${name}: stopping everything the benchmark started…\n`);
      void this.stopAll(3_000).finally(() => {
        try {
          beforeExit();
        } finally {
          process.exit(130);
        }
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('exit', () => this.killAllNow());
  }
}
