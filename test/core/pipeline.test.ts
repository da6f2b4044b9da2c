import { test } from 'node:test';
import { UNLIMITED as NO_LIMITS } from '../../src/core/limits.js';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { Sink } from '../../src/core/component.js';
import type { AckToken } from '../../src/core/ack.js';
import { LogRecord } from '../../src/core/record.js';
import { TenantDirectory } from '../../src/core/identity.js';
import { Pipeline } from '../../src/core/pipeline.js';
import { Telemetry } from '../../src/telemetry/telemetry.js';

/** A sink that records what it was given, with a per-tenant congestion switch the test controls. */
class RecordingSink implements Sink {
  readonly acknowledges = true;
  readonly received: [string, number][] = [];
  readonly jammed = new Set<string>();
  private readonly listeners: ((tenant: string | null) => void)[] = [];
  constructor(readonly name: string) {}
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  destroy(): void {}
  health() { return { healthy: true }; }
  write(tenant: string, records: readonly LogRecord[], ack: AckToken | null): boolean {
    this.received.push([tenant, records.length]);
    ack?.commit();
    return !this.jammed.has(tenant);
  }
  queuedBytes(): number { return 0; }
  congested(tenant?: string): boolean { return tenant === undefined ? this.jammed.size > 0 : this.jammed.has(tenant); }
  onDrain(listener: (tenant: string | null) => void): void { this.listeners.push(listener); }
  unjam(tenant: string): void {
    this.jammed.delete(tenant);
    for (const l of this.listeners) l(tenant);
  }
}

function setup() {
  const directory = new TenantDirectory([
    { id: 'a', networks: ['10.0.0.0/8'], tokenHashes: [], certificates: [], limits: NO_LIMITS }, { id: 'b', networks: ['11.0.0.0/8'], tokenHashes: [], certificates: [], limits: NO_LIMITS },
    { id: 'c', networks: ['12.0.0.0/8'], tokenHashes: [], certificates: [], limits: NO_LIMITS },
  ]);
  const all = new RecordingSink('all');
  const onlyB = new RecordingSink('only-b');
  const telemetry = new Telemetry(pino({ level: 'silent' }));
  const pipeline = new Pipeline(directory, [{ sink: all, tenants: ['a', 'b'] }, { sink: onlyB, tenants: ['b'] }], telemetry);
  return { directory, all, onlyB, pipeline, telemetry };
}

const batch = (n: number): LogRecord[] => Array.from({ length: n }, () => new LogRecord());

test('pipeline: a tenant reaches exactly the sinks that name it; one with none is dropped and counted', async () => {
  const { directory, all, onlyB, pipeline, telemetry } = setup();
  pipeline.submit('test', directory.tenants.get('a')!, batch(2), null);
  pipeline.submit('test', directory.tenants.get('b')!, batch(3), null);
  pipeline.submit('test', directory.tenants.get('c')!, batch(4), null);
  assert.deepEqual(all.received, [['a', 2], ['b', 3]]);
  assert.deepEqual(onlyB.received, [['b', 3]]);
  assert.equal(await telemetry.value('sluice_dropped_records_total', { reason: 'no_route' }), 4);
});

test('pipeline: a sink congested for a tenant makes submit() say pause to that tenant only; its waiters resume once it drains', () => {
  const { directory, all, pipeline } = setup();
  const a = directory.tenants.get('a')!;
  const b = directory.tenants.get('b')!;
  all.jammed.add('a');
  assert.equal(pipeline.submit('test', a, batch(1), null), false);
  assert.equal(pipeline.submit('test', b, batch(1), null), true, 'the other tenant on the same sink goes on');
  let resumed = 0;
  const resume = (): void => { resumed++; };
  pipeline.whenDrained(resume, a);
  const cancelled = (): void => { resumed += 100; };
  pipeline.whenDrained(cancelled, a);
  pipeline.cancelWait(cancelled, a);
  let resumedB = 0;
  pipeline.whenDrained(() => resumedB++, b);
  assert.equal(resumedB, 1, 'a tenant the sinks do not hold resumes at once');
  assert.equal(resumed, 0);
  all.jammed.add('b');
  all.unjam('b');
  assert.equal(resumed, 0, "another tenant's drain does not resume this one");
  all.unjam('a');
  assert.equal(resumed, 1);
  pipeline.whenDrained(resume, a);
  assert.equal(resumed, 2, 'resumes at once when nothing is congested');
});

/** A metadata source whose lookups the test answers by hand. */
class ManualMetadata {
  readonly known = new Map<string, Record<string, unknown> | null>();
  readonly pending = new Map<string, (v: Record<string, unknown> | null) => void>();
  sighted(_tenant: string, key: string) {
    return this.known.get(key);
  }
  get(_tenant: string, key: string): Promise<Record<string, unknown> | null> {
    return new Promise((resolve) => this.pending.set(key, (v) => {
      this.known.set(key, v);
      resolve(v);
    }));
  }
}

function hostBatch(host: string, n: number, tag: string): LogRecord[] {
  return Array.from({ length: n }, (_, i) => {
    const rec = new LogRecord();
    rec.tenant = 'a';
    rec.host = host;
    rec.msg = `${tag}${i}`;
    return rec;
  });
}

test('lane: a batch waiting for an unknown host holds the batches behind it, so order is kept; then all carry metadata', async () => {
  const { directory, all, pipeline } = setup();
  const metadata = new ManualMetadata();
  metadata.known.set('known', { k: 1 });
  pipeline.useMetadata(metadata);
  const delivered: string[] = [];
  const realWrite = all.write.bind(all);
  all.write = (tenant, records, ack) => {
    for (const r of records) delivered.push(`${r.msg}:${JSON.stringify(r.meta)}`);
    return realWrite(tenant, records, ack);
  };
  const lane = pipeline.openLane('test');
  const a = directory.tenants.get('a')!;
  assert.equal(lane.submit(a, hostBatch('new', 2, 'first'), null), true, 'a lookup does not pause the source');
  assert.equal(lane.submit(a, hostBatch('known', 2, 'second'), null), true);
  assert.deepEqual(delivered, [], 'nothing overtakes the batch waiting for its lookup');
  metadata.pending.get('new')!({ owner: 'x' });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(delivered, ['first0:{"owner":"x"}', 'first1:{"owner":"x"}', 'second0:{"k":1}', 'second1:{"k":1}']);
});

test('lane: on shutdown, settle() routes batches held by a rate limit at once', async () => {
  const { directory, all, pipeline } = setup();
  const a = directory.tenants.get('a')!;
  a.limiter.set({ messagesPerSecond: 1, bytesPerSecond: 0, burstMs: 1000, maxConnections: 0 });
  const lane = pipeline.openLane('test');
  assert.equal(lane.submit(a, batch(1), null), true, 'within the burst');
  assert.equal(lane.submit(a, batch(5), null), false, 'over the limit: pause');
  assert.equal(all.received.length, 1, 'the throttled batch is held');
  await pipeline.settle();
  assert.deepEqual(all.received, [['a', 1], ['a', 5]]);
});

test('lane: batches held behind a lookup are routed a bounded slice per event-loop turn, in order', async () => {
  const { directory, all, pipeline } = setup();
  const metadata = new ManualMetadata();
  metadata.known.set('known', null);
  pipeline.useMetadata(metadata);
  let turn = 0;
  const turns: number[] = [];
  const realWrite = all.write.bind(all);
  all.write = (tenant, records, ack) => {
    turns.push(turn);
    return realWrite(tenant, records, ack);
  };
  const lane = pipeline.openLane('test');
  const a = directory.tenants.get('a')!;
  lane.submit(a, hostBatch('new', 1, 'first'), null);
  for (let i = 0; i < 8; i++) lane.submit(a, hostBatch('known', 1000, `b${i}-`), null);
  metadata.pending.get('new')!(null);
  while (all.received.length < 9) {
    await new Promise((r) => setImmediate(r));
    turn++;
  }
  assert.ok(new Set(turns).size >= 3, `8,001 records routed in ${new Set(turns).size} turns`);
  assert.deepEqual(all.received.map(([, n]) => n), [1, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000], 'in order');
});
