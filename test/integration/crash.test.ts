/**
 * The promise at the heart of sluice: nothing acknowledged is ever lost.
 * The real rsyslog sends 200,000 numbered messages over RELP while the node
 * is killed with SIGKILL twice mid-stream and restarted; afterwards every
 * number is in the file sink. Duplicates (at-least-once) are counted and printed.
 */
import { test } from 'node:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { lateBoundPort, ROOT, tempDir, waitFor } from '../helpers.js';
import { deliveredSequences, everyDelivered, rsyslogRelayMissing, startRsyslogRelay } from '../rsyslog-relay.js';

const TOTAL = 200_000;
test('crash: 200,000 messages from rsyslog over RELP, SIGKILL twice mid-stream: every one is in the file', { skip: rsyslogRelayMissing, timeout: 240_000 }, async (t) => {
  const dir = tempDir(t);
  const relpPort = await lateBoundPort();
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

  const relay = await startRsyslogRelay(t, dir, { host: '127.0.0.1', port: relpPort });
  const sent = relay.feed(TOTAL);

  for (const killAt of [50_000, 130_000]) {
    await waitFor(`${killAt} delivered`, () => deliveredSequences(logsDir).length >= killAt, 120_000);
    node!.kill('SIGKILL');
    await new Promise((resolve) => node!.once('exit', resolve));
    await startNode();
  }
  await sent;
  const { duplicates } = await everyDelivered(logsDir, TOTAL);
  t.diagnostic(`crash test: ${TOTAL} sent, ${TOTAL} delivered, ${duplicates} duplicates after 2 SIGKILLs`);
});
