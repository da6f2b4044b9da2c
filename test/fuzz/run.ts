/**
 * `npm run fuzz`: every parser's fuzz target for a million cases (or
 * --runs N), one child process per target, one target after another. Prints
 * the seed of each run, cases per second and peak heap, and for a failure the
 * counterexample and the command that replays it. See docs/fuzzing.md.
 *
 *   npm run fuzz -- [--runs N] [--target NAME]... [--seed S] [--path P] [--time-limit SECONDS] [--time-budget SECONDS]
 *
 * --time-limit stops each target after that long; --time-budget shares a
 * total among the targets (each gets what is left divided by those still to
 * run, so time a fast target leaves over goes to the slow ones).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import fc from 'fast-check';
import type { AnyFuzzTarget } from './common.js';
import { TARGETS } from './targets.js';

interface Options {
  runs: number;
  targets: string[];
  seed: number | null;
  path: string | null;
  timeLimitSeconds: number | null;
  timeBudgetSeconds: number | null;
  child: boolean;
}

interface TargetResult {
  target: string;
  seed: number;
  cases: number;
  seconds: number;
  peakHeapBytes: number;
  maxRssBytes: number;
  interrupted: boolean;
  failure: { path: string; counterexample: string; error: string } | null;
}

/** A child's result line on stdout starts with this, so stray output cannot be mistaken for it. */
const RESULT_PREFIX = 'FUZZ-RESULT ';
/** Heap a child may use: a parser that buffers without bound fails the run instead of swapping. */
const CHILD_HEAP_MB = 1024;
const HEAP_SAMPLE_EVERY = 500;

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: npm run fuzz -- [--runs N] [--target NAME]... [--seed S] [--path P] [--time-limit SECONDS] [--time-budget SECONDS]\n` +
    `targets: ${TARGETS.map((t) => t.name).join(', ')}\n`);
  process.exit(2);
}

function parseOptions(argv: string[]): Options {
  const options: Options = { runs: 1_000_000, targets: [], seed: null, path: null, timeLimitSeconds: null, timeBudgetSeconds: null, child: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) usage(`${arg} needs a value`);
      return v;
    };
    switch (arg) {
      case '--runs': options.runs = Number(value()); break;
      case '--target': options.targets.push(...value().split(',')); break;
      case '--seed': options.seed = Number(value()); break;
      case '--path': options.path = value(); break;
      case '--time-limit': options.timeLimitSeconds = Number(value()); break;
      case '--time-budget': options.timeBudgetSeconds = Number(value()); break;
      case '--child': options.child = true; break;
      default: usage(`unknown argument ${arg}`);
    }
  }
  if (!Number.isInteger(options.runs) || options.runs < 1) usage('--runs must be a positive integer');
  if (options.seed !== null && !Number.isInteger(options.seed)) usage('--seed must be an integer');
  for (const name of options.targets) if (!TARGETS.some((t) => t.name === name)) usage(`no target ${name}`);
  return options;
}

const SHOWN_CHARACTERS = 1500;

function abbreviate(text: string): string {
  return text.length <= SHOWN_CHARACTERS ? text : `${text.slice(0, SHOWN_CHARACTERS)}… (${text.length} characters)`;
}

/** A counterexample readable enough to turn into a unit test: buffers also shown as text. */
function describe(value: unknown): string {
  const text = fc.stringify(value);
  const buffers: string[] = [];
  const visit = (v: unknown, path: string): void => {
    if (Buffer.isBuffer(v)) buffers.push(`${path} as latin1 text: ${abbreviate(JSON.stringify(v.toString('latin1')))}`);
    else if (Array.isArray(v)) v.forEach((x, i) => visit(x, `${path}[${i}]`));
    else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) visit(x, `${path}.${k}`);
  };
  visit(value, 'input');
  return [abbreviate(text), ...buffers].join('\n');
}

/** Runs one target in this process and prints its result line. */
function runChild(target: AnyFuzzTarget, options: Options): void {
  const seed = options.seed ?? (Date.now() ^ (Math.random() * 0x100000000)) | 0;
  let cases = 0;
  let peakHeap = 0;
  const counted = fc.property(target.arbitrary, (input) => {
    if (++cases % HEAP_SAMPLE_EVERY === 0) peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
    target.check(input);
  });
  const started = process.hrtime.bigint();
  const details = fc.check(counted, {
    numRuns: options.runs,
    seed,
    ...(options.path !== null ? { path: options.path, endOnFailure: true } : {}),
    ...(options.timeLimitSeconds !== null ? { interruptAfterTimeLimit: options.timeLimitSeconds * 1000, markInterruptAsFailure: false } : {}),
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  const failure = details.failed && details.counterexample !== null
    ? {
      path: details.counterexamplePath ?? '',
      counterexample: describe(details.counterexample[0]),
      error: details.errorInstance instanceof Error ? (details.errorInstance.stack ?? details.errorInstance.message) : String(details.errorInstance),
    }
    : null;
  const result: TargetResult = {
    target: target.name, seed, cases: details.numRuns, seconds, peakHeapBytes: peakHeap,
    maxRssBytes: process.resourceUsage().maxRSS * 1024, interrupted: details.interrupted, failure,
  };
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
}

/** Runs one target in a child process (fresh heap, so its peak is its own). */
function runInChild(target: AnyFuzzTarget, options: Options, timeLimitSeconds: number | null): Promise<TargetResult> {
  const args = [`--max-old-space-size=${CHILD_HEAP_MB}`, fileURLToPath(import.meta.url), '--child', '--target', target.name, '--runs', String(options.runs)];
  if (options.seed !== null) args.push('--seed', String(options.seed));
  if (options.path !== null) args.push('--path', options.path);
  if (timeLimitSeconds !== null) args.push('--time-limit', String(timeLimitSeconds));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.on('close', (code, signal) => {
      const line = out.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (line !== undefined) {
        resolve(JSON.parse(line.slice(RESULT_PREFIX.length)) as TargetResult);
        return;
      }
      // No result: the child died (out of memory, a crash the property could not catch).
      resolve({
        target: target.name, seed: options.seed ?? 0, cases: 0, seconds: 0, peakHeapBytes: 0, maxRssBytes: 0, interrupted: false,
        failure: { path: '', counterexample: '(none: the process died)', error: `child exited with ${signal ?? `code ${code}`}\n${out.slice(-2000)}` },
      });
    });
  });
}

const mb = (bytes: number): string => (bytes / 1024 / 1024).toFixed(0);

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const targets = options.targets.length === 0 ? TARGETS : TARGETS.filter((t) => options.targets.includes(t.name));
  if (options.child) {
    runChild(targets[0]!, options);
    return;
  }
  process.stdout.write(`fuzzing ${targets.length} targets, ${options.runs.toLocaleString('en')} cases each` +
    `${options.timeLimitSeconds !== null ? `, at most ${options.timeLimitSeconds} s each` : ''}` +
    `${options.timeBudgetSeconds !== null ? `, at most ${options.timeBudgetSeconds} s in all` : ''}` +
    ` — node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'} ×${os.cpus().length}\n`);
  const results: TargetResult[] = [];
  const budgetEnds = options.timeBudgetSeconds === null ? null : Date.now() + options.timeBudgetSeconds * 1000;
  for (const [index, target] of targets.entries()) {
    process.stdout.write(`${target.name}: ${target.description}\n`);
    let limit = options.timeLimitSeconds;
    if (budgetEnds !== null) {
      const share = Math.max(1, Math.floor((budgetEnds - Date.now()) / 1000 / (targets.length - index)));
      limit = limit === null ? share : Math.min(limit, share);
    }
    const result = await runInChild(target, options, limit);
    results.push(result);
    const rate = result.seconds > 0 ? Math.round(result.cases / result.seconds) : 0;
    process.stdout.write(`  seed ${result.seed}: ${result.cases.toLocaleString('en')} cases in ${result.seconds.toFixed(1)} s ` +
      `(${rate.toLocaleString('en')}/s), peak heap ${mb(result.peakHeapBytes)} MB, max RSS ${mb(result.maxRssBytes)} MB` +
      `${result.interrupted ? ' — stopped at the time limit' : ''}${result.failure === null ? ' — ok' : ' — FAILED'}\n`);
    if (result.failure !== null) {
      process.stdout.write(`  counterexample:\n${result.failure.counterexample.replace(/^/gm, '    ')}\n  error:\n${result.failure.error.replace(/^/gm, '    ')}\n` +
        `  replay: npm run fuzz -- --target ${target.name} --seed ${result.seed} --path "${result.failure.path}"\n`);
    }
  }
  process.stdout.write('\n| target | cases | seconds | cases/s | peak heap MB | max RSS MB | result |\n|---|---:|---:|---:|---:|---:|---|\n');
  for (const r of results) {
    const rate = r.seconds > 0 ? Math.round(r.cases / r.seconds) : 0;
    process.stdout.write(`| ${r.target} | ${r.cases.toLocaleString('en')} | ${r.seconds.toFixed(1)} | ${rate.toLocaleString('en')} | ` +
      `${mb(r.peakHeapBytes)} | ${mb(r.maxRssBytes)} | ${r.failure === null ? 'ok' : `FAILED (seed ${r.seed})`} |\n`);
  }
  if (results.some((r) => r.failure !== null)) process.exitCode = 1;
}

await main();
