/**
 * The memory governor: one budget for what a node holds, enforced without
 * touching the hot path.
 *
 * Every queue and buffer that holds records or bytes reports them through an
 * accountant (a function the governor calls); sessions report theirs through
 * the session registry. A timer (unref'd) samples those together with the
 * process's memory and decides one of three states:
 *
 *   normal ── pressure ≥ soft_mark ──▶ soft ── pressure ≥ hard_mark ──▶ hard
 *          ◀── < soft_mark − hysteresis ──  ◀── < hard_mark − hysteresis ──
 *
 * where pressure is the largest of
 * - accounted bytes / budget: what the queues hold for the agents;
 * - node bytes / budget (`measure: processes`): the resident memory (RSS) of
 *   every process of the node summed, this one's sampled now and the others'
 *   as the primary last reported them (ops/workers): memory outside the V8
 *   heap (TLS state, socket buffers, native allocations) counts too, so the
 *   budget bounds the node, not only its queues;
 * - heap used / V8's heap limit: the guard against V8 running out (an OOM).
 *   Each worker's heap limit is derived from the budget when it is forked.
 *
 * Sources read `state` (one field) on accept and per request; the governor
 * does the rest at sample time:
 *
 * - soft: the heaviest sessions (held bytes plus bytes read since the last
 *   sample) are paused (PauseReason.Memory), more of them at each sample
 *   while pressure stays at or above the soft mark, so TCP backpressure
 *   reaches their senders; RELP replies and HTTP responses to paused work are
 *   delayed. Inside the hysteresis band below the soft mark the paused stay
 *   paused and nobody new is.
 * - hard: additionally, new connections are refused (counted, reason
 *   `memory`), HTTP requests are answered 503 with Retry-After, and UDP
 *   datagrams are dropped (counted, reason `memory`).
 * - back to normal: paused sessions resume, a quarter of them per sample.
 *
 * A session that closes leaves the governor's set at once (the registry tells
 * it), so a closed session is never held, counted, or kept alive by it.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Telemetry } from '../telemetry/telemetry.js';
import type { SessionEntry, SessionRegistry } from './sessions.js';

export enum MemoryState {
  Normal = 0,
  Soft = 1,
  Hard = 2,
}

export const MEMORY_STATE_NAMES = ['normal', 'soft', 'hard'] as const;

/** What counts against the budget besides what the queues account (see the module comment). */
export type MemoryMeasure = 'processes' | 'queues';

export interface MemoryConfig {
  /** Bytes the node may hold: its processes' resident memory summed, and within it what its queues account. */
  budgetBytes: number;
  /** `processes`: the node's processes' resident memory counts against the budget; `queues`: only what the queues account (a node sharing its process, as in tests). */
  measure: MemoryMeasure;
  /** Fraction of the budget past which the heaviest sessions pause. */
  softMark: number;
  /** Fraction of the budget past which new connections and requests are refused. */
  hardMark: number;
  /** How far below a mark pressure must fall before its state is left (so states do not flap). */
  hysteresis: number;
  /** How often the governor samples. */
  sampleIntervalMs: number;
}

export const DEFAULT_MEMORY_CONFIG: Readonly<MemoryConfig> = Object.freeze({
  budgetBytes: 512 * 1024 ** 2,
  measure: 'processes',
  softMark: 0.8,
  hardMark: 0.95,
  hysteresis: 0.05,
  sampleIntervalMs: 100,
});

/** What one sample measured. */
export interface MemorySample {
  /** Bytes by component (sessions, lanes, sinks, http …). */
  components: Record<string, number>;
  accountedBytes: number;
  heapUsedBytes: number;
  /** This process's resident memory. */
  rssBytes: number;
  /** The node's processes' resident memory summed: this one's and the others' as last reported (setOtherProcesses). */
  nodeBytes: number;
  /** Live sessions whose Memory pause reason is set (the registry's view; `holding` is the governor's). */
  pausedSessions: number;
}

/** The measured process (replaceable in tests by fixed numbers). */
export interface ProcessMemory {
  usage(): { heapUsed: number; rss: number };
  /** V8's heap limit. */
  heapLimit(): number;
  /** A garbage collection now (full unless `minor`: the young generation only); false where V8 gives no way to ask. */
  collectGarbage(kind?: 'major' | 'minor'): boolean;
}

type GarbageCollector = (options?: { type: 'major' | 'minor' }) => void;
let collector: GarbageCollector | null | undefined;

/**
 * V8's `gc`: the global one where the process runs with --expose-gc (the
 * workers), else the one V8 exposes once the flag is set at run time (the
 * primary, started by `sluice start` without it), taken from a new context so
 * that the process's own global stays as it was.
 */
function garbageCollector(): GarbageCollector | null {
  if (collector !== undefined) return collector;
  collector = (globalThis as { gc?: GarbageCollector }).gc ?? null;
  if (collector === null) {
    try {
      setFlagsFromString('--expose-gc');
      collector = runInNewContext('gc') as GarbageCollector;
    } catch {
      collector = null;
    }
  }
  return collector;
}

export const PROCESS_MEMORY: ProcessMemory = {
  usage: () => process.memoryUsage(),
  heapLimit: () => getHeapStatistics().heap_size_limit,
  collectGarbage: (kind = 'major') => {
    const gc = garbageCollector();
    if (gc === null) return false;
    gc({ type: kind });
    return true;
  },
};

/**
 * Past a mark, how often the governor has V8 collect in full (where it can).
 * What closed sessions and drained queues left behind is garbage V8 may not
 * collect for many seconds when little is allocated (a big buffer's wrapper
 * is small), and until then it counts as pressure: the node would stay past
 * its mark, holding sessions, after the cause has gone.
 */
export const SETTLE_COLLECT_INTERVAL_MS = 1000;

/**
 * Past a mark, how often the sessions held longest (a quarter, at least one)
 * are let read again until the next sample. A held socket is not read, so
 * the node would not see its agent leave (the end of stream waits behind
 * the data still in the kernel): without this a node held past its mark by
 * the memory of sessions whose agents had gone would never get it back.
 * One that still weighs most is held again at the next sample.
 */
export const HOLD_ROTATION_MS = 1000;

/** The fraction of the sessions still reading that is paused at each sample at the soft mark, and of the paused ones resumed at each sample back at normal. */
const PAUSE_FRACTION = 0.25;

export class MemoryGovernor {
  /** What the hot path reads. */
  state: MemoryState = MemoryState.Normal;
  /** Stream connections the node can hold (its file-descriptor capacity, see ops/capacity.ts). */
  connectionCapacity = Infinity;
  /** The last pressure computed (fraction of the budget). */
  pressure = 0;
  private config: MemoryConfig = { ...DEFAULT_MEMORY_CONFIG };
  private readonly accountants = new Map<string, () => number>();
  private timer: NodeJS.Timeout | null = null;
  /** Bytes each session had read at the previous sample, for its read rate. */
  private readonly lastBytes = new WeakMap<SessionEntry, number>();
  /** The sessions this governor holds paused (each has PauseReason.Memory set). */
  private readonly governed = new Set<SessionEntry>();
  /** The other processes' resident memory, as the primary last reported it (0 for a node alone). */
  private othersBytes = 0;
  /** The `process` label of this process's memory gauge (`node`, `w<slot>`). */
  processName = 'node';
  private heapLimit = 0;
  private lastSample: MemorySample | null = null;
  /** When held sessions were last let read (see HOLD_ROTATION_MS). */
  private lastRotationAt = 0;
  /** The sessions the last rotation let go: they read until the next sample, even past the hard mark. */
  private readonly letGo = new Set<SessionEntry>();
  /** When the governor last had V8 collect (see SETTLE_COLLECT_INTERVAL_MS). */
  private lastCollectAt = 0;
  /** Answers waiting for pressure to fall back to normal (see whenRelieved). */
  private readonly reliefWaiters = new Set<() => void>();

  constructor(
    private readonly sessions: SessionRegistry,
    private readonly telemetry: Telemetry,
    private readonly processMemory: ProcessMemory = PROCESS_MEMORY,
  ) {
    // At close, not at the next sample: a closed session held here would stay counted and alive.
    sessions.observe({ closed: (entry) => this.governed.delete(entry) });
  }

  configure(config: MemoryConfig): void {
    this.config = { ...config };
  }

  get settings(): Readonly<MemoryConfig> {
    return this.config;
  }

  /**
   * Whether a new stream connection may open: null, or the refusal reason
   * (`memory` past the hard mark, `fd_limit` at the node's capacity). O(1).
   */
  refuseConnection(): 'memory' | 'fd_limit' | null {
    if (this.state === MemoryState.Hard) return 'memory';
    if (this.sessions.size >= this.connectionCapacity) return 'fd_limit';
    return null;
  }

  /** Register a component's held bytes; called once per sample, never on the hot path. */
  account(component: string, bytes: () => number): void {
    this.accountants.set(component, bytes);
  }

  /** Sessions the governor holds paused, right now. */
  get pausedSessions(): number {
    return this.governed.size;
  }

  /** The resident memory of the node's other processes (the primary's and the other workers'), summed. */
  setOtherProcesses(bytes: number): void {
    this.othersBytes = bytes;
  }

  get latest(): MemorySample | null {
    return this.lastSample;
  }

  /** Sample on a timer until stop(). */
  start(): void {
    if (this.timer !== null) return;
    this.heapLimit = this.processMemory.heapLimit();
    this.telemetry.emit('memoryBudget', {
      budget_bytes: this.config.budgetBytes, soft_mark: this.config.softMark, hard_mark: this.config.hardMark,
      heap_limit_bytes: this.heapLimit, measure: this.config.measure,
    });
    this.telemetry.memoryBudgetBytes.set(this.config.budgetBytes);
    this.timer = setInterval(this.tick, this.config.sampleIntervalMs);
    this.timer.unref();
  }

  /** Stop sampling and resume every paused session. */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.state = MemoryState.Normal;
    this.resumeAll();
    this.relieve();
  }

  private readonly tick = (): void => {
    this.evaluate(this.sample());
    if (this.state !== MemoryState.Normal) this.settle();
  };

  /** Past a mark: collect the garbage now and then, so the next samples measure what is live. */
  private settle(): void {
    const now = Date.now();
    if (now - this.lastCollectAt < SETTLE_COLLECT_INTERVAL_MS) return;
    this.lastCollectAt = now;
    this.processMemory.collectGarbage();
  }

  /** Measure every accountant, the sessions and the heap. */
  sample(): MemorySample {
    const components: Record<string, number> = {};
    let accountedBytes = 0;
    let sessionBytes = 0;
    let pausedSessions = 0;
    for (const entry of this.sessions.values()) {
      sessionBytes += entry.control.queuedBytes();
      if (entry.governed) pausedSessions++;
    }
    components['sessions'] = sessionBytes;
    accountedBytes += sessionBytes;
    for (const [name, bytes] of this.accountants) {
      const value = Math.max(0, bytes());
      components[name] = value;
      accountedBytes += value;
    }
    const usage = this.processMemory.usage();
    return {
      components, accountedBytes, heapUsedBytes: usage.heapUsed, rssBytes: usage.rss, nodeBytes: usage.rss + this.othersBytes, pausedSessions,
    };
  }

  /** Decide the state from one sample (taken at `now`), then pause or resume sessions. */
  evaluate(sample: MemorySample, now = Date.now()): void {
    this.lastSample = sample;
    this.letGo.clear();
    const { budgetBytes, softMark, hardMark, hysteresis, measure } = this.config;
    const heapLimit = this.heapLimit > 0 ? this.heapLimit : this.processMemory.heapLimit();
    const processes = measure === 'processes' ? sample.nodeBytes / budgetBytes : 0;
    this.pressure = Math.max(sample.accountedBytes / budgetBytes, processes, sample.heapUsedBytes / heapLimit);
    const previous = this.state;
    this.state = nextState(previous, this.pressure, softMark, hardMark, hysteresis);
    if (this.state !== previous) {
      const fields = {
        from: MEMORY_STATE_NAMES[previous], to: MEMORY_STATE_NAMES[this.state], pressure: round(this.pressure),
        accounted_bytes: sample.accountedBytes, heap_used_bytes: sample.heapUsedBytes, rss_bytes: sample.rssBytes, node_bytes: sample.nodeBytes,
        paused_sessions: this.governed.size,
      };
      if (this.state > previous) this.telemetry.emit('memoryPressureRising', fields);
      else this.telemetry.emit('memoryPressureFalling', fields);
    }
    if (this.state === MemoryState.Normal) {
      this.resumeSome();
      this.relieve();
    } else {
      if (previous === MemoryState.Normal) this.lastRotationAt = now;
      // Inside the hysteresis band below the soft mark nobody new is paused.
      if (this.pressure >= softMark || this.state === MemoryState.Hard) this.pauseHeaviest(this.state === MemoryState.Hard);
      // After pausing: those let go read until the next sample weighs them again.
      if (now - this.lastRotationAt >= HOLD_ROTATION_MS) {
        this.lastRotationAt = now;
        this.resumeSome(this.letGo);
      }
    }
    this.publish(sample);
  }

  /**
   * Pause the sessions that weigh most now: held bytes plus bytes read since
   * the last sample. Idle sessions weigh nothing and are never paused. In the
   * hard state every session that weighs anything is paused.
   */
  private pauseHeaviest(all: boolean): void {
    const candidates: { entry: SessionEntry; weight: number }[] = [];
    for (const entry of this.sessions.values()) {
      const read = entry.bytes - (this.lastBytes.get(entry) ?? 0);
      this.lastBytes.set(entry, entry.bytes);
      if (entry.governed) continue;
      const weight = entry.control.queuedBytes() + read;
      if (weight > 0) candidates.push({ entry, weight });
    }
    if (candidates.length === 0) return;
    candidates.sort((a, b) => b.weight - a.weight);
    const count = all ? candidates.length : Math.max(1, Math.ceil(candidates.length * PAUSE_FRACTION));
    for (let i = 0; i < count; i++) {
      const entry = candidates[i]!.entry;
      entry.control.pauseReading();
      this.governed.add(entry);
    }
    this.telemetry.emit('memorySessionsPaused', {
      paused: count, paused_total: this.governed.size, state: MEMORY_STATE_NAMES[this.state], pressure: round(this.pressure),
    });
  }

  /**
   * Resolves once the state is back to normal, or after `maxMs`: how an
   * acknowledgement is delayed under pressure (the sender waits for it before
   * sending more). Immediately when the state is normal.
   */
  whenRelieved(maxMs: number): Promise<void> {
    if (this.state === MemoryState.Normal) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.reliefWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, maxMs);
      this.reliefWaiters.add(done);
    });
  }

  private relieve(): void {
    for (const done of [...this.reliefWaiters]) done();
  }

  /**
   * A session read while the node is past the hard mark: pause it now rather
   * than at the next sample (the hot path's O(1) check, once per read). Not
   * one let go by the rotation: it reads until the next sample weighs it.
   */
  holdNow(entry: SessionEntry): void {
    if (entry.governed || this.letGo.has(entry)) return;
    entry.control.pauseReading();
    this.governed.add(entry);
  }

  /**
   * Resume the sessions paused longest, a quarter (at least one). Back at
   * normal once per sample, so their agents' backlogs (their socket buffers,
   * megabytes each) do not all arrive at once and push the node straight back
   * up; past a mark once per HOLD_ROTATION_MS (noted in `into`).
   */
  private resumeSome(into?: Set<SessionEntry>): void {
    if (this.governed.size === 0) return;
    let count = Math.max(1, Math.ceil(this.governed.size * PAUSE_FRACTION));
    const resumed = count;
    for (const entry of this.governed) {
      if (count-- === 0) break;
      entry.control.resumeReading();
      this.governed.delete(entry);
      into?.add(entry);
    }
    this.telemetry.emit('memorySessionsResumed', { resumed, still_paused: this.governed.size });
  }

  private resumeAll(): void {
    if (this.governed.size === 0) return;
    const resumed = this.governed.size;
    for (const entry of this.governed) entry.control.resumeReading();
    this.governed.clear();
    this.telemetry.emit('memorySessionsResumed', { resumed });
  }

  private publish(sample: MemorySample): void {
    const t = this.telemetry;
    t.memoryState.set(this.state);
    t.memoryPressure.set(this.pressure);
    t.memoryPausedSessions.set(sample.pausedSessions);
    t.memoryHoldingSessions.set(this.governed.size);
    t.memoryProcessBytes.set({ process: this.processName }, sample.rssBytes);
    t.memoryNodeBytes.set(sample.nodeBytes);
    for (const [component, bytes] of Object.entries(sample.components)) t.memoryAccountedBytes.set({ component }, bytes);
    t.memoryAccountedBytes.set({ component: 'heap_used' }, sample.heapUsedBytes);
  }
}

/** The state machine on its own: marks entered at their value, left only below it by `hysteresis`. */
export function nextState(current: MemoryState, pressure: number, soft: number, hard: number, hysteresis: number): MemoryState {
  if (pressure >= hard) return MemoryState.Hard;
  if (current === MemoryState.Hard && pressure >= hard - hysteresis) return MemoryState.Hard;
  if (pressure >= soft) return MemoryState.Soft;
  if (current !== MemoryState.Normal && pressure >= soft - hysteresis) return MemoryState.Soft;
  return MemoryState.Normal;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
