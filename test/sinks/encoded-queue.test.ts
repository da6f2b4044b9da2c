import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AckToken, type AckStatus } from '../../src/core/ack.js';
import { EncodedQueue } from '../../src/sinks/encoded-queue.js';

test('encoded queue: chunks hold whole lines; acks commit only once their last byte is released', () => {
  const q = new EncodedQueue(16);
  const settled: string[] = [];
  const ack = (name: string): AckToken => {
    const a = new AckToken((_s: AckStatus) => settled.push(name));
    a.retain();
    a.seal();
    return a;
  };
  q.append('aaaaaaaaa\n'); // 10 bytes
  q.mark(1, ack('first'));
  q.append('bbbbbbbbb\n'); // does not fit in the 6 bytes left: new chunk
  q.append('cc\n');
  q.mark(2, ack('second'));
  assert.equal(q.bytes, 23);
  const chunks = q.take(1);
  assert.deepEqual(chunks.map(String), ['aaaaaaaaa\n'], 'at least one chunk, even past maxBytes');
  assert.equal(q.release(chunks.length), 1);
  assert.deepEqual(settled, ['first']);
  const rest = q.take(1000);
  assert.deepEqual(rest.map(String), ['bbbbbbbbb\ncc\n']);
  assert.equal(q.release(rest.length), 2);
  assert.deepEqual(settled, ['first', 'second']);
  assert.ok(q.empty);
});

test('encoded queue: a line longer than a chunk gets a chunk of its own; multi-byte text is measured exactly', () => {
  const q = new EncodedQueue(8);
  q.append('é'.repeat(10) + '\n'); // 21 bytes
  q.append('日本\n'); // 7 bytes
  q.mark(2, null);
  const chunks = q.take(1 << 20);
  assert.equal(Buffer.concat(chunks).toString(), 'é'.repeat(10) + '\n日本\n');
  assert.equal(q.bytes, 28);
});

test('encoded queue property: released bytes are exactly the appended lines, in order', () => {
  fc.assert(fc.property(
    fc.array(fc.array(fc.string({ maxLength: 40 }), { minLength: 1, maxLength: 5 }), { maxLength: 30 }),
    fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 200 }),
    (batches, chunkSize, takeBytes) => {
      const q = new EncodedQueue(chunkSize);
      let expected = '';
      let records = 0;
      for (const batch of batches) {
        for (const s of batch) {
          const line = JSON.stringify(s) + '\n';
          q.append(line);
          expected += line;
        }
        q.mark(batch.length, null);
        records += batch.length;
      }
      let out = '';
      let committed = 0;
      while (!q.empty) {
        const chunks = q.take(takeBytes);
        for (const c of chunks) {
          assert.ok(c.toString().endsWith('\n'), 'chunks end on a line boundary');
          out += c.toString();
        }
        committed += q.release(chunks.length);
      }
      assert.equal(out, expected);
      assert.equal(committed, records);
    },
  ), { numRuns: 300 });
});

test('encoded queue: failAll fails every pending ack', () => {
  const q = new EncodedQueue(64);
  const seen: AckStatus[] = [];
  const a = new AckToken((s) => seen.push(s));
  a.retain();
  a.seal();
  q.append('x\n');
  q.mark(1, a);
  q.failAll();
  assert.deepEqual(seen, [2]);
  assert.ok(q.empty);
});

test('encoded queue: an empty queue starts with a small chunk and doubles while it stays busy; chunks are reachable one by one', () => {
  const q = new EncodedQueue(64, 8);
  for (let i = 0; i < 10; i++) q.append('aaa\n');
  q.mark(10, null);
  assert.deepEqual([0, 1, 2, 3].map((i) => q.chunkBytesAt(i)), [8, 16, 16, 0], 'the open chunk is the last');
  assert.equal(q.chunkAt(2).length, 16, 'taking the open chunk seals it');
  assert.equal(q.release(3), 10);
  q.append('bbb\n');
  q.append('bbb\n');
  q.append('bbb\n');
  assert.equal(q.chunkBytesAt(0), 8, 'idle again: small again');
  assert.equal(q.chunkBytesAt(1), 4);
});
