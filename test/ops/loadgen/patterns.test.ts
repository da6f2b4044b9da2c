/**
 * The traffic patterns besides steady and idle, each short, against a real
 * node in this process: the counts each pattern must produce, exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLoadgenOptions, type RawLoadgenOptions } from '../../../src/ops/loadgen/options.js';
import { runLoadgen } from '../../../src/ops/loadgen/run.js';
import { startTestNode, tempDir } from '../../helpers.js';

async function run(t: { after(fn: () => void | Promise<void>): void }, raw: RawLoadgenOptions, nodeYaml = '') {
  const dir = tempDir(t, 'sluice-loadgen-');
  const { tcpPort } = await startTestNode(t, nodeYaml, dir);
  return runLoadgen(parseLoadgenOptions({ target: `tcp://127.0.0.1:${tcpPort}`, dataDir: dir, quiet: true, settle: '10s', ...raw }));
}

test('pattern burst: every agent sends --burst-size at once, every --burst-interval', async (t) => {
  const result = await run(t, { pattern: 'burst', agents: '20', burstSize: '5', burstInterval: '500ms', duration: '1200ms' });
  assert.equal(result.sent, 20 * 5 * 3, 'bursts at 0, 0.5 and 1.0 s');
  assert.equal(result.delivered, result.sent);
  assert.equal(result.lost, 0);
  const busy = result.timeline.filter((e) => e.sent > 0).map((e) => e.t);
  assert.deepEqual(busy, [0, 1], 'two bursts in the first second, one in the second');
});

test('pattern reconnect: all agents reconnect at once every interval; nothing is lost on the way', async (t) => {
  const result = await run(t, { pattern: 'reconnect', agents: '40', rate: '10', reconnectInterval: '400ms', duration: '1500ms' });
  assert.equal(result.connects, 40 * 4, 'the first connections and three storms (0.4, 0.8, 1.2 s)');
  assert.equal(result.connect.totalCount, 160);
  assert.equal(result.sent, 40 * 15);
  assert.equal(result.delivered, result.sent);
  assert.equal(result.lost, 0);
  assert.deepEqual(result.errors, { connect: 0, reset: 0, other: 0 });
});

test('pattern flood: t0 sends at --flood-rate while t1 stays steady; latency is reported per tenant', async (t) => {
  const nodeYaml = 'tenants:\n  t0: { networks: [127.0.1.0/24] }\n  t1: { networks: [127.0.2.0/24] }';
  const result = await run(t, { pattern: 'flood', agents: '20', tenants: '2', rate: '2', floodRate: '200', duration: '1500ms' }, nodeYaml);
  const [flooder, victim] = result.perTenant;
  assert.equal(flooder!.tenant, 't0');
  assert.equal(victim!.tenant, 't1');
  assert.equal(victim!.sent, 10 * 2 * 1.5, 'the steady tenant keeps its rate');
  assert.ok(flooder!.sent + result.throttled === 10 * 200 * 1.5, 'each flood message is sent or, on a full buffer, skipped and counted');
  assert.ok(flooder!.sent > victim!.sent * 10);
  for (const tenant of [flooder!, victim!]) {
    assert.equal(tenant.lost, 0);
    assert.equal(tenant.latency.totalCount, tenant.sent);
  }
});
