/**
 * Response ordering: batches acknowledged out of order still answer their
 * transactions in txnr order, with real AckTokens settled the way sinks do.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AckStatus } from '../../../src/core/ack.js';
import { ACK_REPLY, ReplyQueue, type BatchReply, type ReplyOutput } from '../../../src/sources/relp/replies.js';

class Recorder implements ReplyOutput {
  text = '';
  answered = 0;
  settled: [AckStatus, number][] = [];
  sendReplies(frames: string, answered: number): void {
    this.text += frames;
    this.answered += answered;
  }
  batchSettled(status: AckStatus, count: number): void {
    this.settled.push([status, count]);
  }
  /** [txnr, data] of every response written so far (DATA may hold LFs: frames are read by DATALEN). */
  responses(): [number, string][] {
    const out: [number, string][] = [];
    const bytes = Buffer.from(this.text);
    let at = 0;
    while (at < bytes.length) {
      const header = /^(\d+) rsp (\d+) /.exec(bytes.toString('latin1', at, at + 40));
      assert.ok(header, `not a rsp frame at ${at}: ${bytes.toString('latin1', at, at + 40)}`);
      const start = at + header[0].length;
      const end = start + Number(header[2]);
      assert.equal(bytes[end], 0x0a, 'DATALEN matches DATA and the trailer follows');
      out.push([Number(header[1]), bytes.toString('utf8', start, end)]);
      at = end + 1;
    }
    return out;
  }
}

/** What the pipeline does for one acknowledging sink: retain, seal; the sink settles later. */
function routeToOneSink(batch: BatchReply): void {
  batch.token.retain();
  batch.token.seal();
}

test('relp replies: a later batch acknowledged first waits for the earlier one', () => {
  const out = new Recorder();
  const queue = new ReplyQueue(out);
  const first = queue.openBatch(1);
  queue.extendBatch(first);
  routeToOneSink(first);
  queue.answer(3, '500 refused: unknown token', true);
  const second = queue.openBatch(4);
  queue.extendBatch(second);
  routeToOneSink(second);
  assert.equal(queue.unanswered, 5);

  second.token.commit();
  assert.deepEqual(out.responses(), [], 'nothing leaves before txnr 1 is decided');
  assert.equal(queue.unanswered, 5);

  first.token.commit();
  assert.deepEqual(out.responses(), [[1, '200 OK'], [2, '200 OK'], [3, '500 refused: unknown token'], [4, '200 OK'], [5, '200 OK']]);
  assert.equal(out.answered, 5);
  assert.equal(queue.unanswered, 0);
  assert.equal(queue.empty, true);
});

test('relp replies: a decided reply at the head is written at once; one behind a pending batch is not', () => {
  const out = new Recorder();
  const queue = new ReplyQueue(out);
  queue.answer(1, '200 OK\nrelp_version=0', false);
  assert.deepEqual(out.responses().map(([txnr]) => txnr), [1]);
  assert.equal(out.answered, 0, 'open is not a syslog transaction');
  const batch = queue.openBatch(2);
  routeToOneSink(batch);
  queue.answer(3, '200 OK', false);
  assert.deepEqual(out.responses().map(([txnr]) => txnr), [1]);
  batch.token.commit();
  assert.deepEqual(out.responses().map(([txnr]) => txnr), [1, 2, 3]);
});

test('relp replies: the worst status of all sinks decides; dropped and failed are 500', () => {
  const out = new Recorder();
  const queue = new ReplyQueue(out);
  const failed = queue.openBatch(1);
  failed.token.retain();
  failed.token.retain();
  failed.token.seal();
  const dropped = queue.openBatch(2);
  routeToOneSink(dropped);
  dropped.token.drop();
  failed.token.commit();
  assert.deepEqual(out.responses(), [], 'one sink has not settled yet');
  failed.token.fail();
  assert.deepEqual(out.responses(), [[1, ACK_REPLY[AckStatus.Failed]], [2, ACK_REPLY[AckStatus.Dropped]]]);
  assert.match(ACK_REPLY[AckStatus.Failed], /^500 /);
  assert.match(ACK_REPLY[AckStatus.Dropped], /^500 /);
  assert.deepEqual(out.settled, [[AckStatus.Dropped, 1], [AckStatus.Failed, 1]]);
});

test('relp replies: a batch settled while it is submitted (no sink holds it) answers at once', () => {
  const out = new Recorder();
  const queue = new ReplyQueue(out);
  const batch = queue.openBatch(1);
  batch.token.seal();
  assert.deepEqual(out.responses(), [[1, '200 OK']]);
});

test('relp replies: transaction numbers wrap inside a batch', () => {
  const out = new Recorder();
  const queue = new ReplyQueue(out);
  const batch = queue.openBatch(999_999_998);
  queue.extendBatch(batch);
  queue.extendBatch(batch);
  routeToOneSink(batch);
  batch.token.commit();
  assert.deepEqual(out.responses().map(([txnr]) => txnr), [999_999_998, 999_999_999, 1]);
});

test('relp replies: only the last, undecided batch can grow', () => {
  const queue = new ReplyQueue(new Recorder());
  const batch = queue.openBatch(1);
  queue.answer(2, '200 OK', true);
  assert.throws(() => queue.extendBatch(batch), /can only grow/);
  const settled = queue.openBatch(3);
  settled.token.seal();
  assert.throws(() => queue.extendBatch(settled), /can only grow/);
});

test('relp replies: any batch sizes settled in any order are answered exactly once, in txnr order', () => {
  const kinds = fc.array(fc.oneof(
    fc.record({ kind: fc.constant('batch' as const), size: fc.integer({ min: 1, max: 5 }), status: fc.constantFrom(AckStatus.Committed, AckStatus.Dropped, AckStatus.Failed) }),
    fc.record({ kind: fc.constant('refused' as const) }),
  ), { minLength: 1, maxLength: 30 });
  fc.assert(fc.property(kinds, fc.array(fc.nat()), fc.integer({ min: 1, max: 999_999_999 }), (items, order, start) => {
    const out = new Recorder();
    const queue = new ReplyQueue(out);
    const expected: [number, string][] = [];
    const batches: { batch: BatchReply; status: AckStatus }[] = [];
    let txnr = start;
    const next = (): number => {
      const t = txnr;
      txnr = txnr === 999_999_999 ? 1 : txnr + 1;
      return t;
    };
    for (const item of items) {
      if (item.kind === 'refused') {
        const t = next();
        queue.answer(t, '500 refused: no credentials name a tenant', true);
        expected.push([t, '500 refused: no credentials name a tenant']);
        continue;
      }
      const t = next();
      const batch = queue.openBatch(t);
      expected.push([t, ACK_REPLY[item.status]]);
      for (let k = 1; k < item.size; k++) {
        queue.extendBatch(batch);
        expected.push([next(), ACK_REPLY[item.status]]);
      }
      routeToOneSink(batch);
      batches.push({ batch, status: item.status });
    }
    // Settle in an order chosen by fast-check.
    const pending = [...batches];
    let pick = 0;
    while (pending.length > 0) {
      const [{ batch, status }] = pending.splice((order[pick++] ?? 0) % pending.length, 1) as [{ batch: BatchReply; status: AckStatus }];
      if (status === AckStatus.Committed) batch.token.commit();
      else if (status === AckStatus.Dropped) batch.token.drop();
      else batch.token.fail();
      // Whatever has been written so far is a prefix of the expected order.
      const written = out.responses();
      assert.deepEqual(written, expected.slice(0, written.length));
    }
    assert.deepEqual(out.responses(), expected);
    assert.equal(queue.unanswered, 0);
    assert.equal(queue.empty, true);
  }), { numRuns: 300 });
});
