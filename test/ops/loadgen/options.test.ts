/**
 * `sluice loadgen` options: defaults, every problem reported at once with
 * the option it is about, and the node configuration it prints.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { parseConfig } from '../../../src/ops/config/load.js';
import { OptionError, parseLoadgenOptions, type RawLoadgenOptions } from '../../../src/ops/loadgen/options.js';
import { localAddress, nodeConfigYaml, tenantOf, workerSlice } from '../../../src/ops/loadgen/layout.js';

const TWO_CORES = { cores: 2, descriptorLimit: 20_000 };

function problems(raw: RawLoadgenOptions): string[] {
  try {
    parseLoadgenOptions(raw, TWO_CORES);
  } catch (err) {
    assert.ok(err instanceof OptionError);
    return err.problems;
  }
  assert.fail(`accepted ${JSON.stringify(raw)}`);
}

test('options: every default', () => {
  const o = parseLoadgenOptions({}, TWO_CORES);
  assert.equal(o.protocol, 'tcp');
  assert.deepEqual(o.target, { host: '127.0.0.1', port: 5514, url: 'tcp://127.0.0.1:5514' });
  assert.equal(o.agents, 1000);
  assert.equal(o.tenants, 1);
  assert.equal(o.workers, 1, 'ceil(1000 / 2500)');
  assert.equal(o.pattern, 'steady');
  assert.equal(o.ratePerSec, 1);
  assert.equal(o.durationMs, 10_000);
  assert.equal(o.settleMs, 5000);
  assert.equal(o.steadyAfterMs, 10_000, 'the steady part starts 10 s in');
  assert.equal(o.messageBytes, 256);
  assert.equal(o.dataDir, './data');
  assert.equal(o.logsDir, path.join('data', 'logs'));
  assert.equal(o.reportDir, './loadgen-report');
  assert.equal(o.printNodeConfig, false);
});

test('options: workers default to one per 2,500 agents, at most one per core', () => {
  assert.equal(parseLoadgenOptions({ agents: '10000' }, TWO_CORES).workers, 2);
  assert.equal(parseLoadgenOptions({ agents: '10000' }, { cores: 8, descriptorLimit: null }).workers, 4);
  assert.equal(parseLoadgenOptions({ agents: '2501' }, TWO_CORES).workers, 2);
  assert.equal(parseLoadgenOptions({ agents: '10000', workers: '3' }, TWO_CORES).workers, 3);
});

test('options: values in their units', () => {
  const o = parseLoadgenOptions({
    target: 'udp://localhost:6000', duration: '2m', settle: '0', size: '1KiB', rate: '0.5',
    burstInterval: '250ms', reconnectInterval: '1.5', dataDir: '/srv/sluice', reportDir: 'out',
  }, TWO_CORES);
  assert.equal(o.protocol, 'udp');
  assert.deepEqual(o.target, { host: '127.0.0.1', port: 6000, url: 'udp://127.0.0.1:6000' });
  assert.equal(o.durationMs, 120_000);
  assert.equal(o.settleMs, 0);
  assert.equal(o.messageBytes, 1024);
  assert.equal(o.ratePerSec, 0.5);
  assert.equal(o.burstIntervalMs, 250);
  assert.equal(o.reconnectIntervalMs, 1500, 'a bare number is seconds');
  assert.equal(o.logsDir, path.join('/srv/sluice', 'logs'));
  assert.equal(parseLoadgenOptions({ target: '127.0.0.1:7000', protocol: 'udp' }, TWO_CORES).target.url, 'udp://127.0.0.1:7000');
});

test('options: --steady-after as the other durations; 0 (the whole run) allowed, a negative or a word not', () => {
  assert.equal(parseLoadgenOptions({ steadyAfter: '30s' }, TWO_CORES).steadyAfterMs, 30_000);
  assert.equal(parseLoadgenOptions({ steadyAfter: '2.5' }, TWO_CORES).steadyAfterMs, 2500, 'a bare number is seconds');
  assert.equal(parseLoadgenOptions({ steadyAfter: '0' }, TWO_CORES).steadyAfterMs, 0);
  assert.equal(parseLoadgenOptions({ steadyAfter: '0s' }, TWO_CORES).steadyAfterMs, 0);
  assert.deepEqual(problems({ steadyAfter: '-1s' }), ['--steady-after: got "-1s"; expected a duration such as 10s, 500ms or 2m, from 0 to 24h']);
  assert.deepEqual(problems({ steadyAfter: 'later' }), ['--steady-after: got "later"; expected a duration such as 10s, 500ms or 2m, from 0 to 24h']);
});

test('options: RELP by its scheme or by --protocol; without --target, the port a zero-config node takes RELP on', () => {
  const byScheme = parseLoadgenOptions({ target: 'relp://localhost:3514' }, TWO_CORES);
  assert.equal(byScheme.protocol, 'relp');
  assert.deepEqual(byScheme.target, { host: '127.0.0.1', port: 3514, url: 'relp://127.0.0.1:3514' });
  assert.equal(parseLoadgenOptions({ protocol: 'relp', target: '127.0.0.1:3514' }, TWO_CORES).target.url, 'relp://127.0.0.1:3514');
  const byDefault = parseLoadgenOptions({ protocol: 'relp' }, TWO_CORES);
  assert.deepEqual([byDefault.protocol, byDefault.target.url], ['relp', 'relp://127.0.0.1:2514']);
  assert.equal(parseLoadgenOptions({ protocol: 'udp' }, TWO_CORES).target.url, 'udp://127.0.0.1:5514');
  assert.match(problems({ target: 'relp://127.0.0.1:3514', protocol: 'tcp' })[0]!, /^--protocol: got "tcp"; expected the protocol of --target \(relp\)/);
  assert.match(problems({ target: 'relp://10.0.0.1:2514' })[0]!, /^--target: .*expected a loopback address/);
});

test('options: every problem at once, each naming its option and what it expects', () => {
  const found = problems({ agents: 'lots', rate: '0', pattern: 'storm', duration: 'soon', size: '12', protocol: 'sctp' });
  assert.deepEqual(found, [
    '--protocol: got "sctp"; expected one of tcp, udp, relp',
    '--agents: got "lots"; expected an integer from 1 to 100000',
    '--pattern: got "storm"; expected one of steady, burst, flood, reconnect, idle',
    '--rate: got "0"; expected a number of messages per second above 0 and at most 100000',
    '--duration: got "soon"; expected a duration such as 10s, 500ms or 2m, from 100ms to 24h',
    '--size: got "12"; expected a size from 128 to 65507 bytes, such as 256 or 1KiB',
  ]);
});

test('options: the target must be a loopback address the agents can reach', () => {
  assert.match(problems({ target: 'tcp://10.0.0.1:5514' })[0]!, /^--target: got "tcp:\/\/10\.0\.0\.1:5514"; expected a loopback address/);
  assert.match(problems({ target: 'http://127.0.0.1:80' })[0]!, /^--target: .*scheme is one of tcp, udp/);
  assert.match(problems({ target: '127.0.0.1' })[0]!, /^--target: .*tcp:\/\/host:port/);
  assert.match(problems({ target: 'udp://127.0.0.1:5514', protocol: 'tcp' })[0]!, /^--protocol: got "tcp"; expected the protocol of --target \(udp\)/);
});

test('options: checks across options', () => {
  assert.match(problems({ agents: '3', tenants: '4' })[0]!, /^--tenants: got "4"; expected at most --agents \(3\)/);
  assert.match(problems({ pattern: 'flood' })[0]!, /^--tenants: got "1"; expected 2 or more with --pattern flood/);
  assert.match(problems({ pattern: 'reconnect', duration: '5s', reconnectInterval: '5s' })[0]!, /^--reconnect-interval: .*shorter than --duration/);
  assert.match(problems({ agents: '2', workers: '3' })[0]!, /^--workers: got "3"; expected at most --agents \(2\)/);
  // 30,000 sockets do not fit one process limited to 20,000 descriptors.
  assert.match(problems({ agents: '30000', workers: '1' })[0]!, /^--workers: got "1"; expected 2 or more: 30000 agents per worker/);
});

test('layout: tenants get their own /24, agents spread over 250 addresses, workers split evenly', () => {
  assert.equal(tenantOf(5, 2), 1);
  assert.equal(localAddress(0, 2), '127.0.1.1');
  assert.equal(localAddress(1, 2), '127.0.2.1');
  assert.equal(localAddress(2, 2), '127.0.1.2');
  assert.equal(localAddress(500, 1), '127.0.1.1', 'agent 500 of one tenant wraps to .1');
  assert.equal(localAddress(254 + 255 * 3, 255), '127.0.255.4', 'the last tenant, its fourth agent');
  const slices = [0, 1, 2].map((w) => workerSlice(w, 3, 10));
  assert.deepEqual(slices, [{ first: 0, count: 3 }, { first: 3, count: 3 }, { first: 6, count: 4 }]);
});

test('options: --print-node-config is a valid node configuration whose tenants own the agents\' networks', () => {
  const options = parseLoadgenOptions({ tenants: '3', dataDir: '/tmp/lg data', target: 'tcp://127.0.0.1:6514' }, TWO_CORES);
  const { config, problems: found } = parseConfig(nodeConfigYaml(options));
  assert.deepEqual(found, []);
  assert.equal(config!.dataDir, '/tmp/lg data');
  assert.equal(config!.sources.syslogTcp.port, 6514);
  assert.equal(config!.sources.syslogUdp.port, 6514);
  assert.deepEqual(config!.tenants.map((t) => [t.id, t.networks]), [
    ['t0', ['127.0.1.0/24']], ['t1', ['127.0.2.0/24']], ['t2', ['127.0.3.0/24']],
  ]);
});

test('options: --print-node-config for a RELP target listens for RELP there; the syslog listeners keep their defaults', () => {
  const options = parseLoadgenOptions({ tenants: '2', dataDir: '/tmp/lg', target: 'relp://127.0.0.1:6515' }, TWO_CORES);
  const { config, problems: found } = parseConfig(nodeConfigYaml(options));
  assert.deepEqual(found, []);
  assert.equal(config!.sources.relp.port, 6515);
  assert.equal(config!.sources.relp.address, '127.0.0.1');
  assert.equal(config!.sources.syslogTcp.port, 5514);
  assert.deepEqual(config!.tenants.map((t) => t.id), ['t0', 't1']);
});
