/**
 * The promise at the heart of sluice: nothing acknowledged is ever lost.
 * The real rsyslog sends 200,000 numbered messages over RELP while the node
 * is killed with SIGKILL twice mid-stream and restarted; afterwards every
 * number is in the file sink. Duplicates (at-least-once) are counted and printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { lateBoundPort, requireProgram, ROOT, tempDir, waitFor } from '../helpers.js';

const TOTAL = 200_000;
const noRsyslog = requireProgram('rsyslogd', 'Debian packages rsyslog and rsyslog-relp');
const omrelp = ['/usr/lib/x86_64-linux-gnu/rsyslog/omrelp.so', '/usr/lib/rsyslog/omrelp.so'].some((p) => existsSync(p));
if (!noRsyslog && !omrelp && process.env.CI === 'true') throw new Error('rsyslog-relp is required under CI=true');
const skip = noRsyslog || (omrelp ? false : 'rsyslog-relp not installed');

/** Every `seq N` in the tenant's files, in file order. */
function delivered(logsDir: string): number[] {
  const dir = path.join(logsDir, 'default');
  if (!existsSync(dir)) return [];
  const seqs: number[] = [];
  for (const name of readdirSync(dir)) {
    const text = readFileSync(path.join(dir, name), 'utf8');
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

test('crash: 200,000 messages from rsyslog over RELP, SIGKILL twice mid-stream: every one is in the file', { skip, timeout: 240_000 }, async (t) => {
  const dir = tempDir(t);
  const relpPort = await lateBoundPort();
  const inputPort = await lateBoundPort();
  const config = path.join(dir, 'sluice.yaml');
  writeFileSync(config, [
    `data_dir: ${JSON.stringify(path.join(dir, 'node'))}`,
    'log: { level: info }',
    'sources:',
    '  syslog_udp: { enabled: false }',
    '  syslog_tcp: { enabled: false }',
    '  http: { enabled: false }',
    `  relp: { port: ${relpPort}, window: 1024 }`,
    'hostmeta: { service: { port: 0 } }',
    'admin: { port: 0 }',
  ].join('\n'));
  const logsDir = path.join(dir, 'node', 'logs');
  let node: ChildProcess | null = null;
  const startNode = async (): Promise<void> => {
    node = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'ops', 'cli.js'), 'start', '-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    node.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
    await waitFor('node listening', () => log.includes('"source":"relp"') && log.includes('SLU0003I'), 20_000);
  };
  t.after(() => { node?.kill('SIGKILL'); });
  await startNode();

  const rsyslogConf = path.join(dir, 'rsyslog.conf');
  writeFileSync(rsyslogConf, `
global(workDirectory="${dir}")
module(load="imtcp")
module(load="omrelp")
input(type="imtcp" address="127.0.0.1" port="${inputPort}")
action(type="omrelp" target="127.0.0.1" port="${relpPort}" windowSize="1024" template="RSYSLOG_SyslogProtocol23Format"
  queue.type="LinkedList" queue.size="400000" action.resumeRetryCount="-1" action.resumeInterval="1")
`);
  const rsyslog = spawn('rsyslogd', ['-n', '-f', rsyslogConf, '-i', path.join(dir, 'rsyslog.pid')], { stdio: 'ignore' });
  t.after(() => { rsyslog.kill('SIGKILL'); });

  // Feed rsyslog: 200,000 numbered messages over TCP as fast as it takes them.
  const feeder = await waitFor('rsyslog input', () => new Promise<net.Socket | undefined>((resolve) => {
    const socket = net.connect(inputPort, '127.0.0.1', () => resolve(socket));
    socket.once('error', () => resolve(undefined));
  }), 20_000);
  const sent = new Promise<void>((resolve) => {
    let i = 0;
    const pump = (): void => {
      while (i < TOTAL) {
        let chunk = '';
        for (let k = 0; k < 1000 && i < TOTAL; k++, i++) chunk += `<14>1 2026-11-27T00:00:00Z agent app - - - seq ${i}\n`;
        if (!feeder.write(chunk)) {
          feeder.once('drain', pump);
          return;
        }
      }
      feeder.end(resolve);
    };
    pump();
  });

  for (const killAt of [50_000, 130_000]) {
    await waitFor(`${killAt} delivered`, () => delivered(logsDir).length >= killAt, 120_000);
    node!.kill('SIGKILL');
    await new Promise((resolve) => node!.once('exit', resolve));
    await startNode();
  }
  await sent;
  const seqs = await waitFor('every message', () => {
    const s = delivered(logsDir);
    return new Set(s).size >= TOTAL ? s : undefined;
  }, 150_000);
  const unique = new Set(seqs);
  for (let i = 0; i < TOTAL; i++) assert.ok(unique.has(i), `message ${i} is missing`);
  const duplicates = seqs.length - unique.size;
  t.diagnostic(`crash test: ${TOTAL} sent, ${unique.size} delivered, ${duplicates} duplicates after 2 SIGKILLs`);
  assert.equal(unique.size, TOTAL);
});
