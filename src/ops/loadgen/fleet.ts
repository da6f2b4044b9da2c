/**
 * The worker processes of one run: forks them, routes their messages, waits
 * for a message from all of them with a deadline, and makes sure none
 * outlives the run (graceful close, then SIGKILL).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { settlesBefore } from '../../core/clock.js';
import type { FromWorker, ToWorker, WorkerPlan } from './ipc.js';

const WORKER_SCRIPT = fileURLToPath(new URL('./worker.js', import.meta.url));

type MessageOf<T extends FromWorker['type']> = Extract<FromWorker, { type: T }>;

export class WorkerFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkerFailure';
  }
}

export class WorkerFleet {
  /** The latest message of each type from each worker. */
  private readonly inbox: Map<FromWorker['type'], FromWorker>[];
  private readonly children: ChildProcess[] = [];
  private readonly exits: Promise<void>[] = [];
  private readonly waiters = new Set<() => void>();
  private failure: WorkerFailure | null = null;
  private closing = false;

  constructor(plans: readonly WorkerPlan[]) {
    this.inbox = plans.map(() => new Map());
    plans.forEach((plan, index) => {
      // No execArgv: flags of the parent (e.g. the test runner's) are not for workers.
      const child = fork(WORKER_SCRIPT, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
      this.children.push(child);
      child.on('message', (message: FromWorker) => {
        this.inbox[index]!.set(message.type, message);
        this.notify();
      });
      this.exits.push(new Promise((resolve) => {
        child.once('exit', (code, signal) => {
          if (!this.closing) this.fail(`worker ${plan.workerIndex} exited unexpectedly (${signal ?? `code ${code}`})`);
          resolve();
        });
      }));
      child.once('error', (err) => this.fail(`worker ${plan.workerIndex}: ${err.message}`));
      this.send(index, { type: 'start', plan });
    });
  }

  /** The latest progress of every worker that reported one. */
  progress(): MessageOf<'progress'>[] {
    return this.inbox.flatMap((box) => {
      const message = box.get('progress');
      return message?.type === 'progress' ? [message] : [];
    });
  }

  broadcast(message: ToWorker): void {
    this.children.forEach((_, index) => this.send(index, message));
  }

  /** One message of `type` from every worker (in worker order); rejects on a worker's failure, or after `timeoutMs`. */
  collect<T extends FromWorker['type']>(type: T, timeoutMs: number, signal?: AbortSignal): Promise<MessageOf<T>[]> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.failure !== null) return settle(() => reject(this.failure!));
        if (signal?.aborted) return settle(() => reject(new WorkerFailure(`interrupted while waiting for the workers (${type})`)));
        if (this.inbox.every((box) => box.has(type))) {
          settle(() => resolve(this.inbox.map((box) => box.get(type) as MessageOf<T>)));
        }
      };
      const timer = setTimeout(() => settle(() => reject(new WorkerFailure(`workers did not report "${type}" within ${timeoutMs} ms`))), timeoutMs);
      const settle = (outcome: () => void): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        signal?.removeEventListener('abort', check);
        outcome();
      };
      this.waiters.add(check);
      signal?.addEventListener('abort', check);
      check();
    });
  }

  /** Asks every worker to close its connections and exit; kills those still running after `graceMs`. */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    this.broadcast({ type: 'close' });
    await settlesBefore(Promise.all(this.exits), Date.now() + graceMs);
    this.kill();
    await Promise.all(this.exits);
  }

  /** SIGKILL to every worker still running. */
  kill(): void {
    this.closing = true;
    for (const child of this.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }

  private send(index: number, message: ToWorker): void {
    const child = this.children[index]!;
    if (child.connected) child.send(message, (err) => { if (err && !this.closing) this.fail(`worker ${index}: ${err.message}`); });
  }

  private fail(reason: string): void {
    this.failure ??= new WorkerFailure(reason);
    this.notify();
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
