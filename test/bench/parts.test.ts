/**
 * The benchmark's parts on their own: loggen's summary, counting and checking
 * output lines, waiting for a server to finish writing, /proc accounting, the
 * medians, ratios and targets, and the generated configurations as each
 * server's own checker sees them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { requirePresent, requireProgram, tempDir, waitFor } from '../helpers.js';
import { loggenArguments, parseLoggenSummary } from '../../bench/loggen.js';
import { checkRecords, countLines, fileLines, waitForDelivery } from '../../bench/output.js';
import { findPeers, INSTALL_HINT, SLUICE_CLI, sluiceLaunch, type Peers } from '../../bench/peers.js';
import { cpuSeconds, MemorySampler, processTree, treeMemory } from '../../bench/proc-stats.js';
import { evaluateTargets, eventLoopTable, latencyTable, median, memoryTable, stormTable, summarise } from '../../bench/report.js';
import { serverConfig, type ServerSettings } from '../../bench/servers.js';
import { eventLoopFromLog, type Measurement } from '../../bench/workloads.js';

test('loggen: the closing summary is parsed; --number is per connection; UDP is sent unframed', () => {
  const text = [
    'count=178, rate = 89.98 msg/sec',
    'average rate = 133156.59 msg/sec, count=1000000, time=7.50995, (average) msg size=260, bandwidth=33809.29 kB/sec',
  ].join('\n');
  assert.deepEqual(parseLoggenSummary(text), { count: 1_000_000, seconds: 7.50995 });
  assert.equal(parseLoggenSummary('error connecting socket: Connection refused'), null);

  const tcp = loggenArguments({ transport: 'tcp', port: 20514, size: 256, connections: 4, messagesPerConnection: 500_000, maxSeconds: 600 });
  assert.ok(tcp.includes('--stream') && !tcp.includes('--no-framing'));
  assert.equal(tcp[tcp.indexOf('--number') + 1], '500000');
  assert.equal(tcp[tcp.indexOf('--interval') + 1], '600', 'loggen stops after 10 s unless given an interval');
  assert.deepEqual(tcp.slice(-2), ['127.0.0.1', '20514']);
  const udp = loggenArguments({ transport: 'udp', port: 20514, size: 256, connections: 1, messagesPerConnection: 10, maxSeconds: 60 });
  assert.ok(udp.includes('--dgram') && udp.includes('--no-framing'));
});

test('peers: sluice is started with the environment and node options of its command\'s #! line', () => {
  const { env, nodeOptions } = sluiceLaunch();
  assert.deepEqual(env, { MALLOC_ARENA_MAX: '2' });
  assert.deepEqual(nodeOptions, ['--max-semi-space-size=8']);
});

test('output: lines are counted and split across read chunks, the last one unterminated too', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'big.log');
  // Lines of 1000 bytes: 9,000 of them cross the 8 MiB read chunk at an odd offset.
  const line = `${'x'.repeat(999)}\n`;
  writeFileSync(file, line.repeat(9000));
  appendFileSync(file, 'tail without newline');
  assert.equal(countLines([file]), 9000);
  let n = 0;
  let last = '';
  for (const l of fileLines(file)) {
    n++;
    if (n <= 9000) assert.equal(l.length, 999);
    last = l.toString();
  }
  assert.equal(n, 9001);
  assert.equal(last, 'tail without newline');
});

test('output: duplicates, invalid JSON and foreign lines are found', (t) => {
  const dir = tempDir(t);
  const a = path.join(dir, 'a.log');
  const b = path.join(dir, 'b.log');
  const msg = (seq: number, thread: number): string => `seq: ${String(seq).padStart(10, '0')}, thread: ${String(thread).padStart(4, '0')}, runid: 1`;
  writeFileSync(a, [JSON.stringify({ msg: msg(0, 0) }), JSON.stringify({ msg: msg(1, 0) }), JSON.stringify({ msg: msg(0, 1) }), ''].join('\n'));
  // Same seq on another thread is another message; the same (seq, thread) again is a duplicate.
  writeFileSync(b, [JSON.stringify({ msg: msg(1, 0) }), `{"msg":"${msg(2, 0)}"`, '{"msg":"hello"}', '[1]', ''].join('\n'));
  const json = checkRecords([a, b], 'json');
  assert.deepEqual(json, { lines: 7, distinct: 4, duplicates: 1, unrecognised: 2, invalidJson: 2 });
  const raw = checkRecords([a, b], 'raw');
  assert.equal(raw.invalidJson, 0, 'raw lines are not parsed as JSON');
});

test('output: waitForDelivery returns at the expected count, or after the files stop growing', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'out.log');
  writeFileSync(file, '');
  let written = 0;
  const timer = setInterval(() => {
    if (written < 50) {
      appendFileSync(file, 'line\n'.repeat(10));
      written += 10;
    }
  }, 30);
  t.after(() => clearInterval(timer));
  const done = await waitForDelivery(() => [file], 50, { quietMs: 2000, pollMs: 20 });
  assert.deepEqual({ lines: done.lines, short: done.short }, { lines: 50, short: false });
  assert.ok(Math.abs(done.lastWriteMs - Date.now()) < 5000);

  const started = Date.now();
  const short = await waitForDelivery(() => [file], 80, { quietMs: 500, pollMs: 20 });
  assert.deepEqual({ lines: short.lines, short: short.short }, { lines: 50, short: true });
  assert.ok(Date.now() - started >= 500);
});

test('proc-stats: a busy child tree is charged CPU and memory; the tree includes grandchildren', async (t) => {
  // A shell whose child (a grandchild of this test) burns 0.5 s of its own CPU time, however
  // busy the machine is, says so, and then stays alive idle.
  const burn = 'const s = process.cpuUsage(); while (process.cpuUsage(s).user + process.cpuUsage(s).system < 500000); '
    + 'console.log("burnt"); setTimeout(() => {}, 30000);';
  const child = spawn('/bin/sh', ['-c', `node -e '${burn}'; true`], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => {
    for (const pid of processTree(child.pid!)) process.kill(pid, 'SIGKILL');
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  await waitFor('the burn', () => output.includes('burnt'), 60_000);
  const tree = processTree(child.pid!);
  assert.equal(tree[0], child.pid);
  assert.equal(tree.length, 2, 'the shell and its node child');
  const used = cpuSeconds(child.pid!);
  // 0.5 s burnt plus node's own start-up; clock ticks are 10 ms.
  assert.ok(used >= 0.49 && used < 5, `CPU used ${used} s`);
  const whole = treeMemory(child.pid!);
  const node = treeMemory(tree[1]!);
  assert.ok(whole.rssBytes > node.rssBytes, 'the tree sums the shell and the child');
  assert.ok(node.rssBytes > 10e6 && node.pssBytes > 0 && node.pssBytes <= node.rssBytes, `RSS ${node.rssBytes}, PSS ${node.pssBytes}`);
  // The sampler's peak is at least any sample it took.
  const sampler = new MemorySampler(child.pid!, 10);
  const sampled = sampler.sample();
  const peak = sampler.stop();
  assert.ok(peak.rssBytes >= sampled.rssBytes && peak.pssBytes >= sampled.pssBytes);
  assert.deepEqual(treeMemory(2 ** 22 + 12345), { rssBytes: 0, pssBytes: 0 }, 'a pid that does not exist has no memory');
});

function m(variant: string, server: Measurement['server'], values: Partial<Measurement>): Measurement {
  return { workload: variant.split(' ')[0] as Measurement['workload'], variant, server, ...values };
}

test('report: medians per server, sluice/peer ratios from the same run, targets judged', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([]), undefined);
  const runs: Measurement[] = [
    m('W1', 'sluice', { messagesPerSecond: 300, cpuSecondsPerMillion: 3, eventLoop: { busySeconds: 9, p99WorstMs: 10, p99MedianMs: 5, maxMs: 40 } }),
    m('W1', 'sluice', { messagesPerSecond: 100, cpuSecondsPerMillion: 5, eventLoop: { busySeconds: 20, p99WorstMs: 30, p99MedianMs: 6, maxMs: 60 } }),
    m('W1', 'sluice', { messagesPerSecond: 200, cpuSecondsPerMillion: 4, eventLoop: { busySeconds: 10, p99WorstMs: 15, p99MedianMs: 7, maxMs: 50 } }),
    m('W1', 'rsyslog', { messagesPerSecond: 100, cpuSecondsPerMillion: 8 }),
    m('W1', 'syslog-ng', { messagesPerSecond: 200, cpuSecondsPerMillion: 8 }),
    m('W1', 'syslog-ng', { error: 'crashed' }),
    m('W3 default buffer', 'sluice', { lossPercent: 1 }),
    m('W3 default buffer', 'rsyslog', { lossPercent: 0.5 }),
    m('W3 4 MiB buffer', 'sluice', { lossPercent: 1.5 }),
    m('W3 4 MiB buffer', 'rsyslog', { lossPercent: 0.5 }),
    m('W4', 'sluice', { idleRssBytes: 150e6, idlePssBytes: 110e6, connectedRssBytes: 300e6, connectedPssBytes: 199e6, peakRssBytes: 320e6, idleConnectionsHeld: 10_000 }),
    // The whole run within its targets, the steady part (from 10 s) not: each judged on its own.
    m('W5', 'sluice', { lost: 0, latencyMs: { p50: 1, p90: 2, p99: 30, p999: 40, max: 100 }, steadyLatencyMs: { p50: 1, p90: 2, p99: 25, p999: 30, max: 50 },
      errors: { connect: 0, reset: 0, other: 0 }, peakPssBytes: 260e6, cpuSecondsPerMillion: 30 }),
    m('W5', 'rsyslog', { cpuSecondsPerMillion: 20, latencyMs: { p50: 1, p90: 2, p99: 5, p999: 9, max: 200 }, steadyLatencyMs: { p50: 1, p90: 2, p99: 4, p999: 6, max: 8 } }),
    m('W6 steady', 'sluice', { lost: 0, sent: 1000, latencyMs: { p50: 2, p90: 5, p99: 10, p999: 20, max: 30 } }),
    // p50 and p99 within 2×, p90 not: judged on every percentile, the target is missed.
    m('W6 flood', 'sluice', { lost: 0, sent: 1000, latencyMs: { p50: 3, p90: 11, p99: 19, p999: 40, max: 90 },
      isolation: { warmupLost: 0, generatorDelayP99Ms: 4, generatorDelayMaxMs: 12, floodSentPerSec: 90_000, floodDeliveredPerSec: 80_000, floodClientCpuPercent: 5 } }),
    m('W7', 'sluice', {
      storm: {
        cold: { hosts: 10_000, failed: 0, connectSeconds: 2, written: 10_000, withMeta: 10_000, missing: {},
          writtenMs: { p50: 500, p99: 1200, max: 1300 }, registeredMs: { p50: 400, p99: 1100, max: 1900 }, unregistered: 0 },
        restart: { hosts: 10_000, failed: 0, connectSeconds: 3, written: 10_000, withMeta: 9_990, missing: { timeout: 10 },
          writtenMs: { p50: 300, p99: 900, max: 1000 } },
      },
    }),
  ];
  const summaries = summarise(runs);
  const sluice = summaries.find((s) => s.variant === 'W1' && s.server === 'sluice')!;
  assert.equal(sluice.values.messagesPerSecond, 200);
  assert.equal(sluice.repeats, 3);
  const rsyslog = summaries.find((s) => s.variant === 'W1' && s.server === 'rsyslog')!;
  assert.deepEqual(rsyslog.sluiceRatio, { messagesPerSecond: 2, cpuSecondsPerMillion: 0.5 });
  const ng = summaries.find((s) => s.variant === 'W1' && s.server === 'syslog-ng')!;
  assert.equal(ng.repeats, 1);
  assert.deepEqual(ng.errors, ['crashed']);

  const targets = Object.fromEntries(evaluateTargets(summaries).map((r) => [r.target, r.met]));
  assert.deepEqual(targets, {
    'W1: sluice ≥ 1.0× rsyslog msg/s': true,
    'W1: sluice ≤ 0.8× rsyslog CPU-s per million': true,
    'W1: sluice ≥ 1.5× syslog-ng msg/s': false,
    'W3 default buffer: sluice loss ≤ rsyslog\'s': false,
    'W3 4 MiB buffer: sluice loss ≤ rsyslog\'s + 1 point': true,
    'W4: sluice ≤ 200 MB PSS with 10,000 connections held': true,
    'idle node (before W4\'s connections): sluice ≤ 120 MB PSS': true,
    'W4: ≤ 8 KB per connected agent': false,
    'W5 from 10 s: p99 ≤ 20 ms, max ≤ 100 ms': false,
    'W5 whole run: p99 ≤ 100 ms, max ≤ 500 ms': true,
    'W5: sluice ≤ 250 MB PSS summed (peak)': false,
    'W5: sluice ≤ 1.5× rsyslog CPU-s per million': true,
    'W5: zero errors and losses': true,
    'W6: steady tenants\' p50, p90 and p99 with a flooding tenant each ≤ 2× without (hosts warmed up in both)': false,
    'W6: zero loss for the steady tenants with a flooding tenant': true,
    'W7: 10,000 new hosts at once: each registered within 2 s of its first message, each record with its meta': true,
    'W7: restarted, the same 10,000 hosts (known) at once: each record with its meta, written within 2 s': false,
    'W1: sluice event-loop delay p99 < 20 ms': true,
  });
  assert.deepEqual(stormTable(summaries).rows, [
    ['new hosts', '10,000', '1100 / 1900', '1200 / 1300', '0', '3.0'],
    ['after a restart (known hosts)', '10,000', '–', '900 / 1000', '10', ''],
  ]);
  assert.deepEqual(sluice.eventLoop, { busySeconds: 10, p99WorstMs: 15, p99MedianMs: 6, maxMs: 50 }, 'medians of each');
  assert.deepEqual(memoryTable(summaries).rows, [['W4', 'sluice', '150.0 / 110.0', '300.0 / 199.0', '320.0 / –', '–']]);
  assert.deepEqual(eventLoopTable(summaries).rows, [['W1', '10', '15.00', '6.00', '50.00', '–']]);
  const details = Object.fromEntries(evaluateTargets(summaries).map((r) => [r.target, r.detail]));
  assert.equal(details['W5 from 10 s: p99 ≤ 20 ms, max ≤ 100 ms'], 'p99 25.00 ms, max 50.00 ms; rsyslog p99 4.00 ms, max 8.00 ms');
  assert.equal(details['W5 whole run: p99 ≤ 100 ms, max ≤ 500 ms'], 'p99 30.00 ms, max 100.00 ms; rsyslog p99 5.00 ms, max 200.00 ms');
  const w6 = evaluateTargets(summaries).find((r) => r.target.startsWith('W6: steady'))!;
  assert.match(w6.detail, /p90 2\.20× .*max 3\.00×/, 'each percentile\'s ratio, max too');
  assert.match(w6.detail, /delay p99 4\.00 \/ max 12\.00 ms with the flood/, 'the generator\'s own delay beside them');
  assert.match(w6.detail, /delivered 80,000 msg\/s/, 'the flooder\'s delivered rate');
  assert.ok(evaluateTargets(summaries, true).every((r) => r.met === null), '--quick sizes judge no target');
});

test('report: W5 relp\'s rows say their latency runs to the acknowledgement, and what that means per server; no W5 target reads them', () => {
  const latency = { p50: 1, p90: 2, p99: 3, p999: 4, max: 5 };
  const slow = { p50: 900, p90: 900, p99: 900, p999: 900, max: 900 };
  const zero = { connect: 0, reset: 0, other: 0 };
  const summaries = summarise([
    m('W5', 'sluice', { lost: 0, latencyMs: latency, steadyLatencyMs: latency, latencyTo: 'visible', errors: zero }),
    m('W5 relp', 'sluice', { lost: 5, latencyMs: slow, steadyLatencyMs: slow, latencyTo: 'ack', errors: { connect: 0, reset: 3, other: 0 } }),
    m('W5 relp', 'rsyslog', { lost: 0, latencyMs: latency, latencyTo: 'ack', errors: zero }),
  ]);
  const steadyNote = 'messages sent from 10 s after the start on';
  const notes = Object.fromEntries(latencyTable(summaries).rows.map((row) => [`${row[0]} ${row[1]}`, row.at(-1)]));
  assert.deepEqual(notes, {
    'W5 sluice': 'latency: send → in the output file',
    'W5 from 10 s sluice': steadyNote,
    'W5 relp sluice': 'latency: send → RELP ack (answered once the file sink committed it)',
    'W5 relp from 10 s sluice': steadyNote,
    'W5 relp rsyslog': 'latency: send → RELP ack (answered once imrelp queued it, before it is written)',
    'W5 relp from 10 s rsyslog': steadyNote,
  });
  const targets = Object.fromEntries(evaluateTargets(summaries).map((r) => [r.target, r.met]));
  assert.equal(targets['W5 from 10 s: p99 ≤ 20 ms, max ≤ 100 ms'], true, 'judged on the TCP variant alone');
  assert.equal(targets['W5 whole run: p99 ≤ 100 ms, max ≤ 500 ms'], true, 'judged on the TCP variant alone');
  assert.equal(targets['W5: zero errors and losses'], true);
});

test('report: W5\'s steady part is a row of its own beneath the whole run; a run too short for it shows dashes and judges nothing', () => {
  const zero = { connect: 0, reset: 0, other: 0 };
  const summaries = summarise([
    m('W5', 'sluice', { agents: 200, lost: 0, latencyMs: { p50: 1, p90: 2, p99: 300, p999: 400, max: 600 }, latencyTo: 'visible', errors: zero }),
  ]);
  const rows = latencyTable(summaries).rows.map((row) => row.slice(0, 2).concat(row.slice(8, 12)));
  assert.deepEqual(rows, [
    ['W5', 'sluice', '1.00', '2.00', '300.00', '600.00'],
    ['W5 from 10 s', 'sluice', '–', '–', '–', '–'],
  ]);
  const targets = Object.fromEntries(evaluateTargets(summaries).map((r) => [r.target, [r.met, r.detail]]));
  assert.deepEqual(targets['W5 from 10 s: p99 ≤ 20 ms, max ≤ 100 ms'], [null, 'no latency']);
  assert.deepEqual(targets['W5 whole run: p99 ≤ 100 ms, max ≤ 500 ms'], [false, 'p99 300.00 ms, max 600.00 ms']);
});

test('event loop: the numbers of the node-stopped line, the last one when there are several; none without it', () => {
  const line = (worst: number) => JSON.stringify({ level: 30, code: 'SLU0005I', received: 1, busy_seconds: 12, event_loop_delay_p99_worst_ms: worst,
    event_loop_delay_p99_median_ms: 3.5, event_loop_delay_max_ms: 41.2, msg: 'node stopped' });
  const log = [JSON.stringify({ code: 'SLU0003I' }), line(99), line(18.5), ''].join('\n');
  assert.deepEqual(eventLoopFromLog(log), { busySeconds: 12, p99WorstMs: 18.5, p99MedianMs: 3.5, maxMs: 41.2 });
  assert.equal(eventLoopFromLog(JSON.stringify({ code: 'SLU0003I' })), undefined);
});

const SETTINGS: ServerSettings[] = [
  { tcpPort: 20514, udpPort: 20514, output: 'json', udpReceiveBuffer: null, maxConnections: 100 },
  { tcpPort: 20514, udpPort: 20515, output: 'raw', udpReceiveBuffer: 4 * 1024 * 1024, maxConnections: 10_100 },
  { tcpPort: 20514, udpPort: 20514, output: 'json', udpReceiveBuffer: null, maxConnections: 610, sluiceTenants: { t0: { networks: ['127.0.1.0/24'] } } },
  // W5 relp: a RELP listener beside the syslog ones (sluice and rsyslog only).
  { tcpPort: 20514, udpPort: 20514, output: 'json', udpReceiveBuffer: null, maxConnections: 100, relpPort: 20516 },
];

test('configs: sluice validates each generated configuration', (t) => {
  const dir = tempDir(t);
  for (const settings of SETTINGS) {
    const config = serverConfig('sluice', dir, settings);
    writeFileSync(config.file, config.text);
    const out = spawnSync(process.execPath, [SLUICE_CLI, 'validate', '-c', config.file], { encoding: 'utf8' });
    assert.equal(out.status, 0, out.stderr);
    assert.match(config.text, new RegExp(`receive_buffer: ${settings.udpReceiveBuffer ?? 0}\\b`));
    // Its RELP source listens where W5 relp sends, else on any free port (not the default 2514 another node may hold).
    assert.match(config.text, new RegExp(`relp:\\n(    .*\\n)*?    port: ${settings.relpPort ?? 0}\\n`));
  }
});

test('configs: rsyslog accepts each generated configuration (rsyslogd -N1)', (t) => {
  const peers = findPeers();
  const reason = requireProgram(peers.rsyslogd ?? 'rsyslogd', INSTALL_HINT);
  if (reason) return t.skip(reason);
  const dir = tempDir(t);
  for (const settings of SETTINGS) {
    const config = serverConfig('rsyslog', dir, settings);
    writeFileSync(config.file, config.text);
    const out = spawnSync(peers.rsyslogd!, ['-N1', '-f', config.file], { encoding: 'utf8' });
    assert.equal(out.status, 0, `${out.stdout}${out.stderr}\n${config.text}`);
    assert.doesNotMatch(`${out.stdout}${out.stderr}`, /error/i);
    assert.equal(config.text.includes(`input(type="imrelp" address="127.0.0.1" port="${settings.relpPort}" ruleset="bench")`), settings.relpPort !== undefined);
  }
});

test('configs: syslog-ng accepts each generated configuration (--syntax-only)', (t) => {
  // The unpacked syslog-ng of bench/.peers with its modules, not one on the PATH (a system syslog-ng does not count).
  const ng: Peers['syslogNg'] = findPeers().syslogNg;
  const reason = requirePresent(ng !== null, 'syslog-ng (unpacked in bench/.peers, with its modules)', INSTALL_HINT);
  if (reason !== false || ng === null) return t.skip(reason || 'syslog-ng missing');
  const dir = tempDir(t);
  assert.throws(() => serverConfig('syslog-ng', dir, SETTINGS.find((s) => s.relpPort !== undefined)!), /syslog-ng has no RELP listener/);
  for (const settings of SETTINGS.filter((s) => s.relpPort === undefined)) {
    const config = serverConfig('syslog-ng', dir, settings);
    writeFileSync(config.file, config.text);
    const out: SpawnSyncReturns<string> = spawnSync(ng.binary, ['--syntax-only', '-f', config.file, '--module-path', ng.modulePath], { encoding: 'utf8', env: ng.env });
    assert.equal(out.status, 0, `${out.stdout}${out.stderr}\n${config.text}`);
    assert.doesNotMatch(`${out.stdout}${out.stderr}`, /error/i);
  }
});
