/**
 * The real rsyslog as an agent that forwards over RELP: the test feeds it
 * numbered lines over TCP (`seq N`) and rsyslog relays them with omrelp to
 * the node, resending what was not acknowledged after a reconnect. Used by
 * the tests that prove nothing acknowledged is lost (kill -9, rolling
 * restarts, shedding, a node killed behind a balancer).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { lateBoundPort, readLogFile, requireProgram, waitFor } from './helpers.js';

const noRsyslog = requireProgram('rsyslogd', 'Debian packages rsyslog and rsyslog-relp');
const omrelp = ['/usr/lib/x86_64-linux-gnu/rsyslog/omrelp.so', '/usr/lib/rsyslog/omrelp.so'].some((p) => existsSync(p));
if (!noRsyslog && !omrelp && process.env.CI === 'true') throw new Error('rsyslog-relp is required under CI=true');
/** Why a relay test must skip (false: rsyslog with omrelp is here). */
export const rsyslogRelayMissing: string | false = noRsyslog || (omrelp ? false : 'rsyslog-relp not installed');

/** The message of the line each feed ends with. */
export const FEED_END = 'end of feed';

export interface RsyslogRelay {
  /**
   * Sends `total` lines `seq 0` … `seq total-1` into rsyslog, in chunks of `chunk` lines, as
   * fast as it takes them or with `pauseMs` between chunks (a stream still flowing later on);
   * then one `end of feed` line; resolves once all are written to it.
   */
  feed(total: number, pace?: { chunk: number; pauseMs: number }): Promise<void>;
}

export interface RelayOptions {
  /** rsyslog's action queue, in messages. */
  queueSize?: number;
  /**
   * RELP connections, one omrelp action each, every one forwarding every line under a
   * hostname of its own (`agent-1` …); with 1, the line's own hostname (`agent`).
   */
  agents?: number;
}

/** Starts rsyslogd (killed when the test ends) relaying over RELP to `target`. */
export async function startRsyslogRelay(
  t: { after(fn: () => void): void },
  dir: string,
  target: { host: string; port: number },
  { queueSize = 400_000, agents = 1 }: RelayOptions = {},
): Promise<RsyslogRelay> {
  const inputPort = await lateBoundPort();
  const conf = path.join(dir, 'rsyslog.conf');
  const action = (template: string) => `action(type="omrelp" target="${target.host}" port="${target.port}" windowSize="1024" template="${template}"
  queue.type="LinkedList" queue.size="${queueSize}" action.resumeRetryCount="-1" action.resumeInterval="1")`;
  const actions = agents === 1 ? [action('RSYSLOG_SyslogProtocol23Format')] : Array.from({ length: agents }, (_, i) => `
template(name="agent${i + 1}" type="string" string="<%PRI%>1 %TIMESTAMP:::date-rfc3339% agent-${i + 1} %APP-NAME% %PROCID% %MSGID% %STRUCTURED-DATA% %msg%\n")
${action(`agent${i + 1}`)}`);
  writeFileSync(conf, `
global(workDirectory="${dir}")
module(load="imtcp")
module(load="omrelp")
input(type="imtcp" address="127.0.0.1" port="${inputPort}")
${actions.join('\n')}
`);
  const rsyslog = spawn('rsyslogd', ['-n', '-f', conf, '-i', path.join(dir, 'rsyslog.pid')], { stdio: 'ignore' });
  t.after(() => { rsyslog.kill('SIGKILL'); });
  const input = await waitFor('rsyslog input', () => new Promise<net.Socket | undefined>((resolve) => {
    const socket = net.connect(inputPort, '127.0.0.1', () => resolve(socket));
    socket.once('error', () => resolve(undefined));
  }), 20_000);
  return {
    feed: (total, pace = { chunk: 1000, pauseMs: 0 }) => new Promise<void>((resolve) => {
      let i = 0;
      const pump = (): void => {
        while (i < total) {
          let chunk = '';
          for (let k = 0; k < pace.chunk && i < total; k++, i++) chunk += `<14>1 2026-11-27T00:00:00Z agent app - - - seq ${i}\n`;
          const flowing = input.write(chunk);
          if (pace.pauseMs > 0) {
            setTimeout(pump, pace.pauseMs);
            return;
          }
          if (!flowing) {
            input.once('drain', pump);
            return;
          }
        }
        // A last line after the numbered ones: rsyslog forwards in order and resends the unanswered
        // first, so once it is stored nothing of the feed (no duplicate either) is still to come.
        input.end(`<14>1 2026-11-27T00:00:00Z agent app - - - ${FEED_END}\n`, resolve);
      };
      pump();
    }),
  };
}


/**
 * Every `seq N` in the tenant's files under `logsDirs` (every node's, every worker's) by the
 * record's hostname, in file order.
 */
export function deliveredByHost(logsDirs: readonly string[], tenant = 'default'): Map<string, number[]> {
  const byHost = new Map<string, number[]>();
  for (const logsDir of logsDirs) {
    const dir = path.join(logsDir, tenant);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      for (const line of readLogFile(path.join(dir, name)).split('\n')) {
        if (!line.includes('"msg":"seq ')) continue;
        const rec = JSON.parse(line) as { msg: string; hostname?: string };
        const host = rec.hostname ?? '';
        let seqs = byHost.get(host);
        if (seqs === undefined) byHost.set(host, seqs = []);
        seqs.push(Number.parseInt(rec.msg.slice(4), 10));
      }
    }
  }
  return byHost;
}

/** Every `seq N` in a tenant's files (every worker's), in file order (a text scan: polled often, over 200,000 lines). */
export function deliveredSequences(logsDir: string, tenant = 'default'): number[] {
  const dir = path.join(logsDir, tenant);
  if (!existsSync(dir)) return [];
  const seqs: number[] = [];
  for (const name of readdirSync(dir)) {
    const text = readLogFile(path.join(dir, name));
    let at = 0;
    for (;;) {
      at = text.indexOf('"msg":"seq ', at);
      if (at < 0) break;
      at += 11;
      seqs.push(Number.parseInt(text.slice(at, text.indexOf('"', at)), 10));
    }
  }
  return seqs;
}

/** Waits (up to `timeoutMs`) until every number below `total` is in the tenant's files; returns how many came more than once. */
export async function everyDelivered(logsDir: string, total: number, timeoutMs = 150_000): Promise<{ duplicates: number }> {
  const seqs = await waitFor('every message', () => {
    const s = deliveredSequences(logsDir);
    return new Set(s).size >= total ? s : undefined;
  }, timeoutMs);
  const { missing, duplicates } = missingAndDuplicates(seqs, total);
  assert.deepEqual(missing, []);
  return { duplicates };
}

/** The numbers below `total` missing from `seqs`, and how many of `seqs` are duplicates. */
export function missingAndDuplicates(seqs: readonly number[], total: number): { missing: number[]; duplicates: number } {
  const unique = new Set(seqs);
  const missing: number[] = [];
  for (let i = 0; i < total; i++) if (!unique.has(i)) missing.push(i);
  return { missing, duplicates: seqs.length - unique.size };
}
