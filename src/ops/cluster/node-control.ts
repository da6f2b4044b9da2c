/**
 * NodeControl over one SluiceNode, for a worker process to serve to the
 * primary over IPC. It covers what a node exposes today; the admin branch's
 * LocalControl (src/ops/admin/local-control.ts) is meant to replace it.
 */
import type { TenantLimits } from '../../core/limits.js';
import type { ComponentView, NodeControl, Readiness, SessionView, TailFilter } from '../control.js';
import type { SluiceNode } from '../node.js';

export class NodeOverControl implements NodeControl {
  constructor(private readonly node: SluiceNode) {}

  async metrics(): Promise<{ contentType: string; text: string }> {
    const registry = this.node.telemetry.registry;
    return { contentType: registry.contentType, text: await registry.metrics() };
  }

  async metricsJson(): Promise<unknown[]> {
    return await this.node.telemetry.registry.getMetricsAsJSON();
  }

  async readiness(): Promise<Readiness> {
    const unhealthy = this.node.components().filter((c) => !c.healthy);
    return { ready: unhealthy.length === 0, detail: unhealthy.map((c) => `${c.name}: ${c.detail ?? 'unhealthy'}`) };
  }

  async sessions(): Promise<SessionView[]> {
    return this.node.pipeline.sessions.views();
  }

  async disconnect(sessionId: string): Promise<boolean> {
    const entry = this.node.pipeline.sessions.get(sessionId);
    if (entry === undefined) return false;
    entry.control.close('admin');
    return true;
  }

  async setTenantLimits(tenantId: string, limits: TenantLimits): Promise<void> {
    this.node.setTenantLimits(tenantId, limits);
  }

  async components(): Promise<ComponentView[]> {
    return this.node.components();
  }

  async controlComponent(name: string, action: 'stop' | 'start' | 'restart'): Promise<void> {
    throw new Error(`${action} ${name}: components cannot be controlled one by one in this version`);
  }

  async heapSnapshot(directory: string): Promise<string[]> {
    const { writeHeapSnapshot } = await import('node:v8');
    const path = await import('node:path');
    const tag = this.node.options.workerId === undefined ? '' : `-w${this.node.options.workerId}`;
    return [writeHeapSnapshot(path.join(directory, `sluice-${process.pid}${tag}-${Date.now()}.heapsnapshot`))];
  }

  async tail(_filter: TailFilter, _onRecord: (line: string) => void): Promise<() => void> {
    throw new Error('tail is not available in this version');
  }
}
