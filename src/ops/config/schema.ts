/**
 * The YAML configuration as a user writes it, assembled from the schemas of
 * the components (each in a *-schema.ts module beside its config type; the
 * pieces they are built from, and the rules every node follows, are in
 * core/config-schema.ts).
 * The same object drives validation (validate.ts), the reference
 * documentation (docs.ts) and, exported, editor completion.
 */
import { Type, type Static } from '@sinclair/typebox';
import { discriminatedUnion, duration, idMap, section } from '../../core/config-schema.js';
import { MemorySchema } from '../../core/memory-schema.js';
import { TenantsSchema } from '../../core/tenant-config-schema.js';
import { ClusterSchema } from '../../services/cluster/config-schema.js';
import { HostmetaClientSchema, HostmetaServiceSchema } from '../../services/hostmeta/config-schema.js';
import { FileSinkSchema } from '../../sinks/file/config-schema.js';
import { NatsSinkSchema } from '../../sinks/nats/config-schema.js';
import { SyslogSinkSchema } from '../../sinks/syslog/config-schema.js';
import { HttpSourceSchema } from '../../sources/http/config-schema.js';
import { RelpSourceSchema } from '../../sources/relp/config-schema.js';
import { SyslogTcpSchema, SyslogTlsSchema, SyslogUdpSchema } from '../../sources/syslog/config-schema.js';
import { AdminSchema } from '../admin/config-schema.js';
import { LogSchema } from '../log-output-schema.js';
import { SupervisionSchema } from '../supervision-schema.js';

export const SourcesSchema = section(
  {
    syslog_udp: SyslogUdpSchema,
    syslog_tcp: SyslogTcpSchema,
    syslog_tls: SyslogTlsSchema,
    relp: RelpSourceSchema,
    http: HttpSourceSchema,
  },
  'Where log records come from.',
);

/** A sink: one schema per type, told apart by `type`, so a key of another type is refused. */
export const SinkSchema = discriminatedUnion('type', [FileSinkSchema, SyslogSinkSchema, NatsSinkSchema], {
  description: 'One sink: its `type` and the keys of that type.',
  tagDescription: 'Kind of sink: `file` (NDJSON per tenant), `syslog` (forwarding; settings under `syslog`) or `nats` (JetStream; settings under `nats`). Each kind takes its own keys only: the keys below marked with a kind apply to that kind alone.',
  'x-expected': 'a mapping of sink settings',
});

export const SinksSchema = idMap(SinkSchema, {
  description:
    'The sinks, by name. Giving `sinks` replaces the default sink entirely; at least one sink is needed.',
  default: { files: { type: 'file' } },
  key: 'name',
  keyNoun: 'a sink name',
  'x-type': 'mapping of sink name to sink',
  'x-expected': 'a mapping of sink names to sink settings, with at least one sink',
});

export const HostmetaSchema = section(
  { service: HostmetaServiceSchema, client: HostmetaClientSchema },
  'Host metadata: the service that stores it and the client that enriches records with it.',
);

export const SluiceConfigSchema = Type.Partial(
  Type.Object({
    data_dir: Type.String({
      description:
        'Folder for the data the node keeps; a relative path is relative to the working directory the node starts in.',
      default: './data',
      minLength: 1,
    }),
    log: LogSchema,
    workers: Type.Union([Type.Literal('auto'), Type.Integer({ minimum: 1, maximum: 256 })], {
      description: '`sluice start` runs a primary process and this many worker processes that share every listener; `auto` is the number of cores available (os.availableParallelism()). See operations.md.',
      default: 'auto',
      'x-type': '`auto` or integer, 1 to 256',
      'x-expected': '"auto" or a whole number of workers from 1 to 256',
    }),
    connection_balancing: Type.Union([Type.Literal('kernel'), Type.Literal('round_robin')], {
      description: 'How the workers share stream connections. `kernel`: every worker accepts from the shared listening socket, so a reconnect storm of thousands of agents is accepted by all workers at once. `round_robin`: the primary accepts each connection and hands it to the workers in turn (even, but every accept passes through the primary). Taken at start; changing it takes a restart. See operations.md.',
      default: 'kernel',
    }),
    supervision: SupervisionSchema,
    shutdown_timeout: duration(
      10_000,
      'On shutdown, how long the node waits for queued records to be written before it exits anyway.',
    ),
    sources: SourcesSchema,
    tenants: TenantsSchema,
    sinks: SinksSchema,
    hostmeta: HostmetaSchema,
    admin: AdminSchema,
    memory: MemorySchema,
    cluster: ClusterSchema,
  }),
  {
    $id: 'https://sluice.dev/schema/config.json',
    title: 'sluice configuration',
    description: 'The YAML configuration of a sluice node. Every key is optional.',
    additionalProperties: false,
  },
);

/** The configuration as written in YAML (every key optional). */
export type SluiceConfigInput = Static<typeof SluiceConfigSchema>;

/** Every optional key present: the input once the schema's defaults are applied. */
export type Filled<T> = T extends readonly (infer U)[]
  ? Filled<U>[]
  : T extends object
    ? { [K in keyof T]-?: Filled<T[K]> }
    : T;

export type SluiceConfigFilled = Filled<SluiceConfigInput>;
