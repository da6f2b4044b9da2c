/**
 * The admin server's side of a live tail, in one process (no worker hop):
 * a reader that stops reading loses lines once the server holds
 * TAIL_MAX_BEHIND_BYTES for it, counted as `client`, and is told how many
 * when it reads again; another tail that reads gets its lines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readEvents } from '../../../src/ops/admin/commands.js';
import { closed, connect, waitFor } from '../../helpers.js';
import { ADMIN_TOKEN, TWO_TENANTS, frame, startAdminFixture } from './admin-helpers.js';

test('tails: a reader that stops reading loses lines at the server (counted, told when it reads again); a reading tail gets its lines', { timeout: 120_000 }, async (t) => {
  const { node, server, base, tcpPort } = await startAdminFixture(t, TWO_TENANTS);
  const unread = await connect(server.port);
  t.after(() => unread.destroy());
  unread.write(`GET /api/tail?tenant=acme HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n\r\n`);
  await new Promise<void>((resolve) => {
    let head = '';
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      if (!head.includes(': stream open')) return;
      unread.off('data', onData);
      unread.pause();
      resolve();
    };
    unread.on('data', onData);
  });
  const reading = new AbortController();
  t.after(() => reading.abort());
  const response = await fetch(`${base}/api/tail?tenant=acme`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, signal: reading.signal });
  let read = 0;
  let readerTold = 0;
  void readEvents(response.body!, (event, data) => {
    if (event === 'message') read++;
    else if (event === 'dropped') readerTold += (JSON.parse(data) as { dropped: number }).dropped;
  }).catch(() => undefined);

  // ~30 MB of lines: more than the kernel's socket buffers and the server's 1 MiB together.
  const RECORDS = 40_000;
  const agent = await connect(tcpPort);
  const body = 'y'.repeat(500);
  for (let from = 0; from < RECORDS; from += 1000) {
    let chunk = '';
    for (let i = from; i < from + 1000; i++) chunk += frame('web-01', `line ${i} ${body}`);
    if (!agent.write(chunk)) await new Promise((resolve) => agent.once('drain', resolve));
  }
  agent.end();
  await closed(agent);

  // A reader in this busy process may itself fall behind now and then: what it did not get, it was told of.
  await waitFor('the reading tail has every line or word of it', () => read + readerTold === RECORDS, 60_000);
  assert.ok(read > RECORDS / 2, `the reading tail got most lines (${read})`);
  const dropped = await node.telemetry.value('sluice_admin_tail_dropped_lines_total', { stage: 'client' });
  assert.ok(dropped > 0, 'the unread tail lost lines, counted');
  assert.equal(await node.telemetry.value('sluice_admin_tail_dropped_lines_total', { stage: 'worker' }), 0, 'no worker hop in one process');

  let text = '';
  unread.on('data', (chunk: Buffer) => { text += chunk.toString('latin1'); });
  unread.resume();
  const toldTotal = (): number => [...text.matchAll(/event: dropped\ndata: \{"dropped":(\d+)\}/g)].reduce((sum, m) => sum + Number(m[1]), 0);
  await waitFor('told exactly what it lost', () => toldTotal() === dropped - readerTold, 30_000);
});
