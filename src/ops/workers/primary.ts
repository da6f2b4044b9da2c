/**
 * The primary of a multi-process node: it runs the host metadata service
 * once (SQLite must have one writer), keeps `workers` worker processes
 * running under a Supervisor, and carries out the operations that must not
 * lose an acknowledged record: reload, rolling restart, drain.
 *
 * Worker ids are slots, 1-based. A worker restarted after a crash keeps its
 * slot (and so its files and disk buffers). A rolling restart starts each
 * replacement in the lowest free slot before the old worker stops accepting,
 * so two workers never share a slot's files; the slot the old worker leaves
 * is taken over by a later replacement.
 */
import cluster, { type Worker } from 'node:cluster';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { AggregatorRegistry, collectDefaultMetrics } from 'prom-client';
import { Supervisor } from '../../core/supervisor.js';
import { trimWhenIdle, type IdleTrim } from '../../core/idle-trim.js';
import { settlesBefore, timerDelay } from '../../core/clock.js';
import { loadConfigFile } from '../config/load.js';
import { ConfigError, formatProblem } from '../config/problems.js';
import { hostmetaAccess } from '../config/hostmeta-access.js';
import { answerHostmetaCall, type HostmetaCall } from './hostmeta-channel.js';
import { LocalHostmetaClient } from '../../services/hostmeta/local-client.js';
import type { SluiceConfig } from '../config/types.js';
import type { TenantLimits } from '../../core/limits.js';
import type { NodeAddresses } from '../node.js';
import type { TailSink } from '../control.js';
import { supervisionEvents, supervisorPolicy } from '../supervision.js';
import { Telemetry } from '../../telemetry/telemetry.js';
import { VERSION } from '../../telemetry/version.js';
import { startHostmetaService, type RunningHostmetaService } from '../../services/hostmeta/server.js';
import { isSluiceMessage, MEMORY_REPORT_MS, WORKER_ID_ENV, type FromWorker, type ToWorker } from './protocol.js';
import { workersOf } from '../config/resolve.js';
import { LimitShares, type UseReport } from './limit-shares.js';

/** How long a control call to one worker may take before it counts as unanswered. */
export const CALL_TIMEOUT_MS = 5000;
/** How long past its drain deadline a worker may take to exit before it is killed. */
const RETIRE_GRACE_MS = 5000;
/** How long a replacement worker may take to be ready during a rolling restart. */
const REPLACEMENT_READY_TIMEOUT_MS = 60_000;
/**
 * The least V8 heap limit a worker gets, whatever the budget: an idle worker
 * uses some 30 MiB of heap, and a limit too close to that would have V8
 * collecting without pause (or failing) under the first load.
 */
export const WORKER_HEAP_FLOOR_MIB = 96;

/**
 * What a worker holds outside its V8 heap: the runtime's code and data, the
 * modules' compiled code, native buffers and sockets. Measured: an idle
 * worker's RSS less its heap total, some 60 MiB.
 */
export const WORKER_NON_HEAP_MIB = 64;

/**
 * libuv's thread pool in a worker (its default is 4): every file write and
 * fsync of the file sink and the disk buffer runs there, one per tenant's file
 * at a time. With 4, a flooding tenant's large writes and fsyncs held the
 * threads the other tenants' writes waited for: W6 with 4, the steady tenants'
 * p90 2.18× and p99 2.74× their figures without the flood; with 16, 1.29× and
 * 1.57× (docs/benchmarks.md). Idle threads cost a stack each, little resident.
 */
export const WORKER_THREAD_POOL_SIZE = 16;

/**
 * The most a worker's young generation grows to, per semi-space (MiB; V8's
 * default is 16). Under W5 (10,000 trickling agents) 8 took 40-50 MB off the
 * node's peak PSS for no CPU measurable above the noise; 4 and 2 cost more
 * CPU (more scavenges, more objects promoted). docs/memory.md.
 */
export const WORKER_SEMI_SPACE_MIB = 8;

/**
 * Each worker's V8 heap limit (`--max-old-space-size`, MiB), derived from
 * memory.budget: a process's share of the budget up to the soft mark (the
 * workers and the primary sharing it evenly), less what a worker holds outside
 * its heap, and not below the floor.
 *
 * The limit is also how lazily V8 collects: it lets the old generation grow
 * towards the limit before it collects it in earnest, and what it has not yet
 * collected is resident. With a limit of a third of the budget, 10,000
 * trickling agents grew each worker's heap past 100 MiB of mostly garbage and
 * the node past its soft mark (pausing agents); with the share less the
 * non-heap part the same load stays within the soft mark for some 6 % more
 * CPU (docs/memory.md). The governor measures each heap against its limit,
 * so a worker's heap reaches its marks before the processes together pass
 * the budget.
 */
export function workerHeapLimitMiB(config: SluiceConfig): number {
  const { budgetBytes, softMark } = config.memory;
  const shareMiB = (budgetBytes * softMark) / (workerCount(config) + 1) / 1024 ** 2;
  return Math.max(WORKER_HEAP_FLOOR_MIB, Math.floor(shareMiB - WORKER_NON_HEAP_MIB));
}

export interface ReloadOutcome {
  accepted: boolean;
  /** The file read (absolute), or null when there was none to read. */
  file: string | null;
  /** Why it was refused (one line per problem). */
  problems: string[];
  /** When accepted: settles once every worker runs the new configuration (rejects if the rolling restart was aborted). */
  applied?: Promise<void>;
}

/** One worker process (a slot may see several over its life). */
export class WorkerProcess {
  addresses: NodeAddresses | null = null;
  readonly ready: Promise<NodeAddresses>;
  /** The worker is listening for messages. */
  readonly hello: Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private nextCall = 1;
  /** Set by the primary when it told this worker to drain. */
  draining = false;
  /** When it must have drained by (set with `draining`). */
  drainDeadline = 0;
  /** Told to start (after its hello): messages sent from now on reach its node. */
  started = false;
  private greeted = false;
  /** Told this worker's reports of its use of the tenant limits. */
  onLimitUse: ((report: UseReport, applied: number) => void) | null = null;
  /** Its metrics as it sent them when it had drained, or as it last answered a scrape (a worker that crashed). */
  lastMetrics: unknown[] | null = null;
  /** Its resident memory, as it last reported it (0 until then). */
  rssBytes = 0;
  /** Told this worker's calls to the metadata service (the primary's); the reply goes back to it. */
  onHostmetaCall: ((call: HostmetaCall) => void) | null = null;

  constructor(readonly id: number, readonly worker: Worker, onTail: (message: Extract<FromWorker, { sluice: 'tail' }>) => void) {
    let ready: (a: NodeAddresses) => void = () => undefined;
    let failed: (e: Error) => void = () => undefined;
    this.ready = new Promise((resolve, reject) => { ready = resolve; failed = reject; });
    this.ready.catch(() => undefined);
    let hello: () => void = () => undefined;
    this.hello = new Promise((resolve) => { hello = resolve; });
    this.exited = new Promise((resolve) => {
      worker.once('exit', (code, signal) => {
        failed(new Error(`worker ${id} exited before it was ready (${signal ?? `code ${code}`})`));
        for (const call of this.pending.values()) {
          clearTimeout(call.timer);
          call.reject(new Error(`worker ${id} exited`));
        }
        this.pending.clear();
        resolve({ code, signal });
      });
    });
    worker.on('message', (message: unknown) => {
      if (!isSluiceMessage(message)) return;
      const m = message as FromWorker;
      if (m.sluice === 'hello') {
        this.greeted = true;
        hello();
      } else if (m.sluice === 'ready') {
        this.addresses = m.addresses;
        ready(m.addresses);
      } else if (m.sluice === 'failed') {
        failed(new Error(`worker ${id} failed to start: ${m.error}`));
      } else if (m.sluice === 'result' || m.sluice === 'error') {
        const call = this.pending.get(m.id);
        if (call === undefined) return;
        this.pending.delete(m.id);
        clearTimeout(call.timer);
        if (m.sluice === 'result') call.resolve(m.value);
        else call.reject(new Error(m.message));
      } else if (m.sluice === 'tail') {
        onTail(m);
      } else if (m.sluice === 'memory') {
        this.rssBytes = m.rssBytes;
      } else if (m.sluice === 'use') {
        this.onLimitUse?.(m.report, m.applied);
      } else if (m.sluice === 'final') {
        this.lastMetrics = m.metrics;
      } else if (m.sluice === 'hostmetaBatch' || m.sluice === 'hostmetaPatch') {
        this.onHostmetaCall?.(m);
      }
    });
    // A worker that dies mid-send must not take the primary down with an EPIPE.
    worker.on('error', () => undefined);
  }

  /**
   * Drain by `deadline`. A worker still loading its code has no listener for
   * messages yet (one sent now would be lost): it is told once it says hello.
   */
  drain(deadline: number): void {
    this.draining = true;
    this.drainDeadline = deadline;
    if (this.greeted) this.send({ sluice: 'drain', deadline });
  }

  send(message: ToWorker): void {
    if (this.worker.isConnected()) this.worker.send(message);
  }

  /** Ask this worker's NodeControl; rejects after `timeoutMs`. */
  call(method: string, args: unknown[], timeoutMs = CALL_TIMEOUT_MS): Promise<unknown> {
    if (!this.worker.isConnected()) return Promise.reject(new Error(`worker ${this.id} is not connected`));
    const id = this.nextCall++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`worker ${this.id} did not answer ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.send({ sluice: 'call', id, method, args });
    });
  }
}

export interface PrimaryOptions {
  /** The file `reload` re-reads; null: the node runs on the defaults and cannot be reloaded from a file. */
  configPath: string | null;
  logger: Logger;
  /** The worker program (tests may point elsewhere); default: worker-main.js next to this file. */
  workerExec?: string;
}

export function workerCount(config: SluiceConfig): number {
  return workersOf(config.workers);
}

export class Primary {
  readonly telemetry: Telemetry;
  readonly supervisor: Supervisor;
  /** The live worker process of each slot (absent while the slot waits out a backoff). */
  readonly workers = new Map<number, WorkerProcess>();
  /** Slots the supervisor keeps running. */
  private readonly slots = new Set<number>();
  private hostmeta: RunningHostmetaService | null = null;
  /** The workers' calls to that service, answered by its store (hostmeta-channel.ts). */
  private hostmetaCalls: LocalHostmetaClient | null = null;
  private rolling: Promise<void> | null = null;
  private starting: Promise<void> | null = null;
  private stopping: Promise<boolean> | null = null;
  private readonly tailListeners = new Map<number, TailSink>();
  /** Called with the new configuration when a reload is accepted (the admin server takes its tokens). */
  readonly onReloaded = new Set<(config: SluiceConfig) => void>();
  /** Called with each worker once it is ready (WorkersControl subscribes open tails). */
  readonly onWorkerReady = new Set<(worker: WorkerProcess) => void>();
  /** Each worker's part of the tenants' limits, so they hold for the node. */
  private readonly limitShares = new LimitShares();
  private retired: Promise<unknown[]> = Promise.resolve([]);
  /** Limits set through the admin API since the configuration was read: workers started later get them too. */
  private readonly limitsChanged = new Map<string, TenantLimits>();
  private memoryReports: NodeJS.Timeout | null = null;
  /** Gives back the heap the primary reserved at start (loading the admin, the dashboard, the metadata service) once it is idle. */
  private readonly idleTrim: IdleTrim;
  /** Whether the node's memory at idle has been weighed against the budget (once, when every worker has reported). */
  private idleMemoryChecked = false;

  constructor(public config: SluiceConfig, private readonly options: PrimaryOptions) {
    this.telemetry = new Telemetry(options.logger);
    // The primary's own memory and CPU count in the node's totals (summed with the workers').
    collectDefaultMetrics({ register: this.telemetry.registry });
    this.supervisor = new Supervisor(supervisorPolicy(config.supervision), supervisionEvents(this.telemetry));
    this.idleTrim = trimWhenIdle(this.telemetry);
  }

  /** Start the metadata service and every worker; resolves once each slot has been ready or has failed once. */
  start(): Promise<void> {
    this.starting ??= this.startAll();
    return this.starting;
  }

  private async startAll(): Promise<void> {
    this.telemetry.emit('primaryStarting', { version: VERSION, data_dir: this.config.dataDir, workers: workerCount(this.config), pid: process.pid });
    const { service, client } = this.config.hostmeta;
    if (client.enabled && client.url === null && !service.enabled) throw new Error('hostmeta.client needs a url when this node runs no hostmeta service');
    if (service.enabled) {
      this.hostmeta = await startHostmetaService(service, hostmetaAccess(this.config), this.telemetry);
      this.hostmetaCalls = new LocalHostmetaClient(this.hostmeta.store, service.maxDocumentBytes);
    }
    // Node takes the policy at the first setupPrimary of the process and keeps it.
    cluster.schedulingPolicy = this.config.connectionBalancing === 'round_robin' ? cluster.SCHED_RR : cluster.SCHED_NONE;
    cluster.setupPrimary({
      exec: this.options.workerExec ?? path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker-main.js'),
      args: [],
    });
    if (this.stopping !== null) return;
    this.memoryReports = setInterval(this.reportMemory, MEMORY_REPORT_MS);
    this.memoryReports.unref();
    this.idleTrim.start();
    const first: Promise<unknown>[] = [];
    for (let id = 1; id <= workerCount(this.config); id++) first.push(this.addSlot(id).catch(() => undefined));
    await Promise.all(first);
  }

  /** A tenant's limits were changed at runtime (the admin API): replacement workers keep the change. */
  limitsSet(tenantId: string, limits: TenantLimits): void {
    this.limitsChanged.set(tenantId, limits);
  }

  /**
   * The config a worker runs: the metadata service is the primary's, so
   * workers are its clients, with its credential; tenant limits changed at
   * runtime apply.
   */
  private workerConfig(): SluiceConfig {
    const c = { ...this.config, tenants: this.config.tenants.map((t) => ({ ...t, limits: this.limitsChanged.get(t.id) ?? t.limits })) };
    // A client without a url asks the primary's service over the IPC channel (hostmeta-channel.ts).
    return { ...c, hostmeta: { ...c.hostmeta, service: { ...c.hostmeta.service, enabled: false } } };
  }

  /** Supervise slot `id`; resolves with its first worker's addresses (rejects if that one fails). */
  private addSlot(id: number): Promise<NodeAddresses> {
    this.slots.add(id);
    let first: ((w: WorkerProcess) => void) | null = null;
    const firstWorker = new Promise<WorkerProcess>((resolve) => { first = resolve; });
    this.supervisor.add(`worker:${id}`, async () => {
      const proc = this.fork(id);
      if (first !== null) {
        first(proc);
        first = null;
      }
      const { code, signal } = await proc.exited;
      if (this.workers.get(id) === proc) this.workers.delete(id);
      this.updateRunning();
      if (proc.draining) return;
      throw new Error(`worker ${id} (pid ${proc.worker.process.pid}) exited: ${signal ?? `code ${code}`}`);
    });
    return firstWorker.then((w) => w.ready);
  }

  /**
   * Every worker learns the resident memory of the node's other processes (the
   * primary's and the other workers'), so its governor weighs the node as a whole.
   */
  private readonly reportMemory = (): void => {
    const own = process.memoryUsage.rss();
    this.telemetry.memoryProcessBytes.set({ process: 'primary' }, own);
    let total = own;
    for (const w of this.workers.values()) total += w.rssBytes;
    for (const w of this.workers.values()) w.send({ sluice: 'memory', othersBytes: total - w.rssBytes });
    if (!this.idleMemoryChecked && this.workers.size === workerCount(this.config) && [...this.workers.values()].every((w) => w.rssBytes > 0)) {
      this.idleMemoryChecked = true;
      // A budget the processes fill at idle keeps the node past its marks with nothing to pause.
      const { budgetBytes, softMark, measure } = this.config.memory;
      if (measure === 'processes' && total >= softMark * budgetBytes) {
        this.telemetry.emit('memoryBudgetSmall', { budget_bytes: budgetBytes, workers: workerCount(this.config), node_bytes: total, heap_limit_mib: workerHeapLimitMiB(this.config) });
      }
    }
  };

  private fork(id: number): WorkerProcess {
    // The heap limit follows the budget of the configuration this worker runs (a reload may change it).
    const heapLimit = workerHeapLimitMiB(this.config);
    if (heapLimit * 1024 ** 2 * (workerCount(this.config) + 1) > this.config.memory.budgetBytes) {
      this.telemetry.emit('memoryBudgetSmall', { budget_bytes: this.config.memory.budgetBytes, workers: workerCount(this.config), heap_limit_mib: heapLimit });
    }
    // --expose-gc: past a mark the governor has V8 collect what closed sessions left (core/memory.ts settle).
    const inherited = process.execArgv.filter((arg) => !arg.startsWith('--max-old-space-size') && arg !== '--expose-gc');
    // An operator's own young-generation size (on the primary's command line) is kept.
    const youngGeneration = inherited.some((arg) => arg.startsWith('--max-semi-space-size')) ? [] : [`--max-semi-space-size=${WORKER_SEMI_SPACE_MIB}`];
    const execArgv = [...inherited, ...youngGeneration, `--max-old-space-size=${heapLimit}`, '--expose-gc'];
    cluster.setupPrimary({ execArgv });
    // Two malloc arenas, not one per thread that ever allocated (glibc's default, 8 per core): each arena of V8's
    // and libuv's helper threads kept 1-4 MiB of freed memory resident in a worker at rest. An operator's own values win.
    const worker = cluster.fork({
      [WORKER_ID_ENV]: String(id),
      MALLOC_ARENA_MAX: process.env['MALLOC_ARENA_MAX'] ?? '2',
      UV_THREADPOOL_SIZE: process.env['UV_THREADPOOL_SIZE'] ?? String(WORKER_THREAD_POOL_SIZE),
    });
    const proc = new WorkerProcess(id, worker, (message) => {
      const sink = this.tailListeners.get(message.subscription);
      if (sink === undefined) return;
      if (message.dropped > 0) sink.dropped(message.dropped);
      if (message.lines.length > 0) sink.lines(message.lines);
    });
    this.workers.set(id, proc);
    proc.onHostmetaCall = (call) => {
      if (this.hostmetaCalls !== null) void answerHostmetaCall(this.hostmetaCalls, call).then((reply) => proc.send(reply));
    };
    proc.onLimitUse = (report, applied) => {
      // A report that arrives after the worker was told to drain still says what it holds (its connections).
      this.limitShares.report(proc.worker.id, report, applied);
      this.allotLimits(Object.keys(report));
    };
    void proc.exited.then(() => {
      this.limitShares.forget(proc.worker.id);
      this.allotLimits();
      this.retireCounters(proc.lastMetrics);
    });
    proc.hello.then(() => {
      if (proc.draining) {
        proc.send({ sluice: 'drain', deadline: proc.drainDeadline });
        return;
      }
      proc.send({ sluice: 'start', config: this.workerConfig() });
      proc.started = true;
    }, () => undefined);
    proc.ready.then(() => {
      this.updateRunning();
      this.telemetry.emit('workerReady', { worker: id, pid: worker.process.pid });
      for (const listener of this.onWorkerReady) listener(proc);
    }, () => undefined);
    return proc;
  }

  /**
   * The counters of workers that have exited, added up: the node's totals
   * keep them, so they do not start over at a reload or a rolling restart
   * (gauges of a worker that left are not kept: they describe it, not the node).
   */
  retiredCounters(): Promise<unknown[]> {
    return this.retired;
  }

  private retireCounters(metrics: unknown[] | null): void {
    if (metrics === null) return;
    const counters = (metrics as { type: string }[]).filter((m) => m.type === 'counter' || m.type === 'histogram');
    this.retired = this.retired.then((before) => AggregatorRegistry.aggregate([before, counters]).getMetricsAsJSON(), () => counters);
  }

  /** Send the workers that serve their new parts of the tenants' limits (of `tenants`; null: every tenant, as when a worker comes or goes). */
  private allotLimits(tenants: string[] | null = null): void {
    // Only workers told to start: a message to one still loading its code would be lost, and counted as landed.
    const serving = [...this.workers.values()].filter((w) => w.started && !w.draining && w.worker.isConnected());
    const allotments = this.limitShares.allot(serving.map((w) => w.worker.id), tenants);
    for (const w of serving) {
      const changed = allotments.get(w.worker.id);
      if (changed !== undefined) w.send({ sluice: 'allot', seq: changed.seq, allotments: changed.allotments });
    }
  }

  private updateRunning(): void {
    let running = 0;
    for (const w of this.workers.values()) if (w.addresses !== null && !w.draining) running++;
    this.telemetry.workersRunning.set(running);
  }

  /** Stop slot `id`: no more restarts; its worker drains by `deadline` and exits. */
  private async retire(id: number, deadline: number): Promise<void> {
    this.slots.delete(id);
    const removed = this.supervisor.remove(`worker:${id}`);
    const proc = this.workers.get(id);
    let killer: NodeJS.Timeout | undefined;
    if (proc !== undefined) {
      proc.drain(deadline);
      this.updateRunning();
      this.allotLimits();
      // A worker still there well past its deadline is stuck: it must not hold a rolling restart forever.
      killer = setTimeout(() => {
        this.telemetry.emit('shutdownDeadline', { error: `worker ${id} still draining ${RETIRE_GRACE_MS} ms after its deadline: killed` });
        proc.worker.process.kill('SIGKILL');
      }, timerDelay(deadline - Date.now() + RETIRE_GRACE_MS));
    }
    this.telemetry.crashLooping.labels({ component: `worker:${id}` }).set(0);
    await removed;
    clearTimeout(killer);
  }

  /** Ready worker processes (serving). */
  readyWorkers(): WorkerProcess[] {
    return [...this.workers.values()].filter((w) => w.addresses !== null && !w.draining && w.worker.isConnected());
  }

  /** Slots, in order. */
  slotIds(): number[] {
    return [...this.slots].sort((a, b) => a - b);
  }

  /** Subscribe `sink` to the tail lines of `subscription` (WorkersControl); null unsubscribes. */
  listenTail(subscription: number, sink: TailSink | null): void {
    if (sink === null) this.tailListeners.delete(subscription);
    else this.tailListeners.set(subscription, sink);
  }

  /** The host metadata service this primary runs (null when hostmeta.service is disabled): the cluster leader prunes it. */
  get hostmetaService(): RunningHostmetaService | null {
    return this.hostmeta;
  }

  hostmetaAddress(): { address: string; port: number } | null {
    return this.hostmeta === null ? null : { address: this.hostmeta.address, port: this.hostmeta.port };
  }

  /**
   * Replace every worker, one at a time: the new one in a free slot, ready
   * (listening) before the old one is told to drain. A replacement that does
   * not come up aborts the restart and leaves the old worker serving.
   */
  rollingRestart(next: SluiceConfig = this.config): Promise<void> {
    if (this.stopping !== null) return Promise.reject(new Error('the node is stopping'));
    if (this.rolling !== null) return Promise.reject(new Error('a rolling restart is already running'));
    this.rolling = this.roll(next).finally(() => { this.rolling = null; });
    return this.rolling;
  }

  private async roll(next: SluiceConfig): Promise<void> {
    const previous = this.config;
    this.config = next;
    const old = this.slotIds();
    const want = workerCount(next);
    this.telemetry.emit('rollingRestartStarted', { workers: old.length, target: want });
    let replaced = 0;
    for (const id of old) {
      if (this.stopping !== null) throw new Error('the node is stopping');
      if (replaced < want) {
        const slot = this.freeSlot();
        try {
          await withTimeout(this.addSlot(slot), REPLACEMENT_READY_TIMEOUT_MS, `worker ${slot} was not ready`);
        } catch (err) {
          await this.retire(slot, Date.now() + next.shutdownTimeoutMs);
          this.config = previous;
          throw new Error(`rolling restart aborted: the replacement for worker ${id} did not start (${(err as Error).message}); the running workers stay`, { cause: err });
        }
        replaced++;
      }
      await this.retire(id, Date.now() + this.config.shutdownTimeoutMs);
    }
    while (replaced < want) {
      await this.addSlot(this.freeSlot()).catch(() => undefined);
      replaced++;
    }
    this.telemetry.emit('rollingRestartDone', { workers: this.slotIds().join(',') });
  }

  private freeSlot(): number {
    let id = 1;
    while (this.slots.has(id) || this.workers.has(id)) id++;
    return id;
  }

  /**
   * Re-read the configuration file. Invalid: refused with the reasons, the
   * running configuration stays. Valid: tenant limits change at once in every
   * worker, then the workers are rolled onto the new configuration.
   * `requested`: the file the caller named; another file than the node's own
   * is refused (the node's file stays the one a SIGHUP reads).
   */
  async reload(requested: string | null = null): Promise<ReloadOutcome> {
    const file = this.options.configPath === null ? null : path.resolve(this.options.configPath);
    const refuse = (problems: string[]): ReloadOutcome => {
      this.telemetry.emit('reloadRefused', { file, problems: problems.join('; ') });
      return { accepted: false, file, problems };
    };
    if (file === null) return refuse(['this node was started without a configuration file (sluice start -c <file>)']);
    if (requested !== null && path.resolve(requested) !== file) {
      return refuse([`this node runs ${file}, not ${path.resolve(requested)}: a reload reads the node's own file (edit it, or stop the node and start it with -c ${requested})`]);
    }
    let next: SluiceConfig;
    try {
      next = loadConfigFile(file);
    } catch (err) {
      if (err instanceof ConfigError) return refuse(err.problems.map((p) => formatProblem(p, file)));
      throw err;
    }
    const fixed: string[] = [];
    if (next.dataDir !== this.config.dataDir) fixed.push('data_dir');
    if (next.connectionBalancing !== this.config.connectionBalancing) fixed.push('connection_balancing');
    if (JSON.stringify(next.hostmeta.service) !== JSON.stringify(this.config.hostmeta.service)) fixed.push('hostmeta.service');
    if (JSON.stringify(next.cluster) !== JSON.stringify(this.config.cluster)) fixed.push('cluster');
    if (fixed.length > 0) return refuse(fixed.map((key) => `${file}: ${key} changed: that takes a full restart (stop, then start)`));
    if (this.rolling !== null) return refuse(['a rolling restart is already running; reload again once it has finished']);
    this.telemetry.emit('reloadAccepted', { file });
    // The file's limits are the node's from now on, replacing what the admin API set.
    this.limitsChanged.clear();
    // Tenants and admin tokens may change on a reload: the metadata service takes them before the new workers ask it for a new tenant's hosts.
    this.hostmeta?.setAccess(hostmetaAccess(next));
    for (const listener of this.onReloaded) listener(next);
    const before = new Map(this.config.tenants.map((t) => [t.id, JSON.stringify(t.limits)]));
    await Promise.allSettled(next.tenants.filter((t) => before.has(t.id) && before.get(t.id) !== JSON.stringify(t.limits))
      .flatMap((t) => this.readyWorkers().map((w) => w.call('setTenantLimits', [t.id, t.limits]))));
    const applied = this.rollingRestart(next);
    applied.catch((err: Error) => this.telemetry.emit('rollingRestartFailed', { error: err.message }));
    return { accepted: true, file, problems: [], applied };
  }

  /** Wait for a rolling restart in progress (tests, the control socket). */
  async settled(): Promise<void> {
    while (this.rolling !== null) await this.rolling.catch(() => undefined);
  }

  /**
   * Drain the whole node: every worker stops accepting, finishes and flushes
   * by the deadline (shutdown_timeout); then the metadata service closes.
   * Resolves true when every worker exited cleanly in time.
   */
  stop(deadline = Date.now() + this.config.shutdownTimeoutMs): Promise<boolean> {
    this.stopping ??= this.drainAll(deadline);
    return this.stopping;
  }

  private async drainAll(deadline: number): Promise<boolean> {
    this.telemetry.emit('nodeStopping', {});
    // A stop during start does not wait for the workers to be ready: each is told to drain at once
    // (one still loading its code as soon as it says hello), and no slot is added after this.
    // Workers get the deadline less a margin to exit in; a worker still there at the deadline is killed.
    const workerDeadline = deadline - Math.min(1000, Math.max(0, (deadline - Date.now()) / 10));
    const exits = [...this.workers.values()].map((w) => w.exited);
    const clean = [...this.workers.values()].map((w) => w.exited.then((e) => e.code === 0));
    const retired = Promise.all(this.slotIds().map((id) => this.retire(id, workerDeadline)));
    let complete = await settlesBefore(Promise.all([retired, ...exits]), deadline);
    if (!complete) {
      this.telemetry.emit('shutdownDeadline', { error: 'workers still draining at the deadline were killed' });
      for (const w of this.workers.values()) w.worker.process.kill('SIGKILL');
    } else {
      complete = (await Promise.all(clean)).every(Boolean);
    }
    await this.supervisor.stopAll();
    if (this.memoryReports !== null) clearInterval(this.memoryReports);
    this.idleTrim.stop();
    if (this.hostmeta !== null && !(await settlesBefore(this.hostmeta.close(), Math.max(deadline, Date.now() + 1000)))) complete = false;
    this.telemetry.emit('primaryStopped', { complete });
    return complete;
  }
}

async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms); });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}
