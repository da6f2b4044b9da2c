/**
 * `node dist/bench/buffer-replay.js --before <checkout> [--mb 128] [--steady 50] [--in-flight 64] [--repeat 3] [--dir /tmp]`
 *
 * The disk buffer's replay after an outage, two versions side by side in one
 * run so the comparison holds on a noisy machine: `<checkout>` is a built
 * sluice tree of the version to compare with (its dist/), the other is this
 * tree. Each repeat runs both, the order alternating, and the table shows
 * medians.
 *
 * The workload is the case per-tenant chains are for: a flooding tenant
 * writes `--mb` MiB of 4 KiB entries (a sink's batches), then `--steady`
 * tenants write 20 entries each, interleaved (the rate is timed after each
 * tenant's first, which creates its chain); the buffer is closed (the sink
 * was down) and reopened, and everything is read back in 1 MiB reads and
 * acknowledged. Reported: the write rates, the replay's rate, and how far
 * into the replay (in bytes, and in ms) the steady tenants' last entry came
 * out. The replay reads what was just written, so mostly from the page cache:
 * it measures the buffer's own work (verifying, copying, opening files), not
 * the disk.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

const ENTRY_BYTES = 4096;
const STEADY_ENTRIES = 20;
const READ_BYTES = 1024 * 1024;

/** The part of either version's API the workload uses. */
interface Buffered {
  append(tenant: string, payload: Buffer): Promise<void>;
  /** The next entries (their tenants), acknowledged once returned; empty when none is left. */
  readAndAcknowledge(): Promise<string[]>;
  close(): Promise<void>;
}

interface Version {
  label: string;
  open(dir: string): Promise<Buffered>;
}

interface AnyEntry { id: number; tenant?: string | null; payload: Buffer }
interface AnyBuffer {
  append(...args: unknown[]): Promise<{ written: boolean }>;
  read(maxBytes: number): Promise<AnyEntry[]>;
  acknowledge(arg: unknown): void;
  close(): Promise<void>;
}

/** Load a version's DiskBuffer from a built tree; the one-log version is told apart by append()'s arity. */
async function loadVersion(label: string, root: string): Promise<Version> {
  const load = (file: string): Promise<Record<string, unknown>> => import(pathToFileURL(path.join(root, 'dist', 'src', file)).href) as Promise<Record<string, unknown>>;
  const { DiskBuffer } = await load('sinks/buffer/disk-buffer.js') as { DiskBuffer: { open(dir: string, config: unknown, telemetry: unknown, name: string): Promise<AnyBuffer> } };
  const { DEFAULT_DISK_BUFFER_CONFIG } = await load('sinks/buffer/config.js') as { DEFAULT_DISK_BUFFER_CONFIG: Record<string, unknown> };
  // Trees built before the telemetry floor keep it under ops/.
  const { Telemetry } = await load('telemetry/telemetry.js').catch(() => load('ops/telemetry.js')) as { Telemetry: new (logger: unknown) => unknown };
  const pino = (await import('pino')).default;
  const config = { ...DEFAULT_DISK_BUFFER_CONFIG, maxBytes: 8 * 1024 * 1024 * 1024 };
  return {
    label,
    async open(dir) {
      const buffer = await DiskBuffer.open(dir, config, new Telemetry(pino({ level: 'silent' })), 'bench');
      const perTenant = buffer.append.length >= 3;
      return {
        async append(tenant, payload) {
          const result = perTenant ? await buffer.append(tenant, payload, 1) : await buffer.append(payload, 1);
          if (!result.written) throw new Error('append refused');
        },
        async readAndAcknowledge() {
          const batch = await buffer.read(READ_BYTES);
          if (batch.length === 0) return [];
          const last = batch[batch.length - 1]!;
          buffer.acknowledge(perTenant ? last : last.id);
          // The payload starts with its tenant (the one-log version does not keep it).
          return batch.map((e) => e.payload.toString('latin1', 0, e.payload.indexOf(0x3a)));
        },
        close: () => buffer.close(),
      };
    },
  };
}

function payloadFor(tenant: string, n: number): Buffer {
  const out = Buffer.alloc(ENTRY_BYTES, 0x2e);
  out.write(`${tenant}:${n}:`, 'latin1');
  return out;
}

/** Append every (tenant, n) of `items`, `inFlight` at a time; returns seconds. */
async function appendAll(buffer: Buffered, items: [string, number][], inFlight: number): Promise<number> {
  const started = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const [tenant, n] = items[next++]!;
      await buffer.append(tenant, payloadFor(tenant, n));
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return (performance.now() - started) / 1000;
}

interface Result {
  floodWriteMBs: number;
  steadyWriteMBs: number;
  openMs: number;
  replayMBs: number;
  /** CPU seconds (all threads of the process) per GB replayed: steadier than MB/s on a shared machine. */
  replayCpuPerGB: number;
  /** Bytes of the replay handed out up to the steady tenants' last entry, as a share of all. */
  steadyDoneShare: number;
  steadyDoneMs: number;
}

async function runOnce(version: Version, root: string, floodMiB: number, steadyTenants: number, inFlight: number): Promise<Result> {
  const dir = mkdtempSync(path.join(root, `sluice-replay-${version.label}-`));
  try {
    const floodEntries = Math.round((floodMiB * 1024 * 1024) / ENTRY_BYTES);
    let buffer = await version.open(dir);
    const floodSeconds = await appendAll(buffer, Array.from({ length: floodEntries }, (_, i) => ['flood', i] as [string, number]), inFlight);
    const steady: [string, number][] = [];
    for (let n = 0; n < STEADY_ENTRIES; n++) for (let t = 0; t < steadyTenants; t++) steady.push([`steady${t}`, n]);
    // The first append of a tenant creates its chain (a folder, a segment, three fsyncs): timed apart from the rest.
    await appendAll(buffer, steady.slice(0, steadyTenants), inFlight);
    const steadySeconds = await appendAll(buffer, steady.slice(steadyTenants), inFlight);
    await buffer.close();

    const opened = performance.now();
    buffer = await version.open(dir);
    const openMs = performance.now() - opened;
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    const totalEntries = floodEntries + steady.length;
    let entries = 0;
    let steadySeen = 0;
    let steadyDoneAt = 0;
    let steadyDoneMs = 0;
    for (;;) {
      const tenants = await buffer.readAndAcknowledge();
      if (tenants.length === 0) break;
      for (const tenant of tenants) {
        entries++;
        if (tenant !== 'flood' && ++steadySeen === steady.length) {
          steadyDoneAt = entries;
          steadyDoneMs = performance.now() - started;
        }
      }
    }
    const replaySeconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    await buffer.close();
    if (entries !== totalEntries) throw new Error(`${version.label}: replayed ${entries} of ${totalEntries} entries`);
    const mb = (count: number): number => (count * ENTRY_BYTES) / 1e6;
    return {
      floodWriteMBs: mb(floodEntries) / floodSeconds,
      steadyWriteMBs: mb(steady.length - steadyTenants) / steadySeconds,
      openMs,
      replayMBs: mb(totalEntries) / replaySeconds,
      replayCpuPerGB: (cpu.user + cpu.system) / 1e6 / (mb(totalEntries) / 1000),
      steadyDoneShare: steadyDoneAt / totalEntries,
      steadyDoneMs,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      before: { type: 'string' },
      mb: { type: 'string', default: '128' },
      steady: { type: 'string', default: '50' },
      repeat: { type: 'string', default: '3' },
      'in-flight': { type: 'string', default: '64' },
      dir: { type: 'string', default: os.tmpdir() },
    },
  });
  if (values.before === undefined) throw new Error('usage: node dist/bench/buffer-replay.js --before <built checkout> [--mb 128] [--steady 50] [--in-flight 64] [--repeat 3] [--dir /tmp]');
  const here = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
  const versions = [await loadVersion('before', values.before), await loadVersion('after', here)];
  const results = new Map<string, Result[]>(versions.map((v) => [v.label, []]));
  const repeat = Number(values.repeat);
  for (let r = 0; r < repeat; r++) {
    for (const version of r % 2 === 0 ? versions : [...versions].reverse()) {
      const result = await runOnce(version, values.dir, Number(values.mb), Number(values.steady), Number(values['in-flight']));
      results.get(version.label)!.push(result);
      process.stderr.write(`${version.label} #${r + 1}: ${JSON.stringify(result)}\n`);
    }
  }
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  process.stdout.write(`${os.cpus().length} × ${cpu}, node ${process.version}, data in ${values.dir}; ${values['in-flight']} appends in flight; median of ${repeat}\n\n`);
  process.stdout.write(`| version | flood write MB/s | ${values.steady} tenants write MB/s | open ms | replay MB/s | replay CPU s/GB | steady tenants done after | steady tenants done ms |\n|---|---|---|---|---|---|---|---|\n`);
  for (const version of versions) {
    const rows = results.get(version.label)!;
    const m = (pick: (r: Result) => number): number => median(rows.map(pick));
    process.stdout.write(`| ${version.label} | ${m((r) => r.floodWriteMBs).toFixed(0)} | ${m((r) => r.steadyWriteMBs).toFixed(0)} | ${m((r) => r.openMs).toFixed(0)} | ${m((r) => r.replayMBs).toFixed(0)} | ${m((r) => r.replayCpuPerGB).toFixed(2)} | ${(100 * m((r) => r.steadyDoneShare)).toFixed(1)} % | ${m((r) => r.steadyDoneMs).toFixed(0)} |\n`);
  }
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
