/**
 * `npm run bench [-- W1 W3 …] [--quick] [--repeat N] [--servers sluice,rsyslog]`
 *
 * sluice side by side with rsyslog and syslog-ng, in the same run so the ratios
 * hold on a noisy machine: each repeat runs every chosen workload against every
 * server in turn (the order rotating between repeats), and the tables show the
 * median of each number. Results go to bench/results/<timestamp>.json and .md.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { findPeers, INSTALL_HINT, loadgenAvailable, peerVersions, ROOT } from './peers.js';
import { ProcessGroup } from './processes.js';
import { evaluateTargets, eventLoopTable, latencyTable, markdown, memoryTable, plain, stormTable, summarise, targetsTable, throughputTable, type Summary, type Table, type TargetResult } from './report.js';
import { SERVER_NAMES, serverAvailable, serverConfig, type ServerName } from './servers.js';
import { FULL_SIZES, measure, QUICK_SIZES, variantsOf, waitForQuietMachine, WORKLOAD_NAMES, type Measurement, type WorkloadName } from './workloads.js';

const USAGE = `usage: npm run bench -- [W1 W2 W3 W4 W5 W6 W7] [--quick] [--repeat N] [--servers sluice,rsyslog,syslog-ng]
                      [--no-verify] [--quiet-wait S] [--show-configs] [--workers N]

  W1  TCP, RFC 5424 octet counting, 256-byte messages, 4 connections, 2,000,000 messages, one JSON line per record
  W2  the same, written raw
  W3  UDP, 256-byte messages, 1,000,000 as fast as loggen goes; default and 4 MiB receive buffers
  W4  10,000 idle TCP connections held + 4 senders: RSS and throughput
  W5  10,000 agents at 2 msg/s for 60 s: client-side latency (sluice loadgen; sluice and rsyslog);
      "W5 relp" the same over RELP, latency from send to the server's acknowledgement
  W6  isolation: 50 tenants × 10 agents at 10 msg/s for 30 s, then the same beside a tenant
      flooding as fast as the node reads it (after a 5 s warm-up of the same agents in both):
      the steady tenants' latency, every percentile (sluice loadgen; sluice only)
  W7  a storm: 10,000 new hosts connect at once, one message each: until each is registered and its
      record written with its metadata; then a restart and the same hosts, known, at once (sluice only)

  --quick         small sizes (a smoke run: correctness and loss, not speed)
  --repeat N      run everything N times; tables show medians (default 1)
  --servers LIST  which servers (default: all that are installed)
  --no-verify     skip the per-line check (JSON validity, duplicates) after each run
  --quiet-wait S  before each full-size measurement, wait up to S seconds (default 20) for
                  other processes to use < 10 % of the CPU
  --show-configs  print the configuration each server gets, and exit
  --workers N     sluice's worker processes (its \`workers\` key; default: auto, one per core)
Peers: ${INSTALL_HINT}`;

interface Options {
  workloads: WorkloadName[];
  quick: boolean;
  repeat: number;
  servers: ServerName[];
  verify: boolean;
  showConfigs: boolean;
  /** Longest wait for a quiet machine before each full-size measurement. */
  quietWaitSeconds: number;
  /** sluice's `workers` (null: its default, auto). */
  sluiceWorkers: number | null;
}

function parseOptions(argv: string[]): Options {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      quick: { type: 'boolean', default: false },
      repeat: { type: 'string', default: '1' },
      servers: { type: 'string' },
      'no-verify': { type: 'boolean', default: false },
      'show-configs': { type: 'boolean', default: false },
      'quiet-wait': { type: 'string', default: '20' },
      workers: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const workloads = positionals.map((p) => p.toUpperCase());
  for (const w of workloads) {
    if (!(WORKLOAD_NAMES as readonly string[]).includes(w)) throw new Error(`unknown workload ${w}\n${USAGE}`);
  }
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat must be a whole number ≥ 1\n${USAGE}`);
  const quietWaitSeconds = Number(values['quiet-wait']);
  if (!(quietWaitSeconds >= 0)) throw new Error(`--quiet-wait must be a number of seconds ≥ 0\n${USAGE}`);
  const sluiceWorkers = values.workers === undefined ? null : Number(values.workers);
  if (sluiceWorkers !== null && !(Number.isInteger(sluiceWorkers) && sluiceWorkers >= 1)) throw new Error(`--workers must be a whole number ≥ 1\n${USAGE}`);
  const servers = (values.servers?.split(',').map((s) => s.trim()).filter(Boolean) ?? [...SERVER_NAMES]) as ServerName[];
  for (const s of servers) {
    if (!(SERVER_NAMES as readonly string[]).includes(s)) throw new Error(`unknown server ${s}\n${USAGE}`);
  }
  return {
    workloads: workloads.length > 0 ? workloads as WorkloadName[] : [...WORKLOAD_NAMES],
    quick: values.quick!,
    repeat,
    servers,
    verify: !values['no-verify'],
    showConfigs: values['show-configs']!,
    quietWaitSeconds,
    sluiceWorkers,
  };
}

export interface MachineInfo {
  nproc: number;
  memory: string;
  cpu: string;
  kernel: string;
  node: string;
}

function machineInfo(): MachineInfo {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const free = spawnSync('free', ['-h'], { encoding: 'utf8' });
  return {
    nproc: os.availableParallelism(),
    memory: free.status === 0 ? free.stdout.trim() : `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown',
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
  };
}

function showConfigs(): void {
  const dir = '/tmp/sluice-bench-XXXXXX';
  const cases = [
    { title: 'W1 (JSON lines)', output: 'json' as const, udpReceiveBuffer: null, maxConnections: 100 },
    { title: 'W2 (raw)', output: 'raw' as const, udpReceiveBuffer: null, maxConnections: 100 },
    { title: 'W3, 4 MiB receive buffer', output: 'json' as const, udpReceiveBuffer: 4 * 1024 * 1024, maxConnections: 100 },
    { title: 'W4 (10,000 idle connections)', output: 'json' as const, udpReceiveBuffer: null, maxConnections: 10_100 },
    { title: 'W5 relp (a RELP listener too)', output: 'json' as const, udpReceiveBuffer: null, maxConnections: 100, relpPort: 20515 },
  ];
  for (const c of cases) {
    // syslog-ng has no RELP listener: W5 relp does not run against it.
    for (const server of SERVER_NAMES.filter((name) => c.relpPort === undefined || name !== 'syslog-ng')) {
      const config = serverConfig(server, dir, { tcpPort: 20514, udpPort: 20514, ...c });
      process.stdout.write(`===== ${server}: ${c.title} — ${path.basename(config.file)}\n${config.text}\n`);
    }
  }
}

function oneLine(m: Measurement): string {
  if (m.skipped) return `skipped: ${m.skipped}`;
  if (m.error) return `FAILED: ${m.error.replace(/\s+/g, ' ').slice(0, 600)}`;
  const parts = [`sent ${m.sent}`, `delivered ${m.delivered}`, `loss ${m.lossPercent?.toFixed(2)} %`];
  // W7 measures times to registration, not a rate, nor memory.
  if (m.messagesPerSecond !== undefined) parts.push(`${Math.round(m.messagesPerSecond)} msg/s`, `${m.cpuSecondsPerMillion?.toFixed(2)} CPU-s/M`);
  if (m.peakRssBytes !== undefined) parts.push(`peak RSS ${(m.peakRssBytes / 1e6).toFixed(1)} MB (PSS ${((m.peakPssBytes ?? 0) / 1e6).toFixed(1)})`);
  if (m.connectedPssBytes !== undefined) {
    parts.push(`connected: RSS ${(m.connectedRssBytes! / 1e6).toFixed(1)} MB, PSS ${(m.connectedPssBytes / 1e6).toFixed(1)} MB`
      + (m.idleConnectionsHeld === undefined ? '' : ` with ${m.idleConnectionsHeld} idle`));
  }
  if (m.latencyMs) parts.push(`p50 ${m.latencyMs.p50} p99 ${m.latencyMs.p99} max ${m.latencyMs.max} ms`);
  if (m.storm) {
    parts.push(`new hosts registered p99 ${m.storm.cold.registeredMs?.p99} max ${m.storm.cold.registeredMs?.max} ms, `
      + `${m.storm.cold.withMeta}/${m.storm.cold.hosts} with meta; after a restart written p99 ${m.storm.restart.writtenMs?.p99} `
      + `max ${m.storm.restart.writtenMs?.max} ms, ${m.storm.restart.withMeta}/${m.storm.restart.hosts} with meta`);
  }
  if (m.eventLoop) parts.push(`event loop: worst 1-s p99 ${m.eventLoop.p99WorstMs} ms, max ${m.eventLoop.maxMs} ms`);
  if (m.noiseFloor) parts.push(`idle process p99 ${m.noiseFloor.p99Ms} ms`);
  if (m.otherCpuPercent !== undefined) parts.push(`other processes ${m.otherCpuPercent.toFixed(0)} % CPU`);
  if (m.duplicates) parts.push(`${m.duplicates} duplicates`);
  if (m.invalidLines) parts.push(`${m.invalidLines} invalid lines`);
  return parts.join(', ');
}

export interface Results {
  startedAt: string;
  finishedAt: string;
  command: string;
  quick: boolean;
  repeat: number;
  machine: MachineInfo;
  versions: Record<string, string | null>;
  notes: string[];
  measurements: Measurement[];
  summaries: Summary[];
  targets: TargetResult[];
}

function section(title: string, table: Table): string[] {
  return table.rows.length > 0 ? [`## ${title}`, '', markdown(table), ''] : [];
}

function renderMarkdown(r: Results): string {
  const summaries = r.summaries;
  return [
    `# Benchmark ${r.startedAt}${r.quick ? ' (--quick: smoke sizes, not for comparison)' : ''}`,
    '',
    `\`${r.command}\` — ${r.repeat} repeat(s), medians shown. Machine: ${r.machine.nproc} cores, ${r.machine.cpu}, `
      + `${r.machine.kernel}, Node ${r.machine.node}.`,
    `Versions: ${Object.entries(r.versions).map(([k, v]) => `${k} ${v ?? 'not installed'}`).join('; ')}.`,
    ...r.notes.map((n) => `\n> ${n}`),
    '',
    ...section('Throughput, CPU and memory', throughputTable(summaries)),
    ...section('Latency (W5 and W5 relp, W6: the steady tenants)', latencyTable(summaries)),
    ...section('Memory, summed over each server\'s processes', memoryTable(summaries)),
    ...section('A storm of hosts (W7)', stormTable(summaries)),
    ...section('Event-loop delay (sluice, while busy)', eventLoopTable(summaries)),
    '## Targets',
    '',
    markdown(targetsTable(r.targets)),
    '',
  ].join('\n');
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (options.showConfigs) {
    showConfigs();
    return 0;
  }
  const group = new ProcessGroup();
  const peers = findPeers();
  const notes: string[] = [];
  const servers = options.servers.filter((s) => {
    if (serverAvailable(s, peers)) return true;
    notes.push(s === 'sluice' ? 'sluice is not built (npm run build): not run' : `${s} is not installed (${INSTALL_HINT}): sluice runs without it`);
    return false;
  });
  if (!peers.loggen) notes.push(`loggen (from syslog-ng-core) is not unpacked: W1–W4 cannot run (${INSTALL_HINT})`);
  if (options.workloads.includes('W5') && !loadgenAvailable()) notes.push('W5: loadgen not available (the `sluice loadgen` command is missing)');
  if (options.quick) notes.push('--quick: smoke sizes; the numbers are not comparable with a full run');
  for (const note of notes) process.stdout.write(`note: ${note}\n`);

  const startedAt = new Date();
  const results: Results = {
    startedAt: startedAt.toISOString(),
    finishedAt: '',
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    quick: options.quick,
    repeat: options.repeat,
    machine: machineInfo(),
    versions: peerVersions(peers),
    notes,
    measurements: [],
    summaries: [],
    targets: [],
  };
  // Interrupted: what was measured so far is still summarised and saved.
  group.stopOnSignals(() => {
    if (results.measurements.length === 0) return;
    results.notes.push(`interrupted after ${results.measurements.length} measurement(s)`);
    finish(results, options.quick);
  });
  const ctx = {
    group, peers, sizes: options.quick ? QUICK_SIZES : FULL_SIZES, verify: options.verify, sluiceWorkers: options.sluiceWorkers,
    log: (line: string) => process.stdout.write(`${line}\n`),
  };
  try {
    for (let round = 0; round < options.repeat; round++) {
      for (const workload of options.workloads) {
        for (const variant of variantsOf(workload)) {
          const eligible = servers.filter((s) => variant.servers.includes(s));
          // Rotate who goes first, so a slow drift of the machine does not always favour the same server.
          const order = eligible.map((_, i) => eligible[(i + round) % eligible.length]!);
          for (const server of order) {
            if (!options.quick) {
              const busy = await waitForQuietMachine(options.quietWaitSeconds * 1000);
              if (busy >= 10) {
                process.stdout.write(`note: other processes still use ${busy.toFixed(0)} % of the CPU after waiting ${options.quietWaitSeconds} s\n`);
              }
            }
            process.stdout.write(`[${round + 1}/${options.repeat}] ${variant.label} ${server}: `);
            const m = await measure(variant, server, ctx);
            results.measurements.push(m);
            process.stdout.write(`${oneLine(m)}\n`);
          }
        }
      }
    }
  } finally {
    await group.stopAll();
  }
  finish(results, options.quick);
  return results.measurements.some((m) => m.error !== undefined) ? 1 : 0;
}

/** Summarise, print the tables and save bench/results/<timestamp>.json and .md. */
function finish(results: Results, quick: boolean): void {
  results.finishedAt = new Date().toISOString();
  results.summaries = summarise(results.measurements);
  results.targets = evaluateTargets(results.summaries, quick);

  const throughput = throughputTable(results.summaries);
  const latency = latencyTable(results.summaries);
  if (throughput.rows.length > 0) process.stdout.write(`\n${plain(throughput)}\n`);
  if (latency.rows.length > 0) process.stdout.write(`\n${plain(latency)}\n`);
  const memory = memoryTable(results.summaries);
  if (memory.rows.length > 0) process.stdout.write(`\n${plain(memory)}\n`);
  const storm = stormTable(results.summaries);
  if (storm.rows.length > 0) process.stdout.write(`\n${plain(storm)}\n`);
  const eventLoop = eventLoopTable(results.summaries);
  if (eventLoop.rows.length > 0) process.stdout.write(`\n${plain(eventLoop)}\n`);
  process.stdout.write(`\n${plain(targetsTable(results.targets))}\n`);

  const dir = path.join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = results.startedAt.replace(/[:.]/g, '-');
  writeFileSync(path.join(dir, `${stamp}.json`), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(path.join(dir, `${stamp}.md`), renderMarkdown(results));
  process.stdout.write(`\nsaved bench/results/${stamp}.json and .md\n`);
}

try {
  process.exitCode = await main();
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exitCode = 2;
}
