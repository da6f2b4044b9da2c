/**
 * A worker's metadata calls over the IPC channel: both ends wired back to back
 * (the primary's end answering from a real SQLite store), then the failures a
 * channel has: a store that fails, an answer that never comes, no channel,
 * a client closed with calls in flight.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { answerHostmetaCall, HostmetaChannelClient, type HostmetaCall } from '../../../src/ops/workers/hostmeta-channel.js';
import { LocalHostmetaClient, type HostmetaCalls } from '../../../src/services/hostmeta/local-client.js';
import { HostmetaRequestError } from '../../../src/services/hostmeta/request-error.js';
import { SqliteHostmetaStore } from '../../../src/services/hostmeta/sqlite-store.js';
import { tempDir } from '../../helpers.js';

/** A channel whose primary answers with `calls` (as primary.ts wires it), each answer on a later turn. */
function wired(calls: HostmetaCalls, timeoutMs = 5000): { client: HostmetaChannelClient; sent: HostmetaCall[] } {
  const sent: HostmetaCall[] = [];
  const client: HostmetaChannelClient = new HostmetaChannelClient((call) => {
    // What crosses the channel is JSON.
    const copy = JSON.parse(JSON.stringify(call)) as HostmetaCall;
    sent.push(copy);
    void answerHostmetaCall(calls, copy).then((reply) => setImmediate(() => client.settle(JSON.parse(JSON.stringify(reply)))));
    return true;
  }, timeoutMs);
  return { client, sent };
}

test('hostmeta channel: get-or-create and patch reach the primary\'s store and answer in order', async (t) => {
  const store = new SqliteHostmetaStore(path.join(tempDir(t, 'sluice-channel-'), 'hostmeta.sqlite'));
  await store.open();
  t.after(() => store.close());
  const { client, sent } = wired(new LocalHostmetaClient(store, 64 * 1024));

  const sighting = { hostname: 'web-1', last_seen: '2026-12-07T00:00:00.000Z', source_address: '127.0.0.5', protocol: 'syslog_tcp' };
  const first = await client.getOrCreateMany('acme', [{ key: 'web-1', create: { ...sighting, first_seen: sighting.last_seen }, update: sighting }, { key: 'db-1' }]);
  assert.deepEqual(first.map((h) => [h.key, h.created]), [['web-1', true], ['db-1', false]]);
  assert.equal(first[0]!.metadata?.['hostname'], 'web-1');
  assert.equal(first[1]!.metadata, null);

  assert.deepEqual(await client.patch('acme', 'web-1', { role: 'frontend' }), { tenant: 'acme', key: 'web-1' });
  const again = await client.getOrCreateMany('acme', [{ key: 'web-1' }]);
  assert.equal(again[0]!.metadata?.['role'], 'frontend');
  assert.equal(again[0]!.created, false);
  assert.deepEqual(sent.map((c) => c.sluice), ['hostmetaBatch', 'hostmetaPatch', 'hostmetaBatch']);
  assert.equal(new Set(sent.map((c) => c.id)).size, 3, 'every call has its own id');
});

test('hostmeta channel: a failing store is a transient 503, a too-large document a 413', async () => {
  const failing: HostmetaCalls = {
    getOrCreateMany: () => Promise.reject(new Error('database is locked')),
    patch: () => Promise.reject(new HostmetaRequestError('status', 'the merged document would be too large', 413)),
    close: async () => undefined,
  };
  const { client } = wired(failing);
  const lookup = await client.getOrCreateMany('acme', [{ key: 'web-1' }]).then(() => null, (err: unknown) => err);
  assert.ok(lookup instanceof HostmetaRequestError);
  assert.equal(lookup.status, 503);
  assert.equal(lookup.transient, true);
  assert.match(lookup.message, /database is locked/);
  const write = await client.patch('acme', 'web-1', { role: 'x' }).then(() => null, (err: unknown) => err);
  assert.ok(write instanceof HostmetaRequestError);
  assert.equal(write.status, 413);
  assert.equal(write.transient, false);
});

test('hostmeta channel: an unanswered call times out, a late answer is dropped, no channel fails at once', async () => {
  const unanswered: HostmetaCall[] = [];
  const client = new HostmetaChannelClient((call) => {
    unanswered.push(call);
    return true;
  }, 20);
  const late = await client.getOrCreateMany('acme', [{ key: 'web-1' }]).then(() => null, (err: unknown) => err);
  assert.ok(late instanceof HostmetaRequestError);
  assert.equal(late.reason, 'timeout');
  // The answer arriving after the timeout settles nothing (and throws nothing).
  client.settle({ sluice: 'hostmetaReply', id: unanswered[0]!.id, hosts: [] });

  const disconnected = new HostmetaChannelClient(() => false, 1000);
  const refused = await disconnected.getOrCreateMany('acme', [{ key: 'web-1' }]).then(() => null, (err: unknown) => err);
  assert.ok(refused instanceof HostmetaRequestError);
  assert.equal(refused.reason, 'network');
});

test('hostmeta channel: close fails the calls in flight and every later one as closed', async () => {
  const client = new HostmetaChannelClient(() => true, 60_000);
  const inFlight = client.getOrCreateMany('acme', [{ key: 'web-1' }]).then(() => null, (err: unknown) => err);
  await client.close();
  const err = await inFlight;
  assert.ok(err instanceof HostmetaRequestError);
  assert.equal(err.reason, 'closed');
  const after = await client.patch('acme', 'web-1', {}).then(() => null, (e: unknown) => e);
  assert.ok(after instanceof HostmetaRequestError);
  assert.equal(after.reason, 'closed');
});
