/**
 * NodeControl over a SluiceNode in this process: what the admin server uses
 * when the node is a single process (and what each worker answers with when
 * the node has several).
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import v8 from 'node:v8';
import type { TenantLimits } from '../../core/limits.js';
import { encodeRecord } from '../../core/ndjson.js';
import type { ComponentView, NodeControl, Readiness, SessionView, TailFilter, TailSink } from '../control.js';
import type { SluiceNode } from '../node.js';
import type { LoadSample } from '../../telemetry/telemetry.js';

export class LocalControl implements NodeControl {
  constructor(private readonly node: SluiceNode) {}

  async metrics(): Promise<{ contentType: string; text: string }> {
    const registry = this.node.telemetry.registry;
    return { contentType: registry.contentType, text: await registry.metrics() };
  }

  async metricsJson(): Promise<unknown[]> {
    return this.node.telemetry.registry.getMetricsAsJSON();
  }

  async load(): Promise<LoadSample> {
    return this.node.telemetry.loadSample();
  }

  /** A single process is never a cluster member: membership runs in the primary of `sluice start`. */
  async cluster(): Promise<null> {
    return null;
  }

  async readiness(): Promise<Readiness> {
    return this.node.readiness();
  }

  async sessions(): Promise<SessionView[]> {
    return this.node.pipeline.sessions.views();
  }

  async disconnect(sessionId: string): Promise<boolean> {
    const entry = this.node.pipeline.sessions.get(sessionId);
    if (entry === undefined) return false;
    this.node.telemetry.emit('sessionDisconnected', { session: sessionId, tenant: entry.tenant, peer: entry.peer });
    entry.control.close('admin');
    return true;
  }

  async sheddableSessions(): Promise<number> {
    return this.node.sheddableSessions();
  }

  async shedSessions(count: number): Promise<number> {
    return this.node.shedSessions(count);
  }

  async tenantLimits(): Promise<Record<string, TenantLimits>> {
    return this.node.tenantLimits();
  }

  async setTenantLimits(tenantId: string, limits: TenantLimits): Promise<void> {
    this.node.setTenantLimits(tenantId, limits);
    this.node.telemetry.emit('tenantLimitsChanged', {
      tenant: tenantId, messages_per_second: limits.messagesPerSecond, bytes_per_second: limits.bytesPerSecond,
      burst_ms: limits.burstMs, max_connections: limits.maxConnections,
    });
  }

  async components(): Promise<ComponentView[]> {
    return this.node.components().map((c) => ({
      name: c.name, kind: c.kind, healthy: c.health.healthy, ...(c.health.detail === undefined ? {} : { detail: c.health.detail }),
    }));
  }

  async controlComponent(name: string, action: 'stop' | 'start' | 'restart'): Promise<void> {
    await this.node.controlComponent(name, action);
  }

  async heapSnapshot(directory: string): Promise<string[]> {
    await mkdir(directory, { recursive: true });
    const file = path.join(directory, `sluice-${process.pid}-${new Date().toISOString().replace(/[:.]/g, '-')}.heapsnapshot`);
    // Synchronous by nature: the process stops for as long as the snapshot takes.
    v8.writeHeapSnapshot(file);
    this.node.telemetry.emit('heapSnapshotWritten', { file });
    return [file];
  }

  async tail(filter: TailFilter, sink: TailSink): Promise<() => void> {
    return this.node.pipeline.tap({
      ...(filter.tenant === undefined ? {} : { tenant: filter.tenant }),
      ...(filter.host === undefined ? {} : { host: filter.host }),
      ...(filter.session === undefined ? {} : { session: filter.session }),
      onRecords: (records) => sink.lines(records.map((record) => encodeRecord(record).slice(0, -1))),
    });
  }
}
