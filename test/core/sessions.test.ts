/**
 * The session registry: every open stream connection is listed with its
 * tenant, host and counters, and can be closed by id (counted).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closed, connect, startTestNode, waitFor } from '../helpers.js';
import { SessionRegistry } from '../../src/core/sessions.js';

test('sessions: a TCP connection is listed with tenant, host and counts, and closes by id', async (t) => {
  const { node, tcpPort } = await startTestNode(t);
  const agent = await connect(tcpPort);
  const frame = (i: number): string => {
    const msg = `<13>1 2026-11-27T10:00:00Z web-01 app - - - message ${i}`;
    return `${Buffer.byteLength(msg)} ${msg}`;
  };
  agent.write(Array.from({ length: 5 }, (_, i) => frame(i)).join(''));
  agent.write('<13>1 - web-01 app - - - half a fr');
  const view = await waitFor('the session counts five records', () => {
    const views = node.pipeline.sessions.views();
    return views.length === 1 && views[0]!.records === 5 ? views[0] : undefined;
  });
  assert.equal(view.source, 'syslog_tcp');
  assert.equal(view.tenant, 'default');
  assert.equal(view.host, 'web-01');
  assert.ok(view.bytes > 0);
  assert.ok(view.queuedBytes > 0, 'the incomplete frame is held');
  assert.match(view.peer, /^127\.0\.0\.1:\d+$/);

  node.pipeline.sessions.get(view.id)!.control.close('admin');
  await closed(agent);
  await waitFor('the registry forgets the closed session', () => node.pipeline.sessions.size === 0);
  assert.equal(await node.telemetry.value('sluice_source_closed_connections_total', { reason: 'admin' }), 1);
});

test('sessions: a governed session stops reading until resumed', async (t) => {
  const { node, tcpPort } = await startTestNode(t);
  const agent = await connect(tcpPort);
  const entry = await waitFor('the session opens', () => [...node.pipeline.sessions.values()][0]);
  entry.control.pauseReading();
  assert.equal(entry.view().governed, true);
  const msg = '<13>1 - web-02 app - - - while paused';
  agent.write(`${Buffer.byteLength(msg)} ${msg}`);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(entry.records, 0, 'nothing is read while governed');
  entry.control.resumeReading();
  await waitFor('the record is read after resuming', () => entry.records === 1);
  agent.destroy();
});

test('sessions: hosts are scanned per record only while an observer watches; one that starts later gets the host key and sees a relay', () => {
  const registry = new SessionRegistry('t:');
  const control = { close: () => undefined, queuedBytes: () => 0, pauseReading: () => undefined, resumeReading: () => undefined };
  const entry = registry.open('relp', 'relp', '10.0.0.5:4000', 'acme', control);
  // No observer (a node alone): the last record's key, no scan, so a mixed batch is not noticed.
  entry.noteHosts([{ hostname: 'web-1', host: 'k1' }, { hostname: 'web-2', host: 'k2' }]);
  assert.equal(entry.hostKey, 'k2');
  assert.equal(entry.multiHost, false);
  const seen: (string | null)[] = [];
  registry.observe({ hostChanged: (e, previous) => seen.push(`${previous}→${e.hostKey}`), closed: () => undefined });
  entry.noteHosts([{ hostname: 'web-2', host: 'k2' }]);
  assert.deepEqual(seen, [], 'the same host: nothing to tell');
  entry.noteHosts([{ hostname: 'web-2', host: 'k2' }, { hostname: 'web-3', host: 'k3' }]);
  assert.equal(entry.multiHost, true);
  assert.deepEqual(seen, ['k2→null']);
});
