/**
 * The resolved configuration of cluster mode: every default applied,
 * durations in milliseconds.
 */

export interface ClusterConfig {
  /** Empty: the node runs alone. */
  nats: string[];
  nodeId: string;
  bucketPrefix: string;
  replicas: number;
  heartbeatIntervalMs: number;
  memberTtlMs: number;
  leaderTtlMs: number;
  hostLocks: boolean;
  /** 0: never. */
  pruneHostsAfterMs: number;
  /** 0: never shed. */
  shedConnectionsOver: number;
  shedIntervalMs: number;
}
