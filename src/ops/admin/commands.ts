/**
 * `sluice top`, `sluice tail` and `sluice sessions`: terminal views of a
 * running node through its admin API (docs/admin.md).
 */
import path from 'node:path';
import type { Command } from 'commander';
import { ADMIN_TOKEN_FILE, readToken } from '../../core/access-tokens.js';
import type { ClusterStatus, SessionView } from '../control.js';
import type { LiveOverview } from './overview.js';

interface ClientOptions {
  url: string;
  token?: string;
  dataDir: string;
}

class AdminClientError extends Error {}

/** The token the user gave: --token, else $SLUICE_ADMIN_TOKEN (null: none). */
function givenToken(options: ClientOptions): string | null {
  if (options.token !== undefined) return options.token;
  const env = process.env.SLUICE_ADMIN_TOKEN;
  return env !== undefined && env !== '' ? env : null;
}

/** The token a node generated into the data dir, if there is one (it may be an earlier node's). */
function generatedToken(file: string): string | null {
  try {
    return readToken(file);
  } catch {
    return null;
  }
}

/**
 * Call the admin API. A token the user gave is always sent; the one in the
 * data dir only when the node asks for one (401): a node that answers a
 * loopback read without a token is not sent a stale file of an earlier node.
 */
async function request(options: ClientOptions, route: string, init: { signal?: AbortSignal } = {}): Promise<Response> {
  const url = new URL(route, options.url.endsWith('/') ? options.url : `${options.url}/`);
  const tokenFile = path.resolve(options.dataDir, ADMIN_TOKEN_FILE);
  const send = async (token: string | null): Promise<Response> => {
    try {
      return await fetch(url, { headers: token === null ? {} : { authorization: `Bearer ${token}` }, ...init });
    } catch (err) {
      throw new AdminClientError(`cannot reach ${url.origin}: ${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}`);
    }
  };
  const given = givenToken(options);
  let response = await send(given);
  let fromFile: string | null = null;
  if (response.status === 401 && given === null && (fromFile = generatedToken(tokenFile)) !== null) {
    await response.body?.cancel();
    response = await send(fromFile);
  }
  if (!response.ok) {
    const body = await response.text();
    let message = body;
    try {
      message = (JSON.parse(body) as { error?: string }).error ?? body;
    } catch { /* not JSON */ }
    if (response.status === 401) message += `\n${tokenHint(given !== null, tokenFile, fromFile !== null)}`;
    throw new AdminClientError(`${url.pathname}: HTTP ${response.status}: ${message}`);
  }
  return response;
}

/** Where the admin token is and how to pass it, after a 401. */
function tokenHint(given: boolean, tokenFile: string, fileTried: boolean): string {
  const how = 'pass it with --token <token> or $SLUICE_ADMIN_TOKEN, or point --data-dir at the node\'s data_dir (it writes its generated token to <data_dir>/admin-token)';
  if (given) return `the token given (--token or $SLUICE_ADMIN_TOKEN) was refused: use one of the node's admin.tokens, or its <data_dir>/admin-token; ${how}`;
  if (fileTried) return `the token in ${tokenFile} was refused (an earlier node's?): ${how}`;
  return `no admin token found (looked in ${tokenFile}): ${how}`;
}

/** Read server-sent events until the stream ends or `signal` aborts. */
export async function readEvents(body: ReadableStream<Uint8Array>, onEvent: (event: string, data: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of body) {
    buffered += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length > 0) onEvent(event, data.join('\n'));
    }
  }
}

function si(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return n >= 100 ? Math.round(n).toString() : n.toFixed(n === Math.round(n) ? 0 : 1);
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)}${units[i]}`;
}

function ms(seconds: number): string {
  return seconds >= 1 ? `${seconds.toFixed(2)}s` : `${(seconds * 1000).toFixed(1)}ms`;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)];
}

/** The `sluice top` screen for one overview (sink rates against the previous one). */
export function renderTop(url: string, now: LiveOverview, before: LiveOverview | null, maxRows = 10): string {
  const r = now.rates;
  const out: string[] = [];
  out.push(`sluice top  ${url}  ${new Date(now.time).toISOString().slice(11, 19)}  ${now.scope === null ? 'whole node' : `tenant ${now.scope}`}`);
  const ack = now.ackLatencyInterval;
  out.push(`in ${si(r.acceptedRecords)} rec/s ${bytes(r.acceptedBytes)}/s   out ${si(r.deliveredRecords)} rec/s ${bytes(r.deliveredBytes)}/s   dropped ${si(r.droppedRecords)}/s`
    + `   connections ${now.totals.connections}   sessions ${now.totals.sessions}`
    + (ack === null ? '' : `   ack p50 ${ms(ack.p50)} p99 ${ms(ack.p99)} max ≤${ms(ack.max)}`)
    + (now.memory.sluice_memory_state === undefined ? '' : `   memory ${['normal', 'soft', 'hard'][now.memory.sluice_memory_state] ?? now.memory.sluice_memory_state}`)
    + (now.restarts === null ? '' : `   restarts ${now.restarts}`));
  out.push('');
  const tenants = [...now.tenants].sort((a, b) => b.recordsPerSec - a.recordsPerSec).slice(0, maxRows);
  out.push(...table(['TENANT', 'REC/S', 'BYTES/S', 'RECORDS', 'SESSIONS', 'QUEUED', 'ERRORS'],
    tenants.map((t) => [t.tenant, si(t.recordsPerSec), bytes(t.bytesPerSec), si(t.acceptedRecords), String(t.sessions), bytes(t.queuedBytes), String(t.errors)])));
  if (now.sinks.length > 0) {
    out.push('');
    const seconds = before === null ? 0 : (now.time - before.time) / 1000;
    const previous = new Map((before?.sinks ?? []).map((s) => [s.name, s]));
    const rate = (a: number, b: number | undefined) => (seconds <= 0 || b === undefined ? 0 : Math.max(0, (a - b) / seconds));
    out.push(...table(['SINK', 'HEALTH', 'REC/S', 'BYTES/S', 'QUEUED', 'FILL', 'DROPPED'],
      now.sinks.map((s) => [s.name, s.healthy ? 'up' : 'DOWN', si(rate(s.writtenRecords, previous.get(s.name)?.writtenRecords)),
        bytes(rate(s.writtenBytes, previous.get(s.name)?.writtenBytes)), bytes(s.queuedBytes),
        s.fill === null ? '-' : `${(s.fill * 100).toFixed(0)}%`, si(s.droppedRecords)])));
  }
  return out.join('\n') + '\n';
}

export function renderSessions(sessions: SessionView[], total: number): string {
  const now = Date.now();
  const rows = sessions.map((s) => [s.id, s.tenant ?? '-', s.host ?? '-', s.peer, s.protocol, si(s.records), bytes(s.bytes), bytes(s.queuedBytes),
    String(s.errors), `${Math.round((now - s.openedAt) / 1000)}s`, s.governed ? 'governed' : s.throttled ? 'throttled' : '']);
  const lines = table(['ID', 'TENANT', 'HOST', 'PEER', 'PROTO', 'RECORDS', 'BYTES', 'QUEUED', 'ERRORS', 'AGE', 'STATE'], rows);
  lines.push(`${sessions.length} of ${total} sessions`);
  return lines.join('\n') + '\n';
}

const MEMORY_STATES = ['normal', 'soft', 'hard'];

/** `sluice cluster status`: the members as this node sees them, the leader marked. */
export function renderClusterStatus(status: ClusterStatus): string {
  const now = Date.now();
  const leader = status.leader?.id ?? null;
  const lines = [
    `cluster of ${status.members.length} node${status.members.length === 1 ? '' : 's'} seen from ${status.nodeId}`
    + (status.connected ? '' : ` (NATS unreachable: ${status.lastError ?? 'connecting'})`),
    leader === null ? 'leader: none elected yet' : `leader: ${leader} since ${new Date(status.leader!.since).toISOString()}`,
  ];
  if (status.totals !== null) {
    const t = status.totals;
    lines.push(`totals (published by ${t.by}): ${t.connections} connections, ${si(t.recordsPerSec)} records/s, ${bytes(t.bytesPerSec)}/s, ${bytes(t.rssBytes)} resident`);
  }
  if (status.lastShed !== null) {
    lines.push(`last shed: ${status.lastShed.asked} agents asked to reconnect (${status.lastShed.reason}) ${Math.round((now - status.lastShed.at) / 1000)}s ago`);
  }
  lines.push('');
  const rows = status.members.map((m) => [
    m.id, m.id === leader ? 'leader' : 'member', String(m.load.connections), si(m.load.recordsPerSec), `${bytes(m.load.bytesPerSec)}/s`,
    bytes(m.load.rssBytes), MEMORY_STATES[m.load.memoryState] ?? String(m.load.memoryState),
    `${Math.max(0, Math.round((now - m.heartbeatAt) / 1000))}s`, m.version, m.admin ?? '-',
  ]);
  lines.push(...table(['NODE', 'ROLE', 'CONNECTIONS', 'REC/S', 'BYTES/S', 'RSS', 'MEMORY', 'HEARTBEAT', 'VERSION', 'ADMIN'], rows));
  return lines.join('\n') + '\n';
}

function fail(err: unknown): never {
  process.stderr.write(`${err instanceof AdminClientError ? err.message : (err as Error).stack ?? String(err)}\n`);
  process.exit(err instanceof AdminClientError ? 2 : 1);
}

function clientOptions(command: Command): Command {
  return command
    .option('--url <url>', 'the admin server', 'http://127.0.0.1:8080')
    .option('--token <token>', 'admin token (default: $SLUICE_ADMIN_TOKEN, else <data-dir>/admin-token)')
    .option('--data-dir <dir>', 'where to find the token a node generated', './data');
}

export function registerAdminCommands(program: Command): void {
  clientOptions(program.command('top'))
    .description('per-tenant and per-sink rates of a running node, refreshed every second (q or Ctrl-C quits)')
    .option('--count <n>', 'stop after this many refreshes')
    .action(async (options: ClientOptions & { count?: string }) => {
      const count = options.count === undefined ? Infinity : Number(options.count);
      let before: LiveOverview | null = null;
      const tty = process.stdout.isTTY;
      if (tty && process.stdin.isTTY) {
        process.stdin.setRawMode(true);
        process.stdin.on('data', (key) => {
          if (key[0] === 0x71 || key[0] === 0x03) process.exit(0);
        });
      }
      try {
        for (let i = 0; i < count; i++) {
          const now = (await (await request(options, 'api/overview')).json()) as LiveOverview;
          process.stdout.write((tty ? '\x1b[H\x1b[2J' : '') + renderTop(options.url, now, before));
          before = now;
          if (i + 1 < count) await new Promise((resolve) => setTimeout(resolve, 1000));
        }
      } catch (err) {
        fail(err);
      }
      process.exit(0);
    });

  clientOptions(program.command('tail'))
    .description('follow records as the node routes them (NDJSON, one per line)')
    .option('--tenant <tenant>', 'only this tenant\'s records')
    .option('--host <host>', 'only records from this hostname (or host key)')
    .option('--session <id>', 'only records of this session (see sluice sessions)')
    .action(async (options: ClientOptions & { tenant?: string; host?: string; session?: string }) => {
      const query = new URLSearchParams();
      if (options.tenant !== undefined) query.set('tenant', options.tenant);
      if (options.host !== undefined) query.set('host', options.host);
      if (options.session !== undefined) query.set('session', options.session);
      try {
        const response = await request(options, `api/tail?${query.toString()}`);
        await readEvents(response.body!, (event, data) => {
          if (event === 'message') process.stdout.write(`${data}\n`);
          else if (event === 'dropped') process.stderr.write(`sluice tail: ${(JSON.parse(data) as { dropped: number }).dropped} records skipped: this terminal reads slower than they arrive\n`);
        });
      } catch (err) {
        fail(err);
      }
    });

  const cluster = program.command('cluster').description('cluster mode: several nodes coordinated through NATS JetStream (docs/cluster.md)');
  clientOptions(cluster.command('status'))
    .description('members, leader and load per node, as the node at --url sees them')
    .option('--json', 'print JSON')
    .action(async (options: ClientOptions & { json?: boolean }) => {
      try {
        const status = (await (await request(options, 'api/cluster')).json()) as ClusterStatus;
        process.stdout.write(options.json === true ? `${JSON.stringify(status, null, 2)}\n` : renderClusterStatus(status));
      } catch (err) {
        fail(err);
      }
    });

  clientOptions(program.command('sessions'))
    .description('list open sessions (TCP, TLS, RELP connections) of a running node')
    .option('--sort <key>', 'bytes, records, queued, errors or age', 'bytes')
    .option('--limit <n>', 'at most this many', '50')
    .option('--tenant <tenant>', 'only this tenant\'s sessions')
    .option('--json', 'print JSON')
    .action(async (options: ClientOptions & { sort: string; limit: string; tenant?: string; json?: boolean }) => {
      const query = new URLSearchParams({ sort: options.sort, limit: options.limit });
      if (options.tenant !== undefined) query.set('tenant', options.tenant);
      try {
        const result = (await (await request(options, `api/sessions?${query.toString()}`)).json()) as { total: number; sessions: SessionView[] };
        process.stdout.write(options.json === true ? `${JSON.stringify(result, null, 2)}\n` : renderSessions(result.sessions, result.total));
      } catch (err) {
        fail(err);
      }
    });
}
