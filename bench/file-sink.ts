/**
 * The file sink's own throughput, without sources or the pipeline: records
 * written through FileSink into a temporary folder, from the first write to
 * stop() (everything written, fsync'd and closed), as records per second and
 * as CPU seconds per million records. Compares builds: each argument is the
 * `dist` folder of one, and the runs alternate between them, so a machine
 * that gets busier or quieter weighs on every build alike. Prints each run
 * and the medians.
 *
 *   node dist/bench/file-sink.js [--records N] [--runs N] [--dir D] [--same-process] <dist> [<dist> …]
 *
 * Each run is a fresh process by default. `--same-process` loads every build
 * into this one and alternates short runs (the first two of each left out,
 * as JIT warm-up): no start-up cost in the numbers, and on a busy machine
 * the steadier comparison of CPU per record. `--dir`: where the temporary
 * folders go (default: the system's); a tmpfs such as /dev/shm takes the
 * disk out and leaves the sink's own CPU cost.
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
import pino from 'pino';

interface Workload {
  name: string;
  tenants: number;
  acked: boolean;
}

interface Result {
  perSecond: number;
  cpuPerMillion: number;
}

const WORKLOADS: Workload[] = [
  { name: '1 tenant', tenants: 1, acked: false },
  { name: '4 tenants acked', tenants: 4, acked: true },
];
const BATCH = 64;
const MESSAGE_BYTES = 256;
/** Runs of each build left out in one process: the JIT warms up. */
const WARM_UP_RUNS = 2;

/* eslint-disable @typescript-eslint/no-explicit-any -- the builds compared are loaded at run time */
interface Build {
  FileSink: any;
  LogRecord: any;
  AckToken: any;
  Telemetry: any;
}

async function load(dist: string): Promise<Build> {
  const from = (file: string): Promise<any> => import(pathToFileURL(path.join(dist, 'src', file)).href);
  return {
    FileSink: (await from('sinks/file/sink.js')).FileSink,
    LogRecord: (await from('core/record.js')).LogRecord,
    AckToken: (await from('core/ack.js')).AckToken,
    Telemetry: (await from('telemetry/telemetry.js')).Telemetry,
  };
}

async function run(build: Build, workload: Workload, total: number, parent: string): Promise<Result> {
  const dir = mkdtempSync(path.join(parent, 'sluice-file-bench-'));
  try {
    const sink = new build.FileSink({
      name: 'bench', type: 'file', tenants: ['*'], path: dir, rotateBytes: 100 * 1024 * 1024, rotateIntervalMs: 0, maxFiles: 0,
      batchBytes: 256 * 1024, batchDelayMs: 10, queueHighWaterBytes: 8 * 1024 * 1024, fsyncIntervalMs: 20,
    }, new build.Telemetry(pino({ level: 'silent' })), null);
    await sink.start();
    const tenants = Array.from({ length: workload.tenants }, (_, i) => `tenant${i}`);
    const batches = tenants.map((tenant) => Array.from({ length: BATCH }, (_, i) => {
      const rec = new build.LogRecord();
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
    let written = 0;
    for (let turn = 0; written < total; turn++) {
      const t = turn % tenants.length;
      let ack = null;
      if (workload.acked) {
        ack = new build.AckToken(() => { committed++; });
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
    if (workload.acked && committed !== written / BATCH) throw new Error(`${committed} acks committed`);
    // CPU seconds per million records: what the sink costs, less disturbed by a busy machine than the rate.
    return { perSecond: Math.round(written / seconds), cpuPerMillion: Math.round(((cpu.user + cpu.system) / 1e6) / (written / 1e6) * 1000) / 1000 };
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
    const result = await run(await load(args[1]!), WORKLOADS.find((w) => w.name === args[2])!, Number(args[3]), args[4]!);
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  }
  let total = 1_000_000;
  let runs = 5;
  let parent = tmpdir();
  let sameProcess = false;
  const dists: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--records') total = Number(args[++i]);
    else if (args[i] === '--runs') runs = Number(args[++i]);
    else if (args[i] === '--dir') parent = path.resolve(args[++i]!);
    else if (args[i] === '--same-process') sameProcess = true;
    else dists.push(path.resolve(args[i]!));
  }
  if (dists.length === 0) throw new Error('usage: node dist/bench/file-sink.js [--records N] [--runs N] [--dir D] [--same-process] <dist> [<dist> …]');
  const self = fileURLToPath(import.meta.url);
  const builds = sameProcess ? await Promise.all(dists.map(load)) : [];
  for (const workload of WORKLOADS) {
    const results = new Map<string, Result[]>(dists.map((d) => [d, []]));
    for (let r = 0; r < runs + (sameProcess ? WARM_UP_RUNS : 0); r++) {
      // Every other round the other build goes first.
      const order = r % 2 === 0 ? dists.map((_, i) => i) : dists.map((_, i) => dists.length - 1 - i);
      for (const i of order) {
        const dist = dists[i]!;
        const result = sameProcess
          ? await run(builds[i]!, workload, total, parent)
          : JSON.parse(execFileSync(process.execPath, [self, '--child', dist, workload.name, String(total), parent], { encoding: 'utf8' }).trim()) as Result;
        if (sameProcess && r < WARM_UP_RUNS) continue;
        results.get(dist)!.push(result);
        process.stdout.write(`${workload.name}\trun ${results.get(dist)!.length}\t${dist}\t${result.perSecond} records/s\t${result.cpuPerMillion} CPU-s/M\n`);
      }
    }
    for (const [dist, values] of results) {
      const rates = values.map((v) => v.perSecond);
      const cpu = values.map((v) => v.cpuPerMillion);
      process.stdout.write(`${workload.name}\tmedian\t${dist}\t${median(rates)} records/s (${rates.join(', ')})\t${median(cpu)} CPU-s/M (${cpu.join(', ')})\n`);
    }
  }
}

await main();
