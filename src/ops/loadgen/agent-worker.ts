/**
 * One worker's slice of simulated agents: each agent holds one connection
 * (or UDP socket) of its own, bound to its tenant's source address, and sends
 * on the pattern's schedule. The worker measures what it can see from here
 * (connect times, errors, what it sent, acks for acknowledging protocols) and
 * reports once, when sending stops; delivery is measured by the probe.
 */
import { monotonicMicros } from './clock.js';
import { LoopDelayMonitor } from './loop-delay.js';
import { encodeHistogram, newHistogram, recordMicros, RunLatencies } from './histogram.js';
import type { ErrorCounts, FromWorker, WorkerPlan, WorkerReport } from './ipc.js';
import { agentHostname, localAddress, tenantOf } from './layout.js';
import { MessageFormatter } from './message.js';
import { PeriodicSchedule, SpreadSchedule } from './schedule.js';
import type { AgentConnection, ConnectionListener, ErrorKind, OutgoingMessage, Transport } from './transport.js';
import { createTransport } from './transport-registry.js';

/** How often due messages are sent: fine enough that the aggregate stays smooth. */
const TICK_MS = 2;
/** Often enough that the main process's once-a-second line is never a second behind. */
const PROGRESS_INTERVAL_MS = 100;
/** An agent that lost its connection opens another after this long. */
const RETRY_DELAY_MICROS = 1_000_000;
/** A flooding agent skips messages while this much waits in its send buffer (else memory grows without bound). */
const FLOOD_BACKLOG_BYTES = 64 * 1024;
/** After the last message, how long send buffers may take to empty (and acks to come in) before the report goes out anyway. */
const DRAIN_LIMIT_MS = 3000;
const DRAIN_POLL_MS = 20;

class Agent {
  conn: AgentConnection | null = null;
  /** The connection is established (not merely opening). */
  established = false;
  /** Next sequence number = messages sent so far. */
  seq = 0;
  /** Messages due in the current tick. */
  due = 0;
  retryAtMicros = 0;

  constructor(
    readonly id: number,
    readonly tenant: number,
    readonly localAddress: string,
    readonly hostname: string,
    /** A flooding agent: it sends only as fast as its connection drains. */
    readonly paced: boolean,
  ) {}
}

/** A schedule and the agents its indexes refer to. */
interface SendingGroup {
  schedule: SpreadSchedule;
  fire: (index: number) => void;
}

export interface WorkerEvents {
  progress(message: Extract<FromWorker, { type: 'progress' }>): void;
  stopped(report: WorkerReport): void;
}

export interface ConnectOutcome {
  open: number;
  failed: number;
  firstErrorCode: string | null;
}

export class AgentWorker {
  private readonly agents: Agent[] = [];
  private readonly transport: Transport;
  private readonly formatter: MessageFormatter;
  private readonly connectHistogram = newHistogram();
  private readonly ackLatency: RunLatencies;
  private readonly errors: ErrorCounts = { connect: 0, reset: 0, other: 0 };
  private readonly errorCodes: Record<string, number> = {};
  private firstErrorCode: string | null = null;
  private readonly sentPerSecond: number[] = [];
  /** Agents without a connection, waiting for their retry time. */
  private readonly down = new Set<Agent>();
  private readonly touched: Agent[] = [];
  private sendingGroups: SendingGroup[] = [];
  private burst: PeriodicSchedule | null = null;
  private reconnect: PeriodicSchedule | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private progressTimer: NodeJS.Timeout | null = null;
  private goMicros = 0;
  private endMicros = 0;
  private sent = 0;
  private throttled = 0;
  private notConnected = 0;
  private connects = 0;
  private openConnections = 0;
  private stopped: Promise<WorkerReport> | null = null;
  private readonly loopDelay = new LoopDelayMonitor();

  constructor(private readonly plan: WorkerPlan, private readonly events: WorkerEvents) {
    this.transport = createTransport(plan.protocol, { host: plan.host, port: plan.port, connectTimeoutMs: plan.connectTimeoutMs });
    this.formatter = new MessageFormatter(plan.runId, plan.messageBytes);
    this.ackLatency = new RunLatencies(plan.tenants, plan.steadyAfterMs * 1000);
    for (let id = plan.firstAgent; id < plan.firstAgent + plan.agentCount; id++) {
      const tenant = tenantOf(id, plan.tenants);
      this.agents.push(new Agent(id, tenant, localAddress(id, plan.tenants), agentHostname(id, plan.tenants),
        plan.pattern === 'flood' && tenant === 0));
    }
  }

  /**
   * Opens every agent's connection, at most `connectConcurrency` attempts at
   * a time, for at most `connectTimeoutMs`; agents not tried by then connect
   * when sending starts.
   */
  connectAll(): Promise<ConnectOutcome> {
    const total = this.agents.length;
    return new Promise((resolve) => {
      let next = 0;
      let inFlight = 0;
      let failed = 0;
      let finished = false;
      const finish = (): void => {
        if (finished) return;
        finished = true;
        clearTimeout(deadline);
        resolve({ open: this.openConnections, failed, firstErrorCode: this.firstErrorCode });
      };
      const launch = (): void => {
        while (!finished && inFlight < this.plan.connectConcurrency && next < total) {
          inFlight++;
          this.open(this.agents[next++]!, (ok) => {
            inFlight--;
            if (!ok) failed++;
            if (inFlight === 0 && next >= total) finish();
            else launch();
          });
        }
      };
      const deadline = setTimeout(() => {
        for (; next < total; next++) this.down.add(this.agents[next]!);
        finish();
      }, this.plan.connectTimeoutMs);
      if (total === 0) finish();
      else launch();
    });
  }

  /** Start sending; the run ends on its own after the plan's duration. */
  go(goMicros: number): void {
    const plan = this.plan;
    this.goMicros = goMicros;
    this.ackLatency.begin(goMicros);
    this.endMicros = goMicros + plan.durationMs * 1000;
    const offset = plan.workerIndex / plan.workers;
    const spread = (agents: Agent[], ratePerSec: number): SendingGroup => ({
      schedule: new SpreadSchedule(agents.length, 1e6 / ratePerSec, goMicros, this.endMicros, offset),
      fire: (index) => this.markDue(agents[index]!, 1),
    });
    switch (plan.pattern) {
      case 'steady':
        this.sendingGroups = [spread(this.agents, plan.ratePerSec)];
        break;
      case 'reconnect':
        this.sendingGroups = [spread(this.agents, plan.ratePerSec)];
        this.reconnect = new PeriodicSchedule(plan.reconnectIntervalMs * 1000, goMicros, this.endMicros, 1);
        break;
      case 'flood':
        this.sendingGroups = [
          spread(this.agents.filter((a) => a.paced), plan.floodRatePerSec),
          spread(this.agents.filter((a) => !a.paced), plan.ratePerSec),
        ];
        break;
      case 'burst':
        this.burst = new PeriodicSchedule(plan.burstIntervalMs * 1000, goMicros, this.endMicros);
        break;
      case 'idle':
        break;
    }
    this.loopDelay.start();
    this.tickTimer = setInterval(this.tick, TICK_MS);
    this.progressTimer = setInterval(this.reportProgress, PROGRESS_INTERVAL_MS);
  }

  /** Stop sending (now, or because the duration is over) and report; idempotent. */
  stop(): Promise<WorkerReport> {
    this.stopped ??= this.finish();
    return this.stopped;
  }

  /** Closes every connection gracefully: what was sent still arrives. */
  close(): void {
    this.clearTimers();
    for (const agent of this.agents) {
      agent.conn?.close();
      agent.conn = null;
    }
    this.down.clear();
  }

  destroy(): void {
    this.clearTimers();
    this.loopDelay.stop();
    for (const agent of this.agents) {
      agent.conn?.destroy();
      agent.conn = null;
    }
    this.down.clear();
  }

  private open(agent: Agent, settled?: (ok: boolean) => void): void {
    let pending = settled;
    const listener: ConnectionListener = {
      connected: (micros) => {
        agent.established = true;
        this.openConnections++;
        this.connects++;
        recordMicros(this.connectHistogram, micros);
        pending?.(true);
        pending = undefined;
      },
      failed: (kind, code, fatal) => {
        this.countError(kind, code);
        if (!fatal) return;
        this.lose(agent);
        pending?.(false);
        pending = undefined;
      },
      acknowledged: (sendMicros) => this.ackLatency.record(agent.tenant, sendMicros, monotonicMicros() - sendMicros),
    };
    agent.conn = this.transport.open(agent.localAddress, listener);
  }

  private lose(agent: Agent): void {
    agent.conn = null;
    if (agent.established) {
      agent.established = false;
      this.openConnections--;
    }
    agent.retryAtMicros = monotonicMicros() + RETRY_DELAY_MICROS;
    this.down.add(agent);
  }

  private countError(kind: ErrorKind, code: string): void {
    this.errors[kind]++;
    this.errorCodes[code] = (this.errorCodes[code] ?? 0) + 1;
    this.firstErrorCode ??= code;
  }

  private markDue(agent: Agent, count: number): void {
    if (agent.due === 0) this.touched.push(agent);
    agent.due += count;
  }

  private readonly tick = (): void => {
    const now = monotonicMicros();
    if (this.reconnect !== null && this.reconnect.due(now) > 0) this.reconnectAll();
    for (const agent of this.down) {
      if (now >= agent.retryAtMicros) {
        this.down.delete(agent);
        this.open(agent);
      }
    }
    for (const group of this.sendingGroups) group.schedule.due(now, group.fire);
    if (this.burst !== null) {
      const bursts = this.burst.due(now);
      if (bursts > 0) for (const agent of this.agents) this.markDue(agent, bursts * this.plan.burstSize);
    }
    this.sendDue();
    if (now >= this.endMicros) void this.stop();
  };

  /** The storm: every agent drops its connection and opens a new one in the same tick. */
  private reconnectAll(): void {
    for (const agent of this.agents) {
      if (agent.conn === null) continue;
      if (agent.established) {
        agent.established = false;
        this.openConnections--;
      }
      agent.conn.close();
      this.open(agent);
    }
  }

  private sendDue(): void {
    const wallMs = Date.now();
    for (const agent of this.touched) {
      const count = agent.due;
      agent.due = 0;
      const conn = agent.conn;
      if (conn === null) {
        this.notConnected += count;
        continue;
      }
      if (agent.paced && conn.pendingBytes > FLOOD_BACKLOG_BYTES) {
        this.throttled += count;
        continue;
      }
      const batch: OutgoingMessage[] = new Array<OutgoingMessage>(count);
      let sendMicros = 0;
      for (let k = 0; k < count; k++) {
        sendMicros = monotonicMicros();
        batch[k] = { text: this.formatter.format(agent.hostname, agent.id, agent.seq++, sendMicros, wallMs), sendMicros };
      }
      conn.send(batch);
      const second = Math.max(0, Math.floor((sendMicros - this.goMicros) / 1e6));
      while (this.sentPerSecond.length <= second) this.sentPerSecond.push(0);
      this.sentPerSecond[second]! += count;
      this.sent += count;
    }
    this.touched.length = 0;
  }

  private readonly reportProgress = (): void => {
    const errors = this.errors.connect + this.errors.reset + this.errors.other;
    this.events.progress({ type: 'progress', sent: this.sent, open: this.openConnections, errors });
  };

  private async finish(): Promise<WorkerReport> {
    this.clearTimers();
    const eventLoopDelay = this.loopDelay.stop();
    // "Sent" should mean handed to the kernel: give send buffers a moment to empty. An acknowledging
    // transport's latency is its acks: they get the same moment, or the last messages would go unmeasured.
    const drainDeadline = Date.now() + DRAIN_LIMIT_MS;
    const draining = (a: Agent): boolean => a.conn !== null && (a.conn.pendingBytes > 0 || a.conn.unacknowledged > 0);
    while (Date.now() < drainDeadline && this.agents.some(draining)) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
    const report: WorkerReport = {
      sentPerAgent: this.agents.map((a) => a.seq),
      sentPerSecond: this.sentPerSecond,
      throttled: this.throttled,
      notConnected: this.notConnected,
      connects: this.connects,
      errors: this.errors,
      errorCodes: this.errorCodes,
      connectHistogram: encodeHistogram(this.connectHistogram),
      ackHistograms: this.ackLatency.byTenant.map(encodeHistogram),
      steadyAckHistograms: {
        firstTenant: encodeHistogram(this.ackLatency.steadyFirstTenant),
        otherTenants: encodeHistogram(this.ackLatency.steadyOtherTenants),
      },
      eventLoopDelay,
    };
    this.events.stopped(report);
    return report;
  }

  private clearTimers(): void {
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    if (this.progressTimer !== null) clearInterval(this.progressTimer);
    this.tickTimer = null;
    this.progressTimer = null;
  }
}
