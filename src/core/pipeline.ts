/**
 * Routing from sources to sinks, and the backpressure signal back.
 *
 * Each tenant's route (its list of sinks) is resolved once at start, so
 * submitting a batch is a loop over a short array. A source whose submit()
 * returned false pauses and registers with whenDrained(); it is resumed once
 * no sink is congested any more.
 */
import type { Sink } from './component.js';
import type { AckToken } from './ack.js';
import type { LogRecord } from './record.js';
import type { Tenant, TenantDirectory } from './identity.js';
import type { Telemetry } from '../ops/telemetry.js';

export interface Route {
  sink: Sink;
  /** Tenant ids, or `*` for all. */
  tenants: readonly string[];
}

export class Pipeline {
  private readonly waiting = new Set<() => void>();
  private readonly sinks: Sink[];

  constructor(readonly directory: TenantDirectory, routes: readonly Route[], private readonly telemetry: Telemetry) {
    this.sinks = routes.map((r) => r.sink);
    for (const tenant of directory.tenants.values()) {
      for (const route of routes) {
        if (route.tenants.includes('*') || route.tenants.includes(tenant.id)) tenant.sinks.push(route.sink);
      }
    }
    for (const sink of this.sinks) sink.onDrain(() => this.resumeIfClear());
  }

  /**
   * Hand one tenant's batch to every sink of its route. The batch array must
   * not be reused by the caller. Returns false when the caller should pause.
   */
  submit(source: string, tenant: Tenant, records: LogRecord[], ack: AckToken | null): boolean {
    const sinks = tenant.sinks;
    if (sinks.length === 0) {
      this.telemetry.emit('recordsDropped', { source, reason: 'no_route', tenant: tenant.id }, records.length);
      ack?.seal();
      return true;
    }
    let clear = true;
    for (let i = 0; i < sinks.length; i++) {
      ack?.retain();
      if (!sinks[i]!.write(tenant.id, records, ack)) clear = false;
    }
    ack?.seal();
    return clear;
  }

  /** True when some sink is above its high-water mark. */
  congested(): boolean {
    for (const sink of this.sinks) if (sink.congested()) return true;
    return false;
  }

  /** Run `resume` once no sink is congested (at once if none is). */
  whenDrained(resume: () => void): void {
    if (!this.congested()) resume();
    else this.waiting.add(resume);
  }

  /** Forget a waiter (its session closed while paused). */
  cancelWait(resume: () => void): void {
    this.waiting.delete(resume);
  }

  private resumeIfClear(): void {
    if (this.waiting.size === 0 || this.congested()) return;
    const resumes = [...this.waiting];
    this.waiting.clear();
    for (const resume of resumes) resume();
  }
}
