/**
 * One snapshot of a node for the dashboard and `sluice top`: cumulative
 * counters (clients turn them into rates by differencing two snapshots),
 * gauges, the ack latency histogram, tenants, sessions and sinks.
 *
 * Built only from what NodeControl answers (metrics as JSON, sessions,
 * components), so it reads the same for one process or many. Metrics other
 * branches add (sluice_memory_*, sluice_event_loop_delay_*,
 * sluice_restarts_total) are passed through when present.
 */
import type { ComponentView, SessionView } from '../control.js';

/** One metric as prom-client's getMetricsAsJSON returns it. */
export interface MetricJson {
  name: string;
  type: string;
  help?: string;
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[];
}

export interface TenantRow {
  tenant: string;
  acceptedRecords: number;
  acceptedBytes: number;
  deliveredRecords: number;
  sessions: number;
  queuedBytes: number;
  errors: number;
}

export interface SinkRow {
  name: string;
  healthy: boolean;
  detail: string;
  writtenRecords: number;
  writtenBytes: number;
  droppedRecords: number;
  queuedBytes: number;
  /** Queued (or disk-buffered) bytes over the sink's bound; null when no bound is known. */
  fill: number | null;
}

export interface Overview {
  /** Epoch ms. */
  time: number;
  /** Tenant the caller is scoped to (null: the whole node). */
  scope: string | null;
  totals: {
    receivedRecords: number;
    receivedBytes: number;
    acceptedRecords: number;
    acceptedBytes: number;
    deliveredRecords: number;
    deliveredBytes: number;
    droppedRecords: number;
    connections: number;
    sessions: number;
  };
  /** Cumulative histogram of ack latency over every source: bucket upper bounds (s) and counts. */
  ackLatency: { le: number[]; counts: number[]; count: number; sum: number };
  /** Memory gauges by metric name (and labels): the governor's sluice_memory_* (state, pressure, bytes) and process RSS and heap used. */
  memory: Record<string, number>;
  /** Event-loop delay gauges (seconds), by metric name. */
  eventLoop: Record<string, number>;
  /** Worker restarts, when the node counts them. */
  restarts: number | null;
  /**
   * UDP datagrams lost before a record was made of them, while a UDP listener
   * runs (null otherwise, and for a tenant's view): dropped by the reader
   * thread when its hand-off ring was full, dropped by the kernel for the
   * listeners' sockets (receive buffer full), and the host's UDP
   * RcvbufErrors (every socket on the machine, sluice's or not).
   */
  udp: { handoffDropped: number; kernelDropped: number; hostReceiveBufferErrors: number } | null;
  tenants: TenantRow[];
  sessions: SessionView[];
  sinks: SinkRow[];
}

/** Bounds a sink's fill is measured against, from the configuration. */
export interface SinkBounds {
  name: string;
  queueHighWaterBytes: number;
  /** Disk buffer size, when the sink has one. */
  bufferMaxBytes: number | null;
}

/** A metric's values added up (those whose labels pass `where`). */
export function sum(metrics: Map<string, MetricJson>, name: string, where: (labels: Record<string, string | number>) => boolean = () => true): number {
  const metric = metrics.get(name);
  if (metric === undefined) return 0;
  let total = 0;
  for (const v of metric.values) if (where(v.labels)) total += v.value;
  return total;
}

function byLabel(metrics: Map<string, MetricJson>, name: string, label: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const v of metrics.get(name)?.values ?? []) {
    const key = String(v.labels[label] ?? '');
    out.set(key, (out.get(key) ?? 0) + v.value);
  }
  return out;
}

/**
 * Records of each tenant delivered, counted once however many sinks take the
 * tenant: what its furthest sink has delivered (a record delivered to two sinks
 * is one record of the tenant, not two).
 */
function deliveredByTenant(metrics: Map<string, MetricJson>, name: string, where: (labels: Record<string, string | number>) => boolean = () => true): Map<string, number> {
  const bySinkAndTenant = new Map<string, Map<string, number>>();
  for (const v of metrics.get(name)?.values ?? []) {
    if (!where(v.labels)) continue;
    const tenant = String(v.labels.tenant ?? '');
    const sinks = bySinkAndTenant.get(tenant) ?? bySinkAndTenant.set(tenant, new Map()).get(tenant)!;
    const sink = String(v.labels.sink ?? '');
    sinks.set(sink, (sinks.get(sink) ?? 0) + v.value);
  }
  const out = new Map<string, number>();
  for (const [tenant, sinks] of bySinkAndTenant) out.set(tenant, Math.max(...sinks.values()));
  return out;
}

const total = (values: Map<string, number>): number => [...values.values()].reduce((a, b) => a + b, 0);

function ackLatency(metrics: Map<string, MetricJson>): Overview['ackLatency'] {
  const buckets = new Map<number, number>();
  let count = 0;
  let total = 0;
  for (const v of metrics.get('sluice_ack_latency_seconds')?.values ?? []) {
    if (v.metricName?.endsWith('_bucket')) {
      const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
      buckets.set(le, (buckets.get(le) ?? 0) + v.value);
    } else if (v.metricName?.endsWith('_count')) count += v.value;
    else if (v.metricName?.endsWith('_sum')) total += v.value;
  }
  const le = [...buckets.keys()].filter((b) => b !== Infinity).sort((a, b) => a - b);
  return { le, counts: le.map((b) => buckets.get(b) ?? 0), count, sum: total };
}

/** Gauges whose name starts with `prefix`, keyed `name` or `name{label=value,…}`. */
function gaugesWithPrefix(metrics: Map<string, MetricJson>, prefixes: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const metric of metrics.values()) {
    if (metric.type !== 'gauge' || !prefixes.some((p) => metric.name.startsWith(p))) continue;
    for (const v of metric.values) {
      const labels = Object.entries(v.labels).map(([k, value]) => `${k}=${String(value)}`).join(',');
      out[labels === '' ? metric.name : `${metric.name}{${labels}}`] = v.value;
    }
  }
  return out;
}

/** prom-client's JSON by metric name. */
export function metricsByName(metricsJson: unknown[]): Map<string, MetricJson> {
  const metrics = new Map<string, MetricJson>();
  for (const m of metricsJson as MetricJson[]) metrics.set(m.name, m);
  return metrics;
}

export function buildOverview(
  metricsJson: unknown[],
  sessions: SessionView[],
  components: ComponentView[],
  bounds: readonly SinkBounds[],
  scope: string | null,
): Overview {
  const metrics = metricsByName(metricsJson);
  const inScope = scope === null ? () => true : (labels: Record<string, string | number>) => labels.tenant === scope;
  const scopedSessions = scope === null ? sessions : sessions.filter((s) => s.tenant === scope);

  const tenants = new Map<string, TenantRow>();
  const row = (tenant: string): TenantRow => {
    let r = tenants.get(tenant);
    if (r === undefined) {
      r = { tenant, acceptedRecords: 0, acceptedBytes: 0, deliveredRecords: 0, sessions: 0, queuedBytes: 0, errors: 0 };
      tenants.set(tenant, r);
    }
    return r;
  };
  for (const [tenant, value] of byLabel(metrics, 'sluice_tenant_accepted_records_total', 'tenant')) row(tenant).acceptedRecords = value;
  for (const [tenant, value] of byLabel(metrics, 'sluice_tenant_accepted_bytes_total', 'tenant')) row(tenant).acceptedBytes = value;
  for (const [tenant, value] of deliveredByTenant(metrics, 'sluice_tenant_delivered_records_total')) row(tenant).deliveredRecords = value;
  for (const s of sessions) {
    if (s.tenant === null) continue;
    const r = row(s.tenant);
    r.sessions++;
    r.queuedBytes += s.queuedBytes;
    r.errors += s.errors;
  }
  if (scope !== null) for (const key of [...tenants.keys()]) if (key !== scope) tenants.delete(key);

  const boundsByName = new Map(bounds.map((b) => [b.name, b]));
  const sinks: SinkRow[] = scope !== null ? [] : components.filter((c) => c.kind === 'sink').map((c) => {
    const name = c.name.slice('sink:'.length);
    const bySink = (labels: Record<string, string | number>) => labels.sink === name;
    const queuedBytes = sum(metrics, 'sluice_sink_queued_bytes', bySink);
    const bound = boundsByName.get(name);
    let fill: number | null = null;
    if (bound?.bufferMaxBytes != null) fill = sum(metrics, 'sluice_buffer_bytes', (l) => l.buffer === name) / bound.bufferMaxBytes;
    else if (bound !== undefined && bound.queueHighWaterBytes > 0) fill = queuedBytes / bound.queueHighWaterBytes;
    return {
      name, healthy: c.healthy, detail: c.detail ?? '',
      writtenRecords: sum(metrics, 'sluice_sink_written_records_total', bySink),
      writtenBytes: sum(metrics, 'sluice_sink_written_bytes_total', bySink),
      droppedRecords: sum(metrics, 'sluice_sink_dropped_records_total', bySink),
      queuedBytes,
      fill,
    };
  });

  const restartsMetric = metrics.get('sluice_restarts_total');
  const udpListening = (metrics.get('sluice_udp_handoff_queued_bytes')?.values.length ?? 0) > 0;
  return {
    time: Date.now(),
    scope,
    totals: scope === null ? {
      receivedRecords: sum(metrics, 'sluice_source_received_records_total'),
      receivedBytes: sum(metrics, 'sluice_source_received_bytes_total'),
      acceptedRecords: sum(metrics, 'sluice_source_accepted_records_total'),
      acceptedBytes: sum(metrics, 'sluice_source_accepted_bytes_total'),
      deliveredRecords: sum(metrics, 'sluice_sink_written_records_total'),
      deliveredBytes: sum(metrics, 'sluice_sink_written_bytes_total'),
      droppedRecords: sum(metrics, 'sluice_dropped_records_total') + sum(metrics, 'sluice_sink_dropped_records_total'),
      connections: sum(metrics, 'sluice_source_connections'),
      sessions: sessions.length,
    } : {
      // A tenant sees its own traffic only: what is labelled with it, and its sessions.
      receivedRecords: sum(metrics, 'sluice_tenant_accepted_records_total', inScope),
      receivedBytes: sum(metrics, 'sluice_tenant_accepted_bytes_total', inScope),
      acceptedRecords: sum(metrics, 'sluice_tenant_accepted_records_total', inScope),
      acceptedBytes: sum(metrics, 'sluice_tenant_accepted_bytes_total', inScope),
      deliveredRecords: total(deliveredByTenant(metrics, 'sluice_tenant_delivered_records_total', inScope)),
      deliveredBytes: total(deliveredByTenant(metrics, 'sluice_tenant_delivered_bytes_total', inScope)),
      droppedRecords: 0,
      connections: scopedSessions.length,
      sessions: scopedSessions.length,
    },
    ackLatency: scope === null ? ackLatency(metrics) : { le: [], counts: [], count: 0, sum: 0 },
    memory: scope === null ? gaugesWithPrefix(metrics, ['sluice_memory_', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes']) : {},
    eventLoop: scope === null ? gaugesWithPrefix(metrics, ['sluice_event_loop_delay_', 'nodejs_eventloop_lag_']) : {},
    restarts: scope === null && restartsMetric !== undefined ? sum(metrics, 'sluice_restarts_total') : null,
    udp: scope === null && udpListening ? {
      handoffDropped: sum(metrics, 'sluice_dropped_records_total', (l) => l.source === 'syslog_udp' && l.reason === 'handoff_full'),
      kernelDropped: sum(metrics, 'sluice_udp_kernel_dropped_total'),
      hostReceiveBufferErrors: sum(metrics, 'sluice_udp_host_receive_errors_total', (l) => l.error === 'RcvbufErrors'),
    } : null,
    tenants: [...tenants.values()],
    sessions: scopedSessions,
    sinks,
  };
}

/**
 * The exposition text limited to one tenant: samples labelled with that
 * tenant, with their families' HELP and TYPE lines; everything else is left out.
 */
export function filterExposition(text: string, tenant: string): string {
  const out: string[] = [];
  let header: string[] = [];
  let headerEmitted = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('# HELP ')) {
      header = [line];
      headerEmitted = false;
    } else if (line.startsWith('#')) {
      header.push(line);
    } else if (line !== '') {
      const brace = line.indexOf('{');
      const end = line.lastIndexOf('}');
      if (brace < 0 || end < brace) continue;
      if (labelValue(line.slice(brace + 1, end), 'tenant') !== tenant) continue;
      if (!headerEmitted) {
        out.push(...header);
        headerEmitted = true;
      }
      out.push(line);
    }
  }
  return out.length === 0 ? '' : out.join('\n') + '\n';
}

const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** One label's (unescaped) value in a sample's label set, or null. */
function labelValue(labels: string, name: string): string | null {
  for (const match of labels.matchAll(LABEL)) {
    if (match[1] === name) return match[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return null;
}

export interface RatedSession extends SessionView {
  recordsPerSec: number;
  bytesPerSec: number;
}

export interface RatedTenant extends TenantRow {
  recordsPerSec: number;
  bytesPerSec: number;
}

/** An overview with per-second rates against the previous one: what the live views show. */
export interface LiveOverview extends Omit<Overview, 'sessions' | 'tenants'> {
  /** Seconds between the two snapshots the rates come from (0 for the first). */
  interval: number;
  /** Per second, of each total that counts (connections and sessions are levels, not counts). */
  rates: Omit<Overview['totals'], 'connections' | 'sessions'>;
  /** Ack latency over the interval, seconds (null: no acknowledged batch in it). `max` is the upper bound of the highest bucket reached. */
  ackLatencyInterval: { p50: number; p90: number; p99: number; max: number; count: number } | null;
  tenants: RatedTenant[];
  /** The busiest sessions by each sort key (rate, bytes, queued bytes, errors), at most `limit` per key. */
  sessions: RatedSession[];
  sessionCount: number;
}

/** The q-quantile of a cumulative histogram, interpolated within its bucket (as Prometheus' histogram_quantile). */
export function histogramQuantile(q: number, le: readonly number[], cumulative: readonly number[], count: number): number {
  if (count <= 0) return 0;
  const target = q * count;
  let lowerBound = 0;
  let lowerCount = 0;
  for (let i = 0; i < le.length; i++) {
    const upper = le[i]!;
    const c = cumulative[i]!;
    if (c >= target) {
      const inBucket = c - lowerCount;
      return inBucket <= 0 ? upper : lowerBound + ((upper - lowerBound) * (target - lowerCount)) / inBucket;
    }
    lowerBound = upper;
    lowerCount = c;
  }
  return le.length > 0 ? le[le.length - 1]! : 0;
}

function ackInterval(now: Overview['ackLatency'], before: Overview['ackLatency'] | null): LiveOverview['ackLatencyInterval'] {
  const count = now.count - (before?.count ?? 0);
  if (count <= 0) return null;
  const cumulative = now.counts.map((c, i) => c - (before !== null && before.le[i] === now.le[i] ? before.counts[i] ?? 0 : 0));
  let max = now.le.length > 0 ? now.le[now.le.length - 1]! : 0;
  for (let i = 0; i < cumulative.length; i++) {
    if (cumulative[i]! >= count) {
      max = now.le[i]!;
      break;
    }
  }
  return {
    p50: histogramQuantile(0.5, now.le, cumulative, count),
    p90: histogramQuantile(0.9, now.le, cumulative, count),
    p99: histogramQuantile(0.99, now.le, cumulative, count),
    max,
    count,
  };
}

export function withRates(now: Overview, before: Overview | null, sessionLimit: number): LiveOverview {
  const seconds = before === null ? 0 : Math.max(0.001, (now.time - before.time) / 1000);
  const rate = (a: number, b: number | undefined) => (seconds === 0 || b === undefined ? 0 : Math.max(0, (a - b) / seconds));
  const previousSessions = new Map((before?.sessions ?? []).map((s) => [s.id, s]));
  const sessions: RatedSession[] = now.sessions.map((s) => {
    const p = previousSessions.get(s.id);
    return { ...s, recordsPerSec: rate(s.records, p?.records ?? 0), bytesPerSec: rate(s.bytes, p?.bytes ?? 0) };
  });
  const picked = new Map<string, RatedSession>();
  const keys: ((s: RatedSession) => number)[] = [(s) => s.bytesPerSec, (s) => s.bytes, (s) => s.queuedBytes, (s) => s.errors];
  for (const key of keys) {
    for (const s of [...sessions].sort((a, b) => key(b) - key(a)).slice(0, sessionLimit)) picked.set(s.id, s);
  }
  const previousTenants = new Map((before?.tenants ?? []).map((t) => [t.tenant, t]));
  const t = now.totals;
  const b = before?.totals;
  return {
    ...now,
    interval: seconds,
    rates: {
      receivedRecords: rate(t.receivedRecords, b?.receivedRecords),
      receivedBytes: rate(t.receivedBytes, b?.receivedBytes),
      acceptedRecords: rate(t.acceptedRecords, b?.acceptedRecords),
      acceptedBytes: rate(t.acceptedBytes, b?.acceptedBytes),
      deliveredRecords: rate(t.deliveredRecords, b?.deliveredRecords),
      deliveredBytes: rate(t.deliveredBytes, b?.deliveredBytes),
      droppedRecords: rate(t.droppedRecords, b?.droppedRecords),
    },
    ackLatencyInterval: ackInterval(now.ackLatency, before?.ackLatency ?? null),
    tenants: now.tenants.map((row) => {
      const p = previousTenants.get(row.tenant);
      return { ...row, recordsPerSec: rate(row.acceptedRecords, p?.acceptedRecords ?? 0), bytesPerSec: rate(row.acceptedBytes, p?.acceptedBytes ?? 0) };
    }),
    sessions: [...picked.values()],
    sessionCount: now.sessions.length,
  };
}
