/**
 * Memory per idle connection: a node in this process (its defaults, the
 * metadata service off so nothing else grows), N idle TCP connections held
 * by bench/idle-holder.js in another process, and the node's heap (after a
 * full GC), external memory and RSS before and after.
 *
 *   node --expose-gc dist/bench/idle-memory.js [--connections 10000] [--heap-snapshots DIR]
 *
 * With --heap-snapshots, writes before.heapsnapshot and after.heapsnapshot into DIR
 * (read them with bench/heap-diff.js to see what one connection holds, object by object).
 *
 * Prints one JSON object. Run it on a quiet machine; RSS is noisier than the heap.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { writeHeapSnapshot } from 'node:v8';
import { createInterface } from 'node:readline';
import pino from 'pino';
import YAML from 'yaml';
import { parseConfig } from '../src/ops/config/load.js';
import { SluiceNode } from '../src/ops/node.js';

const { values } = parseArgs({ options: { connections: { type: 'string', default: '10000' }, 'heap-snapshots': { type: 'string' } } });
const snapshots = values['heap-snapshots'];
const connections = Number(values.connections);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  process.stderr.write('run with node --expose-gc\n');
  process.exit(2);
}

function measure(): { heapUsed: number; external: number; arrayBuffers: number; rss: number } {
  gc!();
  gc!();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss };
}

const dir = mkdtempSync(path.join(tmpdir(), 'sluice-idle-memory-'));
const yaml = YAML.stringify({
  data_dir: dir,
  log: { level: 'warn' },
  sources: { syslog_udp: { port: 0 }, syslog_tcp: { port: 0 }, syslog_tls: { port: 0 }, relp: { port: 0 }, http: { port: 0 } },
  hostmeta: { service: { port: 0 } },
  admin: { port: 0 },
});
const { config, problems } = parseConfig(yaml);
if (config === null) throw new Error(JSON.stringify(problems));
const node = new SluiceNode(config, pino({ level: 'warn' }));
await node.start();
const port = node.addresses().syslogTcp!.port;
await new Promise((resolve) => setTimeout(resolve, 500));
const before = measure();
if (snapshots !== undefined) writeHeapSnapshot(path.join(snapshots, 'before.heapsnapshot'));

const holder = spawn(process.execPath, [path.join(path.dirname(new URL(import.meta.url).pathname), 'idle-holder.js'), '--port', String(port), '--count', String(connections)],
  { stdio: ['pipe', 'pipe', 'inherit'] });
const lines = createInterface({ input: holder.stdout! });
const held = await new Promise<Record<string, unknown>>((resolve) => {
  lines.on('line', (line) => {
    const event = JSON.parse(line) as Record<string, unknown>;
    if (event['event'] === 'held') resolve(event);
  });
});
// Let the node settle what each connection allocated.
await new Promise((resolve) => setTimeout(resolve, 1000));
const after = measure();
if (snapshots !== undefined) writeHeapSnapshot(path.join(snapshots, 'after.heapsnapshot'));
const sessions = node.pipeline.sessions.size;
holder.stdin!.end();
await new Promise((resolve) => holder.once('exit', resolve));
await node.stop();
rmSync(dir, { recursive: true, force: true });

const per = (key: keyof typeof before): number => Math.round((after[key] - before[key]) / Math.max(1, sessions));
process.stdout.write(`${JSON.stringify({
  connections, held: held['open'], sessions,
  before, after,
  perConnectionBytes: { heapUsed: per('heapUsed'), external: per('external'), arrayBuffers: per('arrayBuffers'), rss: per('rss') },
}, null, 2)}\n`);
