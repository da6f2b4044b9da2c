/**
 * One telemetry object per node: the logger, the metric registry and the
 * event emitter that writes a log line and bumps its counter in one call.
 *
 * Hot paths never call emit() per record: they resolve a counter child once
 * (per session or per source) and increment it once per chunk or batch.
 */
import pino, { type Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { EVENTS, type CounterName, type EventDef, type EventName } from './events.js';
import { logDropsOf, type LogDropReason } from './logger.js';
import { TallyCounter } from './tally-counter.js';



export type EventFields = Record<string, string | number | boolean | null | undefined>;

/**
 * What one process adds to its node's load (the cluster heartbeat), read from
 * its own counters and gauges, never back out of rendered metrics.
 */
export interface LoadSample {
  /** Open stream sessions. */
  connections: number;
  /** Records and frame bytes received since start (counters: the cluster member turns them into rates). */
  receivedRecords: number;
  receivedBytes: number;
  rssBytes: number;
  /** The memory governor's state: 0 normal, 1 soft, 2 hard. */
  memoryState: number;
}

/** The samples of a node's processes as one: sums, but the highest memory state. */
export function sumLoadSamples(samples: readonly LoadSample[]): LoadSample {
  const sum: LoadSample = { connections: 0, receivedRecords: 0, receivedBytes: 0, rssBytes: 0, memoryState: 0 };
  for (const s of samples) {
    sum.connections += s.connections;
    sum.receivedRecords += s.receivedRecords;
    sum.receivedBytes += s.receivedBytes;
    sum.rssBytes += s.rssBytes;
    sum.memoryState = Math.max(sum.memoryState, s.memoryState);
  }
  return sum;
}

/**
 * What a sink's queues hold: its total and each tenant's part, read at scrape
 * time, so the hot path sets no gauge per write (core/fair.ts FairShares).
 */
export interface QueueSource {
  readonly total: number;
  tenants(): Iterable<{ readonly tenant: string; readonly queued: number }>;
}

/** A UDP listener's hand-off and kernel numbers, read at scrape time (sources/syslog/udp.ts). */
export interface UdpListenerSample {
  /** Datagrams the kernel dropped for this socket (its receive buffer was full); null where unknown. */
  kernelDropped: number | null;
  /** Bytes in the hand-off ring from the reader thread not yet taken by the event loop. */
  handoffQueuedBytes: number;
}

/** Host-wide UDP receive errors (/proc/net/snmp{,6}). */
export interface UdpHostErrors {
  rcvbufErrors: number;
  inErrors: number;
}

/** Label sets of the counters that events increment. */
const COUNTER_LABELS: Record<CounterName, readonly string[]> = {
  connectionsRefused: ['source', 'reason'],
  connectionsClosed: ['source', 'reason'],
  framesRejected: ['source', 'reason'],
  recordsDropped: ['source', 'reason'],
  sinkErrors: ['sink'],
  restarts: ['component'],
};

export class Telemetry {
  readonly registry = new Registry();

  readonly recordsReceived: Counter<'source'>;
  readonly bytesReceived: Counter<'source'>;
  readonly parseErrors: Counter<'source'>;
  readonly invalidUtf8: Counter<'source'>;
  readonly connectionsRefused: Counter<'source' | 'reason'>;
  readonly connectionsClosed: Counter<'source' | 'reason'>;
  readonly framesRejected: Counter<'source' | 'reason'>;
  readonly recordsDropped: Counter<'source' | 'reason'>;
  readonly connections: Gauge<'source'>;
  readonly clusterMembers: Gauge;
  readonly clusterLeader: Gauge;
  readonly clusterConnected: Gauge;
  readonly hostLockTakeovers: Counter;
  readonly hostLocksHeld: Gauge;
  readonly sinkRecords: Counter<'sink'>;
  readonly sinkBytes: Counter<'sink'>;
  readonly sinkErrors: Counter<'sink'>;
  readonly sinkRotations: Counter<'sink'>;
  readonly sinkQueuedBytes: Gauge<'sink'>;
  readonly tenantThrottled: Counter<'source' | 'tenant'>;
  readonly tenantTurnDeferred: Counter<'tenant'>;
  readonly httpRefusals: Counter<'status'>;
  readonly hostmetaRefused: Counter<'error'>;
  readonly hostmetaRequests: Counter<'method' | 'outcome'>;
  readonly hostmetaMismatches: Counter<'method'>;
  readonly hostmetaCacheLookups: Counter<'result'>;
  readonly hostmetaCacheEntries: Gauge<never>;
  readonly hostmetaTouchesDropped: Counter<never>;

  readonly restarts: Counter<'component'>;
  readonly crashLooping: Gauge<'component'>;
  readonly workersRunning: Gauge<never>;

  readonly bufferDroppedRecords: Counter<'buffer' | 'reason'>;
  readonly bufferDiscardedBytes: Counter<'buffer' | 'reason'>;
  readonly bufferSyncs: Counter<'buffer'>;
  readonly bufferBytes: Gauge<'buffer'>;
  readonly bufferEntries: Gauge<'buffer'>;

  readonly sinkDropped: Counter<'sink' | 'reason'>;
  readonly sinkConnected: Gauge<'sink'>;
  readonly sinkDuplicates: Counter<'sink'>;
  readonly sinkTruncated: Counter<'sink'>;
  readonly logDroppedLines: Counter<'reason'>;

  readonly sourceAcceptedRecords: Counter<'source'>;
  readonly sourceAcceptedBytes: Counter<'source'>;
  readonly tenantAcceptedRecords: Counter<'tenant'>;
  readonly tenantMetaMissingRecords: Counter<'tenant' | 'reason'>;
  readonly tenantAcceptedBytes: Counter<'tenant'>;
  readonly tenantDeliveredRecords: Counter<'sink' | 'tenant'>;
  readonly tenantDeliveredBytes: Counter<'sink' | 'tenant'>;
  readonly tenantDroppedRecords: Counter<'sink' | 'tenant'>;
  readonly tenantFailedSends: Counter<'sink' | 'tenant'>;
  readonly tenantRetriedBytes: Counter<'sink' | 'tenant'>;
  readonly tenantQueuedBytes: Gauge<'sink' | 'tenant'>;
  readonly ackLatency: Histogram<'source'>;

  /** Where the session gauges read from at scrape time (the node sets it to its session registry). */
  sessionTotals: (() => { open: number; queuedBytes: number; paused: number }) | null = null;
  /** This process's worker slot, as a label of its own series (null: a single process, or the primary). */
  workerLabel: string | null = null;

  /** Each sink's queues, by sink name, for sluice_sink_queued_bytes and sluice_tenant_queued_bytes. */
  private readonly sinkQueues = new Map<string, QueueSource>();
  private readonly handshakeSources = new Map<string, () => { handshaking: number; waiting: number }>();

  /** Each UDP listener's sample, by listener (`address:port`), for the sluice_udp_* metrics. */
  private readonly udpListeners = new Map<string, () => UdpListenerSample>();

  /** Host-wide UDP receive errors; set while a UDP listener runs in this process. */
  udpHostErrors: (() => UdpHostErrors | null) | null = null;

  /** Tenants that get a series of their own; the rest share `other` (see tenantLabel). */
  private readonly tenantSeries = new Set<string>();

  /** Event-loop delay since the previous scrape (set by the node's EventLoopMonitor while it runs). */
  eventLoopDelaySource: (() => { p50: number; p99: number; max: number }) | null = null;

  readonly memoryState: Gauge<never>;
  readonly memoryPressure: Gauge<never>;
  readonly memoryAccountedBytes: Gauge<'component'>;
  readonly memoryPausedSessions: Gauge<never>;
  readonly memoryHoldingSessions: Gauge<never>;
  readonly memoryProcessBytes: Gauge<'process'>;
  readonly memoryNodeBytes: Gauge<never>;
  readonly memoryBudgetBytes: Gauge<never>;
  readonly memoryIdleTrims: Counter<never>;
  readonly memoryIdleTrimmedBytes: Counter<never>;
  readonly connectionCapacity: Gauge<never>;
  readonly sessionsShed: Counter<'protocol'>;
  readonly adminRefused: Counter<'reason'>;
  readonly adminTailDropped: Counter<'stage'>;
  readonly adminTails: Gauge<never>;

  private readonly lastLogged = new Map<string, number>();
  private readonly suppressed = new Map<string, number>();

  constructor(readonly logger: Logger) {
    const registers = [this.registry];
    // Label children count in plain numbers, added to the metric at collection (tally-counter.ts).
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> =>
      new TallyCounter<L>({ name, help, labelNames, registers });
    // `aggregator`: how the primary combines the workers' values (a sum, unless a sum means nothing).
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], aggregator: 'sum' | 'max' = 'sum') =>
      new Gauge<L>({ name, help, labelNames, registers, aggregator });

    this.recordsReceived = counter('sluice_source_received_records_total', 'Records decoded by a source.', ['source']);
    this.bytesReceived = counter('sluice_source_received_bytes_total', 'Frame bytes decoded by a source.', ['source']);
    this.parseErrors = counter('sluice_source_parse_errors_total', 'Records kept raw because they did not parse as syslog.', ['source']);
    this.invalidUtf8 = counter('sluice_source_invalid_utf8_total', 'Records whose bytes were not valid UTF-8.', ['source']);
    this.connectionsRefused = counter('sluice_source_refused_total', 'Connections and records refused for want of credentials, by reason.', ['source', 'reason']);
    this.connectionsClosed = counter('sluice_source_closed_connections_total', 'Connections the node closed itself (idle or frame timeouts), by reason.', ['source', 'reason']);
    this.framesRejected = counter('sluice_source_bad_frames_total', 'Bad frames that closed their connection, by reason.', ['source', 'reason']);
    this.recordsDropped = counter('sluice_dropped_records_total', 'Records dropped, by where and why.', ['source', 'reason']);
    this.connections = gauge('sluice_source_connections', 'Open connections.', ['source']);
    this.sinkRecords = counter('sluice_sink_written_records_total', 'Records a sink has delivered (written to its file, sent to the syslog receiver, stored by JetStream).', ['sink']);
    this.sinkBytes = counter('sluice_sink_written_bytes_total', 'Encoded bytes of the records counted by sluice_sink_written_records_total.', ['sink']);
    this.sinkErrors = counter('sluice_sink_errors_total', 'Sink write errors (retried).', ['sink']);
    this.sinkRotations = counter('sluice_sink_rotations_total', 'Files rotated by a file sink.', ['sink']);
    this.httpRefusals = counter('sluice_http_refused_requests_total', 'HTTP ingest requests answered with an error, by status.', ['status']);
    this.tenantThrottled = counter('sluice_tenant_throttled_total', 'Times a session paused reading because its tenant was over its rate limit.', ['source', 'tenant']);
    this.tenantTurnDeferred = counter('sluice_tenant_turn_deferred_total', 'Times a session (or HTTP request) of the tenant waited for a later event-loop turn because the tenant had read its share of the turn.', ['tenant']);
    const sinkQueues = this.sinkQueues;
    const handshakeSources = this.handshakeSources;
    new Gauge({
      name: 'sluice_tls_handshakes', help: 'TLS connections not yet through their handshake, by state: `handshaking` (at most max_handshakes), `waiting` (a plain socket: no ClientHello yet, or waiting for a slot).',
      labelNames: ['source', 'state'], registers,
      collect(this: Gauge<'source' | 'state'>) {
        for (const [source, counts] of handshakeSources) {
          const now = counts();
          this.set({ source, state: 'handshaking' }, now.handshaking);
          this.set({ source, state: 'waiting' }, now.waiting);
        }
      },
    });
    this.sinkQueuedBytes = new Gauge({
      name: 'sluice_sink_queued_bytes', help: 'Bytes accepted by a sink and not yet delivered.', labelNames: ['sink'], registers,
      collect(this: Gauge<'sink'>) {
        for (const [sink, queues] of sinkQueues) this.set({ sink }, queues.total);
      },
    });
    this.hostmetaRefused = counter('sluice_hostmeta_refused_requests_total', 'Requests the host metadata service refused (4xx), by the `error` of its answer: unauthorized, forbidden, unknown_tenant, bad_request, invalid_json, too_large, ...', ['error']);
    this.hostmetaRequests = counter('sluice_hostmeta_client_requests_total', 'Requests to the host metadata service, by method and outcome.', ['method', 'outcome']);
    this.hostmetaMismatches = counter('sluice_hostmeta_client_mismatches_total', 'Host metadata responses that did not name their request\'s tenant and key (discarded).', ['method']);
    this.hostmetaCacheLookups = counter('sluice_hostmeta_cache_lookups_total', 'Host metadata cache lookups, by how they were answered.', ['result']);
    this.hostmetaCacheEntries = gauge('sluice_hostmeta_cache_entries', 'Hosts held by the host metadata cache.', []);
    this.hostmetaTouchesDropped = counter('sluice_hostmeta_touches_dropped_total', 'Host last_seen refreshes dropped: too many in flight or per second (registrations go with lookups).', []);
    this.bufferDroppedRecords = counter('sluice_buffer_dropped_records_total', 'Records a disk buffer refused (full, timeout, too_large) or lost to damage on disk (corrupt).', ['buffer', 'reason']);
    this.bufferDiscardedBytes = counter('sluice_buffer_discarded_bytes_total', 'Bytes a disk buffer stopped trusting: a torn tail truncated at open (torn_tail) or a damaged segment\'s rest (corrupt).', ['buffer', 'reason']);
    this.bufferSyncs = counter('sluice_buffer_syncs_total', 'Write-and-fsync rounds of a disk buffer; appends per round show the batching.', ['buffer']);
    this.bufferBytes = gauge('sluice_buffer_bytes', 'Bytes of segment files a disk buffer holds, including appends being written.', ['buffer']);
    this.bufferEntries = gauge('sluice_buffer_entries', 'Entries a disk buffer holds that are not yet acknowledged.', ['buffer']);
    this.sinkDropped = counter('sluice_sink_dropped_records_total', 'Records a sink gave up on, by reason (see docs/sinks.md).', ['sink', 'reason']);
    this.sinkConnected = gauge('sluice_sink_connected', '1 while a forwarding sink (syslog, NATS) holds a connection to its receiver.', ['sink']);
    this.sinkDuplicates = counter('sluice_sink_duplicates_total', 'Records the receiver reported it already had (JetStream de-duplication by message id).', ['sink']);
    this.restarts = counter('sluice_restarts_total', 'Workers (`worker:<n>`) and components restarted by their supervisor after ending unexpectedly.', ['component']);
    this.crashLooping = gauge('sluice_crash_loop', '1 while a worker or component is in a crash loop (see supervision.crash_loop_after).', ['component'], 'max');
    this.workersRunning = gauge('sluice_workers_running', 'Worker processes serving (kept by the primary).', []);
    this.memoryState = gauge('sluice_memory_state', 'Memory governor state: 0 normal, 1 soft (heaviest sessions paused), 2 hard (new work refused); the highest of the workers\'.', [], 'max');
    this.memoryPressure = gauge('sluice_memory_pressure', 'Memory governor pressure: the largest of accounted bytes and the node\'s summed RSS as fractions of the budget, and heap used as a fraction of V8\'s heap limit; the highest of the workers\'.', [], 'max');
    this.memoryAccountedBytes = gauge('sluice_memory_accounted_bytes', 'Bytes held, by component (sessions, lanes, sinks, http) and heap_used, at the last sample.', ['component']);
    this.memoryPausedSessions = gauge('sluice_memory_paused_sessions', 'Open sessions paused for memory (their Memory pause reason set), counted at the governor\'s last sample.', []);
    this.memoryHoldingSessions = gauge('sluice_memory_holding_sessions', 'Sessions the memory governor holds paused (its own set); equal to sluice_memory_paused_sessions unless something is wrong.', []);
    this.memoryProcessBytes = gauge('sluice_memory_process_bytes', 'Resident memory (RSS) of each process of the node (`primary`, `w<slot>`, or `node` for a node in one process), sampled by the memory governor.', ['process']);
    this.memoryNodeBytes = gauge('sluice_memory_node_bytes', 'The node\'s processes\' resident memory summed, as the memory governor last measured it against the budget; the highest of the workers\'.', [], 'max');
    this.memoryBudgetBytes = gauge('sluice_memory_budget_bytes', 'The memory budget (memory.budget); the same in every process.', [], 'max');
    this.memoryIdleTrims = counter('sluice_memory_idle_trims_total', 'Garbage collections a process made while idle to give back the heap it had reserved and no longer used (core/idle-trim.ts).', []);
    this.memoryIdleTrimmedBytes = counter('sluice_memory_idle_trimmed_bytes_total', 'V8 heap (reserved, not used) the idle collections gave back.', []);
    this.connectionCapacity = gauge('sluice_connection_capacity', 'Stream connections this node can hold: the file-descriptor limit minus a reserve.', []);
    this.adminRefused = counter('sluice_admin_refused_requests_total', 'Admin server requests refused before any token was looked at, or tails refused a slot, by reason: host (a Host header the server does not answer to, 421), origin (a change from another site, 403), tail_slots (every tail slot taken, 429), tenant_tail_share (a tenant\'s scoped tokens hold their share, 429).', ['reason']);
    this.adminTailDropped = counter('sluice_admin_tail_dropped_lines_total', 'Live tail lines dropped because a hop fell behind, by stage: worker (the IPC channel to the primary), client (the tail\'s reader). The reader is told each count.', ['stage']);
    this.adminTails = gauge('sluice_admin_tails', 'Live tails open on the admin server.', []);
    this.sessionsShed = counter('sluice_sessions_shed_total', 'Agent connections asked to reconnect to spread the load (RELP serverclose, HTTP Connection: close), by protocol.', ['protocol']);
    this.clusterMembers = gauge('sluice_cluster_members', 'Members of the cluster this node sees (0: not in cluster mode, or NATS unreachable).', [], 'max');
    this.clusterLeader = gauge('sluice_cluster_leader', '1 while this node is the cluster\'s leader.', [], 'max');
    this.clusterConnected = gauge('sluice_cluster_connected', '1 while this node reaches NATS and its heartbeat is written (cluster mode).', [], 'max');
    this.hostLockTakeovers = counter('sluice_host_lock_takeovers_total', 'Sessions closed because their host connected through another node or worker, which took its session lock over.', []);
    this.hostLocksHeld = gauge('sluice_host_locks_held', 'Host session locks this node holds (cluster mode).', []);
    this.sinkTruncated = counter('sluice_sink_truncated_records_total', 'Records cut to the sink\'s max message size.', ['sink']);
    this.logDroppedLines = new Counter({
      name: 'sluice_log_dropped_lines_total',
      help: 'Lines of the node\'s own log that its syslog output dropped, by reason (`queue_full`: receiver away or slow; `send_error`).',
      labelNames: ['reason'],
      registers,
      // The destination counts on its own (it sits below the logger); read its totals at scrape time.
      collect() {
        const dropped = logDropsOf(logger);
        if (dropped === undefined) return;
        this.reset();
        for (const [reason, lines] of Object.entries(dropped) as [LogDropReason, number][]) this.inc({ reason }, lines);
      },
    });
    this.sourceAcceptedRecords = counter('sluice_source_accepted_records_total', 'Records a source handed to the pipeline with a route (after attribution and rate limits).', ['source']);
    this.sourceAcceptedBytes = counter('sluice_source_accepted_bytes_total', 'Bytes of the records counted by sluice_source_accepted_records_total.', ['source']);
    this.tenantMetaMissingRecords = counter('sluice_tenant_meta_missing_records_total', 'Records of a tenant that went on without their host\'s metadata (their `meta_missing`): `timeout` (the service did not answer within hostmeta.client.lookup_timeout) or `unavailable` (it failed, or is backed off from); tenants past admin.tenant_series share `other`.', ['tenant', 'reason']);
    this.tenantAcceptedRecords = counter('sluice_tenant_accepted_records_total', 'Records accepted for a tenant; tenants past admin.tenant_series share the label `other`.', ['tenant']);
    this.tenantAcceptedBytes = counter('sluice_tenant_accepted_bytes_total', 'Bytes of the records counted by sluice_tenant_accepted_records_total.', ['tenant']);
    this.tenantDeliveredRecords = counter('sluice_tenant_delivered_records_total', 'Records of a tenant a sink has delivered (written to its file, sent to the syslog receiver, stored by JetStream); tenants past admin.tenant_series share `other`.', ['sink', 'tenant']);
    this.tenantDeliveredBytes = counter('sluice_tenant_delivered_bytes_total', 'Encoded bytes of the records counted by sluice_tenant_delivered_records_total.', ['sink', 'tenant']);
    this.tenantDroppedRecords = counter('sluice_tenant_dropped_records_total', 'Records of a tenant a sink gave up on, whatever the reason (the reasons are in sluice_sink_dropped_records_total).', ['sink', 'tenant']);
    this.tenantFailedSends = counter('sluice_tenant_failed_sends_total', 'Sends (file writes) holding records of a tenant that failed; the records stay queued and go again after a backoff.', ['sink', 'tenant']);
    this.tenantRetriedBytes = counter('sluice_tenant_retried_bytes_total', 'Bytes of a tenant\'s records in the sends counted by sluice_tenant_failed_sends_total: sent again.', ['sink', 'tenant']);
    const udpListeners = this.udpListeners;
    new Counter({
      name: 'sluice_udp_kernel_dropped_total',
      help: 'Datagrams the kernel dropped for a UDP listener\'s socket because its receive buffer was full (the `drops` column of /proc/net/udp), by listener.',
      labelNames: ['listener'], registers,
      collect(this: Counter<'listener'>) {
        this.reset();
        for (const [listener, sample] of udpListeners) {
          const dropped = sample().kernelDropped;
          if (dropped !== null) this.inc({ listener }, dropped);
        }
      },
    });
    new Gauge({
      name: 'sluice_udp_handoff_queued_bytes',
      help: 'Bytes a UDP listener\'s reader thread has handed off and the event loop has not yet taken, by listener (bounded by `handoff_buffer`).',
      labelNames: ['listener'], registers,
      collect(this: Gauge<'listener'>) {
        this.reset();
        for (const [listener, sample] of udpListeners) this.set({ listener }, sample().handoffQueuedBytes);
      },
    });
    const hostErrors = () => this.udpHostErrors?.() ?? null;
    new Counter({
      name: 'sluice_udp_host_receive_errors_total',
      help: 'The host\'s UDP receive errors, every socket (IPv4 and IPv6, /proc/net/snmp{,6}): `RcvbufErrors` (a receive buffer was full) and `InErrors` (every failed receive). Reported while a UDP listener runs.',
      labelNames: ['error'], registers, aggregator: 'max',
      collect(this: Counter<'error'>) {
        const errors = hostErrors();
        this.reset();
        if (errors === null) return;
        this.inc({ error: 'RcvbufErrors' }, errors.rcvbufErrors);
        this.inc({ error: 'InErrors' }, errors.inErrors);
      },
    });
    const tenantLabel = (id: string): string => this.tenantLabel(id);
    this.tenantQueuedBytes = new Gauge({
      name: 'sluice_tenant_queued_bytes', help: 'Bytes of a tenant\'s records a sink holds and has not yet delivered.', labelNames: ['sink', 'tenant'], registers,
      collect(this: Gauge<'sink' | 'tenant'>) {
        this.reset();
        // inc, not set: the tenants past admin.tenant_series add up under `other`.
        for (const [sink, queues] of sinkQueues) for (const share of queues.tenants()) this.inc({ sink, tenant: tenantLabel(share.tenant) }, share.queued);
      },
    });
    const totals = () => this.sessionTotals?.();
    const sessionGauge = (name: string, help: string, pick: (t: { open: number; queuedBytes: number; paused: number }) => number) => new Gauge({
      name, help, registers,
      // Read at scrape time: one walk over the sessions per scrape, nothing per record.
      collect(this: Gauge) {
        const now = totals();
        if (now !== undefined) this.set(pick(now));
      },
    });
    sessionGauge('sluice_sessions', 'Open stream sessions (TCP, TLS, RELP).', (t) => t.open);
    sessionGauge('sluice_sessions_queued_bytes', 'Bytes read by stream sessions and not yet handed on (partial frames, held batches, unanswered RELP replies).', (t) => t.queuedBytes);
    sessionGauge('sluice_sessions_paused', 'Stream sessions not reading: throttled by their tenant\'s limit or governed for memory.', (t) => t.paused);
    this.ackLatency = new Histogram({
      name: 'sluice_ack_latency_seconds',
      help: 'From reading an acknowledged batch (RELP, HTTP) to every sink having committed it.',
      labelNames: ['source'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    // Three gauges, not one with a `quantile` label: that label belongs to summaries (promtool says so).
    // One sample of the monitor (which starts over on each) serves the three gauges of a scrape: the next
    // sample is taken when a gauge is read a second time, so the first gauge read does not zero the others.
    let snapshot: { p50: number; p99: number; max: number } | undefined;
    const readSince = new Set<string>();
    const sample = (stat: string): { p50: number; p99: number; max: number } | undefined => {
      if (snapshot === undefined || readSince.has(stat)) {
        snapshot = this.eventLoopDelaySource?.();
        readSince.clear();
      }
      readSince.add(stat);
      return snapshot;
    };
    const worker = (): string | null => this.workerLabel;
    for (const [stat, what] of [['p50', 'median'], ['p99', '99th percentile'], ['max', 'largest']] as const) {
      new Gauge({
        name: `sluice_event_loop_delay_${stat}_seconds`,
        help: `Event-loop delay since the previous scrape, ${what} (perf_hooks.monitorEventLoopDelay, 10 ms resolution); the highest of the workers'.`,
        registers,
        aggregator: 'max',
        collect(this: Gauge) {
          const delay = sample(stat);
          if (delay !== undefined) this.set(delay[stat]);
        },
      });
      // The same per worker process (a node of several workers only): which one is late.
      new Gauge({
        name: `sluice_worker_event_loop_delay_${stat}_seconds`,
        help: `Event-loop delay of one worker process since the previous scrape, ${what}.`,
        labelNames: ['worker'],
        registers,
        aggregator: 'max',
        collect(this: Gauge<'worker'>) {
          const id = worker();
          const delay = id === null ? undefined : sample(`worker ${stat}`);
          if (id !== null && delay !== undefined) this.set({ worker: id }, delay[stat]);
        },
      });
    }
  }

  /** Report `queues` as sink `sink`'s (replacing what a sink of that name reported before). */
  watchSinkQueues(sink: string, queues: QueueSource): void {
    this.sinkQueues.set(sink, queues);
  }

  /** A TLS listener's handshakes, read at scrape time (sluice_tls_handshakes). */
  watchHandshakes(source: string, counts: () => { handshaking: number; waiting: number }): void {
    this.handshakeSources.set(source, counts);
  }

  /** Report a UDP listener's numbers at scrape time (until unwatchUdpListener). */
  watchUdpListener(listener: string, sample: () => UdpListenerSample): void {
    this.udpListeners.set(listener, sample);
  }

  unwatchUdpListener(listener: string): void {
    this.udpListeners.delete(listener);
  }

  /** Give each of the first `max` of these tenants a series of its own (the node calls it once, at construction). */
  setTenantSeries(ids: Iterable<string>, max: number): void {
    this.tenantSeries.clear();
    for (const id of ids) {
      if (this.tenantSeries.size >= max) break;
      this.tenantSeries.add(id);
    }
  }

  /** The `tenant` label value for a tenant id: itself, or `other` past the cap (bounded cardinality). */
  tenantLabel(id: string): string {
    return this.tenantSeries.has(id) ? id : 'other';
  }

  /** Log an event with its stable code and increment its counter (by `count`). */
  emit(name: EventName, fields: EventFields = {}, count = 1): void {
    const def: EventDef = EVENTS[name];
    if (def.counter !== undefined) {
      const labels: Record<string, string> = {};
      for (const key of COUNTER_LABELS[def.counter]) labels[key] = String(fields[key] ?? '');
      (this[def.counter] as Counter<string>).inc(labels, count);
    }
    if (!this.logger.isLevelEnabled(def.level)) return;
    let suppressed = 0;
    if (def.throttleMs !== undefined) {
      const key = `${def.code}/${fields.source ?? ''}/${fields.reason ?? ''}`;
      const now = Date.now();
      const last = this.lastLogged.get(key);
      if (last !== undefined && now - last < def.throttleMs) {
        this.suppressed.set(key, (this.suppressed.get(key) ?? 0) + count);
        return;
      }
      this.lastLogged.set(key, now);
      suppressed = this.suppressed.get(key) ?? 0;
      this.suppressed.delete(key);
    }
    const line = suppressed > 0 ? { code: def.code, ...fields, suppressed } : { code: def.code, ...fields };
    this.logger[def.level](line, def.text);
  }

  /** This process's part of its node's load. */
  async loadSample(): Promise<LoadSample> {
    const total = async (metric: Counter<string> | Gauge<string>): Promise<number> => (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);
    return {
      connections: this.sessionTotals?.().open ?? 0,
      receivedRecords: await total(this.recordsReceived),
      receivedBytes: await total(this.bytesReceived),
      rssBytes: process.memoryUsage.rss(),
      memoryState: await total(this.memoryState),
    };
  }

  /** Current value of a counter or gauge summed over the label sets that match `labels`. */
  async value(metric: string, labels: Record<string, string> = {}): Promise<number> {
    const found = this.registry.getSingleMetric(metric);
    if (!found) throw new Error(`no metric ${metric}`);
    const { values } = await found.get();
    let sum = 0;
    for (const v of values) {
      if (Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want)) sum += v.value;
    }
    return sum;
  }
}

/**
 * Log a registered event without a Telemetry: for parts that keep no metrics
 * of their own (the admin server, which may run in a process without a node).
 */
export function logEvent(logger: Logger, name: EventName, fields: EventFields = {}): void {
  const def = EVENTS[name] as EventDef;
  if (logger.isLevelEnabled(def.level)) logger[def.level]({ code: def.code, ...fields }, def.text);
}

/** Markdown reference of every metric, generated from a node's registry. */
export function renderMetricDocs(): string {
  const telemetry = new Telemetry(pino({ level: 'silent' }));
  const lines = [
    '# Metrics',
    '',
    'Counters and gauges every node keeps (prom-client). Counters are incremented once per',
    'chunk or batch on the hot path, never per record call. Label values are bounded: sources',
    'and sinks by configured name, reasons by the fixed sets below, tenants by',
    '`admin.tenant_series` (the first tenants in configuration order; the rest share `other`).',
    'Process metrics (`process_*`, `nodejs_*`) are prom-client\'s defaults. The dashboard, the',
    'admin API and scoped views are described in [admin.md](admin.md).',
    '',
    '| metric | type | labels | meaning |',
    '|---|---|---|---|',
  ];
  for (const metric of telemetry.registry.getMetricsAsArray()) {
    const m = metric as unknown as { name: string; help: string; type: string; labelNames: string[] };
    lines.push(`| \`${m.name}\` | ${m.type} | ${m.labelNames.join(', ')} | ${m.help} |`);
  }
  lines.push('', 'Reasons: refused `no_tenant`; bad frames `too_large`, `bad_octet_count`, `truncated`;',
    'dropped `backpressure` (UDP while the sinks are congested), `no_route` (a tenant no sink takes),',
    '`memory` (UDP past the memory hard mark); refused `memory` (connections past the memory hard mark),',
    '`fd_limit` (connections past the node\'s file-descriptor capacity).', '');
  return lines.join('\n');
}
