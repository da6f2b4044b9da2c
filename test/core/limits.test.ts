import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from '../../src/core/token-bucket.js';
import { TenantLimiter } from '../../src/core/limits.js';

test('token bucket: starts full, refills at the rate, never above the burst; debt says how long to wait', () => {
  const bucket = new TokenBucket(100, 50, 0);
  assert.equal(bucket.take(50, 0), 0);
  assert.equal(bucket.tryTake(1, 0), false);
  assert.equal(bucket.tryTake(10, 100), true, '100 ms at 100/s = 10 tokens');
  assert.equal(bucket.tryTake(1, 100), false);
  assert.equal(bucket.take(30, 100), 300, '30 tokens of debt at 100/s = 300 ms');
  assert.equal(bucket.tryTake(1, 399), false);
  assert.equal(bucket.tryTake(1, 420), true);
  assert.equal(bucket.tryTake(50, 10_000), true, 'refilled to the burst');
  assert.equal(bucket.tryTake(1, 10_000), false, 'but not beyond it');
});

test('limiter: the stricter of messages and bytes decides; unlimited costs nothing; limits change at runtime', () => {
  const limiter = new TenantLimiter({ messagesPerSecond: 1000, bytesPerSecond: 10_000, burstMs: 100, maxConnections: 0 }, 0);
  assert.equal(limiter.unlimited, false);
  // 100 messages (the message burst) of 100 bytes against a 1,000-byte burst: the first 10 pass, the rest waits for bytes.
  const records = Array.from({ length: 100 }, () => ({ size: 100 }));
  assert.equal(limiter.takeLeading(records, 0), 10);
  assert.equal(limiter.takeLeading(records, 0), 0);
  assert.equal(limiter.wait(records, 0), 10, '100 bytes at 10,000/s');
  assert.equal(limiter.takeLeading(records, 10), 1);
  assert.equal(limiter.takeLeading([{ size: 5000 }], 200), 1, 'a record larger than the bucket passes once it is full');
  assert.deepEqual(limiter.takeDemand(), { records: 12, bytes: 6100, starved: true, connectionsRefused: false });
  limiter.set({ messagesPerSecond: 0, bytesPerSecond: 0, burstMs: 100, maxConnections: 0 }, 0);
  assert.equal(limiter.unlimited, true);
  const udp = new TenantLimiter({ messagesPerSecond: 10, bytesPerSecond: 0, burstMs: 1000, maxConnections: 0 }, 0);
  let admitted = 0;
  for (let i = 0; i < 100; i++) if (udp.admit(100, 0)) admitted++;
  assert.equal(admitted, 10);
  const bytesOnly = new TenantLimiter({ messagesPerSecond: 10, bytesPerSecond: 1000, burstMs: 1000, maxConnections: 0 }, 0);
  assert.equal(bytesOnly.admit(2000, 0), false, 'too big for the byte bucket');
  let after = 0;
  for (let i = 0; i < 20; i++) if (bytesOnly.admit(10, 0)) after++;
  assert.equal(after, 10, 'the refused datagram did not use up a message token');
});

test('limiter: a part of the node\'s limits (a worker\'s share) scales rate and burst; the connection cap is the allowance', () => {
  const limiter = new TenantLimiter({ messagesPerSecond: 1000, bytesPerSecond: 0, burstMs: 1000, maxConnections: 10 }, 0, { share: 0.25, connections: 2 });
  const records = Array.from({ length: 1000 }, () => ({ size: 1 }));
  assert.equal(limiter.takeLeading(records, 0), 250, 'a quarter of the burst');
  assert.equal(limiter.takeLeading(records, 1000), 250, 'a quarter of the rate');
  limiter.setAllotment({ share: 0.5, connections: 4 }, 1000);
  assert.equal(limiter.takeLeading(records, 2000), 500);
  assert.equal(limiter.admitConnection(3), true);
  assert.equal(limiter.admitConnection(4), false);
  assert.equal(limiter.takeDemand().connectionsRefused, true);
});
