/**
 * The probe against files written the way the file sink writes them: appended
 * lines, partial lines, rotation by rename while lines are still unread.
 * Lines are real sink records (the node's parser and encoder).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { LogRecord } from '../../../src/core/record.js';
import { parseSyslog } from '../../../src/sources/syslog/parse.js';
import { encodeRecord } from '../../../src/core/ndjson.js';
import { rotatedName } from '../../../src/sinks/file/sink.js';
import { MessageFormatter } from '../../../src/ops/loadgen/message.js';
import { LogProbe } from '../../../src/ops/loadgen/probe.js';
import { DeliveryTracker } from '../../../src/ops/loadgen/tracker.js';
import { tempDir, waitFor } from '../../helpers.js';

const RUN = 'feedc0de';
const SENT_AT = 1_000_000;
/** The probe's clock: every record is seen 2.5 ms after it was sent. */
const SEEN_AT = SENT_AT + 2500;

/** The NDJSON line the file sink writes for this run's message `seq` of `agent`. */
function line(agent: number, seq: number, run = RUN): string {
  const rec = new LogRecord();
  rec.received = '2026-11-27T14:20:00.124Z';
  rec.tenant = 't0';
  parseSyslog(new MessageFormatter(run, 200).format(`agent-0-${agent}`, agent, seq, SENT_AT, Date.now()), rec, Date.now());
  return encodeRecord(rec);
}

function lines(agent: number, from: number, to: number): string {
  let text = '';
  for (let seq = from; seq < to; seq++) text += line(agent, seq);
  return text;
}

function setup(t: { after(fn: () => void): void }, agents = 2, tenants = 1) {
  const logs = path.join(tempDir(t, 'sluice-probe-'), 'logs');
  const folder = path.join(logs, 't0');
  mkdirSync(folder, { recursive: true });
  const current = path.join(folder, 'current.ndjson');
  const tracker = new DeliveryTracker(agents, tenants, 0);
  tracker.begin(0);
  const probe = new LogProbe(logs, RUN, tracker, ['t0'], () => SEEN_AT);
  t.after(() => probe.stop());
  return { logs, folder, current, tracker, probe };
}

test('probe: skips what was there before, reads appended lines, and waits for the end of a partial line', (t) => {
  const { current, tracker, probe } = setup(t);
  // Lines of this very run already in the file: only where the probe starts keeps them out.
  writeFileSync(current, lines(0, 100, 103) + '<13>1 - host app - - - not a loadgen record\n');
  probe.start(null);
  probe.poll();
  assert.equal(tracker.delivered, 0);

  appendFileSync(current, lines(0, 0, 5) + line(1, 0, 'aaaaaaaa') + '{"msg":"plain"}\n');
  probe.poll();
  assert.equal(tracker.delivered, 5, 'this run only');

  const next = line(0, 5);
  appendFileSync(current, next.slice(0, 40));
  probe.poll();
  assert.equal(tracker.delivered, 5, 'a partial line waits');
  appendFileSync(current, next.slice(40, 150));
  probe.poll();
  assert.equal(tracker.delivered, 5);
  appendFileSync(current, next.slice(150) + line(0, 6));
  probe.poll();
  assert.equal(tracker.delivered, 7);
  assert.equal(tracker.duplicates, 0);
  assert.equal(tracker.seenBelow(0, 7), 7);
  assert.equal(tracker.latency.byTenant[0]!.totalCount, 7);
  assert.equal(tracker.latency.byTenant[0]!.maxValue, 2500, 'latency = seen − sent, in µs');
  assert.deepEqual([...tracker.foldersByTenant[0]!.entries()], [['t0', 7]]);
});

test('probe: a rotation loses no line and counts none twice, even mid-line', (t) => {
  const { folder, current, tracker, probe } = setup(t);
  probe.start(null);
  writeFileSync(current, lines(0, 0, 10));
  probe.poll();
  assert.equal(tracker.delivered, 10);

  // The sink appends more, part of a line is visible when the probe looks…
  const cut = line(0, 12);
  appendFileSync(current, lines(0, 10, 12) + cut.slice(0, 25));
  probe.poll();
  assert.equal(tracker.delivered, 12);
  // …then completes it and rotates (rename), and the next file starts.
  appendFileSync(current, cut.slice(25) + lines(0, 13, 20));
  renameSync(current, path.join(folder, rotatedName(Date.now() - 1000, 0)));
  writeFileSync(current, lines(0, 20, 30) + line(0, 30).slice(0, 10));
  probe.poll();
  assert.equal(tracker.delivered, 30);
  appendFileSync(current, line(0, 30).slice(10));
  probe.poll();
  assert.equal(tracker.delivered, 31);
  assert.equal(tracker.duplicates, 0);
  assert.equal(tracker.seenBelow(0, 31), 31);
  assert.equal(probe.stats.rotations, 1);
  assert.equal(probe.stats.truncatedBytes, 0);
});

test('probe: catches up when the file was rotated twice between two polls', (t) => {
  const { folder, current, tracker, probe } = setup(t);
  probe.start(null);
  writeFileSync(current, lines(0, 0, 5));
  probe.poll();
  appendFileSync(current, lines(0, 5, 10));
  renameSync(current, path.join(folder, rotatedName(Date.now() - 2000, 0)));
  writeFileSync(current, lines(0, 10, 15));
  renameSync(current, path.join(folder, rotatedName(Date.now() - 1000, 0)));
  writeFileSync(current, lines(0, 15, 20));
  probe.poll();
  assert.equal(tracker.delivered, 20);
  assert.equal(tracker.duplicates, 0);
});

test('probe: a tenant folder that appears during the run is followed from its first line', async (t) => {
  const { logs, tracker, probe } = setup(t, 2, 2);
  probe.start(null);
  const late = path.join(logs, 'late-tenant');
  mkdirSync(late);
  writeFileSync(path.join(late, 'current.ndjson'), line(1, 0) + line(1, 1));
  // Found by the folder scan (every 250 ms), then read from the beginning.
  await waitFor('the new folder', () => {
    probe.poll();
    return tracker.delivered === 2;
  }, 3000);
  assert.deepEqual([...tracker.foldersByTenant[1]!.keys()], ['late-tenant']);
});

test('probe: a line seen twice (a resent record) is a duplicate, not a delivery', (t) => {
  const { current, tracker, probe } = setup(t);
  probe.start(null);
  writeFileSync(current, lines(0, 0, 3) + line(0, 1));
  probe.poll();
  assert.equal(tracker.delivered, 3);
  assert.equal(tracker.duplicates, 1);
  assert.equal(tracker.seenBelow(0, 4), 3, 'seq 3 was sent but never seen: one lost');
});
