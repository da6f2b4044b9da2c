/**
 * The registry of every event the node logs. Each event has a stable code —
 * prefix SLU, four digits, severity letter (I info, W warning, E error) — so
 * operators can grep and alert on codes that never change between versions.
 * docs/log-codes.md is generated from this table and a test keeps them equal.
 *
 * Ranges: 00xx node, 01xx sources, 02xx file sink, 03xx host metadata,
 * 04xx RELP, 045x disk buffer, 05xx delivery sinks, 06xx the node's own log output, 07xx the admin server,
 * 08xx the primary, its workers and supervision, 09xx cluster mode.
 */

export type EventLevel = 'info' | 'warn' | 'error';

interface EventBase {
  readonly code: string;
  readonly text: string;
  /** The counter this event increments, if any (see telemetry.ts). */
  readonly counter?: CounterName;
  /** Log at most once per this many ms per event; the suppressed count rides on the next line. */
  readonly throttleMs?: number;
}

/** Warnings and errors must say what they mean for the operator and what to do (`help`, in docs/log-codes.md). */
export type EventDef =
  | (EventBase & { readonly level: 'info'; readonly help?: string })
  | (EventBase & { readonly level: 'warn' | 'error'; readonly help: string });

export type CounterName = 'connectionsRefused' | 'connectionsClosed' | 'framesRejected' | 'recordsDropped' | 'sinkErrors' | 'restarts';

const THROTTLE_MS = 10_000;

export const EVENTS = {
  nodeStarting: { code: 'SLU0001I', level: 'info', text: 'node starting' },
  listening: { code: 'SLU0002I', level: 'info', text: 'source listening' },
  nodeReady: { code: 'SLU0003I', level: 'info', text: 'node ready' },
  nodeStopping: { code: 'SLU0004I', level: 'info', text: 'node stopping: no longer accepting, draining' },
  nodeStopped: { code: 'SLU0005I', level: 'info', text: 'node stopped' },
  shutdownDeadline: {
    code: 'SLU0006E', level: 'error', text: 'shutdown deadline passed before everything was flushed',
    help: 'Something did not finish within `shutdown_timeout`; records not yet committed may be lost (acknowledged ones were committed). The `error` field names what was still busy; raise `shutdown_timeout` if the drain is just slow.',
  },
  configInvalid: {
    code: 'SLU0007E', level: 'error', text: 'configuration is invalid',
    help: 'The node did not start. Fix the problems listed above this line (each names its key and line), or check the file first with `sluice validate -c <file>`.',
  },
  startFailed: {
    code: 'SLU0008E', level: 'error', text: 'node failed to start',
    help: 'The node exited without accepting anything. The `error` field says why: usually a port already in use, a missing certificate file or an unwritable `data_dir`.',
  },
  secondSignal: {
    code: 'SLU0009W', level: 'warn', text: 'second signal: exiting without waiting for the drain',
    help: 'The node exited without draining: records received but not yet committed were lost (RELP and HTTP senders resend theirs; UDP and plain TCP senders do not). Send one signal and wait up to `shutdown_timeout`.',
  },
  connectionCapacity: { code: 'SLU0011I', level: 'info', text: 'connection capacity: how many connections the open-files limit lets this node hold' },
  openFilesLow: {
    code: 'SLU0010W', level: 'warn', text: 'open-files limit is below what the listeners may accept',
    help: 'Every agent connection holds a file descriptor; past `open_files_limit`, new connections fail at accept (EMFILE) instead of being refused and counted. Raise the limit (`LimitNOFILE=` in the systemd unit, see deployment.md) above `wanted`, or lower the listeners\' `max_connections`.',
  },
  eventLoopDelayed: {
    code: 'SLU0050W', level: 'warn', text: 'event loop delayed: p99 over 100 ms in the last second', throttleMs: THROTTLE_MS,
    help: 'For a second the node answered its sockets late: records waited and acks were slow. Usually the machine is short of CPU (other processes, too few workers) or one huge request; `sluice_event_loop_delay_p99_seconds` shows how often. Add cores or workers, or lower the load.',
  },

  connectionRefused: {
    code: 'SLU0100W', level: 'warn', text: 'connection refused', counter: 'connectionsRefused', throttleMs: THROTTLE_MS,
    help: 'A sender was turned away (`reason`: no tenant claims its network, bad or missing token, failed TLS handshake, connection limit). Expected from strangers; from a known agent, check its network, token or certificate against the tenant config.',
  },
  frameRejected: {
    code: 'SLU0101W', level: 'warn', text: 'bad frame: connection closed', counter: 'framesRejected', throttleMs: THROTTLE_MS,
    help: 'A sender broke the framing (`reason`: frame over `max_frame`, bad octet count, truncated frame); only its own connection was closed. Fix the sender\'s framing or raise `max_frame`.',
  },
  recordsDropped: {
    code: 'SLU0102W', level: 'warn', text: 'records dropped', counter: 'recordsDropped', throttleMs: THROTTLE_MS,
    help: 'Records were lost on purpose (`reason`: `backpressure` while the sinks were behind, `rate_limited` over the tenant\'s limit, `no_route` for a tenant no sink takes, `handoff_full` when the UDP reader thread found its hand-off ring full because the event loop fell behind). Add sink capacity, raise the tenant limit, route the tenant, or raise `sources.syslog_udp.handoff_buffer` (or add cores); `sluice_dropped_records_total` has the totals.',
  },
  socketError: {
    code: 'SLU0103W', level: 'warn', text: 'connection error', throttleMs: THROTTLE_MS,
    help: 'A connection failed at the network level (reset by the sender, usually). Harmless once in a while; many at once point at the network or a crashing agent.',
  },
  sourceError: {
    code: 'SLU0104E', level: 'error', text: 'source failed',
    help: 'A listener (or a disk buffer\'s reader) failed and may have stopped accepting. The `error` field says why; restart the node once it is fixed.',
  },
  connectionClosed: {
    code: 'SLU0106W', level: 'warn', text: 'connection closed by the node', counter: 'connectionsClosed', throttleMs: THROTTLE_MS,
    help: 'The node closed a connection for idling, for a frame left unfinished, or for a TLS handshake not through in time (`idle_timeout`, `frame_timeout`, `handshake_timeout`). Expected for agents that go quiet and for strangers probing the TLS port; raise the timeout if they should stay connected.',
  },
  recordRefused: {
    code: 'SLU0105W', level: 'warn', text: 'record refused: its credentials name no tenant', counter: 'connectionsRefused', throttleMs: THROTTLE_MS,
    help: 'A record\'s token or SD element names no tenant; the record was not accepted. Check the sender\'s token against the tenants\' `tokens`.',
  },
  udpStandby: {
    code: 'SLU0107I', level: 'info', text: 'UDP port held by another worker of this node: standing by, binding it once that worker lets go',
  },

  fileRotated: { code: 'SLU0200I', level: 'info', text: 'file rotated' },
  fileWriteFailed: {
    code: 'SLU0201E', level: 'error', text: 'file write failed; retrying', counter: 'sinkErrors', throttleMs: THROTTLE_MS,
    help: 'The file sink cannot write (disk full, I/O error, permissions); records stay queued and the write is retried, and the sources slow down once the queue fills. Free disk space or fix the folder.',
  },
  fileRetentionFailed: {
    code: 'SLU0202W', level: 'warn', text: 'could not remove an old rotated file', throttleMs: THROTTLE_MS,
    help: 'An old rotated file could not be removed, so disk use grows past the retention settings. Check the folder\'s permissions.',
  },
  fileWriterAdopted: { code: 'SLU0204I', level: 'info', text: 'files of a writer that no longer runs adopted: its active files rotated, its rotated files now this writer\'s (counted in its max_files)' },
  fileAdoptFailed: {
    code: 'SLU0205W', level: 'warn', text: 'could not adopt the files of a writer that no longer runs; retrying', throttleMs: THROTTLE_MS,
    help: 'Files another worker left in the sink\'s folders (its active file, its rotated files) could not be rotated or renamed, so they are not yet covered by rotation and `max_files`; it is tried again every few seconds. Check the folders\' permissions (`error`).',
  },
  fileTornTail: {
    code: 'SLU0203W', level: 'warn', text: 'partial last line left by a crash cut off the active file',
    help: 'The previous run crashed mid-write; the unfinished last line (`dropped_bytes`) was cut off so the file stays valid NDJSON. Those records were never acknowledged. Nothing to do unless it repeats.',
  },

  hostmetaListening: { code: 'SLU0300I', level: 'info', text: 'host metadata service listening' },
  hostmetaStopped: { code: 'SLU0301I', level: 'info', text: 'host metadata service stopped' },
  hostmetaMigrated: { code: 'SLU0302I', level: 'info', text: 'host metadata store schema migrated' },
  hostmetaStartFailed: {
    code: 'SLU0303E', level: 'error', text: 'host metadata service failed to start',
    help: 'The host metadata service did not start (`error`: port in use, store unreachable or unwritable). Records can still flow without it; fix the store or the address.',
  },
  hostmetaStoreFailed: {
    code: 'SLU0304E', level: 'error', text: 'host metadata store request failed', throttleMs: THROTTLE_MS,
    help: 'A host metadata request failed in the store (SQLite or PostgreSQL) and was answered 500. Check the database named in the config and its health.',
  },
  hostmetaSecondSignal: {
    code: 'SLU0305W', level: 'warn', text: 'second signal: exiting without waiting for requests in flight',
    help: 'The service exited at once: requests in flight were cut off and their clients retry. Send one signal and wait to let them finish.',
  },
  hostmetaRequestDenied: {
    code: 'SLU0306W', level: 'warn', text: 'host metadata request denied: missing, unknown, ambiguous or out-of-scope token', throttleMs: THROTTLE_MS,
    help: 'A request to the host metadata API (`route`, from `peer`) had no token, an unknown one, two `Authorization` headers, or a tenant-scoped token naming another tenant; it was answered 401, 400 or 403 and changed nothing. Expected once after a token change; repeated, check who is calling (the API must not be reachable from agents\' networks, see security.md).',
  },
  hostmetaTokenCreated: {
    code: 'SLU0307I', level: 'info', text: 'wrote the host metadata service\'s client credential to a file readable only by this user',
    help: 'First start of a host metadata service with this data dir: the token its clients send (a node\'s workers, or nodes whose `hostmeta.client.token_file` names a copy of this file) was generated into `file`.',
  },
  hostmetaLookupFailed: {
    code: 'SLU0310W', level: 'warn', text: 'host metadata lookup failed; serving the last known value', throttleMs: THROTTLE_MS,
    help: 'A batch of lookups (`hosts` of `tenant`, new hosts\' registrations with them) failed: the node could not reach the host metadata service. Records keep the last known metadata, or go on marked `meta_missing: unavailable`; the hosts are asked again after a pause. Check that the service runs and `hostmeta.client.url`.',
  },
  hostmetaResponseMismatch: {
    code: 'SLU0311E', level: 'error', text: 'host metadata response does not name its request\'s tenant and key; discarded', throttleMs: THROTTLE_MS,
    help: 'The host metadata service answered for another tenant or key than asked (a proxy mixing up responses?). The answer was thrown away; check what sits between the node and the service.',
  },
  hostmetaTouchFailed: {
    code: 'SLU0312W', level: 'warn', text: 'host last_seen refresh failed', throttleMs: THROTTLE_MS,
    help: 'Refreshing a host\'s `last_seen` failed; it is retried on a later message. Check the host metadata service. (Registrations go with lookups: their failures are SLU0310W.)',
  },
  hostmetaTouchesDropped: {
    code: 'SLU0313W', level: 'warn', text: 'host last_seen refreshes dropped: too many in flight or per second', throttleMs: THROTTLE_MS,
    help: 'More hosts were due a `last_seen` refresh than the node sends at once or per second; the rest are refreshed on a later record. Persistent means the service is too slow.',
  },
  relpProtocolError: {
    code: 'SLU0400W', level: 'warn', text: 'RELP protocol error: connection closed', counter: 'framesRejected', throttleMs: THROTTLE_MS,
    help: 'A RELP client sent something that is not RELP (or broke its own transaction numbering); its connection was closed. Check the client\'s rsyslog version and config.',
  },
  relpNotCommitted: {
    code: 'SLU0401W', level: 'warn', text: 'RELP records answered 500: not committed by every acknowledging sink', throttleMs: THROTTLE_MS,
    help: 'These records were not committed by every acknowledging sink and were answered 500; the RELP client sends them again. Look at the sink errors logged near this line.',
  },
  relpSessionsClosing: { code: 'SLU0402I', level: 'info', text: 'RELP sessions draining: answering what they sent, then serverclose' },
  relpDrainIncomplete: {
    code: 'SLU0403W', level: 'warn', text: 'RELP sessions still open at the drain deadline were closed; their unanswered records will be resent',
    help: 'At shutdown some RELP sessions still had unanswered records; rsyslog resends them after reconnecting, so nothing is lost, but some may arrive twice.',
  },
  bufferOpened: { code: 'SLU0450I', level: 'info', text: 'disk buffer opened' },
  bufferTornTail: {
    code: 'SLU0451W', level: 'warn', text: 'disk buffer: incomplete entry at the end of the newest segment truncated (an append that never completed)',
    help: 'The previous run stopped mid-append; that append was never acknowledged, so nothing acknowledged is lost. Nothing to do unless it repeats.',
  },
  bufferCorrupt: {
    code: 'SLU0452E', level: 'error', text: 'disk buffer: damaged entry; the rest of its segment is skipped', throttleMs: THROTTLE_MS,
    help: 'Bytes of a disk buffer segment fail their checksum (disk damage or outside tampering); the rest of that segment is skipped. Check the disk; `bufferEntriesLost` says what was lost.',
  },
  bufferEntriesLost: {
    code: 'SLU0453E', level: 'error', text: 'disk buffer: entries lost to damage were skipped', throttleMs: THROTTLE_MS,
    help: 'Acknowledged records were lost to damage on disk and will never be delivered. Check the disk; the counts are in `sluice_buffer_dropped_records_total{reason="corrupt"}`.',
  },
  bufferDropped: {
    code: 'SLU0454W', level: 'warn', text: 'disk buffer: entry refused and its records dropped', throttleMs: THROTTLE_MS,
    help: 'The disk buffer refused records (`reason`: `full` with `when_full: drop`, `timeout` after `block_timeout`, `too_large`). Raise `max_size`, or fix the sink it feeds so it drains.',
  },
  bufferWriteFailed: {
    code: 'SLU0455E', level: 'error', text: 'disk buffer write failed; the appends of that batch were rejected', throttleMs: THROTTLE_MS,
    help: 'Appending to the disk buffer failed (disk full, I/O error); those records were answered as failed and senders that wait for acknowledgements resend. Free disk space or fix the folder.',
  },
  bufferMaintenanceFailed: {
    code: 'SLU0456W', level: 'warn', text: 'disk buffer: saving the checkpoint or removing a segment failed; retrying', throttleMs: THROTTLE_MS,
    help: 'Saving the read position or removing a delivered segment failed; it is retried. While it fails, disk use grows and a restart replays more. Check the folder\'s permissions and space.',
  },
  bufferCheckpointUnreadable: {
    code: 'SLU0457W', level: 'warn', text: 'disk buffer: checkpoint unreadable; replaying from the oldest segment',
    help: 'The saved read position was unreadable, so everything still on disk is delivered again: receivers may see duplicates. Nothing to do unless it repeats.',
  },
  bufferStaleLock: { code: 'SLU0458I', level: 'info', text: 'disk buffer: lock left by a process that is gone taken over' },
  bufferLegacyFound: { code: 'SLU0460I', level: 'info', text: 'disk buffer: entries written by an earlier version (one log for every tenant) are replayed first, in their order' },
  bufferLegacyReplayed: { code: 'SLU0461I', level: 'info', text: 'disk buffer: the entries of the earlier version are all delivered and their files removed' },
  bufferAdopted: { code: 'SLU0462I', level: 'info', text: 'disk buffer of this sink that no running process held (a worker slot no longer in use) adopted: replayed here beside the own buffer' },
  bufferAdoptedDelivered: { code: 'SLU0463I', level: 'info', text: 'adopted disk buffer delivered; its folder removed' },
  bufferAdoptFailed: {
    code: 'SLU0464W', level: 'warn', text: 'disk buffer of this sink left by another process could not be adopted; retrying', throttleMs: THROTTLE_MS,
    help: 'A folder under `<data_dir>/buffers/` that no running worker holds could not be opened (or, once delivered, removed), so its entries wait; the folder is tried again every few seconds. The `error` field says why: usually permissions or a damaged folder.',
  },
  sinkConnected: { code: 'SLU0500I', level: 'info', text: 'sink connected to its receiver' },
  sinkDisconnected: {
    code: 'SLU0501W', level: 'warn', text: 'sink lost its connection; the next send reconnects', throttleMs: THROTTLE_MS,
    help: 'A forwarding sink lost its receiver; records stay queued and the next send reconnects. Check the receiver if it does not come back (`sluice_sink_connected`).',
  },
  sinkSendFailed: {
    code: 'SLU0502W', level: 'warn', text: 'sink send failed; retrying with backoff', counter: 'sinkErrors', throttleMs: THROTTLE_MS,
    help: 'A forwarding sink could not deliver a batch and retries with backoff; records stay queued and the sources slow down once the queue fills. Check the receiver named by `sink`.',
  },
  sinkRecordsDropped: {
    code: 'SLU0503W', level: 'warn', text: 'sink dropped records', throttleMs: THROTTLE_MS,
    help: 'A forwarding sink gave up on records (`reason`, see docs/sinks.md: e.g. a full UDP socket or a receiver rejecting them). They are lost; fix the receiver or give the sink a disk buffer.',
  },
  natsStreamCreated: { code: 'SLU0510I', level: 'info', text: 'JetStream stream created' },

  logToSyslog: {
    code: 'SLU0600I', level: 'info', text: 'the node logs to syslog from here on',
    help: 'Written to standard error only, once, when `log.output` is `syslog`: every later line goes to `receiver`.',
  },
  logLinesDropped: {
    code: 'SLU0601W', level: 'warn', text: 'log lines dropped: the syslog receiver is unreachable or too slow',
    help: 'The syslog receiver of the node\'s own log was unreachable or too slow; `lines` log lines since the last notice were dropped (the node itself is not affected). Check the receiver at `receiver`; `sluice_log_dropped_lines_total` has the totals.',
  },

  adminListening: { code: 'SLU0700I', level: 'info', text: 'admin server listening: dashboard, /metrics, /healthz, /readyz, /api' },
  adminTokenCreated: { code: 'SLU0701I', level: 'info', text: 'no admin token configured: wrote a whole-node admin token to a file readable only by this user' },
  adminRequestDenied: {
    code: 'SLU0702W', level: 'warn', text: 'admin request denied: a Host it does not answer to, a change from another site, or a missing, unknown, ambiguous or out-of-scope token', throttleMs: THROTTLE_MS,
    help: 'A request to the admin server (`route`, from `peer`) was refused. `reason` `host`: its `Host` header named neither the listen address, loopback nor `admin.hosts` (421; a browser page reaching the server through DNS rebinding looks like this; an operator using a new name needs it in `admin.hosts`). `origin`: a change (POST, PUT, PATCH, DELETE) whose `Origin` is another site (403). `token`: no token, an unknown one, two `Authorization` headers, or a tenant-scoped token asking for another tenant or the whole node (401, 400 or 403); expected once after a token change. Repeated, check who is calling; `sluice_admin_refused_requests_total` counts the first two.',
  },
  componentControlled: { code: 'SLU0703I', level: 'info', text: 'component stopped, started or restarted by an admin request' },
  sessionDisconnected: { code: 'SLU0704I', level: 'info', text: 'session disconnected by an admin request' },
  tenantLimitsChanged: { code: 'SLU0705I', level: 'info', text: 'tenant limits changed by an admin request' },
  heapSnapshotWritten: { code: 'SLU0706I', level: 'info', text: 'heap snapshot written' },
  primaryStarting: { code: 'SLU0800I', level: 'info', text: 'primary starting its workers' },
  workerReady: { code: 'SLU0801I', level: 'info', text: 'worker ready: serving every listener' },
  childRestarting: {
    code: 'SLU0802W', level: 'warn', text: 'worker or component ended unexpectedly; restarting after its backoff', counter: 'restarts',
    help: 'A worker process (`component` worker:<n>) or a component died and is restarted after `delay_ms` (exponential backoff with jitter). The other workers keep serving; what was acknowledged is durable. `error` says how it ended; a worker killed by a signal (SIGKILL: often the kernel OOM killer) is worth a look at memory.',
  },
  crashLoop: {
    code: 'SLU0803E', level: 'error', text: 'crash loop: restarted again and again without running stably; still retrying at the longest backoff while the rest serves',
    help: 'The worker or component named by `component` failed `failures` times in a row (supervision.crash_loop_after). The node stays up on its healthy workers and /readyz says so; the `sluice_crash_loop` gauge is 1. Read the lines before it (SLU0008E startFailed of that worker, its `error`): usually a resource only it uses (its disk buffer folder, a full disk) or a bad config.',
  },
  childRecovered: { code: 'SLU0804I', level: 'info', text: 'worker or component running stably again after failures' },
  reloadAccepted: { code: 'SLU0805I', level: 'info', text: 'configuration reload accepted: rolling the workers onto it' },
  reloadRefused: {
    code: 'SLU0806E', level: 'error', text: 'configuration reload refused: the running configuration stays',
    help: 'A reload (SIGHUP or `sluice reload`) found problems in the file (`problems`, each with line and key) or a change that takes a full restart (data_dir, hostmeta.service), or a replacement worker did not start. Nothing changed: the node serves on with the configuration it had. Fix the file (`sluice validate -c <file>`) and reload again.',
  },
  rollingRestartStarted: { code: 'SLU0807I', level: 'info', text: 'rolling restart: replacing the workers one at a time' },
  rollingRestartDone: { code: 'SLU0808I', level: 'info', text: 'rolling restart finished' },
  workerDraining: { code: 'SLU0809I', level: 'info', text: 'worker draining: no longer accepting, finishing its sessions, flushing' },
  workerUnanswered: {
    code: 'SLU0810W', level: 'warn', text: 'a worker did not answer a control request in time', throttleMs: THROTTLE_MS,
    help: 'The primary asked worker `worker` for `method` (metrics, sessions, …) and got no answer in time; that worker is left out of the answer (metrics, /readyz, the dashboard may undercount). A worker that stays silent is probably stuck: it is restarted if it dies; otherwise `sluice restart --rolling` replaces it.',
  },
  primaryStopped: { code: 'SLU0811I', level: 'info', text: 'primary stopped: every worker drained' },
  rollingRestartFailed: {
    code: 'SLU0812E', level: 'error', text: 'rolling restart aborted: the running workers stay',
    help: 'A replacement worker did not become ready (`error`), so the restart stopped before draining the worker it was to replace; the node serves on with the workers it has. Read the replacement\'s SLU0008E line for the cause.',
  },

  sessionsShed: { code: 'SLU0950I', level: 'info', text: 'load shedding: agent connections asked to reconnect, so the balancer spreads them' },
  hostsPruned: { code: 'SLU0951I', level: 'info', text: 'host metadata: hosts unseen for the given time deleted' },

  memoryBudget: { code: 'SLU0610I', level: 'info', text: 'memory governor: budget and marks' },
  memoryBudgetSmall: {
    code: 'SLU0611W', level: 'warn', text: 'memory budget is small for this many processes',
    help: 'Either the processes already hold `node_bytes` (their RSS summed) at start, past the soft mark of `memory.budget`, so the node stays past its marks with nothing to pause; or the worker heap limit derived from the budget (budget / (workers + 1)) came out below the floor, so each worker gets the floor (`heap_limit_mib`). Raise `memory.budget` or lower `workers`; memory.md gives what an idle process costs.',
  },
  memoryPressureRising: {
    code: 'SLU0612W', level: 'warn', text: 'memory pressure rose past a mark',
    help: 'What the node holds (`accounted` bytes of sessions, lanes, sink queues and HTTP bodies; `node_bytes`, its processes\' resident memory summed; or the heap against V8\'s limit) passed a mark of `memory.budget`. Past the soft mark the heaviest sessions stop reading and acks slow down; past the hard mark new connections and requests are refused. Usually a sink slower than the senders: see `sluice_sink_queued_bytes` and memory.md.',
  },
  memoryPressureFalling: { code: 'SLU0613I', level: 'info', text: 'memory pressure fell back below a mark' },
  memorySessionsPaused: {
    code: 'SLU0614W', level: 'warn', text: 'memory governor paused the heaviest sessions', throttleMs: THROTTLE_MS,
    help: 'Past the soft mark the sessions holding or reading the most stopped reading (TCP backpressure reaches their agents; RELP and HTTP acks are delayed). Nothing is lost; they resume as pressure falls. If this repeats, the sinks are slower than the input or `memory.budget` is too small.',
  },
  memorySessionsResumed: { code: 'SLU0615I', level: 'info', text: 'memory governor resumed sessions it had paused', throttleMs: THROTTLE_MS },

  clusterJoined: { code: 'SLU0900I', level: 'info', text: 'cluster: connected to NATS, heartbeating as a member' },
  clusterUnreachable: {
    code: 'SLU0901W', level: 'warn', text: 'cluster: NATS unreachable or a cluster write failed; retrying', throttleMs: THROTTLE_MS,
    help: 'The node could not write its heartbeat or reach the buckets (`error`). It keeps serving its agents; meanwhile it may drop out of the member list (after `cluster.member_ttl`) and give up leadership, and host takeovers through other nodes are not seen. Check the NATS servers in `cluster.nats` (`nats-server` logs, `/healthz?js-enabled-only=true` on their monitoring port).',
  },
  clusterLeaderChanged: { code: 'SLU0902I', level: 'info', text: 'cluster: leader changed' },
  hostMoved: { code: 'SLU0903I', level: 'info', text: 'host session taken over by another node or worker: the old session closed', throttleMs: THROTTLE_MS },
  hostLockFailed: {
    code: 'SLU0904W', level: 'warn', text: 'host session lock could not be written; the host is not locked until its next connection', throttleMs: THROTTLE_MS,
    help: 'NATS did not take the lock write (`error`). Records still flow; only the takeover of this host\'s session by another node is not enforced until it reconnects. Frequent: check the NATS servers and the node\'s connection to them (SLU0901W).',
  },
  clusterShedding: { code: 'SLU0905I', level: 'info', text: 'cluster: asking agents to reconnect elsewhere (over the fair share of connections or past the soft memory mark)' },
  clusterLocksPruned: { code: 'SLU0906I', level: 'info', text: 'cluster leader: removed host session locks of nodes that left' },
  clusterLeft: { code: 'SLU0907I', level: 'info', text: 'cluster: left (resigned leadership, removed the heartbeat)' },
} as const satisfies Record<string, EventDef>;

export type EventName = keyof typeof EVENTS;

const LETTER: Record<EventLevel, string> = { info: 'I', warn: 'W', error: 'E' };

/** The severity letter a code must end with. */
export function levelLetter(level: EventLevel): string {
  return LETTER[level];
}

/** docs/log-codes.md: the table of every code, then what each warning and error means and what to do. */
export function renderEventDocs(): string {
  const events = Object.entries(EVENTS) as [string, EventDef][];
  const lines = [
    '# Log codes',
    '',
    '<!-- Generated from src/telemetry/events.ts by `npm run docs`; edit there. -->',
    '',
    'Every line sluice logs carries a stable `code`: `SLU`, four digits, and a severity letter',
    '(`I` info, `W` warning, `E` error). A code never changes meaning between versions; a new',
    'condition gets a new code. Where the lines go and what they look like: [logging.md](logging.md).',
    '',
    'Events marked *throttled* are logged at most once per 10 s each (per source and reason);',
    'the line then carries `suppressed`, the number of occurrences not logged. Events with a',
    'counter also increment it, in the same call (see [metrics.md](metrics.md)).',
    '',
    'Ranges: `00xx` node, `01xx` sources, `02xx` file sink, `03xx` host metadata, `04xx` RELP,',
    '`045x` disk buffer, `05xx` delivery sinks, `06xx` the node\'s own log output, `07xx` the admin server,',
    '`08xx` the primary, its workers and supervision, `09xx` cluster mode.',
    '',
    '| code | level | event | message | counter | throttled |',
    '|---|---|---|---|---|---|',
  ];
  for (const [name, def] of events) {
    lines.push(`| ${def.code} | ${def.level} | ${name} | ${def.text} | ${def.counter ?? ''} | ${def.throttleMs ? 'yes' : ''} |`);
  }
  lines.push('', '## What each code means and what to do', '');
  for (const [, def] of events) {
    if (def.help === undefined) continue;
    lines.push(`### ${def.code}`, '', `*${def.level}* — ${def.text}`, '', def.help, '');
  }
  return lines.join('\n');
}
