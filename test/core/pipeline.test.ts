import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { Sink } from '../../src/core/component.js';
import type { AckToken } from '../../src/core/ack.js';
import { LogRecord } from '../../src/core/record.js';
import { TenantDirectory } from '../../src/core/identity.js';
import { Pipeline } from '../../src/core/pipeline.js';
import { Telemetry } from '../../src/ops/telemetry.js';

/** A sink that records what it was given, with a congestion switch the test controls. */
class RecordingSink implements Sink {
  readonly acknowledges = true;
  readonly received: [string, number][] = [];
  jammed = false;
  private readonly listeners: (() => void)[] = [];
  constructor(readonly name: string) {}
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  destroy(): void {}
  health() { return { healthy: true }; }
  write(tenant: string, records: readonly LogRecord[], ack: AckToken | null): boolean {
    this.received.push([tenant, records.length]);
    ack?.commit();
    return !this.jammed;
  }
  queuedBytes(): number { return 0; }
  congested(): boolean { return this.jammed; }
  onDrain(listener: () => void): void { this.listeners.push(listener); }
  unjam(): void {
    this.jammed = false;
    for (const l of this.listeners) l();
  }
}

function setup() {
  const directory = new TenantDirectory([
    { id: 'a', networks: ['10.0.0.0/8'], tokenHashes: [], certificates: [] }, { id: 'b', networks: ['11.0.0.0/8'], tokenHashes: [], certificates: [] },
    { id: 'c', networks: ['12.0.0.0/8'], tokenHashes: [], certificates: [] },
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

test('pipeline: a congested sink makes submit() say pause; waiters resume once it drains', () => {
  const { directory, all, pipeline } = setup();
  all.jammed = true;
  assert.equal(pipeline.submit('test', directory.tenants.get('a')!, batch(1), null), false);
  let resumed = 0;
  const resume = (): void => { resumed++; };
  pipeline.whenDrained(resume);
  const cancelled = (): void => { resumed += 100; };
  pipeline.whenDrained(cancelled);
  pipeline.cancelWait(cancelled);
  assert.equal(resumed, 0);
  all.unjam();
  assert.equal(resumed, 1);
  pipeline.whenDrained(resume);
  assert.equal(resumed, 2, 'resumes at once when nothing is congested');
});
