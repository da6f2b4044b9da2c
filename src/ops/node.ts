/**
 * A sluice node: builds sinks, the pipeline and sources from a resolved
 * config, starts them in dependency order (sinks first, so a listener never
 * accepts a record with nowhere to go) and stops them in reverse (sources
 * first, so everything they accepted reaches the sinks before those flush).
 */
import type { Logger } from 'pino';
import type { ComponentHealth, Reconnectable, Sink, Source } from '../core/component.js';
import { TenantDirectory } from '../core/identity.js';
import { Pipeline } from '../core/pipeline.js';
import type { TenantLimiter, TenantLimits } from '../core/limits.js';
import type { Allotments, TenantUse, UseReport } from './workers/limit-shares.js';
import { settlesBefore } from '../core/clock.js';
import { FileSink } from '../sinks/file/sink.js';
import { SyslogSink } from '../sinks/syslog/sink.js';
import { DeferredSink } from '../sinks/deferred.js';
import { BufferedSink } from '../sinks/buffer/buffered-sink.js';
import { SupervisedSink } from '../sinks/supervised.js';
import path from 'node:path';
import { collectDefaultMetrics } from 'prom-client';
import { SyslogStreamSource } from '../sources/syslog/tcp.js';
import { SyslogUdpSource } from '../sources/syslog/udp.js';
import { HttpSource } from '../sources/http/source.js';
import { RelpSource } from '../sources/relp/source.js';
import type { SinkConfig, SluiceConfig } from './config/types.js';
import { Telemetry } from '../telemetry/telemetry.js';
import { createNodeLogger } from './log-output.js';
import { EventLoopMonitor } from '../telemetry/event-loop.js';
import { trimWhenIdle, type IdleTrim } from '../core/idle-trim.js';
import type { RunningHostmetaService } from '../services/hostmeta/server.js';
import { HostMetadataCache } from '../services/hostmeta/cache.js';
import type { HostmetaClient } from '../services/hostmeta/client.js';
import { LocalHostmetaClient, type HostmetaCalls } from '../services/hostmeta/local-client.js';
import { HOSTMETA_TOKEN_FILE } from '../services/hostmeta/config.js';
import { readToken } from '../core/access-tokens.js';
import { hostmetaAccess } from './config/hostmeta-access.js';
import { VERSION } from '../telemetry/version.js';
import type { HostLockService } from '../services/cluster/host-locks.js';
import { Supervisor } from '../core/supervisor.js';
import { supervisionEvents, supervisorPolicy } from './supervision.js';
import { connectionCapacity, descriptorsWanted, openFilesLimit, readFdLimits, SPARE_DESCRIPTORS } from './descriptors.js';

export interface NodeAddresses {
  syslogUdp: { address: string; port: number } | null;
  syslogTcp: { address: string; port: number } | null;
  syslogTls: { address: string; port: number } | null;
  http: { address: string; port: number } | null;
  relp: { address: string; port: number } | null;
  hostmeta: { address: string; port: number } | null;
}

/** What differs in one worker process of a multi-process node. */
export interface NodeOptions {
  /**
   * This worker's slot (1-based; absent in a single process). It tags what
   * must not be shared between processes: session ids (`w<n>:`), the file
   * sink's files (`current-w<n>.ndjson`) and disk buffers
   * (`<data_dir>/buffers/<sink>.w<n>/`), so a worker started later in the
   * same slot takes over its predecessor's files and buffer.
   */
  workerId?: number;
  /**
   * The tenant limits are shared with other workers: each tenant starts with
   * no part of them until setLimitAllotments (the primary's) gives it one.
   */
  sharedLimits?: boolean;
  /**
   * The metadata service's calls, answered by the primary that runs it (a
   * worker's node, whose config has no service and no client url).
   */
  primaryHostmeta?: HostmetaCalls;
}

function buildSink(config: SinkConfig, dataDir: string, telemetry: Telemetry, tag: string | null): Sink {
  const sink = buildBareSink(config, telemetry, tag);
  if (config.diskBuffer === null) return sink;
  const folder = tag === null ? config.name : `${config.name}.${tag}`;
  return new BufferedSink(sink, path.join(dataDir, 'buffers', folder), config.diskBuffer, telemetry);
}

function buildBareSink(config: SinkConfig, telemetry: Telemetry, tag: string | null): Sink {
  switch (config.type) {
    case 'file':
      return new FileSink(config, telemetry, tag);
    case 'syslog':
      return new SyslogSink(config, telemetry);
    case 'nats':
      return new DeferredSink(config.name, true, async () => new (await import('../sinks/nats/sink.js')).NatsSink(config, telemetry));
  }
}

/** How often a running listener's health is checked by its supervisor. */
const HEALTH_CHECK_MS = 500;

export class SluiceNode {
  readonly telemetry: Telemetry;
  readonly pipeline: Pipeline;
  private readonly sinks: SupervisedSink[];
  private readonly sources: Source[] = [];
  private readonly udp: SyslogUdpSource | null = null;
  private readonly tcp: SyslogStreamSource | null = null;
  private readonly tls: SyslogStreamSource | null = null;
  private readonly http: HttpSource | null = null;
  private readonly relp: RelpSource | null = null;
  private stopped: Promise<boolean> | null = null;
  private hostmetaService: RunningHostmetaService | null = null;
  private hostmetaCache: HostMetadataCache | null = null;
  private hostLocks: HostLockService | null = null;
  private state: 'new' | 'running' | 'stopping' = 'new';
  /** Keeps the listeners running: one that fails (or stops listening) is started again with backoff. */
  private readonly supervisor: Supervisor;
  /** Ends the health watch of each supervised listener. */
  private readonly watches = new Map<string, AbortController>();
  readonly eventLoop: EventLoopMonitor;
  /** Gives back the heap this process reserved (at start, or in a burst) once it is idle. */
  private readonly idleTrim: IdleTrim;
  /** What limitUse last reported of each tenant. */
  private readonly lastUse = new Map<string, TenantUse>();

  constructor(readonly config: SluiceConfig, logger: Logger = createNodeLogger(config.log), readonly options: NodeOptions = {}) {
    this.telemetry = new Telemetry(logger);
    if (options.workerId !== undefined) this.telemetry.workerLabel = String(options.workerId);
    this.supervisor = new Supervisor(supervisorPolicy(config.supervision), supervisionEvents(this.telemetry));
    // Process memory, CPU and heap (process_*, nodejs_*), which the dashboard shows.
    collectDefaultMetrics({ register: this.telemetry.registry });
    this.telemetry.setTenantSeries(config.tenants.map((t) => t.id), config.admin.tenantSeries);
    this.eventLoop = new EventLoopMonitor(this.telemetry);
    this.idleTrim = trimWhenIdle(this.telemetry);
    const tag = options.workerId === undefined ? null : `w${options.workerId}`;
    this.sinks = config.sinks.map((sink) => new SupervisedSink(buildSink(sink, config.dataDir, this.telemetry, tag), this.telemetry));
    const routes = config.sinks.map((sink, i) => ({ sink: this.sinks[i]!, tenants: sink.tenants }));
    this.pipeline = new Pipeline(new TenantDirectory(config.tenants), routes, this.telemetry, tag === null ? '' : `${tag}:`);
    this.telemetry.sessionTotals = () => this.pipeline.sessions.totals();
    this.pipeline.memory.configure(config.memory);
    if (tag !== null) this.pipeline.memory.processName = tag;
    const { syslogUdp, syslogTcp, syslogTls } = config.sources;
    // A worker's UDP reader binds the port exclusively (no SO_REUSEPORT in node:dgram): the others stand by.
    if (syslogUdp.enabled) this.sources.push(this.udp = new SyslogUdpSource(syslogUdp, this.pipeline, this.telemetry, { standBy: options.workerId !== undefined }));
    if (syslogTcp.enabled) this.sources.push(this.tcp = new SyslogStreamSource(syslogTcp, 'tcp', this.pipeline, this.telemetry));
    if (syslogTls.enabled) this.sources.push(this.tls = new SyslogStreamSource(syslogTls, 'tls', this.pipeline, this.telemetry));
    if (config.sources.relp.enabled) this.sources.push(this.relp = new RelpSource(config.sources.relp, this.pipeline, this.telemetry));
    if (config.sources.http.enabled) this.sources.push(this.http = new HttpSource(config.sources.http, this.pipeline, this.telemetry));
    if (options.sharedLimits === true) for (const [, limiter] of this.sharedLimiters()) limiter.setAllotment({ share: 0, connections: 0 });
  }

  /**
   * Every limit this process may hold a part of, by the key the primary
   * knows it by: `tenant:<id>` (rates and connections), `listener:<name>`
   * (max_connections of a listener).
   */
  private *sharedLimiters(): Generator<[string, TenantLimiter, () => number]> {
    for (const tenant of this.pipeline.directory.tenants.values()) yield [`tenant:${tenant.id}`, tenant.limiter, () => tenant.connections];
    for (const [name, cap] of this.pipeline.listenerCaps) yield [`listener:${name}`, cap.limiter, cap.open];
  }

  /** Every tenant's limits as they are now (configured, or set through the admin API since). */
  tenantLimits(): Record<string, TenantLimits> {
    const out: Record<string, TenantLimits> = {};
    for (const tenant of this.pipeline.directory.tenants.values()) out[tenant.id] = tenant.limiter.limits;
    return out;
  }

  /** Change a tenant's rate limits now, for every session it has (the admin API calls this). */
  setTenantLimits(tenantId: string, limits: TenantLimits): void {
    const tenant = this.pipeline.directory.tenants.get(tenantId);
    if (tenant === undefined) throw new Error(`no tenant ${tenantId}`);
    if (!(limits.messagesPerSecond >= 0 && limits.bytesPerSecond >= 0 && limits.burstMs > 0)) {
      throw new Error('limits: rates must be >= 0 and burst > 0');
    }
    tenant.limiter.set(limits);
  }

  /**
   * Each tenant with a limit: its use of this process's part of the node's
   * limits since the last call, over `seconds` (a worker reports it to the primary).
   */
  limitUse(seconds: number): UseReport {
    const report: UseReport = {};
    for (const [key, limiter, open] of this.sharedLimiters()) {
      if (!limiter.shared) continue;
      const demand = limiter.takeDemand();
      const { messagesPerSecond, bytesPerSecond, maxConnections } = limiter.limits;
      const load = Math.max(
        messagesPerSecond > 0 ? demand.records / (messagesPerSecond * seconds) : 0,
        bytesPerSecond > 0 ? demand.bytes / (bytesPerSecond * seconds) : 0,
      );
      const use = {
        load, starved: demand.starved, connections: open(), allowance: limiter.part.connections ?? maxConnections,
        connectionsRefused: demand.connectionsRefused, maxConnections,
      };
      // Only what changed: an idle tenant is reported once (going idle), then not until it changes again.
      const last = this.lastUse.get(key);
      if (last !== undefined && !busy(last) && !busy(use) && last.connections === use.connections && last.allowance === use.allowance
        && last.maxConnections === use.maxConnections) continue;
      this.lastUse.set(key, use);
      report[key] = use;
    }
    return report;
  }

  /** This process's part of each tenant's limits (the primary's, see workers/limit-shares.ts). */
  setLimitAllotments(allotments: Allotments): void {
    const limiters = new Map([...this.sharedLimiters()].map(([key, limiter]) => [key, limiter]));
    for (const [key, allotment] of Object.entries(allotments)) limiters.get(key)?.setAllotment(allotment);
  }

  /** Call `starved` when a tenant or listener starts to want more of its limits than this process holds. */
  onLimitStarved(starved: () => void): void {
    for (const [, limiter] of this.sharedLimiters()) limiter.onStarved = starved;
  }

  /** Agent connections shedSessions could ask to reconnect now (open RELP sessions and HTTP keep-alive connections not yet asked). */
  sheddableSessions(): number {
    return this.reconnectable().length;
  }

  private reconnectable(): Reconnectable[] {
    const connections: Reconnectable[] = [];
    for (const source of this.sources) if (source.reconnectable !== undefined) for (const c of source.reconnectable()) connections.push(c);
    return connections;
  }

  /**
   * Load shedding: ask up to `count` agents to reconnect, gracefully (see
   * Source.reconnectable), so the balancer in front spreads them; returns how
   * many were asked. Plain syslog over TCP or TLS is never shed: closing it
   * would lose what its agent had in flight.
   *
   * The longest-connected go first: an agent that has just arrived (perhaps
   * shed by another node a moment ago) is asked last, so agents do not bounce
   * between nodes, and the agents moved are those whose node choice is the
   * oldest, made before the load changed.
   */
  shedSessions(count: number): number {
    if (this.state !== 'running' || !(count >= 1)) return 0;
    const candidates = this.reconnectable();
    candidates.sort((a, b) => a.openedAt - b.openedAt);
    const asked = candidates.slice(0, Math.floor(count));
    const byProtocol: Record<string, number> = {};
    for (const connection of asked) {
      connection.askToReconnect();
      byProtocol[connection.protocol] = (byProtocol[connection.protocol] ?? 0) + 1;
    }
    for (const [protocol, n] of Object.entries(byProtocol)) this.telemetry.sessionsShed.inc({ protocol }, n);
    // One line per call, with the count per protocol as fields (relp, http).
    this.telemetry.emit('sessionsShed', { requested: count, asked: asked.length, sheddable: candidates.length, ...byProtocol });
    return asked.length;
  }

  /**
   * Every source, sink and service of the node under its admin name
   * (`source:<name>`, `sink:<name>`, `service:hostmeta`).
   */
  components(): { name: string; kind: 'source' | 'sink' | 'service'; health: ComponentHealth }[] {
    const list: { name: string; kind: 'source' | 'sink' | 'service'; health: ComponentHealth }[] = [];
    for (const source of this.sources) list.push({ name: `source:${source.name}`, kind: 'source', health: source.health() });
    for (const sink of this.sinks) {
      const health = sink.health();
      list.push({ name: `sink:${sink.name}`, kind: 'sink', health: { ...health, detail: sinkDetail(health.detail, sink.queuedBytes(), sink.congested()) } });
    }
    if (this.config.hostmeta.service.enabled) {
      list.push({ name: 'service:hostmeta', kind: 'service', health: this.hostmetaService !== null ? { healthy: true } : { healthy: false, detail: 'not running' } });
    }
    return list;
  }

  /**
   * Ready: started, not stopping, and every listener and sink up. A stopped
   * source (admin action) makes the node unready, which is what a load
   * balancer needs to know.
   */
  readiness(): { ready: boolean; detail: string[] } {
    const detail: string[] = [];
    if (this.state !== 'running') detail.push(this.state === 'new' ? 'starting' : 'stopping');
    for (const component of this.components()) {
      if (!component.health.healthy) detail.push(`${component.name}: ${component.health.detail ?? 'unhealthy'}`);
    }
    for (const state of this.supervisor.states()) {
      if (state.crashLoop) detail.push(`${state.name}: crash loop (${state.failures} failures in a row, last: ${state.lastError ?? 'unknown'}); retrying`);
    }
    return { ready: detail.length === 0, detail };
  }

  /**
   * Stop, start or restart a source (a listener). Sinks and services are
   * refused: records already routed to a sink have nowhere else to go.
   */
  async controlComponent(name: string, action: 'stop' | 'start' | 'restart'): Promise<void> {
    if (this.state !== 'running') throw new Error(`the node is ${this.state === 'new' ? 'starting' : 'stopping'}`);
    const source = this.sources.find((s) => `source:${s.name}` === name);
    if (source === undefined) {
      if (this.components().some((c) => c.name === name)) throw new Error(`${name} cannot be stopped or started at runtime: only sources can`);
      throw new Error(`no component ${name}`);
    }
    this.telemetry.emit('componentControlled', { component: name, action });
    if (action === 'start' && this.supervisor.has(name)) return;
    await this.unsupervise(name);
    if (action !== 'start') await source.stop(Date.now() + this.config.shutdownTimeoutMs);
    if (action !== 'stop') await this.supervise(source, true);
  }

  /**
   * Keep `source` running from now on. `startNow`: start it first (else it is
   * running already). Resolves once that first start succeeded; when it fails
   * it rejects, and the supervisor goes on retrying with backoff.
   */
  private supervise(source: Source, startNow: boolean): Promise<void> {
    const name = `source:${source.name}`;
    const watch = new AbortController();
    this.watches.set(name, watch);
    let firstRun = true;
    let settleFirst: (err?: Error) => void = () => undefined;
    const first = new Promise<void>((resolve, reject) => { settleFirst = (err) => (err === undefined ? resolve() : reject(err)); });
    this.supervisor.add(name, async () => {
      const isFirst = firstRun;
      firstRun = false;
      if (!isFirst) await source.stop(Date.now() + this.config.shutdownTimeoutMs);
      if (!isFirst || startNow) {
        try {
          await source.start();
        } catch (err) {
          source.destroy();
          if (isFirst) settleFirst(new Error(`${name} did not start (${(err as Error).message}); retrying with backoff`));
          throw err;
        }
      }
      if (isFirst) settleFirst();
      await failure(source, watch.signal);
    });
    return first;
  }

  /**
   * Keep trying to start `sink` with backoff until it has started. Resolves
   * after the first attempt, whichever way it went: until the sink starts it
   * holds what is routed to it and slows its tenants (SupervisedSink).
   */
  private superviseSink(sink: SupervisedSink): Promise<void> {
    const name = `sink:${sink.name}`;
    const watch = new AbortController();
    this.watches.set(name, watch);
    let attempted: () => void = () => undefined;
    const firstAttempt = new Promise<void>((resolve) => { attempted = resolve; });
    this.supervisor.add(name, async () => {
      try {
        await sink.start();
      } finally {
        attempted();
      }
      // Started: a sink does not end (its connections are retried within it); the run lasts until shutdown.
      await new Promise<void>((resolve) => {
        if (watch.signal.aborted) resolve();
        else watch.signal.addEventListener('abort', () => resolve(), { once: true });
      });
    });
    return firstAttempt;
  }

  /**
   * Restart the metadata client (a new connection pool, the address resolved
   * again) when every request has failed for `restartAfterMs`, with the
   * supervisor's backoff; lookups meanwhile are served from the cache or go
   * on without metadata.
   */
  private superviseHostmetaClient(cache: HostMetadataCache, first: HostmetaClient, make: () => HostmetaClient, restartAfterMs: number): void {
    const watch = new AbortController();
    this.watches.set('client:hostmeta', watch);
    let current: HostmetaClient | null = first;
    this.supervisor.add('client:hostmeta', async () => {
      if (current === null) {
        current = make();
        cache.replaceClient(current);
      }
      const running = current;
      await new Promise<void>((resolve, reject) => {
        const timer = setInterval(() => {
          const failing = running.failingForMs();
          if (failing < restartAfterMs) return;
          clearInterval(timer);
          watch.signal.removeEventListener('abort', onAbort);
          current = null;
          reject(new Error(`every request to the metadata service failed for ${failing} ms`));
        }, Math.min(HEALTH_CHECK_MS, restartAfterMs));
        const onAbort = (): void => {
          clearInterval(timer);
          resolve();
        };
        if (watch.signal.aborted) onAbort();
        else watch.signal.addEventListener('abort', onAbort, { once: true });
      });
    });
  }

  private async unsupervise(name: string): Promise<void> {
    this.watches.get(name)?.abort();
    this.watches.delete(name);
    await this.supervisor.remove(name);
  }

  /** Where the sources are listening (ports may have been configured as 0). */
  addresses(): NodeAddresses {
    return { syslogUdp: this.udp?.address() ?? null, syslogTcp: this.tcp?.address() ?? null, syslogTls: this.tls?.address() ?? null,
      http: this.http?.address() ?? null,
      relp: this.relp?.address() ?? null,
      hostmeta: this.hostmetaService === null ? null : { address: this.hostmetaService.address, port: this.hostmetaService.port } };
  }

  async start(): Promise<void> {
    const openFiles = openFilesLimit();
    this.telemetry.emit('nodeStarting', { version: VERSION, data_dir: path.resolve(this.config.dataDir), open_files_limit: openFiles });
    const wanted = descriptorsWanted(this.config);
    if (openFiles !== null && wanted !== null && openFiles < wanted) this.telemetry.emit('openFilesLow', { open_files_limit: openFiles, wanted });
    try {
      // A sink that cannot start yet is retried with backoff while its tenants' sources wait.
      for (const sink of this.sinks) await this.superviseSink(sink);
      await this.startHostmeta();
      this.announceCapacity();
      for (const source of this.sources) await source.start();
      this.pipeline.memory.start();
      const { cluster } = this.config;
      // The NATS client is loaded only in cluster mode (as for the NATS sink): a node alone does not pay its memory.
      if (cluster.nats.length > 0 && cluster.hostLocks) {
        const { HostLockService } = await import('../services/cluster/host-locks.js');
        this.hostLocks = new HostLockService(cluster, this.pipeline.sessions, this.telemetry);
      }
    } catch (err) {
      this.pipeline.memory.stop();
      for (const watch of this.watches.values()) watch.abort();
      await this.supervisor.stopAll();
      for (const component of [...this.sources, ...this.sinks]) component.destroy();
      await this.hostmetaCache?.close();
      await this.hostmetaService?.close();
      throw err;
    }
    this.state = 'running';
    for (const source of this.sources) void this.supervise(source, false);
    // Measured from here: loading modules and opening stores at start are not the node under load.
    this.eventLoop.start();
    this.idleTrim.start();
    this.telemetry.emit('nodeReady', {});
  }

  /**
   * Log what the open-files limit lets this node hold and cap stream
   * connections there (refused past it, reason fd_limit, rather than failing
   * at accept with EMFILE). Node.js has already raised the soft limit to the
   * hard one at start.
   */
  private announceCapacity(): void {
    const limits = readFdLimits();
    const capacity = connectionCapacity(limits);
    this.pipeline.memory.connectionCapacity = capacity;
    const known = Number.isFinite(capacity);
    if (known) this.telemetry.connectionCapacity.set(capacity);
    this.telemetry.emit('connectionCapacity', {
      fd_soft_limit: limits?.soft ?? null, fd_hard_limit: limits?.hard ?? null, fd_reserve: SPARE_DESCRIPTORS,
      connections: known ? capacity : null, memory_budget_bytes: this.config.memory.budgetBytes,
    });
  }

  /** The in-node metadata service (if enabled), then the client the pipeline enriches records with. */
  private async startHostmeta(): Promise<void> {
    const { service, client } = this.config.hostmeta;
    if (service.enabled) {
      // Loaded only where the service runs (a node in one process): a worker reaches its primary's (the store, the
      // schema validators and SQLite stay out of the worker's memory).
      const { startHostmetaService } = await import('../services/hostmeta/server.js');
      this.hostmetaService = await startHostmetaService(service, hostmetaAccess(this.config), this.telemetry);
    }
    if (!client.enabled) return;
    if (client.url === null) {
      // The service is in this process (its store is asked directly) or in the primary (asked over the IPC channel): not over loopback HTTP.
      const calls = this.hostmetaService !== null
        ? new LocalHostmetaClient(this.hostmetaService.store, this.config.hostmeta.service.maxDocumentBytes)
        : this.options.primaryHostmeta;
      if (calls === undefined) throw new Error('hostmeta.client needs a url when this node runs no hostmeta service');
      this.hostmetaCache = new HostMetadataCache(calls, client, this.telemetry);
    } else {
      // The HTTP client (undici) is loaded only for a remote service.
      const { HostmetaClient } = await import('../services/hostmeta/client.js');
      const remote = { ...client, url: client.url, token: readClientToken(client.tokenFile ?? path.join(this.config.dataDir, HOSTMETA_TOKEN_FILE)) };
      const first = new HostmetaClient(remote, this.telemetry);
      const cache = new HostMetadataCache(first, remote, this.telemetry);
      this.hostmetaCache = cache;
      if (remote.restartAfterMs > 0) this.superviseHostmetaClient(cache, first, () => new HostmetaClient(remote, this.telemetry), remote.restartAfterMs);
    }
    this.pipeline.useMetadata(this.hostmetaCache);
  }

  /**
   * Stop accepting, drain every source into the sinks, flush the sinks.
   * Resolves true when everything accepted was written by the deadline.
   */
  stop(deadline = Date.now() + this.config.shutdownTimeoutMs): Promise<boolean> {
    this.state = 'stopping';
    this.stopped ??= this.drain(deadline);
    return this.stopped;
  }

  private async drain(deadline: number): Promise<boolean> {
    this.telemetry.emit('nodeStopping', {});
    for (const watch of this.watches.values()) watch.abort();
    await this.supervisor.stopAll();
    // The run's event-loop summary covers the node at work, not its shutdown.
    this.eventLoop.stop();
    this.idleTrim.stop();
    // Paused sessions resume, so what their agents sent is read and answered before the end.
    this.pipeline.memory.stop();
    let complete = true;
    await Promise.all(this.sources.map((source) => source.stop(deadline)));
    await this.pipeline.settle();
    const results = await Promise.allSettled(this.sinks.map((sink) => sink.stop(deadline)));
    for (const result of results) {
      if (result.status === 'rejected') {
        complete = false;
        this.telemetry.emit('shutdownDeadline', { error: (result.reason as Error).message });
      }
    }
    // Registrations in flight, open API connections and lock removals must not hold the exit past the deadline.
    const closings = [
      ['hostmeta client', this.hostmetaCache?.close()], ['hostmeta service', this.hostmetaService?.close()], ['host locks', this.hostLocks?.stop()],
    ] as const;
    for (const [what, closing] of closings) {
      if (closing !== undefined && !(await settlesBefore(closing, deadline))) {
        complete = false;
        this.telemetry.emit('shutdownDeadline', { error: `${what} still closing at the deadline` });
      }
    }
    this.telemetry.emit('nodeStopped', { ...await this.totals(), ...this.eventLoop.summary() });
    return complete;
  }

  /** The headline counters, for the last log line of a run. */
  private async totals(): Promise<Record<string, number>> {
    const t = this.telemetry;
    return {
      received: await t.value('sluice_source_received_records_total'),
      written: await t.value('sluice_sink_written_records_total'),
      parse_errors: await t.value('sluice_source_parse_errors_total'),
      refused: await t.value('sluice_source_refused_total'),
      bad_frames: await t.value('sluice_source_bad_frames_total'),
      dropped: await t.value('sluice_dropped_records_total'),
    };
  }
}

/** A tenant's use that the primary must hear about: records admitted, or a want of tokens or connections. */
function busy(use: TenantUse): boolean {
  return use.load > 0 || use.starved || use.connectionsRefused;
}

function sinkDetail(detail: string | undefined, queuedBytes: number, congested: boolean): string {
  const parts = detail === undefined ? [] : [detail];
  parts.push(`${queuedBytes} bytes queued${congested ? ', congested' : ''}`);
  return parts.join('; ');
}

/** The credential of a client of a remote metadata service: a start without one fails here, not on every lookup. */
function readClientToken(file: string): string {
  try {
    return readToken(file);
  } catch (err) {
    throw new Error(`hostmeta.client: no token to send to the service (${(err as Error).message}); `
      + 'copy the service\'s <data_dir>/hostmeta-token there, or set hostmeta.client.token_file', { cause: err });
  }
}

/** Resolves when `signal` aborts; rejects once `source` reports itself unhealthy (its listener is gone). */
function failure(source: Source, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      const health = source.health();
      if (health.healthy) return;
      clearInterval(timer);
      signal.removeEventListener('abort', onAbort);
      reject(new Error(health.detail ?? 'unhealthy'));
    }, HEALTH_CHECK_MS);
    const onAbort = (): void => {
      clearInterval(timer);
      resolve();
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
}
