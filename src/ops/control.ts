/**
 * What operators can see and do to a running node: the one contract between
 * the admin API (HTTP, dashboard, `sluice top|tail|sessions`) and the node.
 *
 * A single process implements it directly over its SluiceNode; a node of
 * several worker processes implements it in the primary by asking every
 * worker over IPC and merging the answers, so callers see the node as one.
 * Every value crossing this interface is plain JSON (it may cross IPC).
 */
import type { SessionView } from '../core/sessions.js';
import type { TenantLimits } from '../core/limits.js';
import type { ClusterStatus } from '../services/cluster/member.js';
import type { LoadSample } from '../telemetry/telemetry.js';

export type { SessionView, ClusterStatus };

export interface ComponentView {
  /** Unique in the node: e.g. `source:syslog_tcp`, `sink:files`, `service:hostmeta`. */
  name: string;
  kind: 'source' | 'sink' | 'service';
  healthy: boolean;
  detail?: string;
}

export interface TailFilter {
  /** Only this tenant's records. A tenant-scoped caller always has this set to its tenant. */
  tenant?: string;
  /** Only records from this host (hostname as sent). */
  host?: string;
  /** Only records from this session id. */
  session?: string;
}

/** Where a live tail's lines go (see NodeControl.tail). */
export interface TailSink {
  /** Records as NDJSON lines (the file sink's encoding, without the newline), in order. */
  lines(lines: string[]): void;
  /** `count` lines were dropped on the way: a hop between the node and this sink fell behind. */
  dropped(count: number): void;
}

export interface Readiness {
  ready: boolean;
  /** Why not (or notes while ready, e.g. a worker in crash-loop backoff). */
  detail: string[];
}

export interface NodeControl {
  /** Prometheus exposition of the whole node (all workers summed where that is meaningful). */
  metrics(): Promise<{ contentType: string; text: string }>;
  /** The same metrics as JSON (prom-client's getMetricsAsJSON shape), for the dashboard. */
  metricsJson(): Promise<unknown[]>;
  readiness(): Promise<Readiness>;
  sessions(): Promise<SessionView[]>;
  /** Close one session (counted under reason `admin`). False when no such session is open. */
  disconnect(sessionId: string): Promise<boolean>;
  /** Agent connections that shedSessions could ask to reconnect now: open RELP sessions and HTTP keep-alive connections not yet asked. */
  sheddableSessions(): Promise<number>;
  /**
   * Load shedding: ask up to `count` agents to reconnect (RELP `serverclose`
   * after answering what was read, HTTP `Connection: close` on the next
   * response), the longest connected first, so the balancer spreads them;
   * plain syslog over TCP/TLS is never asked. Resolves to how many were asked.
   */
  shedSessions(count: number): Promise<number>;
  /** Change a tenant's rate limits at once, in every worker. Throws for an unknown tenant or bad limits. */
  setTenantLimits(tenantId: string, limits: TenantLimits): Promise<void>;
  /** The tenants the node runs now and their limits (after a reload: the new ones), by id. */
  tenantLimits(): Promise<Record<string, TenantLimits>>;
  components(): Promise<ComponentView[]>;
  /** Stop, start or restart one component by name (see ComponentView.name). */
  controlComponent(name: string, action: 'stop' | 'start' | 'restart'): Promise<void>;
  /** Write a heap snapshot of each process; returns the file paths. */
  heapSnapshot(directory: string): Promise<string[]>;
  /**
   * Follow records as they are routed, filtered, into `sink`. Every hop keeps
   * a bounded number of bytes per tail and drops (counted to `sink`) past it.
   * Returns the function that stops the tail. Costs nothing while no tail is open.
   */
  tail(filter: TailFilter, sink: TailSink): Promise<() => void>;
  /** The node's load (every process's), from its own counters: what its cluster heartbeat reports. */
  load(): Promise<LoadSample>;
  /** This node's view of its cluster (members, leader, totals); null when it runs alone. */
  cluster(): Promise<ClusterStatus | null>;
}
