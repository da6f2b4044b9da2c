/**
 * The load generator over RELP: against a real node (in this process, ports
 * 0) every message is acknowledged and delivered and the latency is send →
 * ack; against scripted servers that refuse, or end sessions, the failures
 * are counted by kind and code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeConfigYaml } from '../../../src/ops/loadgen/layout.js';
import { parseLoadgenOptions, type RawLoadgenOptions } from '../../../src/ops/loadgen/options.js';
import { formatSummary } from '../../../src/ops/loadgen/report.js';
import { runLoadgen } from '../../../src/ops/loadgen/run.js';
import { startTestNode, tempDir } from '../../helpers.js';
import { answering, OPEN_ACCEPTED, ScriptedRelpServer, type Script } from './scripted-relp-server.js';

function options(raw: RawLoadgenOptions) {
  return parseLoadgenOptions({ quiet: true, ...raw });
}

async function scriptedServer(t: { after(fn: () => Promise<void>): void }, script: Script): Promise<ScriptedRelpServer> {
  const server = await ScriptedRelpServer.listen(script);
  t.after(() => server.close());
  return server;
}

test('loadgen over RELP: 100 agents of 2 tenants at 5 msg/s for 2 s against a node: every message acknowledged and delivered', async (t) => {
  const dir = tempDir(t, 'sluice-loadgen-relp-');
  const printed = nodeConfigYaml({ protocol: 'relp', tenants: 2, dataDir: dir, target: { host: '127.0.0.1', port: 2514, url: 'relp://127.0.0.1:2514' } });
  // The printed tenants; the test helper gives the node its data_dir and ports 0.
  const { node } = await startTestNode(t, printed.slice(printed.indexOf('tenants:')), dir);
  const port = node.addresses().relp!.port;
  const result = await runLoadgen(options({
    target: `relp://127.0.0.1:${port}`, agents: '100', tenants: '2', workers: '2', rate: '5', duration: '2s', settle: '10s', dataDir: dir,
    steadyAfter: '1s',
  }));
  assert.equal(result.reached, true);
  assert.equal(result.options.protocol, 'relp');
  assert.equal(result.sent, 1000, '100 agents × 5/s × 2 s');
  assert.equal(result.delivered, result.sent);
  assert.equal(result.lost, 0);
  assert.equal(result.duplicates, 0);
  assert.deepEqual(result.errors, { connect: 0, reset: 0, other: 0 });
  assert.equal(result.connects, 100, 'one session per agent');
  assert.equal(result.latencyMeasures, 'ack');
  assert.equal(result.latency.totalCount, result.sent, 'every message acknowledged');
  assert.ok(result.latency.minNonZeroValue > 0 && result.latency.maxValue >= result.latency.getValueAtPercentile(50));
  assert.deepEqual(result.perTenant.map((p) => [p.tenant, p.sent, p.delivered, p.latency.totalCount]), [['t0', 500, 500, 500], ['t1', 500, 500, 500]]);
  // The workers' acks of the messages sent from 1 s on: some, not all.
  const steadyAcks = result.steadyLatency.totalCount;
  assert.ok(steadyAcks > 0 && steadyAcks < result.sent, `acks from 1 s on: ${steadyAcks}`);
  assert.ok(result.othersSteadyLatency!.totalCount > 0 && result.othersSteadyLatency!.totalCount < steadyAcks, 't1\'s share');

  const summary = formatSummary(result);
  assert.match(summary, /^sluice loadgen: steady over relp to relp:\/\/127\.0\.0\.1:\d+, 100 agents/);
  assert.match(summary, /^latency: from send to the node's acknowledgement \(relp answer 200\)/m);
  assert.match(summary, /^send → ack ms +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+ +1000\n {2}from 1 s +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+ +\d+$/m);
});

test('loadgen over RELP: a server answering 500 fails each session (other, RELP_500), and nothing counts as acknowledged', async (t) => {
  const server = await scriptedServer(t, answering('500 record dropped: no sink stored it'));
  const result = await runLoadgen(options({
    target: `relp://127.0.0.1:${server.port}`, agents: '4', rate: '5', duration: '1500ms', settle: '0', dataDir: tempDir(t),
  }));
  assert.equal(result.reached, true);
  assert.ok((result.errorCodes.RELP_500 ?? 0) >= 4, JSON.stringify(result.errorCodes));
  assert.deepEqual(result.errors, { connect: 0, reset: 0, other: result.errorCodes.RELP_500 });
  assert.equal(result.latency.totalCount, 0, 'a refusal is not an acknowledgement');
  assert.ok(result.connects >= 4);
});

test('loadgen over RELP: serverclose ends each session (reset, RELP_SERVERCLOSE); a refused open makes the target unreachable', async (t) => {
  const closing: Script = (session, frame) => {
    if (frame.command === 'open') {
      session.answer(frame.txnr, OPEN_ACCEPTED);
      return;
    }
    session.answer(frame.txnr);
    session.serverClose();
  };
  const server = await scriptedServer(t, closing);
  const result = await runLoadgen(options({
    target: `relp://127.0.0.1:${server.port}`, agents: '4', rate: '5', duration: '1500ms', settle: '0', dataDir: tempDir(t),
  }));
  assert.equal(result.reached, true);
  assert.ok((result.errorCodes.RELP_SERVERCLOSE ?? 0) >= 4, JSON.stringify(result.errorCodes));
  assert.deepEqual(result.errors, { connect: 0, reset: result.errorCodes.RELP_SERVERCLOSE, other: 0 });
  assert.ok(result.latency.totalCount >= 4, 'the answers before serverclose are acks');

  const refusing = await scriptedServer(t, (session, frame) => session.answer(frame.txnr, '500 required command not supported by client'));
  const refused = await runLoadgen(options({
    target: `relp://127.0.0.1:${refusing.port}`, agents: '3', duration: '1s', settle: '0', dataDir: tempDir(t),
  }));
  assert.equal(refused.reached, false);
  assert.match(refused.unreachableReason!, /^no agent could connect to relp:\/\/127\.0\.0\.1:\d+ \(3 attempts; first error: RELP_OPEN_500\)$/);
});
