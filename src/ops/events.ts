/**
 * The registry of every event the node logs. Each event has a stable code —
 * prefix SLU, four digits, severity letter (I info, W warning, E error) — so
 * operators can grep and alert on codes that never change between versions.
 * docs/events.md is generated from this table and a test keeps them equal.
 */

export type EventLevel = 'info' | 'warn' | 'error';

export interface EventDef {
  readonly code: string;
  readonly level: EventLevel;
  readonly text: string;
  /** The counter this event increments, if any (see telemetry.ts). */
  readonly counter?: CounterName;
  /** Log at most once per this many ms per event; the suppressed count rides on the next line. */
  readonly throttleMs?: number;
}

export type CounterName = 'connectionsRefused' | 'connectionsClosed' | 'framesRejected' | 'recordsDropped' | 'sinkErrors' | 'restarts';

const THROTTLE_MS = 10_000;

export const EVENTS = {
  nodeStarting: { code: 'SLU0001I', level: 'info', text: 'node starting' },
  listening: { code: 'SLU0002I', level: 'info', text: 'source listening' },
  nodeReady: { code: 'SLU0003I', level: 'info', text: 'node ready' },
  nodeStopping: { code: 'SLU0004I', level: 'info', text: 'node stopping: no longer accepting, draining' },
  nodeStopped: { code: 'SLU0005I', level: 'info', text: 'node stopped' },
  shutdownDeadline: { code: 'SLU0006E', level: 'error', text: 'shutdown deadline passed before everything was flushed' },
  configInvalid: { code: 'SLU0007E', level: 'error', text: 'configuration is invalid' },
  startFailed: { code: 'SLU0008E', level: 'error', text: 'node failed to start' },

  connectionRefused: {
    code: 'SLU0100W', level: 'warn', text: 'connection refused', counter: 'connectionsRefused', throttleMs: THROTTLE_MS,
  },
  frameRejected: {
    code: 'SLU0101W', level: 'warn', text: 'bad frame: connection closed', counter: 'framesRejected', throttleMs: THROTTLE_MS,
  },
  recordsDropped: {
    code: 'SLU0102W', level: 'warn', text: 'records dropped', counter: 'recordsDropped', throttleMs: THROTTLE_MS,
  },
  socketError: { code: 'SLU0103W', level: 'warn', text: 'connection error', throttleMs: THROTTLE_MS },
  sourceError: { code: 'SLU0104E', level: 'error', text: 'source failed' },
  connectionClosed: {
    code: 'SLU0106W', level: 'warn', text: 'connection closed by the node', counter: 'connectionsClosed', throttleMs: THROTTLE_MS,
  },
  recordRefused: {
    code: 'SLU0105W', level: 'warn', text: 'record refused: its credentials name no tenant', counter: 'connectionsRefused', throttleMs: THROTTLE_MS,
  },

  fileRotated: { code: 'SLU0200I', level: 'info', text: 'file rotated' },
  fileWriteFailed: {
    code: 'SLU0201E', level: 'error', text: 'file write failed; retrying', counter: 'sinkErrors', throttleMs: THROTTLE_MS,
  },
  fileRetentionFailed: { code: 'SLU0202W', level: 'warn', text: 'could not remove an old rotated file', throttleMs: THROTTLE_MS },
  fileTornTail: { code: 'SLU0203W', level: 'warn', text: 'partial last line left by a crash cut off the active file' },

  hostmetaListening: { code: 'SLU0300I', level: 'info', text: 'host metadata service listening' },
  hostmetaStopped: { code: 'SLU0301I', level: 'info', text: 'host metadata service stopped' },
  hostmetaMigrated: { code: 'SLU0302I', level: 'info', text: 'host metadata store schema migrated' },
  hostmetaStartFailed: { code: 'SLU0303E', level: 'error', text: 'host metadata service failed to start' },
  hostmetaStoreFailed: { code: 'SLU0304E', level: 'error', text: 'host metadata store request failed', throttleMs: THROTTLE_MS },
  hostmetaLookupFailed: {
    code: 'SLU0310W', level: 'warn', text: 'host metadata lookup failed; serving the last known value', throttleMs: THROTTLE_MS,
  },
  hostmetaResponseMismatch: {
    code: 'SLU0311E', level: 'error', text: 'host metadata response does not name its request\'s tenant and key; discarded', throttleMs: THROTTLE_MS,
  },
  hostmetaTouchFailed: { code: 'SLU0312W', level: 'warn', text: 'host registration or last_seen refresh failed', throttleMs: THROTTLE_MS },
  hostmetaTouchesDropped: {
    code: 'SLU0313W', level: 'warn', text: 'host touches dropped: too many registrations in flight', throttleMs: THROTTLE_MS,
  },
  relpProtocolError: {
    code: 'SLU0400W', level: 'warn', text: 'RELP protocol error: connection closed', counter: 'framesRejected', throttleMs: THROTTLE_MS,
  },
  relpNotCommitted: {
    code: 'SLU0401W', level: 'warn', text: 'RELP records answered 500: not committed by every acknowledging sink', throttleMs: THROTTLE_MS,
  },
  relpSessionsClosing: { code: 'SLU0402I', level: 'info', text: 'RELP sessions draining: answering what they sent, then serverclose' },
  relpDrainIncomplete: {
    code: 'SLU0403W', level: 'warn', text: 'RELP sessions still open at the drain deadline were closed; their unanswered records will be resent',
  },
  bufferOpened: { code: 'SLU0450I', level: 'info', text: 'disk buffer opened' },
  bufferTornTail: {
    code: 'SLU0451W', level: 'warn', text: 'disk buffer: incomplete entry at the end of the newest segment truncated (an append that never completed)',
  },
  bufferCorrupt: { code: 'SLU0452E', level: 'error', text: 'disk buffer: damaged entry; the rest of its segment is skipped', throttleMs: THROTTLE_MS },
  bufferEntriesLost: { code: 'SLU0453E', level: 'error', text: 'disk buffer: entries lost to damage were skipped', throttleMs: THROTTLE_MS },
  bufferDropped: { code: 'SLU0454W', level: 'warn', text: 'disk buffer: entry refused and its records dropped', throttleMs: THROTTLE_MS },
  bufferWriteFailed: {
    code: 'SLU0455E', level: 'error', text: 'disk buffer write failed; the appends of that batch were rejected', throttleMs: THROTTLE_MS,
  },
  bufferMaintenanceFailed: {
    code: 'SLU0456W', level: 'warn', text: 'disk buffer: saving the checkpoint or removing a segment failed; retrying', throttleMs: THROTTLE_MS,
  },
  bufferCheckpointUnreadable: { code: 'SLU0457W', level: 'warn', text: 'disk buffer: checkpoint unreadable; replaying from the oldest segment' },
  bufferStaleLock: { code: 'SLU0458I', level: 'info', text: 'disk buffer: lock left by a process that is gone taken over' },
  sinkConnected: { code: 'SLU0500I', level: 'info', text: 'sink connected to its receiver' },
  sinkDisconnected: {
    code: 'SLU0501W', level: 'warn', text: 'sink lost its connection; the next send reconnects', throttleMs: THROTTLE_MS,
  },
  sinkSendFailed: {
    code: 'SLU0502W', level: 'warn', text: 'sink send failed; retrying with backoff', counter: 'sinkErrors', throttleMs: THROTTLE_MS,
  },
  sinkRecordsDropped: { code: 'SLU0503W', level: 'warn', text: 'sink dropped records', throttleMs: THROTTLE_MS },
  natsStreamCreated: { code: 'SLU0510I', level: 'info', text: 'JetStream stream created' },

  primaryStarting: { code: 'SLU0700I', level: 'info', text: 'primary starting its workers' },
  workerReady: { code: 'SLU0701I', level: 'info', text: 'worker ready: serving every listener' },
  childRestarting: {
    code: 'SLU0702W', level: 'warn', text: 'worker or component ended unexpectedly; restarting after its backoff', counter: 'restarts',
  },
  crashLoop: {
    code: 'SLU0703E', level: 'error', text: 'crash loop: restarted again and again without running stably; still retrying at the longest backoff while the rest serves',
  },
  childRecovered: { code: 'SLU0704I', level: 'info', text: 'worker or component running stably again after failures' },
  reloadAccepted: { code: 'SLU0705I', level: 'info', text: 'configuration reload accepted: rolling the workers onto it' },
  reloadRefused: { code: 'SLU0706E', level: 'error', text: 'configuration reload refused: the running configuration stays' },
  rollingRestartStarted: { code: 'SLU0707I', level: 'info', text: 'rolling restart: replacing the workers one at a time' },
  rollingRestartDone: { code: 'SLU0708I', level: 'info', text: 'rolling restart finished' },
  workerDraining: { code: 'SLU0709I', level: 'info', text: 'worker draining: no longer accepting, finishing its sessions, flushing' },
  workerUnanswered: { code: 'SLU0710W', level: 'warn', text: 'a worker did not answer a control request in time', throttleMs: THROTTLE_MS },
  primaryStopped: { code: 'SLU0711I', level: 'info', text: 'primary stopped: every worker drained' },
} as const satisfies Record<string, EventDef>;

export type EventName = keyof typeof EVENTS;

export function renderEventDocs(): string {
  const lines = [
    '# Log events',
    '',
    'Every line sluice logs is JSON (pino) on standard error and carries a stable `code`:',
    '`SLU`, four digits, and a severity letter (`I` info, `W` warning, `E` error). Codes never',
    'change meaning between versions. Events marked *throttled* are logged at most once per',
    '10 s each; the line then carries `suppressed`, the number of occurrences not logged.',
    'Events with a counter also increment it, in the same call (see the metrics reference).',
    '',
    '| code | level | event | message | counter | throttled |',
    '|---|---|---|---|---|---|',
  ];
  for (const [name, def] of Object.entries(EVENTS) as [string, EventDef][]) {
    lines.push(`| ${def.code} | ${def.level} | ${name} | ${def.text} | ${def.counter ?? ''} | ${def.throttleMs ? 'yes' : ''} |`);
  }
  return lines.join('\n') + '\n';
}
