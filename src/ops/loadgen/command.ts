/**
 * `sluice loadgen`: the command line around a run. Exit codes: 0 the run
 * completed (losses are reported, not failures), 1 bad options, 2 the target
 * could not be reached at all, 3 the run itself failed (a worker died or
 * hung), 130 interrupted (SIGINT or SIGTERM; what was measured until then is
 * still reported).
 */
import type { Command } from 'commander';
import { nodeConfigYaml } from './layout.js';
import { OptionError, parseLoadgenOptions, type LoadgenOptions, type RawLoadgenOptions } from './options.js';
import { formatSummary, writeReports } from './report.js';
import { runLoadgen } from './run.js';
import { WorkerFailure } from './fleet.js';

export const EXIT_COMPLETED = 0;
export const EXIT_BAD_OPTIONS = 1;
export const EXIT_UNREACHABLE = 2;
export const EXIT_RUN_FAILED = 3;
export const EXIT_INTERRUPTED = 130;

export function registerLoadgenCommand(program: Command): void {
  program.command('loadgen')
    .description('simulate many syslog agents against a node and measure latency from the client side (docs/loadgen.md)')
    .option('--target <url>', 'the node: tcp://host:port, udp://host:port or relp://host:port, on loopback '
      + '(default tcp://127.0.0.1:5514; relp://127.0.0.1:2514 with --protocol relp)')
    .option('--protocol <protocol>', 'tcp, udp or relp (default: the scheme of --target); over relp, latency is send → acknowledgement')
    .option('--agents <n>', 'simulated agents, one connection or UDP socket each (default 1000)')
    .option('--tenants <n>', 'tenants; tenant t sends from 127.0.<t+1>.0/24 (default 1)')
    .option('--workers <n>', 'worker processes sharing the agents (default ceil(agents/2500), at most one per core)')
    .option('--pattern <pattern>', 'steady, burst, flood, reconnect or idle (default steady)')
    .option('--rate <n>', 'messages per second per agent (default 1)')
    .option('--burst-interval <duration>', 'burst: time between bursts (default 5s)')
    .option('--burst-size <n>', 'burst: messages each agent sends per burst (default 10)')
    .option('--flood-rate <n>', 'flood: messages per second per agent of tenant t0, as fast as its connection takes them (default 1000)')
    .option('--reconnect-interval <duration>', 'reconnect: every agent reconnects at once this often (default 5s)')
    .option('--duration <duration>', 'how long agents send (default 10s)')
    .option('--warmup <duration>', 'after connecting, how long agents stay silent before sending starts (default 0s)')
    .option('--steady-after <duration>', 'latency is also reported for the messages sent this long after sending starts or later, '
      + 'the steady part apart from the cold start; 0: the whole run (default 10s)')
    .option('--settle <duration>', 'after sending, how long to wait for records still on their way (default 5s)')
    .option('--size <bytes>', 'bytes per message (default 256)')
    .option('--connect-timeout <duration>', 'limit for one connection attempt, and for connecting all agents (default 10s)')
    .option('--connect-concurrency <n>', 'connection attempts in flight per worker while agents first connect (default 200)')
    .option('--data-dir <dir>', "the node's data_dir: the probe reads <data-dir>/logs/<tenant>/current.ndjson (default ./data)")
    .option('--logs-dir <dir>', "the file sink's folder when it is not <data-dir>/logs")
    .option('--report-dir <dir>', 'where report.json and report.html go (default ./loadgen-report)')
    .option('--quiet', 'no progress line every second')
    .option('--print-node-config', 'print a node configuration with matching tenants and exit')
    .action(loadgen);
}

async function loadgen(raw: RawLoadgenOptions): Promise<void> {
  let options: LoadgenOptions;
  try {
    options = parseLoadgenOptions(raw);
  } catch (err) {
    if (!(err instanceof OptionError)) throw err;
    process.stderr.write(`sluice loadgen: bad options\n${err.message}\n`);
    process.exit(EXIT_BAD_OPTIONS);
  }
  if (options.printNodeConfig) {
    process.stdout.write(nodeConfigYaml(options));
    return;
  }

  const interrupt = new AbortController();
  const onSigint = (): void => {
    if (interrupt.signal.aborted) {
      // Second Ctrl-C: workers notice the closed IPC channel and exit on their own.
      process.stderr.write('sluice loadgen: interrupted again, exiting now\n');
      process.exit(EXIT_INTERRUPTED);
    }
    process.stderr.write('sluice loadgen: interrupted; stopping agents and reporting what was measured (Ctrl-C again to quit now)\n');
    interrupt.abort();
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);

  let code: number;
  try {
    const result = await runLoadgen(options, { log: (line) => process.stderr.write(`${line}\n`), signal: interrupt.signal });
    if (!result.reached) {
      process.stderr.write(`sluice loadgen: ${result.unreachableReason}\n`);
      code = EXIT_UNREACHABLE;
    } else {
      process.stdout.write(`${formatSummary(result)}\n`);
      const files = writeReports(result, options.reportDir);
      process.stdout.write(`report: ${files.json}, ${files.html}\n`);
      code = result.interrupted ? EXIT_INTERRUPTED : EXIT_COMPLETED;
    }
  } catch (err) {
    if (!(err instanceof WorkerFailure)) throw err;
    process.stderr.write(`sluice loadgen: ${err.message}\n`);
    code = interrupt.signal.aborted ? EXIT_INTERRUPTED : EXIT_RUN_FAILED;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
  process.exit(code);
}
