/** The schema of cluster mode, ClusterConfig (config.ts). */
import { Type } from '@sinclair/typebox';
import { duration, section } from '../../core/config-schema.js';

/** `cluster` in the YAML configuration. */
export const ClusterSchema = section(
  {
    nats: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }))], {
      description: 'NATS servers (`nats://host:port`, one URL or a list) whose JetStream key-value buckets hold the cluster\'s membership, leader and host session locks. Empty: the node runs alone. See cluster.md.',
      default: [], 'x-type': 'URL or list of URLs', 'x-expected': 'a nats:// URL or a list of them',
    }),
    node_id: Type.String({
      description: 'This node\'s name in the cluster, unique among its members. Empty: the machine\'s hostname.',
      default: '', pattern: '^([A-Za-z0-9_-]{1,64})?$', 'x-expected': '1 to 64 letters, digits, "_" and "-", or empty',
    }),
    bucket_prefix: Type.String({
      description: 'Prefix of the key-value buckets (`<prefix>_members`, `<prefix>_leader`, `<prefix>_host_locks`); nodes with the same prefix form one cluster.',
      default: 'sluice', pattern: '^[A-Za-z0-9_-]{1,32}$', 'x-expected': '1 to 32 letters, digits, "_" and "-"',
    }),
    replicas: Type.Integer({ description: 'Replicas of each bucket when it is created (3 on a 3-server NATS cluster).', default: 1, minimum: 1, maximum: 5 }),
    heartbeat_interval: duration(1000, 'How often the node writes its heartbeat (identity and load) and renews its leadership or claims it.'),
    member_ttl: duration(10_000, 'A member whose heartbeat is older than this disappears from the cluster (the bucket\'s time-to-live, fixed when the bucket is created).'),
    leader_ttl: duration(5000, 'The leader key expires this long after its last renewal, so a new leader is elected at most this long plus one heartbeat after the old one died (fixed when the bucket is created).'),
    host_locks: Type.Boolean({ description: 'One node owns a host\'s session at a time: a host that connects through another node takes its session over and the old node closes its own.', default: true }),
    prune_hosts_after: duration(30 * 86_400_000, 'The leader deletes host metadata of hosts unseen for this long (when this node runs the host metadata service). 0: never.'),
    shed_connections_over: Type.Number({
      description: 'A node with more than this multiple of its fair share of the cluster\'s connections (or over its soft memory mark) asks some agents to reconnect (RELP serverclose, HTTP Connection: close) so the balancer spreads them. 0: never.',
      default: 1.25, minimum: 0, maximum: 100,
    }),
    shed_interval: duration(10_000, 'How often a node considers shedding, and the pause after it has shed, so the balancer\'s view settles.'),
  },
  'Cluster mode: several nodes behind a TCP load balancer, coordinated through NATS JetStream key-value buckets (see cluster.md).',
);
