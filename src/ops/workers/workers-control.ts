/**
 * NodeControl of a multi-process node, in the primary: each call goes to
 * every ready worker over IPC (with a timeout) and the answers are merged so
 * the admin API sees the node as one. Metrics are summed with prom-client's
 * AggregatorRegistry over the workers' registries and the primary's own
 * (supervision, the host metadata service).
 */
import { writeHeapSnapshot } from 'node:v8';
import path from 'node:path';
import { mkdir } from 'node:fs/promises';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { TenantLimits } from '../../core/limits.js';
import type { ComponentView, NodeControl, Readiness, SessionView, TailFilter, TailSink } from '../control.js';
import type { Primary, WorkerProcess } from './primary.js';
import type { ClusterMember, ClusterStatus } from '../../services/cluster/member.js';
import { sumLoadSamples, type LoadSample } from '../../telemetry/telemetry.js';

const WORKER_SESSION = /^w(\d+):/;

export class WorkersControl implements NodeControl {
  private nextSubscription = 1;
  private readonly tails = new Map<number, TailFilter>();
  /** Set once the node has joined its cluster (cluster mode). */
  clusterMember: ClusterMember | null = null;

  constructor(private readonly primary: Primary) {
    // A worker that comes up while a tail is open joins it.
    primary.onWorkerReady.add((worker) => {
      for (const [subscription, filter] of this.tails) void worker.call('tail', [filter, subscription]).catch(() => undefined);
    });
  }

  /** Call every ready worker; answers of those that failed or timed out are left out (and logged). */
  private async all<T>(method: string, args: unknown[] = []): Promise<{ worker: WorkerProcess; value: T }[]> {
    const workers = this.primary.readyWorkers();
    const results = await Promise.allSettled(workers.map((w) => w.call(method, args)));
    const answers: { worker: WorkerProcess; value: T }[] = [];
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') answers.push({ worker: workers[i]!, value: r.value as T });
      else this.primary.telemetry.emit('workerUnanswered', { worker: workers[i]!.id, method, error: (r.reason as Error).message });
    });
    return answers;
  }

  /** Call every ready worker; the first error is thrown (for operations that must reach all). */
  private async every(method: string, args: unknown[]): Promise<unknown[]> {
    const workers = this.primary.readyWorkers();
    const results = await Promise.allSettled(workers.map((w) => w.call(method, args)));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason as Error;
    return results.map((r) => (r as PromiseFulfilledResult<unknown>).value);
  }

  /** The primary's metrics, the serving workers' and the counters of workers that have exited, added up. */
  private async aggregated(): Promise<Registry> {
    const answers = await this.all<object[]>('metricsJson');
    for (const { worker, value } of answers) if (!worker.draining) worker.lastMetrics = value;
    const own = await this.primary.telemetry.registry.getMetricsAsJSON();
    const retired = await this.primary.retiredCounters();
    return AggregatorRegistry.aggregate([own, retired as object[], ...answers.map((a) => a.value)]);
  }

  async metrics(): Promise<{ contentType: string; text: string }> {
    const registry = await this.aggregated();
    return { contentType: registry.contentType, text: await registry.metrics() };
  }

  async metricsJson(): Promise<unknown[]> {
    return await (await this.aggregated()).getMetricsAsJSON();
  }

  /** The workers' samples and the primary's own (its RSS), added up. */
  async load(): Promise<LoadSample> {
    const answers = await this.all<LoadSample>('load');
    return sumLoadSamples([await this.primary.telemetry.loadSample(), ...answers.map((a) => a.value)]);
  }

  async cluster(): Promise<ClusterStatus | null> {
    return this.clusterMember?.view() ?? null;
  }

  async readiness(): Promise<Readiness> {
    const detail: string[] = [];
    const answers = await this.all<Readiness>('readiness');
    for (const { worker, value } of answers) for (const d of value.detail) detail.push(`worker ${worker.id}: ${d}`);
    const serving = this.primary.readyWorkers().length;
    for (const state of this.primary.supervisor.states()) {
      if (state.crashLoop) detail.push(`${state.name}: crash loop (${state.failures} failures in a row, last: ${state.lastError ?? 'unknown'}); retrying`);
      else if (!state.running && state.nextStartAt !== null) detail.push(`${state.name}: restarting after its backoff (last: ${state.lastError ?? 'unknown'})`);
    }
    if (serving === 0) detail.unshift('no worker is serving');
    const workersReady = answers.length > 0 && answers.some((a) => a.value.ready);
    return { ready: serving > 0 && workersReady, detail };
  }

  async sessions(): Promise<SessionView[]> {
    return (await this.all<SessionView[]>('sessions')).flatMap((a) => a.value);
  }

  async disconnect(sessionId: string): Promise<boolean> {
    const id = Number(WORKER_SESSION.exec(sessionId)?.[1]);
    const worker = this.primary.readyWorkers().find((w) => w.id === id);
    if (worker === undefined) return false;
    return (await worker.call('disconnect', [sessionId])) === true;
  }

  async sheddableSessions(): Promise<number> {
    return (await this.all<number>('sheddableSessions')).reduce((sum, a) => sum + a.value, 0);
  }

  /** `count` split across the workers in proportion to what each could shed, so the busiest share gives the most. */
  async shedSessions(count: number): Promise<number> {
    const answers = await this.all<number>('sheddableSessions');
    const shares = proportionalShares(count, answers.map((a) => a.value));
    const asked = await Promise.allSettled(answers.map((a, i) => (shares[i]! > 0 ? a.worker.call('shedSessions', [shares[i]]) : Promise.resolve(0))));
    let total = 0;
    asked.forEach((r, i) => {
      if (r.status === 'fulfilled') total += r.value as number;
      else this.primary.telemetry.emit('workerUnanswered', { worker: answers[i]!.worker.id, method: 'shedSessions', error: (r.reason as Error).message });
    });
    return total;
  }

  async setTenantLimits(tenantId: string, limits: TenantLimits): Promise<void> {
    await this.every('setTenantLimits', [tenantId, limits]);
    this.primary.limitsSet(tenantId, limits);
  }

  /** The tenants of the newest serving worker (during a reload's rolling restart: the new configuration once one runs it). */
  async tenantLimits(): Promise<Record<string, TenantLimits>> {
    const answers = await this.all<Record<string, TenantLimits>>('tenantLimits');
    answers.sort((a, b) => b.worker.worker.id - a.worker.worker.id);
    return answers[0]?.value ?? Object.fromEntries(this.primary.config.tenants.map((t) => [t.id, t.limits]));
  }

  /** One view per component of the node: the workers' views of it merged (healthy when every worker says so). */
  async components(): Promise<ComponentView[]> {
    const byName = new Map<string, { view: ComponentView; details: string[] }>();
    for (const { worker, value } of await this.all<ComponentView[]>('components')) {
      for (const c of value) {
        const merged = byName.get(c.name) ?? byName.set(c.name, { view: { name: c.name, kind: c.kind, healthy: true }, details: [] }).get(c.name)!;
        merged.view.healthy &&= c.healthy;
        if (c.detail !== undefined && c.detail !== '') merged.details.push(`worker ${worker.id}: ${c.detail}`);
      }
    }
    const views = [...byName.values()].map(({ view, details }) => (details.length === 0 ? view : { ...view, detail: details.join('; ') }));
    const hostmeta = this.primary.hostmetaAddress();
    if (hostmeta !== null) views.push({ name: 'service:hostmeta', kind: 'service', healthy: true, detail: `primary, ${hostmeta.address}:${hostmeta.port}` });
    return views;
  }

  async controlComponent(name: string, action: 'stop' | 'start' | 'restart'): Promise<void> {
    await this.every('controlComponent', [name, action]);
  }

  async heapSnapshot(directory: string): Promise<string[]> {
    await mkdir(directory, { recursive: true });
    const own = writeHeapSnapshot(path.join(directory, `sluice-${process.pid}-primary-${Date.now()}.heapsnapshot`));
    return [own, ...(await this.all<string[]>('heapSnapshot', [directory])).flatMap((a) => a.value)];
  }

  async tail(filter: TailFilter, sink: TailSink): Promise<() => void> {
    const subscription = this.nextSubscription++;
    this.primary.listenTail(subscription, sink);
    this.tails.set(subscription, filter);
    try {
      await this.every('tail', [filter, subscription]);
    } catch (err) {
      this.stopTail(subscription);
      throw err;
    }
    return () => this.stopTail(subscription);
  }

  private stopTail(subscription: number): void {
    this.tails.delete(subscription);
    this.primary.listenTail(subscription, null);
    for (const worker of this.primary.readyWorkers()) void worker.call('untail', [subscription]).catch(() => undefined);
  }
}

/**
 * Split `count` over parts holding `capacities`, in proportion, each share
 * at most its capacity, the remainders going to the largest fractions
 * (so the shares add up to min(count, total capacity)).
 */
export function proportionalShares(count: number, capacities: readonly number[]): number[] {
  const total = capacities.reduce((sum, c) => sum + c, 0);
  const wanted = Math.min(Math.floor(count), total);
  if (!(wanted > 0)) return capacities.map(() => 0);
  const exact = capacities.map((c) => (wanted * c) / total);
  const shares = exact.map((e) => Math.floor(e));
  let left = wanted - shares.reduce((sum, s) => sum + s, 0);
  const byFraction = exact.map((e, i) => ({ i, fraction: e - Math.floor(e) })).sort((a, b) => b.fraction - a.fraction);
  for (const { i } of byFraction) {
    if (left === 0) break;
    if (shares[i]! < capacities[i]!) {
      shares[i]!++;
      left--;
    }
  }
  return shares;
}
