/**
 * The resolved configuration of a NATS JetStream sink: every default
 * applied, durations in milliseconds, sizes in bytes.
 */
import { checkDeliveryConfig, DEFAULT_DELIVERY, type DeliveryConfig } from '../delivery/config.js';

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
