/** The schema of a NATS JetStream sink, NatsSinkConfig (config.ts). */
import { Type } from '@sinclair/typebox';
import { duration, section } from '../../core/config-schema.js';
import { sinkSchema } from '../config-schema.js';
import { deliveryProperties } from '../delivery/config-schema.js';
import { DEFAULT_NATS_SINK } from './config.js';

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
