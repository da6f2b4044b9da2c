/**
 * The load generator against a real node (in this process, on loopback with
 * ports 0): worker processes, sockets from the tenants' networks, the probe
 * on the node's real files, the reports, and the command's exit codes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../../src/ops/config/load.js';
import { nodeConfigYaml } from '../../../src/ops/loadgen/layout.js';
import { parseLoadgenOptions, type RawLoadgenOptions } from '../../../src/ops/loadgen/options.js';
import { writeReports } from '../../../src/ops/loadgen/report.js';
import type { ReportJson } from '../../../src/ops/loadgen/report-json.js';
import { runLoadgen } from '../../../src/ops/loadgen/run.js';
import { lateBoundPort, readTenantRecords, startTestNode, tempDir } from '../../helpers.js';

const CLI = fileURLToPath(new URL('../../../src/ops/cli.js', import.meta.url));

/**
 * A node with the tenants `sluice loadgen --print-node-config` prints, plus
 * `extra` YAML; the test helper supplies the rest (data_dir, ports 0), as
 * the printed file's other keys are checked on their own.
 */
async function startPrintedNode(t: { after(fn: () => void | Promise<void>): void }, tenants: number, dataDir: string, extra: string) {
  const printed = nodeConfigYaml({ protocol: 'tcp', tenants, dataDir, target: { host: '127.0.0.1', port: 5514, url: 'tcp://127.0.0.1:5514' } });
  return startTestNode(t, printed.slice(printed.indexOf('tenants:')) + extra, dataDir);
}

/** Run the command without blocking this process (the node under test lives here). */
function runCli(args: string[], cwd: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'loadgen', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

function options(raw: RawLoadgenOptions) {
  return parseLoadgenOptions({ quiet: true, ...raw });
}

const LATENCY_KEYS = ['p50', 'p90', 'p99', 'p999', 'max', 'count'];

test('loadgen: TCP, 200 agents of 2 tenants at 5 msg/s for 3 s: all delivered, each in its own tenant, through rotations', async (t) => {
  const dir = tempDir(t, 'sluice-loadgen-');
  // Small files: the sink rotates many times during the run, and the probe must follow.
  const { tcpPort } = await startPrintedNode(t, 2, dir, 'sinks:\n  files:\n    rotate_size: 64KiB\n');
  const reportDir = path.join(dir, 'report');
  const result = await runLoadgen(options({
    target: `tcp://127.0.0.1:${tcpPort}`, agents: '200', tenants: '2', workers: '2', rate: '5', duration: '3s', settle: '10s',
    steadyAfter: '1s', dataDir: dir, reportDir,
  }));
  assert.equal(result.reached, true);
  assert.equal(result.sent, 3000, '200 agents × 5/s × 3 s');
  assert.equal(result.delivered, result.sent);
  assert.equal(result.lost, 0);
  assert.equal(result.duplicates, 0);
  assert.deepEqual(result.errors, { connect: 0, reset: 0, other: 0 });
  assert.ok(result.probe.rotations > 0, 'the sink rotated during the run');

  writeReports(result, reportDir);
  const report = JSON.parse(readFileSync(path.join(reportDir, 'report.json'), 'utf8')) as ReportJson;
  assert.deepEqual(Object.keys(report), [
    'protocol', 'target', 'pattern', 'agents', 'tenants', 'workers', 'durationSec', 'sent', 'delivered', 'lost', 'duplicates',
    'errors', 'throughputPerSec', 'latencyMs', 'othersLatencyMs', 'steadyAfterSec', 'steadyLatencyMs', 'othersSteadyLatencyMs',
    'connectMs', 'perTenant', 'timeline', 'generatorDelayMs',
  ]);
  const delay = report.generatorDelayMs;
  assert.ok(delay.workers.max >= delay.workers.p99 && delay.probe.max >= delay.probe.p99, 'the generator\'s own delay');
  assert.deepEqual(
    [report.protocol, report.target, report.pattern, report.agents, report.tenants, report.workers, report.durationSec],
    ['tcp', `tcp://127.0.0.1:${tcpPort}`, 'steady', 200, 2, 2, 3],
  );
  assert.deepEqual(Object.keys(report.errors), ['connect', 'reset', 'other']);
  assert.deepEqual(Object.keys(report.latencyMs), LATENCY_KEYS);
  assert.deepEqual(Object.keys(report.connectMs), ['p50', 'p99', 'max']);
  assert.equal(report.latencyMs.count, 3000);
  assert.deepEqual(Object.keys(report.othersLatencyMs!), LATENCY_KEYS);
  assert.equal(report.othersLatencyMs!.count, report.perTenant[1]!.latencyMs.count, 'with two tenants: the second one\'s');
  assert.ok(report.latencyMs.p99 > 0 && report.latencyMs.p50 <= report.latencyMs.p99 && report.latencyMs.p99 <= report.latencyMs.max);
  assert.equal(report.steadyAfterSec, 1);
  const steady = report.steadyLatencyMs!;
  assert.ok(steady.count > 0 && steady.count < 3000, `the messages sent from 1 s on: ${steady.count}`);
  assert.ok(report.othersSteadyLatencyMs!.count > 0 && report.othersSteadyLatencyMs!.count < steady.count, 't1\'s share');
  assert.ok(report.connectMs.max > 0);
  assert.ok(report.throughputPerSec > 500, `throughput ${report.throughputPerSec}`);
  assert.deepEqual(report.perTenant.map((p) => Object.keys(p)), [
    ['tenant', 'sent', 'delivered', 'lost', 'latencyMs'], ['tenant', 'sent', 'delivered', 'lost', 'latencyMs'],
  ]);
  assert.deepEqual(report.perTenant.map((p) => [p.tenant, p.sent, p.delivered, p.lost, p.latencyMs.count]), [
    ['t0', 1500, 1500, 0, 1500], ['t1', 1500, 1500, 0, 1500],
  ]);
  assert.ok(report.timeline.length >= 3);
  assert.deepEqual(Object.keys(report.timeline[0]!), ['t', 'sent', 'delivered', 'p99Ms']);
  const sum = (key: 'sent' | 'delivered'): number => report.timeline.reduce((total, e) => total + e[key], 0);
  assert.equal(sum('sent'), 3000);
  assert.equal(sum('delivered'), 3000);

  // The node put each tenant's agents in that tenant, by source network.
  for (const tenant of ['t0', 't1']) {
    const records = readTenantRecords(path.join(dir, 'logs'), tenant);
    assert.equal(records.length, 1500);
    assert.ok(records.every((r) => String(r.hostname).startsWith(`agent-${tenant.slice(1)}-`)));
  }

  const html = readFileSync(path.join(reportDir, 'report.html'), 'utf8');
  assert.match(html, /https:\/\/github\.com\/leeoniya\/uPlot/, 'uPlot inlined');
  assert.match(html, /\.uplot/, "uPlot's styles inlined");
  assert.ok(!/<script[^>]+src=|<link[^>]+href=/i.test(html), 'no external resource');
  const embedded = /<script id="loadgen-data" type="application\/json">(.*?)<\/script>/s.exec(html)![1]!;
  const data = JSON.parse(embedded) as { report: ReportJson; plot: { percentile: { x: number[]; series: unknown[] } } };
  assert.deepEqual(data.report, report);
  assert.equal(data.plot.percentile.series.length, 3, 'all, t0, t1');
  assert.equal(data.plot.percentile.x[0], 1);
});

test('loadgen: UDP, 100 agents through the command: runs, reports, exits 0 (loss allowed, but counted)', async (t) => {
  const dir = tempDir(t, 'sluice-loadgen-');
  const { udpPort } = await startTestNode(t, '', dir);
  const reportDir = path.join(dir, 'report');
  const run = await runCli([
    '--target', `udp://127.0.0.1:${udpPort}`, '--agents', '100', '--rate', '5', '--duration', '2s', '--settle', '3s',
    '--data-dir', dir, '--report-dir', reportDir, '--quiet',
  ], dir);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /latency ms/);
  const report = JSON.parse(readFileSync(path.join(reportDir, 'report.json'), 'utf8')) as ReportJson;
  assert.equal(report.protocol, 'udp');
  assert.equal(report.sent, 1000);
  assert.equal(report.delivered + report.lost, report.sent);
  assert.ok(report.delivered > 0);
  assert.equal(report.duplicates, 0);
  assert.equal(report.latencyMs.count, report.delivered);
  assert.equal(report.perTenant[0]!.tenant, 'default', "the zero-config node's tenant");
});

test('loadgen: idle, 2,000 connections from 2 workers: all connected and held, no error', async (t) => {
  const dir = tempDir(t, 'sluice-loadgen-');
  const { node, tcpPort } = await startTestNode(t, '', dir);
  let peak = 0;
  const sampler = setInterval(() => {
    void node.telemetry.value('sluice_source_connections', { source: 'syslog_tcp' }).then((open) => { peak = Math.max(peak, open); });
  }, 100);
  t.after(() => clearInterval(sampler));
  const result = await runLoadgen(options({
    target: `tcp://127.0.0.1:${tcpPort}`, agents: '2000', workers: '2', pattern: 'idle', duration: '2s', settle: '0', dataDir: dir,
  }));
  clearInterval(sampler);
  assert.equal(result.options.workers, 2);
  assert.equal(result.initiallyOpen, 2000);
  assert.equal(result.connects, 2000);
  assert.equal(result.connect.totalCount, 2000);
  assert.deepEqual(result.errors, { connect: 0, reset: 0, other: 0 });
  assert.equal(result.sent, 0);
  assert.equal(peak, 2000, 'the node held every connection at once');
});

test('loadgen: a target nobody listens on is unreachable (exit 2), not a run with losses', async (t) => {
  const port = await lateBoundPort();
  const result = await runLoadgen(options({ target: `tcp://127.0.0.1:${port}`, agents: '20', duration: '1s', dataDir: tempDir(t) }));
  assert.equal(result.reached, false);
  assert.match(result.unreachableReason!, /no agent could connect .*ECONNREFUSED/);

  // UDP has no connection to refuse: the kernel reports the ICMP port-unreachable on later sends.
  const udp = await runLoadgen(options({
    target: `udp://127.0.0.1:${port}`, agents: '5', rate: '20', duration: '500ms', settle: '0', dataDir: tempDir(t),
  }));
  assert.equal(udp.reached, false);
  assert.equal(udp.delivered, 0);
  assert.ok(udp.errors.connect > 0 && udp.errorCodes.ECONNREFUSED === udp.errors.connect);

  const dir = tempDir(t);
  const run = await runCli(['--target', `tcp://127.0.0.1:${port}`, '--agents', '5', '--duration', '1s', '--quiet'], dir);
  assert.equal(run.status, 2, run.stderr);
  assert.match(run.stderr, /no agent could connect to tcp:\/\/127\.0\.0\.1:\d+/);
});

test('loadgen: bad options exit 1 naming the option; --print-node-config prints a usable node configuration', async (t) => {
  const dir = tempDir(t);
  const bad = await runCli(['--agents', 'many', '--pattern', 'storm'], dir);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--agents: got "many"; expected an integer/);
  assert.match(bad.stderr, /--pattern: got "storm"; expected one of steady, burst, flood, reconnect, idle/);

  const printed = await runCli(['--print-node-config', '--tenants', '2', '--data-dir', dir], dir);
  assert.equal(printed.status, 0, printed.stderr);
  const { config, problems } = parseConfig(printed.stdout);
  assert.deepEqual(problems, []);
  assert.equal(config!.dataDir, dir);
  assert.deepEqual(config!.tenants.map((tenant) => tenant.id), ['t0', 't1']);
});
