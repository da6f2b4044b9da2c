/**
 * The file sink's own throughput, without sources or the pipeline: records
 * written through FileSink into a temporary folder, from the first write to
 * stop() (everything written, fsync'd and closed), as records per second and
 * as CPU seconds per million records. Compares builds: each
 * argument is the `dist` folder of one, and the runs alternate between them
 * (each in a fresh process), so a machine that gets busier or quieter weighs
 * on every build alike. Prints each run and the medians.
 *
 *   node dist/bench/file-sink.js [--records N] [--runs N] [--dir D] <dist> [<dist> …]
 *
 * `--dir`: where the temporary folders go (default: the system's); a tmpfs
 * such as /dev/shm takes the disk out and leaves the sink's own CPU cost.
 *
 * Workloads: `1 tenant` (W1's shape: 256-byte ASCII messages, batches of 64,
 * no acknowledgement), `4 tenants acked` (every batch acknowledged, so the
 * grouped fsync is on the path).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface Workload {
  name: string;
  tenants: number;
  acked: boolean;
}

const WORKLOADS: Workload[] = [
  { name: '1 tenant', tenants: 1, acked: false },
  { name: '4 tenants acked', tenants: 4, acked: true },
];
const BATCH = 64;
const MESSAGE_BYTES = 256;

/* eslint-disable @typescript-eslint/no-explicit-any -- the builds compared are loaded at run time */
async function child(dist: string, workload: Workload, total: number, parent: string): Promise<void> {
  const load = (file: string): Promise<any> => import(pathToFileURL(path.join(dist, 'src', file)).href);
  const { FileSink } = await load('sinks/file/sink.js');
  const { LogRecord } = await load('core/record.js');
  const { AckToken } = await load('core/ack.js');
  const { Telemetry } = await load('telemetry/telemetry.js');
  const { default: pino } = await import('pino');
  const dir = mkdtempSync(path.join(parent, 'sluice-file-bench-'));
  try {
    const telemetry = new Telemetry(pino({ level: 'silent' }));
    const sink = new FileSink({
      name: 'bench', type: 'file', tenants: ['*'], path: dir, rotateBytes: 100 * 1024 * 1024, rotateIntervalMs: 0, maxFiles: 0,
      batchBytes: 256 * 1024, batchDelayMs: 10, queueHighWaterBytes: 8 * 1024 * 1024, fsyncIntervalMs: 20,
    }, telemetry, null);
    await sink.start();
    const tenants = Array.from({ length: workload.tenants }, (_, i) => `tenant${i}`);
    const batches = tenants.map((tenant) => Array.from({ length: BATCH }, (_, i) => {
      const rec = new LogRecord();
      rec.tenant = tenant;
      rec.host = 'ab'.repeat(20);
      rec.ts = rec.received = '2026-11-27T14:20:00.123Z';
      rec.hostname = 'web-1';
      rec.app = 'bench';
      rec.msg = `message ${i} `.padEnd(MESSAGE_BYTES, 'x');
      rec.jsonSafe = true;
      rec.ascii = true;
      rec.size = MESSAGE_BYTES + 60;
      return rec;
    }));
    let paused: (() => void) | null = null;
    sink.onDrain(() => {
      const resume = paused;
      paused = null;
      resume?.();
    });
    let committed = 0;
    const cpuBefore = process.cpuUsage();
    const started = process.hrtime.bigint();
    for (let written = 0, turn = 0; written < total; turn++) {
      const t = turn % tenants.length;
      let ack = null;
      if (workload.acked) {
        ack = new AckToken(() => { committed++; });
        ack.retain();
        ack.seal();
      }
      const clear = sink.write(tenants[t], batches[t], ack);
      written += BATCH;
      // A source would stop reading here until the sink drains (or at least let the event loop run).
      if (!clear) await new Promise<void>((resolve) => { paused = resolve; });
      else if (turn % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await sink.stop(Date.now() + 120_000);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu = process.cpuUsage(cpuBefore);
    if (workload.acked && committed !== Math.ceil(total / BATCH)) throw new Error(`${committed} acks committed`);
    const records = Math.ceil(total / BATCH) * BATCH;
    // CPU seconds per million records: what the sink costs, less disturbed by a busy machine than the rate.
    const cpuPerMillion = Math.round(((cpu.user + cpu.system) / 1e6) / (records / 1e6) * 100) / 100;
    process.stdout.write(JSON.stringify({ perSecond: Math.round(records / seconds), cpuPerMillion }) + '\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    await child(args[1]!, WORKLOADS.find((w) => w.name === args[2])!, Number(args[3]), args[4]!);
    return;
  }
  let total = 1_000_000;
  let runs = 5;
  let parent = tmpdir();
  const dists: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--records') total = Number(args[++i]);
    else if (args[i] === '--runs') runs = Number(args[++i]);
    else if (args[i] === '--dir') parent = path.resolve(args[++i]!);
    else dists.push(path.resolve(args[i]!));
  }
  if (dists.length === 0) throw new Error('usage: node dist/bench/file-sink.js [--records N] [--runs N] [--dir D] <dist> [<dist> …]');
  const self = fileURLToPath(import.meta.url);
  for (const workload of WORKLOADS) {
    const results = new Map<string, number[]>(dists.map((d) => [d, []]));
    const cpuResults = new Map<string, number[]>(dists.map((d) => [d, []]));
    for (let run = 0; run < runs; run++) {
      for (const dist of dists) {
        const out = execFileSync(process.execPath, [self, '--child', dist, workload.name, String(total), parent], { encoding: 'utf8' });
        const { perSecond, cpuPerMillion } = JSON.parse(out.trim()) as { perSecond: number; cpuPerMillion: number };
        results.get(dist)!.push(perSecond);
        cpuResults.get(dist)!.push(cpuPerMillion);
        process.stdout.write(`${workload.name}\trun ${run + 1}\t${dist}\t${perSecond} records/s\t${cpuPerMillion} CPU-s/M\n`);
      }
    }
    for (const [dist, values] of results) {
      const cpu = cpuResults.get(dist)!;
      process.stdout.write(`${workload.name}\tmedian\t${dist}\t${median(values)} records/s (${values.join(', ')})\t${median(cpu)} CPU-s/M (${cpu.join(', ')})\n`);
    }
  }
}

await main();
