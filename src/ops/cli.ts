#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=8
/**
 * The `sluice` command.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { defaultConfig, loadConfigFile, parseConfig } from './config/load.js';
import { ConfigError, formatProblem } from './config/problems.js';
import type { SluiceConfig } from './config/types.js';
import path from 'node:path';
import YAML from 'yaml';
import { Primary } from './workers/primary.js';
import { WorkersControl } from './workers/workers-control.js';
import type { ClusterMember } from '../services/cluster/member.js';
import { openCommandSocket, sendCommand, type Command as NodeCommand } from './workers/command-socket.js';
import { DEFAULT_LOG_CONFIG, createNodeLogger, flushLogger } from './log-output.js';
import { Telemetry } from '../telemetry/telemetry.js';
import { VERSION } from '../telemetry/version.js';
import { registerHostmetaCommand } from '../services/hostmeta/command.js';
import { registerLoadgenCommand } from './loadgen/command.js';
import { startAdminServer, type RunningAdminServer } from './admin/server.js';
import { hostmetaAccess } from './config/hostmeta-access.js';
import { registerAdminCommands } from './admin/commands.js';


/** Longest the exit waits for the last log lines to leave for a syslog receiver. */
const LOG_FLUSH_TIMEOUT_MS = 2000;

function readConfig(file: string | undefined): SluiceConfig {
  if (file === undefined) return defaultConfig();
  try {
    return loadConfigFile(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      // The problems for a person to read, then the coded line for whatever watches the log (stderr: no config, no other output).
      process.stderr.write(`${err.message}\n`);
      new Telemetry(createNodeLogger(DEFAULT_LOG_CONFIG)).emit('configInvalid', { file, problems: err.problems.length });
      process.exit(1);
    }
    throw err;
  }
}

async function start(options: { config?: string }): Promise<void> {
  const config = readConfig(options.config);
  const logger = createNodeLogger(config.log);
  const primary = new Primary(config, { configPath: options.config === undefined ? null : path.resolve(options.config), logger });
  const control = new WorkersControl(primary);
  let closeSocket: () => void = () => undefined;
  const exit = async (status: number): Promise<never> => {
    closeSocket();
    await flushLogger(logger, LOG_FLUSH_TIMEOUT_MS);
    process.exit(status);
  };
  let admin: RunningAdminServer | null = null;
  let member: ClusterMember | null = null;
  // Signals are handled from the start: a SIGTERM while the workers come up drains them too.
  let signalled = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (signalled) {
      primary.telemetry.emit('secondSignal', { signal });
      void exit(1);
      return;
    }
    signalled = true;
    // Leave the cluster first (resign, remove the heartbeat), so the others take over at once; then drain.
    void (member?.stop() ?? Promise.resolve()).then(() => primary.stop()).then(async (complete) => {
      await admin?.close();
      await exit(complete ? 0 : 1);
    });
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  try {
    closeSocket = await openCommandSocket(primary, config.dataDir);
    await primary.start();
    if (primary.readyWorkers().length === 0 && !signalled) throw new Error('no worker could start (see the lines above)');
    // The admin server (dashboard, /metrics, /api) runs in the primary and sees every worker through WorkersControl.
    if (config.admin.enabled && !signalled) {
      admin = await startAdminServer(config, control, primary.telemetry).catch((err: Error) => { throw new Error(`admin server: ${err.message}`, { cause: err }); });
      primary.onReloaded.add((next) => admin?.reconfigure(next));
    }
  } catch (err) {
    primary.telemetry.emit('startFailed', { error: (err as Error).message });
    await primary.stop(Date.now() + 1000);
    await exit(1);
  }
  if (signalled) return;
  if (config.cluster.nats.length > 0) {
    const adminUrl = admin === null ? null : `http://${admin.address.includes(':') ? `[${admin.address}]` : admin.address}:${admin.port}`;
    // The NATS client is loaded only in cluster mode.
    const { ClusterMember } = await import('../services/cluster/member.js');
    const hostmeta = primary.hostmetaService;
    member = new ClusterMember(config.cluster, primary.telemetry, {
      load: () => control.load(),
      shed: (count) => control.shedSessions(count),
      pruneHosts: hostmeta === null ? null : (olderThanMs) => hostmeta.pruneUnseen(olderThanMs),
    }, adminUrl);
    control.clusterMember = member;
    member.start();
  }
  primary.telemetry.emit('nodeReady', { workers: primary.slotIds().length, readiness: (await control.readiness()).detail.join('; ') });
  // Reload and rolling restart by signal: the outcome goes to the log (sluice reload / restart print it).
  process.on('SIGHUP', () => {
    void primary.reload().then((outcome) => outcome.applied?.catch(() => undefined));
  });
  process.on('SIGUSR2', () => {
    void primary.rollingRestart().catch((err: Error) => primary.telemetry.emit('rollingRestartFailed', { error: err.message }));
  });
}

/** The data dir of the node to reach: --data-dir, else the config file's data_dir (read leniently: the file may be the bad one), else ./data. */
function targetDataDir(options: { config?: string; dataDir?: string }): string {
  if (options.dataDir !== undefined) return options.dataDir;
  if (options.config !== undefined) {
    try {
      const doc = YAML.parse(readFileSync(options.config, 'utf8')) as { data_dir?: unknown } | null;
      if (typeof doc?.data_dir === 'string') return doc.data_dir;
    } catch {
      // Unreadable or not YAML: the node will say so when it reloads.
    }
  }
  return './data';
}

async function command(name: NodeCommand, options: { config?: string; dataDir?: string }): Promise<void> {
  try {
    const answer = await sendCommand(targetDataDir(options), name, name === 'reload' ? options.config ?? null : null);
    for (const message of answer.messages) (answer.ok ? process.stdout : process.stderr).write(`${message}\n`);
    process.exit(answer.ok ? 0 : 1);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
}

function validate(options: { config: string }): void {
  let text: string;
  try {
    text = readFileSync(options.config, 'utf8');
  } catch (err) {
    process.stderr.write(`${options.config}: cannot read: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const { problems } = parseConfig(text);
  if (problems.length > 0) {
    for (const problem of problems) process.stderr.write(`${formatProblem(problem, options.config)}\n`);
    process.stderr.write(`${options.config}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n`);
    process.exit(1);
  }
  process.stdout.write(`${options.config}: valid\n`);
}

const program = new Command()
  .name('sluice')
  .description('A multi-tenant log collector.')
  .version(VERSION);

program.command('start')
  .description('start a node: a primary and its workers (with no config file, every default applies); see docs/operations.md')
  .option('-c, --config <file>', 'YAML configuration file (reference: docs/config.md)')
  .action(start);

program.command('reload')
  .description('make the running node re-read its configuration file: validated first (refused with the reasons, the running configuration stays), then the workers are replaced one at a time; exits 0 when applied, 1 when refused')
  .option('-c, --config <file>', 'the configuration file, to find the node by its data_dir')
  .option('--data-dir <dir>', 'the data_dir of the node (default: from the file, else ./data)')
  .action((options: { config?: string; dataDir?: string }) => command('reload', options));

program.command('restart')
  .description('replace the running node\'s workers one at a time (new worker up, old one drains and exits): no downtime, nothing acknowledged lost')
  .requiredOption('--rolling', 'one worker at a time (the only kind of restart a running node does)')
  .option('-c, --config <file>', 'the configuration file, to find the node by its data_dir')
  .option('--data-dir <dir>', 'the data_dir of the node (default: from the file, else ./data)')
  .action((options: { config?: string; dataDir?: string }) => command('restart', options));

program.command('validate')
  .description('check a configuration file; exits 1 and lists every problem when it is invalid')
  .requiredOption('-c, --config <file>', 'YAML configuration file')
  .action(validate);

registerHostmetaCommand(program, (file) => {
  const config = readConfig(file);
  return { service: config.hostmeta.service, access: hostmetaAccess(config) };
});
registerLoadgenCommand(program);
registerAdminCommands(program);
await program.parseAsync();
