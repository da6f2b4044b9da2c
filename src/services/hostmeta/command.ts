/**
 * `sluice hostmeta`: the host metadata service on its own. SIGTERM or SIGINT
 * stops accepting, lets requests in flight finish, closes the store, exits 0.
 */
import { Command, InvalidArgumentError } from 'commander';
import { createLogger, type LogLevel } from '../../telemetry/logger.js';
import { Telemetry } from '../../telemetry/telemetry.js';
import { DEFAULT_HOSTMETA_SERVICE_CONFIG, type HostmetaServiceConfig } from './config.js';
import { POSTGRES_SCHEMA_PATTERN } from './postgres-store.js';
import { startHostmetaService, type RunningHostmetaService } from './server.js';
import { SQLITE_FILE_NAME } from './sqlite-store.js';

/** Read when --postgres-url is not given, so a password need not appear in the process list. */
export const POSTGRES_URL_ENV = 'SLUICE_HOSTMETA_POSTGRES_URL';

const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

interface HostmetaOptions {
  address: string;
  port: number;
  dataDir: string;
  postgresUrl?: string;
  postgresSchema: string;
  logLevel: LogLevel;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new InvalidArgumentError('expected an integer from 0 to 65535');
  return port;
}

function parseSchema(value: string): string {
  if (!POSTGRES_SCHEMA_PATTERN.test(value)) throw new InvalidArgumentError(`expected a name matching ${POSTGRES_SCHEMA_PATTERN.source}`);
  return value;
}

function parseLogLevel(value: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}`);
  return value as LogLevel;
}

async function runHostmeta(options: HostmetaOptions): Promise<void> {
  const config: HostmetaServiceConfig = {
    ...DEFAULT_HOSTMETA_SERVICE_CONFIG,
    address: options.address,
    port: options.port,
    dataDir: options.dataDir,
    postgresUrl: options.postgresUrl ?? process.env[POSTGRES_URL_ENV] ?? null,
    postgresSchema: options.postgresSchema,
  };
  const telemetry = new Telemetry(createLogger(options.logLevel));
  let service: RunningHostmetaService;
  try {
    service = await startHostmetaService(config, telemetry);
  } catch (err) {
    telemetry.emit('hostmetaStartFailed', { error: (err as Error).message });
    process.exit(1);
  }
  let signalled = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (signalled) {
      telemetry.emit('hostmetaSecondSignal', { signal });
      process.exit(1);
    }
    signalled = true;
    service.close().then(() => process.exit(0), (err: Error) => {
      telemetry.emit('hostmetaStoreFailed', { error: `closing: ${err.message}` });
      process.exit(1);
    });
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

export function registerHostmetaCommand(program: Command): void {
  const defaults = DEFAULT_HOSTMETA_SERVICE_CONFIG;
  program.command('hostmeta')
    .description('run the host metadata service on its own (HTTP; SQLite under the data folder, or PostgreSQL)')
    .option('--address <ip>', 'address to listen on', defaults.address)
    .option('--port <port>', 'port to listen on (0 picks a free one)', parsePort, defaults.port)
    .option('--data-dir <dir>', `folder of the SQLite database (${SQLITE_FILE_NAME})`, defaults.dataDir)
    .option('--postgres-url <url>', `use PostgreSQL at this URL instead of SQLite (default: $${POSTGRES_URL_ENV})`)
    .option('--postgres-schema <name>', 'PostgreSQL schema of the tables', parseSchema, defaults.postgresSchema)
    .option('--log-level <level>', 'log level', parseLogLevel, 'info' as LogLevel)
    .action(runHostmeta);
}
