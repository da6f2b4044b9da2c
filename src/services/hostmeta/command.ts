/**
 * `sluice hostmeta`: the host metadata service on its own. SIGTERM or SIGINT
 * stops accepting, lets requests in flight finish, closes the store, exits 0.
 *
 * Its tenants and tokens come from a node's configuration file (`-c`): the
 * `tenants` it keeps hosts for, the `admin.tokens` that may call it, and its
 * `hostmeta.service` and `data_dir`, which the options given override.
 */
import { Command, InvalidArgumentError } from 'commander';
import { createLogger, type LogLevel } from '../../telemetry/logger.js';
import { Telemetry } from '../../telemetry/telemetry.js';
import { DEFAULT_HOSTMETA_SERVICE_CONFIG, type HostmetaAccess, type HostmetaServiceConfig } from './config.js';
import { POSTGRES_SCHEMA_PATTERN } from './postgres-store.js';
import { startHostmetaService, type RunningHostmetaService } from './server.js';
import { SQLITE_FILE_NAME } from './sqlite-store.js';

/** Read when --postgres-url is not given, so a password need not appear in the process list. */
export const POSTGRES_URL_ENV = 'SLUICE_HOSTMETA_POSTGRES_URL';

const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** What a configuration file (or, without one, the defaults) says of the service; the caller exits on a bad file. */
export type ReadHostmetaConfig = (file: string | undefined) => { service: HostmetaServiceConfig; access: HostmetaAccess };

interface HostmetaOptions {
  config?: string;
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

async function runHostmeta(readConfig: ReadHostmetaConfig, options: HostmetaOptions, command: Command): Promise<void> {
  const { service: configured, access } = readConfig(options.config);
  // An option given on the command line wins over the file; a default does not.
  const given = (name: keyof HostmetaOptions): boolean => command.getOptionValueSource(name) === 'cli';
  const config: HostmetaServiceConfig = {
    ...configured,
    address: given('address') ? options.address : configured.address,
    port: given('port') ? options.port : configured.port,
    dataDir: given('dataDir') ? options.dataDir : configured.dataDir,
    postgresUrl: options.postgresUrl ?? process.env[POSTGRES_URL_ENV] ?? configured.postgresUrl,
    postgresSchema: given('postgresSchema') ? options.postgresSchema : configured.postgresSchema,
  };
  const telemetry = new Telemetry(createLogger(options.logLevel));
  let service: RunningHostmetaService;
  try {
    service = await startHostmetaService(config, access, telemetry);
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

export function registerHostmetaCommand(program: Command, readConfig: ReadHostmetaConfig): void {
  const defaults = DEFAULT_HOSTMETA_SERVICE_CONFIG;
  program.command('hostmeta')
    .description('run the host metadata service on its own (HTTP; SQLite under the data folder, or PostgreSQL)')
    .option('-c, --config <file>', 'a node\'s configuration file: its tenants, admin tokens, data_dir and hostmeta.service (without one: the defaults, tenant `default` only)')
    .option('--address <ip>', 'address to listen on', defaults.address)
    .option('--port <port>', 'port to listen on (0 picks a free one)', parsePort, defaults.port)
    .option('--data-dir <dir>', `folder of the SQLite database (${SQLITE_FILE_NAME}) and of the generated tokens`, defaults.dataDir)
    .option('--postgres-url <url>', `use PostgreSQL at this URL instead of SQLite (default: $${POSTGRES_URL_ENV})`)
    .option('--postgres-schema <name>', 'PostgreSQL schema of the tables', parseSchema, defaults.postgresSchema)
    .option('--log-level <level>', 'log level', parseLogLevel, 'info' as LogLevel)
    .action((options: HostmetaOptions, command: Command) => runHostmeta(readConfig, options, command));
}
