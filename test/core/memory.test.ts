/**
 * The memory governor's state machine and its choice of sessions, driven by
 * samples whose numbers the test sets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryGovernor, MemoryState, nextState, type MemorySample, type ProcessMemory } from '../../src/core/memory.js';
import { PauseReason, SessionRegistry, type SessionControl, type SessionEntry } from '../../src/core/sessions.js';
import { memoryLogger, silentTelemetry, waitFor } from '../helpers.js';
import { Telemetry } from '../../src/telemetry/telemetry.js';

const MiB = 1024 ** 2;

function sample(accountedBytes: number, heapUsedBytes = 0, nodeBytes = 0): MemorySample {
  return { components: { sinks: accountedBytes }, accountedBytes, heapUsedBytes, rssBytes: nodeBytes, nodeBytes, pausedSessions: 0 };
}

/** A session whose held bytes the test sets; pause and resume flip its Memory pause reason (`entry.governed`) as the real sessions do. */
class HeldSession implements SessionControl {
  held = 0;
  entry!: SessionEntry;
  close(): void {}
  queuedBytes(): number {
    return this.held;
  }
  pauseReading(): void {
    this.entry.paused |= PauseReason.Memory;
  }
  resumeReading(): void {
    this.entry.paused &= ~PauseReason.Memory;
  }
}

function openSession(registry: SessionRegistry, held: number, bytesRead = 0): HeldSession {
  const control = new HeldSession();
  control.held = held;
  control.entry = registry.open('syslog_tcp', 'tcp', '127.0.0.1:1', 'default', control);
  control.entry.bytes = bytesRead;
  return control;
}

function governor(telemetry = silentTelemetry(), heapLimit = 4096 * MiB, rss = 0): { gov: MemoryGovernor; registry: SessionRegistry } {
  const registry = new SessionRegistry();
  const processMemory: ProcessMemory = { usage: () => ({ heapUsed: 0, rss }), heapLimit: () => heapLimit, collectGarbage: () => false };
  const gov = new MemoryGovernor(registry, telemetry, processMemory);
  gov.configure({ budgetBytes: 100 * MiB, measure: 'processes', softMark: 0.8, hardMark: 0.95, hysteresis: 0.05, sampleIntervalMs: 100 });
  return { gov, registry };
}

test('nextState: marks are entered at their value and left only below it by the hysteresis', () => {
  const step = (from: MemoryState, pressure: number) => nextState(from, pressure, 0.8, 0.95, 0.05);
  assert.equal(step(MemoryState.Normal, 0.79), MemoryState.Normal);
  assert.equal(step(MemoryState.Normal, 0.8), MemoryState.Soft);
  assert.equal(step(MemoryState.Normal, 0.95), MemoryState.Hard);
  assert.equal(step(MemoryState.Soft, 0.76), MemoryState.Soft, 'inside the hysteresis band soft stays');
  assert.equal(step(MemoryState.Soft, 0.74), MemoryState.Normal);
  assert.equal(step(MemoryState.Hard, 0.91), MemoryState.Hard, 'inside the band hard stays');
  assert.equal(step(MemoryState.Hard, 0.89), MemoryState.Soft);
  assert.equal(step(MemoryState.Hard, 0.5), MemoryState.Normal);
});

test('governor: pressure is the larger of accounted bytes over the budget and heap over V8\'s limit', async () => {
  const telemetry = silentTelemetry();
  const { gov } = governor(telemetry, 100 * MiB);
  gov.evaluate(sample(10 * MiB, 20 * MiB));
  assert.equal(gov.state, MemoryState.Normal);
  assert.equal(gov.pressure, 0.2);
  gov.evaluate(sample(85 * MiB, 20 * MiB));
  assert.equal(gov.state, MemoryState.Soft);
  gov.evaluate(sample(10 * MiB, 96 * MiB));
  assert.equal(gov.state, MemoryState.Hard, 'the heap alone can reach the hard mark');
  assert.equal(await telemetry.value('sluice_memory_state'), 2);
  assert.equal(await telemetry.value('sluice_memory_accounted_bytes', { component: 'sinks' }), 10 * MiB);
  assert.equal(gov.refuseConnection(), 'memory');
  gov.evaluate(sample(0, 0));
  assert.equal(gov.state, MemoryState.Normal);
  assert.equal(gov.refuseConnection(), null);
});

test('governor: the heap side is measured against V8\'s heap limit, not the budget', () => {
  const { gov } = governor(silentTelemetry(), 50 * MiB);
  gov.evaluate(sample(0, 48 * MiB));
  assert.equal(gov.state, MemoryState.Hard, '48 MiB of a 50 MiB heap is past the hard mark, though the budget is 100 MiB');
  const roomy = governor(silentTelemetry(), 4096 * MiB).gov;
  roomy.evaluate(sample(0, 200 * MiB));
  assert.equal(roomy.state, MemoryState.Normal, 'a heap larger than the budget is no pressure while V8 has room');
});

test('governor: past the soft mark the heaviest sessions pause, idle ones never; all resume at normal', () => {
  const { gov, registry } = governor();
  const idle = Array.from({ length: 5 }, () => openSession(registry, 0));
  const light = openSession(registry, 1000);
  const heavy = openSession(registry, 5 * MiB);
  const busy = openSession(registry, 0, 0);
  const medium = openSession(registry, 64 * 1024);

  gov.evaluate(sample(50 * MiB));
  assert.equal(gov.pausedSessions, 0, 'nothing is paused below the soft mark');

  busy.entry.bytes = 2 * MiB; // read 2 MiB since the last sample: its rate weighs too
  gov.evaluate(sample(85 * MiB));
  assert.equal(gov.state, MemoryState.Soft);
  // Four sessions weigh something: a quarter of them (one) is paused, the heaviest.
  assert.deepEqual([heavy, busy, medium, light].map((s) => s.entry.governed), [true, false, false, false]);

  busy.entry.bytes += 2 * MiB; // and keeps reading
  gov.evaluate(sample(86 * MiB));
  assert.deepEqual([heavy, busy, medium, light].map((s) => s.entry.governed), [true, true, false, false],
    'still at the soft mark: the next heaviest is paused too');

  gov.evaluate(sample(77 * MiB));
  assert.equal(gov.state, MemoryState.Soft, 'inside the hysteresis band nobody new is paused and nobody resumes');
  assert.equal(gov.pausedSessions, 2);

  gov.evaluate(sample(99 * MiB));
  assert.equal(gov.state, MemoryState.Hard);
  assert.deepEqual([heavy, busy, medium, light].map((s) => s.entry.governed), [true, true, true, true], 'hard: every session that weighs anything');
  assert.ok(idle.every((s) => !s.entry.governed), 'idle sessions are never paused');

  gov.evaluate(sample(10 * MiB));
  assert.equal(gov.state, MemoryState.Normal);
  assert.deepEqual([heavy, busy, medium, light].map((s) => s.entry.governed), [false, true, true, true],
    'back at normal, a quarter resume per sample, those paused longest first');
  gov.evaluate(sample(10 * MiB));
  gov.evaluate(sample(10 * MiB));
  gov.evaluate(sample(10 * MiB));
  assert.equal(gov.pausedSessions, 0);
  assert.ok([heavy, busy, medium, light].every((s) => !s.entry.governed));
});

test('governor: a paused session that closes is forgotten at its close, whatever the state', () => {
  const { gov, registry } = governor();
  const heavy = openSession(registry, 5 * MiB);
  gov.evaluate(sample(90 * MiB));
  assert.equal(gov.pausedSessions, 1);
  registry.close(heavy.entry);
  assert.equal(gov.pausedSessions, 0, 'at the close, not at a later sample');
  // Below the soft mark nothing is paused (pauseHeaviest does not run): the set was emptied anyway.
  gov.evaluate(sample(10 * MiB));
  assert.equal(gov.state, MemoryState.Normal);
  assert.equal(gov.pausedSessions, 0);
});

test('governor: the node\'s summed process memory counts against the budget (measure: processes)', async () => {
  const telemetry = silentTelemetry();
  const { gov, registry } = governor(telemetry, 4096 * MiB, 50 * MiB);
  const heavy = openSession(registry, MiB);
  gov.evaluate(gov.sample());
  assert.equal(gov.state, MemoryState.Normal, '50 MiB of 100: normal');
  gov.setOtherProcesses(35 * MiB);
  const measured = gov.sample();
  assert.equal(measured.nodeBytes, 85 * MiB, 'this process\'s RSS and the others\' reported');
  gov.evaluate(measured);
  assert.equal(gov.state, MemoryState.Soft, 'the processes together are past the soft mark, though the queues hold 1 MiB');
  assert.equal(heavy.entry.governed, true);
  assert.equal(await telemetry.value('sluice_memory_node_bytes'), 85 * MiB);
  assert.equal(await telemetry.value('sluice_memory_process_bytes', { process: 'node' }), 50 * MiB);
  assert.equal(await telemetry.value('sluice_memory_holding_sessions'), 1);
  gov.setOtherProcesses(0);
  gov.evaluate(gov.sample());
  assert.equal(gov.state, MemoryState.Normal, 'the others gave their memory back: normal again');
  // measure: queues leaves the processes out.
  gov.configure({ ...gov.settings, measure: 'queues' });
  gov.setOtherProcesses(500 * MiB);
  gov.evaluate(gov.sample());
  assert.equal(gov.state, MemoryState.Normal);
});

test('governor: past a mark, the sessions held longest are let read again once a second; the heaviest is held again', () => {
  const { gov, registry } = governor();
  const first = openSession(registry, 5 * MiB);
  const second = openSession(registry, 4 * MiB);
  const t0 = 1_000_000;
  gov.evaluate(sample(85 * MiB), t0);
  gov.evaluate(sample(85 * MiB), t0 + 100);
  assert.deepEqual([first, second].map((s) => s.entry.governed), [true, true]);
  gov.evaluate(sample(85 * MiB), t0 + 500);
  assert.equal(gov.pausedSessions, 2, 'within the second nobody is let go');
  gov.evaluate(sample(85 * MiB), t0 + 1000);
  assert.deepEqual([first, second].map((s) => s.entry.governed), [false, true], 'the one held longest reads until the next sample');
  first.entry.bytes += MiB; // it read: it weighs most now
  gov.evaluate(sample(86 * MiB), t0 + 1100);
  assert.deepEqual([first, second].map((s) => s.entry.governed), [true, true], 'still the heaviest: held again');
  // A held session whose agent has gone is seen to close once it reads: the registry forgets it, and so does the governor.
  gov.evaluate(sample(85 * MiB), t0 + 2100);
  assert.equal(second.entry.governed, false);
  registry.close(second.entry);
  assert.equal(gov.pausedSessions, 1);
  // Past the hard mark one let go reads until the next sample: a read does not hold it again at once.
  gov.evaluate(sample(99 * MiB), t0 + 3100);
  assert.equal(gov.state, MemoryState.Hard);
  assert.equal(first.entry.governed, false, 'let go by this sample\'s rotation');
  gov.holdNow(first.entry);
  assert.equal(first.entry.governed, false);
  gov.evaluate(sample(99 * MiB), t0 + 3200);
  assert.equal(first.entry.governed, true, 'the next sample holds it (hard: every session that weighs anything)');
  gov.evaluate(sample(99 * MiB), t0 + 3300);
  // In the hysteresis band nobody new is paused, and the rest are let go in turn.
  gov.evaluate(sample(90 * MiB), t0 + 3400);
  gov.evaluate(sample(77 * MiB), t0 + 4400);
  assert.equal(gov.state, MemoryState.Soft);
  assert.equal(gov.pausedSessions, 0);
});

test('governor: past a mark it has V8 collect the garbage, at most once a second; at normal never', async () => {
  let rss = 90 * MiB;
  let samples = 0;
  let collected = 0;
  const processMemory: ProcessMemory = {
    usage: () => { samples++; return { heapUsed: 0, rss }; },
    heapLimit: () => 4096 * MiB,
    collectGarbage: () => { collected++; return true; },
  };
  const gov = new MemoryGovernor(new SessionRegistry(), silentTelemetry(), processMemory);
  gov.configure({ budgetBytes: 100 * MiB, measure: 'processes', softMark: 0.8, hardMark: 0.95, hysteresis: 0.05, sampleIntervalMs: 10 });
  gov.start();
  try {
    await waitFor('past the soft mark, collected', () => gov.state === MemoryState.Soft && collected === 1);
    const at = samples;
    const since = Date.now();
    await waitFor('ten more samples', () => samples >= at + 10);
    assert.ok(collected <= 1 + Math.floor((Date.now() - since) / 1000), `once a second, not at every sample (${collected} in ${Date.now() - since} ms)`);
    rss = 10 * MiB;
    await waitFor('normal', () => gov.state === MemoryState.Normal);
    collected = 0;
    const normalAt = samples;
    await waitFor('ten samples at normal', () => samples >= normalAt + 10);
    assert.equal(collected, 0);
  } finally {
    gov.stop();
  }
});

test('governor: fd capacity refuses connections past it', () => {
  const { gov, registry } = governor();
  gov.connectionCapacity = 2;
  openSession(registry, 0);
  assert.equal(gov.refuseConnection(), null);
  openSession(registry, 0);
  assert.equal(gov.refuseConnection(), 'fd_limit');
});

test('governor: whenRelieved waits for normal, bounded', async () => {
  const { gov } = governor();
  gov.evaluate(sample(90 * MiB));
  let relieved = false;
  const waiting = gov.whenRelieved(10_000).then(() => { relieved = true; });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(relieved, false);
  gov.evaluate(sample(1 * MiB));
  await waiting;
  assert.equal(relieved, true);
  const started = Date.now();
  gov.evaluate(sample(90 * MiB));
  await gov.whenRelieved(50);
  assert.ok(Date.now() - started < 5000, 'the wait ends at its bound');
});

test('governor: state changes are logged with their codes', () => {
  const { logger, lines } = memoryLogger();
  const { gov, registry } = governor(new Telemetry(logger));
  openSession(registry, MiB);
  gov.evaluate(sample(96 * MiB));
  gov.evaluate(sample(1 * MiB));
  const codes = lines.map((l) => l['code']);
  assert.ok(codes.includes('SLU0612W'), 'rising');
  assert.ok(codes.includes('SLU0614W'), 'sessions paused');
  assert.ok(codes.includes('SLU0613I'), 'falling');
  assert.ok(codes.includes('SLU0615I'), 'sessions resumed');
});
