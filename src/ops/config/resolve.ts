/**
 * Resolution: the validated YAML (every default filled in) becomes the
 * {@link SluiceConfig} the node runs with — camelCase, durations in ms, sizes
 * in bytes, tokens hashed, maps as lists in the file's order.
 */
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { isMap, type Document } from 'yaml';
import { tokenHash } from '../../core/tenant-config.js';
import { parseDuration, parseSize } from '../../core/units.js';
import { DEFAULT_HOSTMETA_CLIENT_CONFIG } from '../../services/hostmeta/config.js';
import { DEFAULT_DISK_BUFFER_CONFIG } from '../../sinks/buffer/config.js';
import { DEFAULT_DELIVERY } from '../../sinks/delivery/config.js';
import { DEFAULT_NATS_SINK } from '../../sinks/nats/config.js';
import { DEFAULT_SYSLOG_PORTS, DEFAULT_SYSLOG_SINK } from '../../sinks/syslog/config.js';
import { FACILITY_CODES } from '../log-output.js';
import { keyString } from './problems.js';
import type { SluiceConfigFilled } from './schema.js';
import type { SinkConfig, SluiceConfig } from './types.js';

/** A bare address becomes a /32 or /128 block; a block stays as written. */
function toCidr(s: string): string {
  if (s.includes('/')) return s;
  return `${s}/${isIP(s) === 4 ? 32 : 128}`;
}

export function resolve(c: SluiceConfigFilled, doc: Document): SluiceConfig {
  const duration = (v: number | string) => parseDuration(v) ?? 0;
  const size = (v: number | string) => parseSize(v) ?? 0;
  type Bounds = Pick<SluiceConfigFilled['sources']['relp'], 'max_connections' | 'idle_timeout' | 'frame_timeout'>;
  const connectionBounds = (l: Bounds) => ({
    maxConnections: l.max_connections,
    idleTimeoutMs: duration(l.idle_timeout),
    frameTimeoutMs: duration(l.frame_timeout),
  });
  const streamConnection = (l: Bounds & { max_frame: number | string }) => ({ maxFrameBytes: size(l.max_frame), ...connectionBounds(l) });
  const udp = c.sources.syslog_udp;
  const tcp = c.sources.syslog_tcp;
  const tls = c.sources.syslog_tls;
  const http = c.sources.http;
  // The token is read from hostmeta.client.token_file when the node starts, never kept in the configuration.
  const { token: _noToken, ...clientDefaults } = DEFAULT_HOSTMETA_CLIENT_CONFIG;
  return {
    dataDir: c.data_dir,
    log: {
      level: c.log.level,
      output: c.log.output,
      syslog: {
        protocol: c.log.syslog.protocol,
        host: c.log.syslog.host,
        port: c.log.syslog.port === 0 ? DEFAULT_SYSLOG_PORTS[c.log.syslog.protocol] : c.log.syslog.port,
        facility: FACILITY_CODES[c.log.syslog.facility],
        appName: c.log.syslog.app_name,
        maxMessageBytes: size(c.log.syslog.max_message),
        maxQueueBytes: size(c.log.syslog.max_queue),
      },
    },
    workers: c.workers,
    connectionBalancing: c.connection_balancing,
    supervision: {
      initialBackoffMs: duration(c.supervision.initial_backoff),
      maxBackoffMs: duration(c.supervision.max_backoff),
      stableAfterMs: duration(c.supervision.stable_after),
      crashLoopAfter: c.supervision.crash_loop_after,
    },
    sources: {
      syslogUdp: {
        enabled: udp.enabled,
        address: udp.address,
        port: udp.port,
        receiveBufferBytes: size(udp.receive_buffer),
        handoffBufferBytes: size(udp.handoff_buffer),
      },
      syslogTcp: {
        enabled: tcp.enabled,
        address: tcp.address,
        port: tcp.port,
        ...streamConnection(tcp),
      },
      syslogTls: {
        enabled: tls.certificate !== null && tls.key !== null,
        address: tls.address,
        port: tls.port,
        certificateFile: tls.certificate,
        keyFile: tls.key,
        clientCaFile: tls.client_ca,
        clientCertificates: tls.client_certificates,
        ...streamConnection(tls),
        maxHandshakes: tls.max_handshakes,
        handshakeTimeoutMs: Math.max(100, duration(tls.handshake_timeout)),
      },
      relp: {
        enabled: c.sources.relp.enabled,
        address: c.sources.relp.address,
        port: c.sources.relp.port,
        maxFrameBytes: size(c.sources.relp.max_frame),
        window: c.sources.relp.window,
        drainTimeoutMs: duration(c.sources.relp.drain_timeout),
        ...connectionBounds(c.sources.relp),
      },
      http: {
        enabled: http.enabled,
        address: http.address,
        port: http.port,
        maxBodyBytes: size(http.max_body),
        maxRecords: http.max_records,
        ackTimeoutMs: duration(http.ack_timeout),
        maxConnections: http.max_connections,
        requestTimeoutMs: duration(http.request_timeout),
      },
    },
    tenants: yamlOrder(doc, 'tenants', c.tenants).map((id) => ({
      id,
      networks: (c.tenants[id]?.networks ?? []).map(toCidr),
      tokenHashes: (c.tenants[id]?.tokens ?? []).map(tokenHash),
      certificates: (c.tenants[id]?.certificates ?? []).map((rule) =>
        'cn' in rule ? { field: 'cn' as const, pattern: rule.cn } : { field: 'san' as const, pattern: rule.san }),
      limits: {
        messagesPerSecond: c.tenants[id]?.limits.messages_per_second ?? 0,
        bytesPerSecond: size(c.tenants[id]?.limits.bytes_per_second ?? '0B'),
        burstMs: duration(c.tenants[id]?.limits.burst ?? '1s'),
        maxConnections: c.tenants[id]?.limits.max_connections ?? 0,
      },
    })),
    sinks: yamlOrder(doc, 'sinks', c.sinks).flatMap((name): SinkConfig[] => {
      const s = c.sinks[name];
      if (s === undefined) return [];
      const diskBuffer = s.buffer.type === 'disk'
        ? { ...DEFAULT_DISK_BUFFER_CONFIG, maxBytes: size(s.buffer.max_size), whenFull: s.buffer.when_full, blockTimeoutMs: duration(s.buffer.block_timeout),
          segmentBytes: Math.min(DEFAULT_DISK_BUFFER_CONFIG.segmentBytes, size(s.buffer.max_size)) }
        : null;
      const delivery = {
        ...DEFAULT_DELIVERY,
        batchBytes: size(s.batch_size),
        batchDelayMs: duration(s.batch_delay),
        queueHighWaterBytes: size(s.queue_high_water),
        queueMaxBytes: Math.max(DEFAULT_DELIVERY.queueMaxBytes, 2 * size(s.queue_high_water)),
      };
      if (s.type === 'syslog') {
        const f = s.syslog;
        return [{
          ...DEFAULT_SYSLOG_SINK,
          ...delivery,
          name,
          diskBuffer,
          type: 'syslog',
          tenants: [...s.tenants],
          protocol: f.protocol,
          host: f.host,
          port: f.port === 0 ? DEFAULT_SYSLOG_PORTS[f.protocol] : f.port,
          format: f.format,
          maxMessageBytes: size(f.max_message),
          identitySdId: f.identity_sd_id,
          tls: { caFile: f.tls.ca, certFile: f.tls.certificate, keyFile: f.tls.key, serverName: f.tls.server_name },
        }];
      }
      if (s.type === 'nats') {
        const n = s.nats;
        return [{
          ...DEFAULT_NATS_SINK,
          ...delivery,
          name,
          diskBuffer,
          type: 'nats',
          tenants: [...s.tenants],
          servers: [...n.servers],
          stream: n.stream,
          subjectPrefix: n.subject_prefix,
          createStream: n.create_stream,
          duplicateWindowMs: duration(n.duplicate_window),
          replicas: n.replicas,
          maxInFlight: n.max_in_flight,
          publishTimeoutMs: duration(n.publish_timeout),
          user: n.user,
          password: n.password,
          token: n.token,
        }];
      }
      return [
        {
          name,
          diskBuffer,
          type: 'file',
          tenants: [...s.tenants],
          path: s.path ?? path.join(c.data_dir, 'logs'),
          rotateBytes: size(s.rotate_size),
          rotateIntervalMs: duration(s.rotate_interval),
          maxFiles: s.max_files,
          batchBytes: size(s.batch_size),
          batchDelayMs: duration(s.batch_delay),
          queueHighWaterBytes: size(s.queue_high_water),
          fsyncIntervalMs: duration(s.fsync_interval),
        },
      ];
    }),
    shutdownTimeoutMs: duration(c.shutdown_timeout),
    memory: {
      budgetBytes: c.memory.budget === 'auto' ? autoMemoryBudget(workersOf(c.workers)) : size(c.memory.budget),
      measure: c.memory.measure,
      softMark: c.memory.soft_mark,
      hardMark: c.memory.hard_mark,
      hysteresis: c.memory.hysteresis,
      sampleIntervalMs: Math.max(10, duration(c.memory.sample_interval)),
    },
    hostmeta: {
      service: {
        enabled: c.hostmeta.service.enabled,
        address: c.hostmeta.service.address,
        port: c.hostmeta.service.port,
        dataDir: c.data_dir,
        postgresUrl: c.hostmeta.service.postgres_url,
        postgresSchema: c.hostmeta.service.postgres_schema,
        postgresPoolSize: c.hostmeta.service.postgres_pool_size,
        maxDocumentBytes: size(c.hostmeta.service.max_document),
      },
      client: {
        ...clientDefaults,
        enabled: c.hostmeta.client.enabled,
        url: c.hostmeta.client.url,
        tokenFile: c.hostmeta.client.token_file,
        connections: c.hostmeta.client.connections,
        cacheTtlMs: duration(c.hostmeta.client.cache_ttl),
        cacheNegativeTtlMs: duration(c.hostmeta.client.negative_cache_ttl),
        cacheMaxEntries: c.hostmeta.client.cache_max_entries,
        lookupTimeoutMs: duration(c.hostmeta.client.lookup_timeout),
        touchIntervalMs: duration(c.hostmeta.client.touch_interval),
        restartAfterMs: duration(c.hostmeta.client.restart_after),
      },
    },
    admin: {
      enabled: c.admin.enabled,
      address: c.admin.address,
      port: c.admin.port,
      tokens: c.admin.tokens.map((t) => ({ tokenHash: tokenHash(t.token), tenant: t.tenant })),
      openLoopbackReads: c.admin.open_loopback_reads,
      tenantSeries: c.admin.tenant_series,
      tailSlots: c.admin.tail_slots,
      tenantTailShare: c.admin.tenant_tail_share,
      hosts: c.admin.hosts.map((h) => h.toLowerCase()),
    },
    cluster: {
      nats: typeof c.cluster.nats === 'string' ? [c.cluster.nats] : [...c.cluster.nats],
      nodeId: c.cluster.node_id === '' ? defaultNodeId() : c.cluster.node_id,
      bucketPrefix: c.cluster.bucket_prefix,
      replicas: c.cluster.replicas,
      heartbeatIntervalMs: Math.max(100, duration(c.cluster.heartbeat_interval)),
      memberTtlMs: duration(c.cluster.member_ttl),
      leaderTtlMs: duration(c.cluster.leader_ttl),
      hostLocks: c.cluster.host_locks,
      pruneHostsAfterMs: duration(c.cluster.prune_hosts_after),
      shedConnectionsOver: c.cluster.shed_connections_over,
      shedIntervalMs: duration(c.cluster.shed_interval),
    },
  };
}

/** The hostname, as a cluster node id may spell it. */
/** The number of worker processes `workers` asks for (`auto`: one per core available). */
export function workersOf(workers: 'auto' | number): number {
  return workers === 'auto' ? os.availableParallelism() : workers;
}

/**
 * memory.budget `auto`: 192 MiB a worker and 256 MiB more (640 MiB with 2
 * workers). A worker at rest is some 80 MB of RSS, the primary 80–120 MB; at
 * 10,000 trickling agents (W5) a node of 2 workers peaked at 430–450 MB, which
 * must stay below the soft mark (80 %) or the governor pauses the agents.
 */
export function autoMemoryBudget(workers: number): number {
  return (workers * 192 + 256) * 1024 ** 2;
}

export function defaultNodeId(): string {
  return os.hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 64) || 'node';
}

/**
 * The keys of a map in the order the file gives them. (Object key order puts
 * integer-like keys such as `42` first, so it is read from the document.)
 */
function yamlOrder(doc: Document, key: string, map: Record<string, unknown>): string[] {
  const node = doc.getIn([key], true);
  if (!isMap(node)) return Object.keys(map);
  const keys = node.items.map((pair) => keyString(pair.key)).filter((k) => Object.hasOwn(map, k));
  return [...new Set(keys)];
}
