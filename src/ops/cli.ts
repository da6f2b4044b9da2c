#!/usr/bin/env node
/**
 * The `sluice` command.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { ConfigError, defaultConfig, formatProblem, loadConfigFile, parseConfig } from './config/load.js';
import type { SluiceConfig } from './config/types.js';
import { SluiceNode } from './node.js';
import { DEFAULT_LOG_CONFIG, createLogger, flushLogger } from './log-output.js';
import { Telemetry } from './telemetry.js';
import { VERSION } from './version.js';
import { registerHostmetaCommand } from '../services/hostmeta/command.js';
import { registerLoadgenCommand } from './loadgen/command.js';
import { startAdminServer, type RunningAdminServer } from './admin/server.js';
import { LocalControl } from './admin/local-control.js';
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
      new Telemetry(createLogger(DEFAULT_LOG_CONFIG)).emit('configInvalid', { file, problems: err.problems.length });
      process.exit(1);
    }
    throw err;
  }
}

async function start(options: { config?: string }): Promise<void> {
  const config = readConfig(options.config);
  const logger = createLogger(config.log);
  const node = new SluiceNode(config, logger);
  const exit = async (status: number): Promise<never> => {
    await flushLogger(logger, LOG_FLUSH_TIMEOUT_MS);
    process.exit(status);
  };
  try {
    await node.start();
  } catch (err) {
    node.telemetry.emit('startFailed', { error: (err as Error).message });
    await exit(1);
  }
  // The admin server (dashboard, /metrics, /api) sees the node only through NodeControl.
  let admin: RunningAdminServer | null = null;
  try {
    if (config.admin.enabled) admin = await startAdminServer(config, new LocalControl(node), logger);
  } catch (err) {
    node.telemetry.emit('startFailed', { error: `admin server: ${(err as Error).message}` });
    await node.stop();
    await exit(1);
  }
  let signalled = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (signalled) {
      node.telemetry.emit('secondSignal', { signal });
      void exit(1);
      return;
    }
    signalled = true;
    void node.stop().then(async (complete) => {
      await admin?.close();
      await exit(complete ? 0 : 1);
    });
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
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
  .description('start a node (with no config file, every default applies)')
  .option('-c, --config <file>', 'YAML configuration file (reference: docs/config.md)')
  .action(start);

program.command('validate')
  .description('check a configuration file; exits 1 and lists every problem when it is invalid')
  .requiredOption('-c, --config <file>', 'YAML configuration file')
  .action(validate);

registerHostmetaCommand(program);
registerLoadgenCommand(program);
registerAdminCommands(program);
await program.parseAsync();
