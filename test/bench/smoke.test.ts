/**
 * CI smoke of `npm run bench`: every workload at a small size against sluice
 * and, when installed, rsyslog and syslog-ng — correctness and loss only,
 * never speed. Missing peers skip with the reason, except under CI=true.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readlinkSync } from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { requirePresent, requireProgram, ROOT, waitFor } from '../helpers.js';
import { findPeers, INSTALL_HINT, loadgenAvailable, LOGGEN_PATH } from '../../bench/peers.js';
import { processTree } from '../../bench/proc-stats.js';
import { ProcessGroup } from '../../bench/processes.js';
import type { ServerName } from '../../bench/servers.js';
import { measure, QUICK_SIZES, variantsOf, type RunContext, type WorkloadName } from '../../bench/workloads.js';

const peers = findPeers();

/** The skip reason for a server, or false; under CI=true a missing peer throws (fails the test). */
function missing(server: ServerName): string | false {
  const loggen = requireProgram(LOGGEN_PATH, INSTALL_HINT);
  if (loggen) return loggen;
  if (server === 'rsyslog') return requireProgram(peers.rsyslogd ?? 'rsyslogd', INSTALL_HINT);
  if (server === 'syslog-ng') return requireProgram(peers.syslogNg?.binary ?? path.join(path.dirname(LOGGEN_PATH), '..', 'sbin', 'syslog-ng'), INSTALL_HINT);
  return false;
}

/** loadgen is part of sluice: missing means `sluice --help` broke, which fails under CI=true rather than skipping. */
function loadgenMissing(): string | false {
  if (loadgenAvailable()) return false;
  const reason = 'loadgen not available (`sluice --help` does not list the loadgen command)';
  if (process.env.CI === 'true') throw new Error(`${reason}; required under CI=true`);
  process.stderr.write(`skipping: ${reason}\n`);
  return reason;
}

/** rsyslog with imrelp (W5 relp needs no loggen). */
function rsyslogRelpMissing(): string | false {
  const imrelp = ['/usr/lib/x86_64-linux-gnu/rsyslog/imrelp.so', '/usr/lib/aarch64-linux-gnu/rsyslog/imrelp.so', '/usr/lib/rsyslog/imrelp.so'];
  return requireProgram(peers.rsyslogd ?? 'rsyslogd', INSTALL_HINT)
    || requirePresent(imrelp.some((file) => existsSync(file)), 'rsyslog-relp (imrelp)', 'apt-get install rsyslog-relp');
}

function context(t: { after(fn: () => Promise<void>): void; diagnostic(message: string): void }): RunContext {
  const group = new ProcessGroup();
  t.after(() => group.stopAll());
  return { group, peers: findPeers(), sizes: QUICK_SIZES, verify: true, log: (line) => t.diagnostic(line) };
}

const TCP_WORKLOADS: WorkloadName[] = ['W1', 'W2', 'W4'];

for (const workload of TCP_WORKLOADS) {
  for (const server of ['sluice', 'rsyslog', 'syslog-ng'] as const) {
    test(`bench ${workload} (--quick) on ${server}: every message delivered exactly once`, async (t) => {
      const reason = missing(server);
      if (reason) return t.skip(reason);
      const ctx = context(t);
      const variant = variantsOf(workload)[0]!;
      const m = await measure(variant, server, ctx);
      assert.equal(m.error, undefined, m.error);
      assert.equal(m.skipped, undefined);
      const expected = workload === 'W4' ? QUICK_SIZES.idleRunMessages : QUICK_SIZES.tcpMessages;
      assert.equal(m.sent, expected);
      assert.equal(m.delivered, expected, `${server} lost ${expected - (m.delivered ?? 0)} messages over TCP`);
      assert.equal(m.lost, 0);
      assert.equal(m.duplicates, 0);
      assert.equal(m.unrecognisedLines, 0);
      assert.equal(m.invalidLines, 0, 'every line is one JSON object (raw lines are not parsed)');
      assert.ok(m.messagesPerSecond! > 0 && m.cpuSeconds! > 0 && m.peakRssBytes! > 1e6 && m.idlePssBytes! > 0 && m.endPssBytes! > 0, JSON.stringify(m));
      if (workload === 'W4') {
        assert.equal(m.idleConnectionsHeld, QUICK_SIZES.idleConnections);
        assert.equal(m.idleConnectionsOpenAtEnd, QUICK_SIZES.idleConnections, 'the idle connections stay open through the run');
        assert.ok(m.connectedPssBytes! > 1e6 && m.connectedPssBytes! <= m.connectedRssBytes!, 'PSS counts shared pages once: at most the RSS');
      }
    });
  }
}

for (const variant of variantsOf('W3')) {
  for (const server of ['sluice', 'rsyslog', 'syslog-ng'] as const) {
    test(`bench ${variant.label} (--quick) on ${server}: datagrams counted, loss reported`, async (t) => {
      const reason = missing(server);
      if (reason) return t.skip(reason);
      const m = await measure(variant, server, context(t));
      assert.equal(m.error, undefined, m.error);
      assert.equal(m.sent, QUICK_SIZES.udpMessages);
      // UDP may lose: reported, not asserted. What arrives must be whole and unique.
      assert.ok(m.delivered! > 0 && m.delivered! <= m.sent!, `delivered ${m.delivered} of ${m.sent}`);
      assert.equal(m.duplicates, 0);
      assert.equal(m.invalidLines, 0);
      assert.equal(m.unrecognisedLines, 0);
      assert.ok(m.udpReceiveBufferBytes === null || m.udpReceiveBufferBytes! > 0);
      if (variant.udpReceiveBuffer !== null && m.udpReceiveBufferBytes != null) {
        // The kernel doubles SO_RCVBUF; asking for 4 MiB must give more than the 208 KiB default.
        assert.ok(m.udpReceiveBufferBytes >= variant.udpReceiveBuffer, `rcvbuf ${m.udpReceiveBufferBytes}`);
      }
      // What the kernel dropped for the socket is part of the loss, never more (null: no /proc).
      if (m.udpKernelDropped !== undefined) assert.ok(m.udpKernelDropped >= 0 && m.udpKernelDropped <= m.lost!, `kernel ${m.udpKernelDropped}, lost ${m.lost}`);
      t.diagnostic(`${server} ${variant.label}: lost ${m.lost} of ${m.sent} (${m.lossPercent!.toFixed(2)} %), ${m.udpKernelDropped ?? '?'} in the kernel`);
    });
  }
}

test('bench W5 (--quick) on sluice: loadgen agents, no errors, nothing lost', async (t) => {
  const reason = loadgenMissing();
  if (reason) return t.skip(reason);
  const m = await measure(variantsOf('W5')[0]!, 'sluice', context(t));
  assert.equal(m.error, undefined, m.error);
  assert.equal(m.agents, QUICK_SIZES.latencyAgents);
  assert.ok(m.sent! > 0);
  assert.equal(m.lost, 0);
  assert.equal(m.delivered, m.sent);
  assert.deepEqual(m.errors, { connect: 0, reset: 0, other: 0 });
  assert.ok(m.latencyMs!.p50 <= m.latencyMs!.p99 && m.latencyMs!.p99 <= m.latencyMs!.max);
});

for (const server of ['sluice', 'rsyslog'] as const) {
  test(`bench W5 relp (--quick) on ${server}: loadgen agents over RELP, every message acknowledged and delivered`, async (t) => {
    const reason = loadgenMissing() || (server === 'rsyslog' && rsyslogRelpMissing());
    if (reason) return t.skip(reason);
    const variant = variantsOf('W5').find((v) => v.relp === true)!;
    const m = await measure(variant, server, context(t));
    assert.equal(m.error, undefined, m.error);
    assert.equal(m.variant, 'W5 relp');
    assert.equal(m.latencyTo, 'ack');
    assert.ok(m.sent! > 0);
    assert.equal(m.lost, 0);
    assert.equal(m.delivered, m.sent);
    assert.deepEqual(m.errors, { connect: 0, reset: 0, other: 0 });
    assert.ok(m.latencyMs!.p50 > 0 && m.latencyMs!.p50 <= m.latencyMs!.p99 && m.latencyMs!.p99 <= m.latencyMs!.max);
    assert.ok(m.cpuSecondsPerMillion! > 0 && m.peakRssBytes! > 1e6, JSON.stringify(m));
  });
}

test('bench W6 (--quick) on sluice: steady tenants beside a flooding one, the latency of the steady ones, the node\'s event loop', async (t) => {
  const reason = loadgenMissing();
  if (reason) return t.skip(reason);
  const [steady, flood] = variantsOf('W6');
  for (const variant of [steady!, flood!]) {
    const m = await measure(variant, 'sluice', context(t));
    assert.equal(m.error, undefined, m.error);
    assert.equal(m.agents, (QUICK_SIZES.isolationTenants + 1) * QUICK_SIZES.isolationAgentsPerTenant);
    assert.ok(m.sent! > 0);
    assert.equal(m.lost, 0, `${variant.label}: the steady tenants lose nothing`);
    assert.ok(m.latencyMs!.p50 <= m.latencyMs!.p99 && m.latencyMs!.p99 <= m.latencyMs!.max);
    assert.ok(m.eventLoop !== undefined, 'the node reported its event-loop delay when it stopped');
    assert.ok(m.eventLoop.maxMs >= m.eventLoop.p99WorstMs);
    assert.ok(m.noiseFloor !== undefined && m.noiseFloor.maxMs >= m.noiseFloor.p99Ms, 'the idle process measured the machine');
    assert.equal(m.isolation?.warmupLost, 0, 'the warm-up run lost nothing');
    assert.ok(m.isolation.generatorDelayMaxMs! >= m.isolation.generatorDelayP99Ms!, 'the load generator\'s own delay reported');
    if (variant === flood) assert.ok(m.isolation.floodDeliveredPerSec! > 0, 'the flood was delivered too');
  }
});

test('bench W7 (--quick) on sluice: a storm of new hosts, each registered and its record written; after a restart the same hosts again', async (t) => {
  const m = await measure(variantsOf('W7')[0]!, 'sluice', context(t));
  assert.equal(m.error, undefined, m.error);
  const { cold, restart } = m.storm!;
  for (const [what, phase] of [['new hosts', cold], ['after the restart', restart]] as const) {
    assert.equal(phase.hosts, QUICK_SIZES.stormHosts, what);
    assert.equal(phase.failed, 0, what);
    assert.equal(phase.written, phase.hosts, `${what}: every host's record written`);
    // Whether each record made it within lookup_timeout is the full run's target, not this smoke test's.
    assert.equal(phase.withMeta + Object.values(phase.missing).reduce((a, b) => a + b, 0), phase.hosts, what);
    assert.deepEqual(Object.keys(phase.missing).filter((reason) => reason !== 'timeout'), [], `${what}: none missing for another reason than time`);
    assert.ok(phase.writtenMs!.p50 <= phase.writtenMs!.max, what);
  }
  assert.equal(cold.unregistered, 0, 'every new host registered');
  assert.ok(cold.registeredMs!.p99 <= cold.registeredMs!.max);
  t.diagnostic(`registered p99 ${cold.registeredMs!.p99} ms; with meta ${cold.withMeta} and ${restart.withMeta} of ${cold.hosts}`);
});

test('bench: SIGINT stops every process the harness started and removes its folders', async (t) => {
  const reason = missing('sluice');
  if (reason) return t.skip(reason);
  const harness = spawn(process.execPath, [path.join(ROOT, 'dist', 'bench', 'run.js'), '--quick', 'W4', '--servers', 'sluice'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    harness.kill('SIGKILL');
  });
  const exited = new Promise<number | null>((resolve) => harness.on('exit', (code) => resolve(code)));
  // Wait until the server and the idle-connection holder are both running under the harness.
  const started = await waitFor('the harness to start its children', () => {
    const tree = processTree(harness.pid!).filter((pid) => pid !== harness.pid);
    return tree.length >= 2 ? tree : undefined;
  }, 60_000);
  const folders = started.flatMap((pid) => {
    try {
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      return cwd.includes('sluice-bench-') ? [cwd] : [];
    } catch {
      return [];
    }
  });
  assert.ok(folders.length > 0, 'the server runs in its temporary folder');
  harness.kill('SIGINT');
  assert.equal(await exited, 130);
  for (const pid of started) assert.equal(existsSync(`/proc/${pid}`), false, `pid ${pid} still running`);
  for (const folder of folders) assert.equal(existsSync(folder), false, `${folder} left behind`);
});
