/**
 * Model-based test of the disk buffer: random sequences of appends (for one
 * to three tenants), reads, acknowledgements, clean reopens and simulated
 * crashes, checked step by step against plain in-memory queues, one per
 * tenant. Reads must hand out each tenant's entries exactly in order and keep
 * to the budget; the order across tenants is the round-robin's (fair.test.ts
 * and fairness.test.ts test that).
 *
 * A crash is simulated by copying the directory while the buffer is open and
 * opening the copy: with every append awaited, the files are exactly what a
 * kill -9 at that moment would leave (completed writes survive a process
 * death). Sometimes a torn write is added to the newest segment of a tenant's
 * chain in the copy. The buffer may then replay, per tenant, entries
 * acknowledged after its last checkpoint (at-least-once: a suffix of those,
 * which one shows with the tenant's first entry read), never lose an
 * unacknowledged one, never reorder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import pino from 'pino';
import { DiskBuffer } from '../../../src/sinks/buffer/disk-buffer.js';
import { DEFAULT_DISK_BUFFER_CONFIG, type DiskBufferConfig } from '../../../src/sinks/buffer/config.js';
import { tenantDirName } from '../../../src/sinks/buffer/format.js';
import { Telemetry } from '../../../src/telemetry/telemetry.js';

interface ModelEntry {
  tenant: string;
  id: number;
  payload: Buffer;
  records: number;
}

class Model {
  /** Per tenant: entries not acknowledged, oldest first; the first `read` of them have been handed out since the last open. */
  unacknowledged = new Map<string, ModelEntry[]>();
  read = new Map<string, number>();
  /** Handed out and not acknowledged, in the order read() handed them out (acknowledgements follow it). */
  handedOut: ModelEntry[] = [];
  /** Per tenant: acknowledged since the last clean close; a crash may replay a suffix of these. */
  acknowledgedSinceClose = new Map<string, ModelEntry[]>();
  /**
   * Per tenant, after a crash and until its first entry is read again: the
   * acknowledged entries of which a suffix may have come back (which one
   * shows with the first entry read).
   */
  mayReplay = new Map<string, ModelEntry[]>();
  nextId = new Map<string, number>();

  constructor(readonly tenants: string[]) {
    for (const tenant of tenants) {
      this.unacknowledged.set(tenant, []);
      this.read.set(tenant, 0);
      this.acknowledgedSinceClose.set(tenant, []);
      this.nextId.set(tenant, 1);
    }
  }

  get totalUnacknowledged(): number {
    let total = 0;
    for (const entries of this.unacknowledged.values()) total += entries.length;
    return total;
  }

  unread(tenant: string): ModelEntry[] {
    return this.unacknowledged.get(tenant)!.slice(this.read.get(tenant));
  }

  /** The buffer handed out `entry` of a tenant that may have replayed entries: settle which suffix came back. */
  settleReplay(tenant: string, id: number): void {
    const candidates = this.mayReplay.get(tenant);
    if (candidates === undefined) return;
    this.mayReplay.delete(tenant);
    const from = candidates.findIndex((e) => e.id === id);
    if (from >= 0) this.unacknowledged.set(tenant, [...candidates.slice(from), ...this.unacknowledged.get(tenant)!]);
  }

  /** After a crash or a reopen nothing is handed out; what may be replayed is what was acknowledged since the last clean close. */
  forgetReads(crashed: boolean): void {
    for (const tenant of this.tenants) {
      this.read.set(tenant, 0);
      const acknowledged = this.acknowledgedSinceClose.get(tenant)!;
      // A tenant not read since the last crash has acknowledged nothing since: its candidates stay what they were.
      if (crashed && acknowledged.length > 0) this.mayReplay.set(tenant, acknowledged);
      this.acknowledgedSinceClose.set(tenant, []);
    }
    this.handedOut = [];
  }
}

class Real {
  buffer!: DiskBuffer;
  telemetry = new Telemetry(pino({ level: 'silent' }));
  private generation = 0;

  constructor(readonly root: string, readonly config: DiskBufferConfig) {}

  get dir(): string {
    return path.join(this.root, `gen${this.generation}`);
  }

  chainDir(tenant: string): string {
    return path.join(this.dir, 'tenants', tenantDirName(tenant));
  }

  async open(): Promise<void> {
    this.buffer = await DiskBuffer.open(this.dir, this.config, this.telemetry, 'model');
  }

  /** Copy the live directory (the state a kill -9 now would leave), optionally tear a chain's newest segment, and open the copy. */
  async crashAndRecover(torn: { tenant: string; bytes: Buffer } | null): Promise<void> {
    const from = this.dir;
    this.generation++;
    copyLive(from, this.dir);
    await this.buffer.close();
    if (torn !== null && existsSync(this.chainDir(torn.tenant))) {
      const segments = readdirSync(this.chainDir(torn.tenant)).filter((n) => n.endsWith('.seg')).sort();
      const newest = segments[segments.length - 1];
      if (newest !== undefined) appendFileSync(path.join(this.chainDir(torn.tenant), newest), torn.bytes);
    }
    await this.open();
  }
}

/**
 * File by file: a segment removal or checkpoint rename may be finishing on a worker thread meanwhile; a file gone
 * by the time it is copied is one the crash happened after removing (both orders are states a real crash can leave).
 */
function copyLive(from: string, to: string): void {
  mkdirSync(to);
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    try {
      if (entry.isDirectory()) copyLive(path.join(from, entry.name), path.join(to, entry.name));
      else copyFileSync(path.join(from, entry.name), path.join(to, entry.name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
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
  tenant: fc.nat(2),
  payload: fc.tuple(fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 2000 })), fc.integer()).map(([length, seed]) => patternedBytes(length, seed)),
  records: fc.integer({ min: 0, max: 5000 }),
});

class AppendCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly batch: { tenant: number; payload: Buffer; records: number }[]) {}
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    const tenants = this.batch.map((e) => m.tenants[e.tenant % m.tenants.length]!);
    // Concurrent appends: they share write rounds, and must still land in call order within each tenant.
    const results = await Promise.all(this.batch.map((e, i) => r.buffer.append(tenants[i]!, e.payload, e.records)));
    results.forEach((result, i) => {
      const tenant = tenants[i]!;
      const id = m.nextId.get(tenant)!;
      assert.deepEqual(result, { written: true, id }, 'ids are consecutive per tenant, in call order');
      m.unacknowledged.get(tenant)!.push({ tenant, id, payload: this.batch[i]!.payload, records: this.batch[i]!.records });
      m.nextId.set(tenant, id + 1);
    });
  }
  toString(): string {
    return `append(${this.batch.map((e) => `t${e.tenant}:${e.payload.length}B/${e.records}r`).join(', ')})`;
  }
}

class ReadCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly maxBytes: number) {}
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    const got = await r.buffer.read(this.maxBytes);
    let bytes = 0;
    got.forEach((entry, i) => {
      // The documented budget: at least one entry, then more while their payloads fit in maxBytes.
      if (i > 0) assert.ok(bytes < this.maxBytes && entry.payload.length <= this.maxBytes - bytes, `entry ${i} of the read passes the budget`);
      bytes += entry.payload.length;
      const tenant = entry.tenant!;
      m.settleReplay(tenant, entry.id);
      // Within a tenant: exactly the next entry not yet read.
      const expected = m.unread(tenant)[0];
      assert.ok(expected !== undefined, `tenant ${tenant}: entry ${entry.id} handed out, none expected`);
      assert.equal(entry.id, expected.id, `tenant ${tenant}: in order`);
      assert.ok(entry.payload.equals(expected.payload), `payload of ${tenant}/${entry.id}`);
      assert.equal(entry.records, expected.records);
      m.read.set(tenant, m.read.get(tenant)! + 1);
      m.handedOut.push(expected);
    });
    if (got.length === 0) {
      // Nothing ready anywhere: no tenant replayed anything either.
      for (const tenant of m.tenants) m.mayReplay.delete(tenant);
    }
    if (m.mayReplay.size > 0) return;
    const heads = m.tenants.map((t) => m.unread(t)[0]).filter((e) => e !== undefined);
    if (got.length === 0) assert.equal(heads.length, 0, 'a read returns nothing only when nothing is ready');
    // It stopped because the budget was used up or a next entry did not fit, never with room left for every one.
    else if (heads.length > 0) assert.ok(heads.some((e) => bytes >= this.maxBytes || e.payload.length > this.maxBytes - bytes), 'stopped early');
  }
  toString(): string {
    return `read(${this.maxBytes})`;
  }
}

class AcknowledgeCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly pick: number) {}
  check(m: Model): boolean {
    return m.handedOut.length > 0;
  }
  async run(m: Model, r: Real): Promise<void> {
    const index = this.pick % m.handedOut.length;
    const target = m.handedOut[index]!;
    r.buffer.acknowledge({ tenant: target.tenant, id: target.id });
    // It and everything handed out before it, whatever the tenant.
    for (const entry of m.handedOut.splice(0, index + 1)) {
      const queue = m.unacknowledged.get(entry.tenant)!;
      assert.equal(queue.shift(), entry);
      m.read.set(entry.tenant, m.read.get(entry.tenant)! - 1);
      m.acknowledgedSinceClose.get(entry.tenant)!.push(entry);
    }
    if (m.mayReplay.size === 0) assert.equal(r.buffer.entriesHeld, m.totalUnacknowledged);
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
    m.forgetReads(false);
    if (m.mayReplay.size > 0) return;
    assert.equal(r.buffer.entriesHeld, m.totalUnacknowledged);
    assert.equal(await r.telemetry.value('sluice_buffer_entries', { buffer: 'model' }), m.totalUnacknowledged);
  }
  toString(): string {
    return 'close+reopen';
  }
}

class CrashCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly torn: { tenant: number; bytes: Buffer } | null) {}
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    const tenant = m.tenants[(this.torn?.tenant ?? 0) % m.tenants.length]!;
    const tornBefore = await r.telemetry.value('sluice_buffer_discarded_bytes_total', { reason: 'torn_tail' });
    const hadSegment = existsSync(r.chainDir(tenant)) && readdirSync(r.chainDir(tenant)).some((n) => n.endsWith('.seg'));
    await r.crashAndRecover(this.torn === null ? null : { tenant, bytes: this.torn.bytes });
    const truncated = await r.telemetry.value('sluice_buffer_discarded_bytes_total', { reason: 'torn_tail' }) - tornBefore;
    assert.equal(truncated, hadSegment ? this.torn?.bytes.length ?? 0 : 0, 'exactly the torn bytes are cut off');
    m.forgetReads(true);
    let mayComeBack = 0;
    for (const candidates of m.mayReplay.values()) mayComeBack += candidates.length;
    const replayed = r.buffer.entriesHeld - m.totalUnacknowledged;
    assert.ok(replayed >= 0, `lost ${-replayed} unacknowledged entries`);
    assert.ok(replayed <= mayComeBack, `replayed ${replayed} entries, only ${mayComeBack} were acknowledged since the last close`);
  }
  toString(): string {
    return `crash(torn ${this.torn === null ? 0 : `t${this.torn.tenant}:${this.torn.bytes.length}`}B)`;
  }
}

const commandArbs = [
  fc.array(payloadArb, { minLength: 1, maxLength: 6 }).map((batch) => new AppendCommand(batch)),
  fc.integer({ min: 1, max: 8000 }).map((maxBytes) => new ReadCommand(maxBytes)),
  fc.nat().map((pick) => new AcknowledgeCommand(pick)),
  fc.constant(new ReopenCommand()),
  fc.option(fc.record({ tenant: fc.nat(2), bytes: fc.uint8Array({ minLength: 1, maxLength: 120 }).map((a) => Buffer.from(a)) }), { nil: null }).map((torn) => new CrashCommand(torn)),
];

test('disk buffer model: appends, reads, acknowledgements, reopens and crashes agree with an in-memory queue', async () => {
  const root = mkdtempSync(path.join(tmpdir(), 'sluice-buffer-model-'));
  let run = 0;
  try {
    await fc.assert(
      fc.asyncProperty(fc.commands(commandArbs, { maxCommands: 40, size: 'max' }), fc.constantFrom(0, 20, 60_000), fc.integer({ min: 1, max: 3 }), async (commands, checkpointIntervalMs, tenantCount) => {
        // Small segments so that rotation, deletion and cross-segment reads happen in every run.
        const config: DiskBufferConfig = { ...DEFAULT_DISK_BUFFER_CONFIG, segmentBytes: 4096, maxBytes: 64 * 1024 * 1024, syncIntervalMs: 1, checkpointIntervalMs };
        const real = new Real(path.join(root, `run${run++}`), config);
        await real.open();
        // One tenant is the buffer of one chain; more interleave (one needs its folder name encoded).
        const model = new Model(['acme', 'Globex Corp', 'x'].slice(0, tenantCount));
        try {
          await fc.asyncModelRun(() => ({ model, real }), commands);
          // Whatever is left reads back, in order within each tenant, intact.
          const rest = await real.buffer.read(Number.MAX_SAFE_INTEGER);
          for (const tenant of model.tenants) {
            const mine = rest.filter((e) => e.tenant === tenant);
            if (mine.length > 0) model.settleReplay(tenant, mine[0]!.id);
            const expected = model.unread(tenant);
            assert.deepEqual(mine.map((e) => e.id), expected.map((e) => e.id), `tenant ${tenant}`);
            mine.forEach((entry, i) => assert.ok(entry.payload.equals(expected[i]!.payload), `payload of ${tenant}/${entry.id}`));
          }
          assert.equal(rest.length, rest.filter((e) => model.tenants.includes(e.tenant!)).length);
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
