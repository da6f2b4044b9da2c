/**
 * The resolved configuration of a NATS JetStream sink: every default
 * applied, durations in milliseconds, sizes in bytes.
 */
import { Type } from '@sinclair/typebox';
import { duration, section } from '../../core/config-schema.js';
import { sinkSchema } from '../config.js';
import { checkDeliveryConfig, DEFAULT_DELIVERY, deliveryProperties, type DeliveryConfig } from '../delivery/config.js';

export interface NatsSinkConfig extends DeliveryConfig {
  name: string;
  type: 'nats';
  /** Tenant ids this sink receives; `['*']` means every tenant. */
  tenants: string[];
  /** Server URLs (`nats://host:port` or `host:port`); the client fails over between them. */
  servers: string[];
  /** JetStream stream the records go to. */
  stream: string;
  /** Records are published to `<subjectPrefix>.<tenant>.<host key>`. */
  subjectPrefix: string;
  /** Create the stream (subjects `<subjectPrefix>.>`, file storage) when it does not exist. */
  createStream: boolean;
  /** The created stream's de-duplication window: a re-publish within it is stored once. */
  duplicateWindowMs: number;
  /** Copies the created stream keeps, each on another server of a JetStream cluster (1 to 5). */
  replicas: number;
  /** Publishes awaiting their JetStream ack at once, at most. */
  maxInFlight: number;
  /** Longest a publish waits for its ack before the batch is retried. */
  publishTimeoutMs: number;
  connectTimeoutMs: number;
  /** Pause between reconnect attempts to a lost server (the client adds jitter). */
  reconnectWaitMs: number;
  user: string | null;
  password: string | null;
  token: string | null;
}

export const DEFAULT_NATS_SINK: Readonly<NatsSinkConfig> = {
  name: 'nats',
  type: 'nats',
  tenants: ['*'],
  servers: ['nats://127.0.0.1:4222'],
  stream: 'SLUICE_LOGS',
  subjectPrefix: 'logs',
  createStream: true,
  duplicateWindowMs: 120_000,
  replicas: 1,
  maxInFlight: 1024,
  publishTimeoutMs: 5000,
  connectTimeoutMs: 5000,
  reconnectWaitMs: 1000,
  user: null,
  password: null,
  token: null,
  ...DEFAULT_DELIVERY,
};

/** Stream names may not hold `.`, `*`, `>`, whitespace or path separators. */
const STREAM_NAME = /^[A-Za-z0-9_-]{1,255}$/;
const SUBJECT_TOKENS = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;

/** Problems with a NATS sink config, as sentences; empty when it is usable. */
export function checkNatsSinkConfig(config: NatsSinkConfig): string[] {
  const problems = checkDeliveryConfig(config);
  if (config.servers.length === 0) problems.push('at least one server is needed');
  if (!STREAM_NAME.test(config.stream)) problems.push('stream must be letters, digits, _ or - only');
  if (!SUBJECT_TOKENS.test(config.subjectPrefix)) problems.push('subject prefix must be dot-separated tokens of letters, digits, _ or -');
  if (!(config.duplicateWindowMs > 0)) problems.push('duplicate window must be above 0');
  if (!(Number.isInteger(config.replicas) && config.replicas >= 1 && config.replicas <= 5)) problems.push('replicas must be a whole number from 1 to 5');
  if (!(Number.isInteger(config.maxInFlight) && config.maxInFlight > 0)) problems.push('max in flight must be a whole number above 0');
  if (!(config.publishTimeoutMs > 0 && config.connectTimeoutMs > 0 && config.reconnectWaitMs > 0)) problems.push('timeouts must be above 0');
  if ((config.user === null) !== (config.password === null)) problems.push('user and password go together');
  return problems;
}

const defaults = DEFAULT_NATS_SINK;

/** A `type: nats` entry of `sinks` in the YAML configuration. */
export const NatsSinkSchema = sinkSchema('nats', 'A sink publishing to NATS JetStream.', {
  ...deliveryProperties(),
  nats: section(
    {
      servers: Type.Array(Type.String({ minLength: 1 }), {
        description: 'NATS servers (`nats://host:port`); the client fails over between them.', default: [...defaults.servers], minItems: 1,
        'x-type': 'list of URLs', 'x-expected': 'a non-empty list of nats:// URLs',
      }),
      stream: Type.String({ description: 'JetStream stream the records go to.', default: defaults.stream, pattern: '^[A-Za-z0-9_-]{1,64}$', 'x-expected': 'a stream name of letters, digits, "_" and "-"' }),
      subject_prefix: Type.String({ description: 'Records are published to `<subject_prefix>.<tenant>.<host key>`.', default: defaults.subjectPrefix, pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$', 'x-expected': 'dot-separated subject tokens such as logs' }),
      create_stream: Type.Boolean({ description: 'Create the stream (subjects `<subject_prefix>.>`) when it does not exist.', default: defaults.createStream }),
      duplicate_window: duration(defaults.duplicateWindowMs, 'De-duplication window of a created stream: a re-publish within it is stored once.'),
      replicas: Type.Integer({ description: 'Copies a created stream keeps, each on another server of the JetStream cluster: 3 in a 3-server cluster, so a server can die without losing or blocking the stream (see cluster.md).', default: defaults.replicas, minimum: 1, maximum: 5 }),
      max_in_flight: Type.Integer({ description: 'Publishes awaiting their JetStream acknowledgement at once.', default: defaults.maxInFlight, minimum: 1, maximum: 65536 }),
      publish_timeout: duration(defaults.publishTimeoutMs, 'Longest a publish waits for its acknowledgement before the batch is retried.'),
      user: Type.Union([Type.String(), Type.Null()], { description: 'User name, or null.', default: defaults.user, 'x-type': 'string or null', 'x-expected': 'a string, or null' }),
      password: Type.Union([Type.String(), Type.Null()], { description: 'Password, or null.', default: defaults.password, 'x-type': 'string or null', 'x-expected': 'a string, or null' }),
      token: Type.Union([Type.String(), Type.Null()], { description: 'Authentication token, or null.', default: defaults.token, 'x-type': 'string or null', 'x-expected': 'a string, or null' }),
    },
    'NATS JetStream, the shared bus.',
  ),
});
