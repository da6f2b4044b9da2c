/**
 * Model-based test of the disk buffer: random sequences of appends, reads,
 * acknowledgements, clean reopens and simulated crashes, checked step by step
 * against a plain in-memory queue.
 *
 * A crash is simulated by copying the directory while the buffer is open and
 * opening the copy: with every append awaited, the files are exactly what a
 * kill -9 at that moment would leave (completed writes survive a process
 * death). Sometimes a torn write is added to the copy's newest segment. The
 * buffer may then replay entries acknowledged after its last checkpoint
 * (at-least-once), never lose an unacknowledged one, never reorder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import pino from 'pino';
import { DiskBuffer } from '../../../src/sinks/buffer/disk-buffer.js';
import { DEFAULT_DISK_BUFFER_CONFIG, type DiskBufferConfig } from '../../../src/sinks/buffer/config.js';
import { Telemetry } from '../../../src/ops/telemetry.js';

interface ModelEntry {
  id: number;
  payload: Buffer;
  records: number;
}

class Model {
  /** Entries not acknowledged, oldest first; the first `read` of them have been handed out since the last open. */
  unacknowledged: ModelEntry[] = [];
  read = 0;
  /** Acknowledged since the last clean close: a crash may replay a suffix of these. */
  acknowledgedSinceClose: ModelEntry[] = [];
  nextId = 1;
}

class Real {
  buffer!: DiskBuffer;
  telemetry = new Telemetry(pino({ level: 'silent' }));
  private generation = 0;

  constructor(readonly root: string, readonly config: DiskBufferConfig) {}

  get dir(): string {
    return path.join(this.root, `gen${this.generation}`);
  }

  async open(): Promise<void> {
    this.buffer = await DiskBuffer.open(this.dir, this.config, this.telemetry, 'model');
  }

  /** Copy the live directory (the state a kill -9 now would leave), optionally tear the newest segment, and open the copy. */
  async crashAndRecover(tornBytes: Buffer | null): Promise<void> {
    const from = this.dir;
    this.generation++;
    // File by file: a segment removal or checkpoint rename may be finishing on a worker thread meanwhile; a file gone
    // by the time it is copied is one the crash happened after removing (both orders are states a real crash can leave).
    mkdirSync(this.dir);
    for (const name of readdirSync(from)) {
      try {
        copyFileSync(path.join(from, name), path.join(this.dir, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    await this.buffer.close();
    if (tornBytes !== null) {
      const segments = readdirSync(this.dir).filter((n) => n.endsWith('.seg')).sort();
      const newest = segments[segments.length - 1];
      if (newest !== undefined) appendFileSync(path.join(this.dir, newest), tornBytes);
    }
    await this.open();
  }
}

/** `length` bytes derived from `seed`: sizes spread over 0..2000, so a 4 KiB segment holds one to a few hundred entries. */
function patternedBytes(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const payloadArb = fc.record({
  payload: fc.tuple(fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 2000 })), fc.integer()).map(([length, seed]) => patternedBytes(length, seed)),
  records: fc.integer({ min: 0, max: 5000 }),
});

class AppendCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly batch: { payload: Buffer; records: number }[]) {}
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    // Concurrent appends: they share write rounds, and must still land in call order.
    const results = await Promise.all(this.batch.map((e) => r.buffer.append(e.payload, e.records)));
    results.forEach((result, i) => {
      assert.deepEqual(result, { written: true, id: m.nextId }, 'ids are consecutive, in call order');
      m.unacknowledged.push({ id: m.nextId++, payload: this.batch[i]!.payload, records: this.batch[i]!.records });
    });
  }
  toString(): string {
    return `append(${this.batch.map((e) => `${e.payload.length}B/${e.records}r`).join(', ')})`;
  }
}

class ReadCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly maxBytes: number) {}
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    const got = await r.buffer.read(this.maxBytes);
    // The documented budget: at least one entry, then more while their payloads fit in maxBytes.
    const expected: ModelEntry[] = [];
    let bytes = 0;
    for (const entry of m.unacknowledged.slice(m.read)) {
      if (expected.length > 0 && (bytes >= this.maxBytes || entry.payload.length > this.maxBytes - bytes)) break;
      expected.push(entry);
      bytes += entry.payload.length;
    }
    assert.deepEqual(got.map((e) => e.id), expected.map((e) => e.id));
    got.forEach((entry, i) => {
      assert.ok(entry.payload.equals(expected[i]!.payload), `payload of entry ${entry.id}`);
      assert.equal(entry.records, expected[i]!.records);
    });
    m.read += got.length;
  }
  toString(): string {
    return `read(${this.maxBytes})`;
  }
}

class AcknowledgeCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly pick: number) {}
  check(m: Model): boolean {
    return m.read > 0;
  }
  async run(m: Model, r: Real): Promise<void> {
    const index = this.pick % m.read;
    r.buffer.acknowledge(m.unacknowledged[index]!.id);
    m.acknowledgedSinceClose.push(...m.unacknowledged.splice(0, index + 1));
    m.read -= index + 1;
    assert.equal(r.buffer.entriesHeld, m.unacknowledged.length);
  }
  toString(): string {
    return `acknowledge(#${this.pick})`;
  }
}

class ReopenCommand implements fc.AsyncCommand<Model, Real> {
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    await r.buffer.close();
    await r.open();
    // A clean close saved the checkpoint: nothing acknowledged comes back.
    m.acknowledgedSinceClose = [];
    m.read = 0;
    assert.equal(r.buffer.entriesHeld, m.unacknowledged.length);
    assert.equal(await r.telemetry.value('sluice_buffer_entries', { buffer: 'model' }), m.unacknowledged.length);
  }
  toString(): string {
    return 'close+reopen';
  }
}

class CrashCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly tornBytes: Buffer | null) {}
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    const tornBefore = await r.telemetry.value('sluice_buffer_discarded_bytes_total', { reason: 'torn_tail' });
    const hadSegment = readdirSync(r.dir).some((n) => n.endsWith('.seg'));
    await r.crashAndRecover(this.tornBytes);
    const truncated = await r.telemetry.value('sluice_buffer_discarded_bytes_total', { reason: 'torn_tail' }) - tornBefore;
    assert.equal(truncated, hadSegment ? this.tornBytes?.length ?? 0 : 0, 'exactly the torn bytes are cut off');
    const replayed = r.buffer.entriesHeld - m.unacknowledged.length;
    assert.ok(replayed >= 0, `lost ${-replayed} unacknowledged entries`);
    assert.ok(replayed <= m.acknowledgedSinceClose.length, `replayed ${replayed} entries, only ${m.acknowledgedSinceClose.length} were acknowledged since the last close`);
    // The replayed ones are the most recently acknowledged: they are unacknowledged again. The next reads check their contents.
    m.unacknowledged = [...m.acknowledgedSinceClose.slice(m.acknowledgedSinceClose.length - replayed), ...m.unacknowledged];
    m.acknowledgedSinceClose = [];
    m.read = 0;
  }
  toString(): string {
    return `crash(torn ${this.tornBytes?.length ?? 0}B)`;
  }
}

const commandArbs = [
  fc.array(payloadArb, { minLength: 1, maxLength: 6 }).map((batch) => new AppendCommand(batch)),
  fc.integer({ min: 1, max: 8000 }).map((maxBytes) => new ReadCommand(maxBytes)),
  fc.nat().map((pick) => new AcknowledgeCommand(pick)),
  fc.constant(new ReopenCommand()),
  fc.option(fc.uint8Array({ minLength: 1, maxLength: 120 }).map((a) => Buffer.from(a)), { nil: null }).map((torn) => new CrashCommand(torn)),
];

test('disk buffer model: appends, reads, acknowledgements, reopens and crashes agree with an in-memory queue', async () => {
  const root = mkdtempSync(path.join(tmpdir(), 'sluice-buffer-model-'));
  let run = 0;
  try {
    await fc.assert(
      fc.asyncProperty(fc.commands(commandArbs, { maxCommands: 40, size: 'max' }), fc.constantFrom(0, 20, 60_000), async (commands, checkpointIntervalMs) => {
        // Small segments so that rotation, deletion and cross-segment reads happen in every run.
        const config: DiskBufferConfig = { ...DEFAULT_DISK_BUFFER_CONFIG, segmentBytes: 4096, maxBytes: 64 * 1024 * 1024, syncIntervalMs: 1, checkpointIntervalMs };
        const real = new Real(path.join(root, `run${run++}`), config);
        await real.open();
        const model = new Model();
        try {
          await fc.asyncModelRun(() => ({ model, real }), commands);
          // Whatever is left reads back, in order, intact.
          const rest = await real.buffer.read(Number.MAX_SAFE_INTEGER);
          const expected = model.unacknowledged.slice(model.read);
          assert.deepEqual(rest.map((e) => e.id), expected.map((e) => e.id));
          rest.forEach((entry, i) => assert.ok(entry.payload.equals(expected[i]!.payload), `payload of entry ${entry.id}`));
        } finally {
          await real.buffer.close();
          rmSync(real.root, { recursive: true, force: true });
        }
      }),
      { numRuns: 80 },
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
