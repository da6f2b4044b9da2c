/**
 * Run by retention.test.ts under --expose-gc. A real stream source feeds a
 * sink that keeps every record; each 64 KiB chunk on the wire carries one tiny
 * frame. If a record pinned its chunk (a subarray, or a string sliced from the
 * chunk), the kept records would hold 64 KiB each. Prints external memory.
 * With RETAIN_CHUNKS=1 the sink deliberately keeps a view of each frame's
 * chunk, to show the measurement catches exactly that.
 */
import net from 'node:net';
import pino from 'pino';
import type { Sink } from '../../src/core/component.js';
import type { LogRecord } from '../../src/core/record.js';
import { TenantDirectory } from '../../src/core/identity.js';
import { Pipeline } from '../../src/core/pipeline.js';
import { UNLIMITED } from '../../src/core/limits.js';
import { SyslogStreamSource } from '../../src/sources/syslog/tcp.js';
import { Telemetry } from '../../src/telemetry/telemetry.js';

const CHUNKS = 1000;
const CHUNK_BYTES = 64 * 1024;
const kept: LogRecord[] = [];
const pinned: Buffer[] = [];

class KeepingSink implements Sink {
  readonly name = 'keep';
  readonly acknowledges = false;
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  destroy(): void {}
  health() { return { healthy: true }; }
  write(_tenant: string, records: readonly LogRecord[]): boolean {
    for (const rec of records) kept.push(rec);
    return true;
  }
  queuedBytes(): number { return 0; }
  congested(): boolean { return false; }
  onDrain(): void {}
}

const telemetry = new Telemetry(pino({ level: 'silent' }));
const directory = new TenantDirectory([{ id: 'default', networks: ['127.0.0.0/8'], tokenHashes: [], certificates: [], limits: UNLIMITED }]);
const pipeline = new Pipeline(directory, [{ sink: new KeepingSink(), tenants: ['*'] }], telemetry);
const source = new SyslogStreamSource({ enabled: true, address: '127.0.0.1', port: 0, maxFrameBytes: 64 * 1024, maxConnections: 0, idleTimeoutMs: 0, frameTimeoutMs: 0 }, 'tcp', pipeline, telemetry);
await source.start();
if (process.env.RETAIN_CHUNKS === '1') {
  // The leak the test must be able to see: keep a view into every chunk a socket delivers.
  const server = (source as unknown as { server: net.Server }).server;
  server.prependListener('connection', (socket: net.Socket) => socket.prependListener('data', (chunk: Buffer) => pinned.push(chunk.subarray(0, 8))));
}

const socket = net.connect(source.address()!.port, '127.0.0.1');
await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
for (let i = 0; i < CHUNKS; i++) {
  const frame = `<13>1 - host app - - - tiny ${i}\n`;
  const chunk = Buffer.alloc(CHUNK_BYTES, 0x0a); // blank lines: skipped by the framer
  chunk.write(frame, CHUNK_BYTES - frame.length);
  if (!socket.write(chunk)) await new Promise<void>((resolve) => socket.once('drain', () => resolve()));
}
socket.end();
while (kept.length < CHUNKS) await new Promise((resolve) => setTimeout(resolve, 10));
for (let i = 0; i < 3; i++) {
  (globalThis as unknown as { gc: () => void }).gc();
  await new Promise((resolve) => setTimeout(resolve, 20));
}
const usage = process.memoryUsage();
process.stdout.write(JSON.stringify({ records: kept.length, arrayBuffers: usage.arrayBuffers, heapUsed: usage.heapUsed, pinned: pinned.length }) + '\n');
await source.stop(Date.now() + 1000);
