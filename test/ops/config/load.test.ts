import assert from 'node:assert/strict';
import { UNLIMITED as NO_LIMITS } from '../../../src/core/limits.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { defaultConfig, loadConfigFile, parseConfig } from '../../../src/ops/config/load.js';
import { ConfigError, formatProblem, type ConfigProblem } from '../../../src/ops/config/problems.js';
import { defaultNodeId } from '../../../src/ops/config/resolve.js';
import { parseDuration, parseSize } from '../../../src/core/units.js';
import type { SinkConfig, SluiceConfig } from '../../../src/ops/config/types.js';
import type { FileSinkConfig } from '../../../src/sinks/file/config.js';

function fileSink(sink: SinkConfig | undefined): FileSinkConfig {
  assert.equal(sink?.type, 'file');
  return sink as FileSinkConfig;
}
import { DEFAULT_HOSTMETA_CLIENT_CONFIG, DEFAULT_HOSTMETA_SERVICE_CONFIG } from '../../../src/services/hostmeta/config.js';
import { DEFAULT_HTTP_SOURCE_CONFIG } from '../../../src/sources/http/config.js';
import { DEFAULT_RELP_SOURCE_CONFIG } from '../../../src/sources/relp/config.js';
import { DEFAULT_MEMORY_CONFIG } from '../../../src/core/memory.js';
import { DEFAULT_SUPERVISOR_POLICY } from '../../../src/core/supervisor.js';
import { DEFAULT_LOG_CONFIG } from '../../../src/ops/log-output.js';
import { DEFAULT_DELIVERY } from '../../../src/sinks/delivery/config.js';
import { DEFAULT_SYSLOG_SINK } from '../../../src/sinks/syslog/config.js';
import { DEFAULT_NATS_SINK } from '../../../src/sinks/nats/config.js';
import { DEFAULT_DISK_BUFFER_CONFIG } from '../../../src/sinks/buffer/config.js';

// The resolved configuration never holds the client's token: it is read from hostmeta.client.token_file at start.
const { token: _noToken, ...CLIENT_DEFAULTS } = DEFAULT_HOSTMETA_CLIENT_CONFIG;

const DEFAULTS: SluiceConfig = {
  dataDir: './data',
  log: {
    level: 'info',
    output: 'stderr',
    syslog: { protocol: 'udp', host: '127.0.0.1', port: 514, facility: 3, appName: 'sluice', maxMessageBytes: 8192, maxQueueBytes: 1024 * 1024 },
  },
  workers: 'auto',
  connectionBalancing: 'kernel',
  supervision: { initialBackoffMs: 100, maxBackoffMs: 30_000, stableAfterMs: 30_000, crashLoopAfter: 5 },
  sources: {
    syslogUdp: { enabled: true, address: '127.0.0.1', port: 5514, receiveBufferBytes: 4 * 1024 * 1024, handoffBufferBytes: 16 * 1024 * 1024 },
    syslogTcp: { enabled: true, address: '127.0.0.1', port: 5514, maxFrameBytes: 64 * 1024, maxConnections: 50_000, idleTimeoutMs: 0, frameTimeoutMs: 30_000 },
    syslogTls: {
      enabled: false, address: '127.0.0.1', port: 6514, certificateFile: null, keyFile: null, clientCaFile: null,
      clientCertificates: 'none', maxFrameBytes: 64 * 1024, maxConnections: 50_000, idleTimeoutMs: 0, frameTimeoutMs: 30_000,
      maxHandshakes: 512, handshakeTimeoutMs: 10_000,
    },
    relp: {
      enabled: true, address: '127.0.0.1', port: 2514, maxFrameBytes: 128 * 1024, window: 128, drainTimeoutMs: 2000,
      maxConnections: 50_000, idleTimeoutMs: 0, frameTimeoutMs: 30_000,
    },
    http: { enabled: true, address: '127.0.0.1', port: 4318, maxBodyBytes: 4 * 1024 * 1024, maxRecords: 100_000, ackTimeoutMs: 30_000, maxConnections: 50_000, requestTimeoutMs: 30_000 },
  },
  tenants: [{ id: 'default', networks: ['127.0.0.0/8', '::1/128'], tokenHashes: [], certificates: [], limits: NO_LIMITS }],
  sinks: [
    {
      name: 'files',
      type: 'file',
      tenants: ['*'],
      path: path.join('./data', 'logs'),
      rotateBytes: 100 * 1024 * 1024,
      rotateIntervalMs: 3_600_000,
      maxFiles: 0,
      batchBytes: 256 * 1024,
      batchDelayMs: 10,
      queueHighWaterBytes: 8 * 1024 * 1024,
      fsyncIntervalMs: 20,
      diskBuffer: null,
    },
  ],
  shutdownTimeoutMs: 10_000,
  memory: { budgetBytes: (os.availableParallelism() * 192 + 256) * 1024 ** 2, measure: 'processes', softMark: 0.8, hardMark: 0.95, hysteresis: 0.05, sampleIntervalMs: 100 },
  hostmeta: {
    service: {
      enabled: true, address: '127.0.0.1', port: 8090, dataDir: './data', postgresUrl: null, postgresSchema: 'sluice_hostmeta',
      postgresPoolSize: 10, maxDocumentBytes: 64 * 1024,
    },
    client: {
      ...CLIENT_DEFAULTS, enabled: true, url: null, tokenFile: null, connections: 16, cacheTtlMs: 300_000, cacheNegativeTtlMs: 30_000,
      cacheMaxEntries: 50_000, lookupTimeoutMs: 250, touchIntervalMs: 60_000,
    },
  },
  admin: { enabled: true, address: '127.0.0.1', port: 8080, tokens: [], openLoopbackReads: true, tenantSeries: 100, tailSlots: 32, tenantTailShare: 0.25, hosts: [] },
  cluster: {
    nats: [], nodeId: defaultNodeId(), bucketPrefix: 'sluice', replicas: 1, heartbeatIntervalMs: 1000, memberTtlMs: 10_000,
    leaderTtlMs: 5000, hostLocks: true, pruneHostsAfterMs: 30 * 86_400_000, shedConnectionsOver: 1.25, shedIntervalMs: 10_000,
  },
};

const DURATION_EXPECTED = 'a duration such as 10s, 500ms or 1h';
const SIZE_EXPECTED = 'a size such as 64KiB, 100MiB or a number of bytes';
const CIDR_EXPECTED = 'a CIDR block such as 10.0.0.0/8 or 2001:db8::/32, or a single address';

/** The config of a text that must be valid. */
function ok(text: string): SluiceConfig {
  const { config, problems } = parseConfig(text);
  assert.deepEqual(problems.map((p) => formatProblem(p)), []);
  assert.ok(config);
  return config;
}

/** The problems of a text that must be invalid. */
function bad(text: string): ConfigProblem[] {
  const { config, problems } = parseConfig(text);
  assert.equal(config, null, 'a text with problems yields no config');
  assert.ok(problems.length > 0);
  return problems;
}

/** The single problem of a text that must have exactly one. */
function one(text: string): ConfigProblem {
  const problems = bad(text);
  assert.equal(problems.length, 1, problems.map((p) => formatProblem(p)).join('\n'));
  return problems[0] as ConfigProblem;
}

/** path, value and expected, without position and kind. */
function brief(p: ConfigProblem): { path: string; value: unknown; expected: string } {
  return { path: p.path, value: p.value, expected: p.expected };
}

describe('defaults', () => {
  it('defaultConfig() is the documented default configuration', () => {
    assert.deepEqual(defaultConfig(), DEFAULTS);
  });

  it('an empty file, a blank file and a comment-only file mean all defaults', () => {
    for (const text of ['', '\n\n  \n', '# sluice.yaml\n\n   # nothing set yet\n', '---\n', '~\n']) {
      assert.deepEqual(ok(text), DEFAULTS, JSON.stringify(text));
    }
  });

  it('each call returns a fresh object', () => {
    const a = defaultConfig();
    a.tenants[0]?.networks.push('10.0.0.0/8');
    a.sources.syslogUdp.port = 1;
    assert.deepEqual(defaultConfig(), DEFAULTS);
  });

  it('a section left empty counts as left out', () => {
    assert.deepEqual(ok('log:\nsources:\n  syslog_udp:\n  # port: 1\ntenants:\nsinks:\n'), DEFAULTS);
  });

  it('a tenant or sink with nothing under it takes every default', () => {
    const config = ok('tenants:\n  acme:\nsinks:\n  archive:\n');
    assert.deepEqual(config.tenants, [{ id: 'acme', networks: [], tokenHashes: [], certificates: [], limits: NO_LIMITS }]);
    assert.deepEqual(config.sinks, [{ ...DEFAULTS.sinks[0], name: 'archive' }]);
  });

  it('setting one key keeps every other default', () => {
    const config = ok('sources:\n  syslog_tcp:\n    port: 6000\n');
    assert.deepEqual(config, { ...DEFAULTS, sources: { ...DEFAULTS.sources, syslogTcp: { ...DEFAULTS.sources.syslogTcp, port: 6000 } } });
  });
});

describe('durations', () => {
  const good: [unknown, number][] = [
    [0, 0],
    [30, 30_000],
    [0.5, 500],
    [1.25, 1250],
    ['0s', 0],
    ['500ms', 500],
    ['1.5s', 1500],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['2d', 172_800_000],
    ['0.0001s', 1], // a positive duration never becomes 0
  ];
  for (const [input, ms] of good) {
    it(`${JSON.stringify(input)} is ${ms} ms`, () => {
      assert.equal(parseDuration(input), ms);
      assert.equal(ok(stringify({ shutdown_timeout: input })).shutdownTimeoutMs, ms);
      assert.equal(ok(stringify({ sinks: { s: { batch_delay: input } } })).sinks[0]?.batchDelayMs, ms);
    });
  }

  const wrong: unknown[] = ['10', '10 s', '10S', '10sec', '1w', '1.s', '.5s', '-1s', '1e3s', '', 'abc', -1, true, [], { s: 1 }, null];
  for (const input of wrong) {
    it(`${JSON.stringify(input)} is not a duration`, () => {
      assert.equal(parseDuration(input), null);
      assert.deepEqual(brief(one(stringify({ shutdown_timeout: input }))), {
        path: 'shutdown_timeout',
        value: input,
        expected: DURATION_EXPECTED,
      });
    });
  }

  it('.inf is not a duration', () => {
    assert.deepEqual(brief(one('sinks:\n  s:\n    rotate_interval: .inf\n')), {
      path: 'sinks.s.rotate_interval',
      value: Infinity,
      expected: DURATION_EXPECTED,
    });
  });

  it('<n><unit> is n times the unit, for any n', () => {
    const units = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
    fc.assert(
      fc.property(fc.nat(100_000), fc.constantFrom(...Object.entries(units)), (n, [unit, factor]) => {
        assert.equal(parseDuration(`${n}${unit}`), n * factor);
      }),
    );
  });
});

describe('sizes', () => {
  const good: [unknown, number][] = [
    [0, 0],
    [65536, 65536],
    ['0B', 0],
    ['1B', 1],
    ['1KB', 1000],
    ['1.5KB', 1500],
    ['2MB', 2_000_000],
    ['1GB', 1_000_000_000],
    ['1KiB', 1024],
    ['1.5MiB', 1.5 * 1024 * 1024],
    ['2GiB', 2 * 1024 ** 3],
    ['1.1KiB', 1126], // rounded to whole bytes
  ];
  for (const [input, bytes] of good) {
    it(`${JSON.stringify(input)} is ${bytes} bytes`, () => {
      assert.equal(parseSize(input), bytes);
      assert.equal(fileSink(ok(stringify({ sinks: { s: { rotate_size: input } } })).sinks[0]).rotateBytes, bytes);
    });
  }

  const wrong: unknown[] = ['1kb', '1kib', '1KIB', '1 KiB', '1K', '1TB', '1.5', '100', '-1B', '1e3B', 'abc', '', -1, 1.5, false, ['1KiB']];
  for (const input of wrong) {
    it(`${JSON.stringify(input)} is not a size`, () => {
      assert.equal(parseSize(input), null);
      assert.deepEqual(brief(one(stringify({ sources: { syslog_udp: { receive_buffer: input } } }))), {
        path: 'sources.syslog_udp.receive_buffer',
        value: input,
        expected: SIZE_EXPECTED,
      });
    });
  }

  it('max_frame is from 64 bytes to 16MiB', () => {
    const frame = (v: unknown) => stringify({ sources: { syslog_tcp: { max_frame: v } } });
    assert.equal(ok(frame('64B')).sources.syslogTcp.maxFrameBytes, 64);
    assert.equal(ok(frame(64)).sources.syslogTcp.maxFrameBytes, 64);
    assert.equal(ok(frame('16MiB')).sources.syslogTcp.maxFrameBytes, 16 * 1024 * 1024);
    for (const v of ['63B', 63, 0, '16777217B', 16 * 1024 * 1024 + 1, '1GiB', 'big']) {
      assert.deepEqual(brief(one(frame(v))), {
        path: 'sources.syslog_tcp.max_frame',
        value: v,
        expected: 'a size from 64B to 16MiB, such as 64KiB',
      });
    }
  });

  it('<n><unit> is n times the unit, for any n', () => {
    const units = { B: 1, KB: 1000, MB: 1e6, GB: 1e9, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };
    fc.assert(
      fc.property(fc.nat(100_000), fc.constantFrom(...Object.entries(units)), (n, [unit, factor]) => {
        assert.equal(parseSize(`${n}${unit}`), n * factor);
      }),
    );
  });
});

describe('unknown keys', () => {
  const cases: [string, string, string][] = [
    ['colour: red\n', 'colour', 'data_dir, log, workers, connection_balancing, supervision, shutdown_timeout, sources, tenants, sinks, hostmeta, admin, memory, cluster'],
    ['log:\n  colour: red\n', 'log.colour', 'level, output, syslog'],
    ['log:\n  syslog:\n    colour: red\n', 'log.syslog.colour', 'protocol, host, port, facility, app_name, max_message, max_queue'],
    ['sources:\n  syslog_udp:\n    colour: red\n', 'sources.syslog_udp.colour', 'enabled, address, port, receive_buffer, handoff_buffer'],
    ['sources:\n  syslog_tcp:\n    colour: red\n', 'sources.syslog_tcp.colour', 'enabled, address, port, max_frame, max_connections, idle_timeout, frame_timeout'],
    ['sources:\n  colour: red\n', 'sources.colour', 'syslog_udp, syslog_tcp, syslog_tls, relp, http'],
    ['tenants:\n  a:\n    colour: red\n', 'tenants.a.colour', 'networks, tokens, certificates, limits'],
    [
      'sinks:\n  s:\n    colour: red\n',
      'sinks.s.colour',
      'type, tenants, path, rotate_size, rotate_interval, max_files, batch_size, batch_delay, queue_high_water, fsync_interval, buffer (the keys of a file sink)',
    ],
  ];
  for (const [text, keyPath, allowed] of cases) {
    it(`${keyPath} is reported with the keys allowed there`, () => {
      const p = one(text);
      assert.equal(p.kind, 'unknown-key');
      assert.equal(p.path, keyPath);
      assert.equal(p.value, 'colour');
      assert.equal(p.expected, `one of: ${allowed}`);
      const depth = keyPath.split('.').length - 1;
      assert.equal(p.line, depth + 1);
      assert.equal(p.column, depth * 2 + 1);
      assert.equal(formatProblem(p), `${p.line}:${p.column}: ${keyPath}: unknown key "colour"; expected one of: ${allowed}`);
    });
  }
});

describe('values', () => {
  it('memory: a budget in human units, marks as fractions, soft below hard', () => {
    const memory = ok('memory:\n  budget: 2GiB\n  measure: queues\n  soft_mark: 0.7\n  hard_mark: 0.9\n  sample_interval: 250ms\n').memory;
    assert.deepEqual(memory, { budgetBytes: 2 * 1024 ** 3, measure: 'queues', softMark: 0.7, hardMark: 0.9, hysteresis: 0.05, sampleIntervalMs: 250 });
    assert.equal(one('memory:\n  measure: heap\n').path, 'memory.measure');
    assert.deepEqual(brief(one('memory:\n  soft_mark: 0.9\n  hard_mark: 0.9\n')), {
      path: 'memory.soft_mark', value: 0.9, expected: 'a fraction below hard_mark (0.9)',
    });
    assert.equal(one('memory:\n  budget: 100KiB\n').path, 'memory.budget');
    assert.equal(one('memory:\n  hard_mark: 1.5\n').path, 'memory.hard_mark');
  });

  it('cluster: NATS servers, a node id, durations; each time-to-live at least two heartbeats', () => {
    const cluster = ok("cluster:\n  nats: ['nats://10.0.0.11:4222', 'nats://10.0.0.12:4222']\n  node_id: node-1\n  heartbeat_interval: 1s\n  leader_ttl: 4s\n").cluster;
    assert.deepEqual(cluster.nats, ['nats://10.0.0.11:4222', 'nats://10.0.0.12:4222']);
    assert.equal(cluster.nodeId, 'node-1');
    assert.equal(cluster.heartbeatIntervalMs, 1000);
    assert.equal(cluster.leaderTtlMs, 4000);
    assert.match(defaultNodeId(), /^[A-Za-z0-9_-]{1,64}$/);
    assert.deepEqual(ok('cluster:\n  nats: nats://10.0.0.11:4222\n').cluster.nats, ['nats://10.0.0.11:4222']);
    assert.deepEqual(brief(one('cluster:\n  heartbeat_interval: 4s\n  member_ttl: 7s\n  leader_ttl: 8s\n')), {
      path: 'cluster.member_ttl', value: '7s', expected: 'a duration of at least twice heartbeat_interval (4s)',
    });
    assert.equal(one('cluster:\n  node_id: "node 1"\n').path, 'cluster.node_id');
  });

  it('a bad log level lists the levels', () => {
    assert.deepEqual(brief(one('log:\n  level: loud\n')), {
      path: 'log.level',
      value: 'loud',
      expected: 'one of: trace, debug, info, warn, error, fatal, silent',
    });
    assert.equal(ok('log:\n  level: silent\n').log.level, 'silent');
  });

  it('log output: syslog with its receiver resolved (port 0 is 514, facility by name); bad values named', () => {
    const log = ok('log:\n  output: syslog\n  syslog:\n    protocol: tcp\n    host: logs.example\n    facility: local3\n    app_name: edge-1\n    max_queue: 64KiB\n').log;
    assert.deepEqual(log, {
      level: 'info',
      output: 'syslog',
      syslog: { protocol: 'tcp', host: 'logs.example', port: 514, facility: 19, appName: 'edge-1', maxMessageBytes: 8192, maxQueueBytes: 65_536 },
    });
    assert.equal(ok('log:\n  syslog:\n    port: 10514\n').log.syslog.port, 10514);
    assert.equal(brief(one('log:\n  output: journal\n')).expected, 'one of: stderr, syslog');
    assert.equal(brief(one('log:\n  syslog:\n    protocol: unix\n')).expected, 'one of: udp, tcp');
    assert.equal(brief(one('log:\n  syslog:\n    facility: kern\n')).path, 'log.syslog.facility');
    assert.equal(brief(one('log:\n  syslog:\n    app_name: my app\n')).expected, '1 to 48 printable ASCII characters without spaces');
    assert.equal(brief(one('log:\n  syslog:\n    max_message: 100B\n')).expected, 'a size from 480 bytes to 65507 bytes, such as 8KiB');
  });

  it('a port must be an integer from 0 to 65535', () => {
    for (const port of [65536, -1, 1.5, '80', true]) {
      assert.deepEqual(brief(one(stringify({ sources: { syslog_udp: { port } } }))), {
        path: 'sources.syslog_udp.port',
        value: port,
        expected: 'an integer from 0 to 65535',
      });
    }
    assert.equal(ok('sources:\n  syslog_tcp:\n    port: 0\n').sources.syslogTcp.port, 0);
    assert.equal(ok('sources:\n  syslog_tcp:\n    port: 65535\n').sources.syslogTcp.port, 65535);
  });

  it('a key with no value is reported at the key', () => {
    const p = one('sources:\n  syslog_udp:\n    port:\n');
    assert.deepEqual(brief(p), { path: 'sources.syslog_udp.port', value: null, expected: 'an integer from 0 to 65535' });
    assert.deepEqual([p.line, p.column], [3, 5]);
  });

  it('addresses are IP literals or localhost', () => {
    for (const address of ['localhost', '0.0.0.0', '::', '::1', '10.1.2.3']) {
      assert.equal(ok(stringify({ sources: { syslog_udp: { address } } })).sources.syslogUdp.address, address);
    }
    for (const address of ['example.com', '10.0.0.256', '', 'LOCALHOST', '10.0.0.0/8']) {
      const p = one(stringify({ sources: { syslog_tcp: { address } } }));
      assert.equal(p.path, 'sources.syslog_tcp.address');
      assert.equal(p.expected, 'an IPv4 or IPv6 address such as 127.0.0.1, 0.0.0.0 or ::1, or "localhost"');
    }
  });

  it('booleans are true or false, not yes or no', () => {
    assert.equal(ok('sources:\n  syslog_udp:\n    enabled: false\n').sources.syslogUdp.enabled, false);
    assert.deepEqual(brief(one('sources:\n  syslog_udp:\n    enabled: no\n')), {
      path: 'sources.syslog_udp.enabled',
      value: 'no',
      expected: 'true or false',
    });
  });

  it('a section must be a mapping', () => {
    assert.deepEqual(brief(one('log: debug\n')), { path: 'log', value: 'debug', expected: 'a mapping with the keys: level, output, syslog' });
  });

  it('data_dir is kept as given and sinks without a path go under it', () => {
    const config = ok('data_dir: /var/lib/sluice\n');
    assert.equal(config.dataDir, '/var/lib/sluice');
    assert.equal(fileSink(config.sinks[0]).path, '/var/lib/sluice/logs');
    assert.equal(fileSink(ok('data_dir: state\n').sinks[0]).path, path.join('state', 'logs'));
    assert.deepEqual(brief(one('data_dir: ""\n')), { path: 'data_dir', value: '', expected: 'a non-empty string' });
  });

  it('a sink path is kept as given', () => {
    const config = ok('sinks:\n  a:\n    path: ./out/../logs\n  b:\n    path: null\n');
    assert.deepEqual(
      config.sinks.map((s) => fileSink(s).path),
      ['./out/../logs', path.join('./data', 'logs')],
    );
    assert.deepEqual(brief(one('sinks:\n  a:\n    path: 5\n')), {
      path: 'sinks.a.path',
      value: 5,
      expected: 'a folder path, or null for <data_dir>/logs',
    });
  });

  it('an unknown sink type is reported with the known ones', () => {
    assert.deepEqual(brief(one('sinks:\n  a:\n    type: s3\n')), { path: 'sinks.a.type', value: 's3', expected: 'one of: file, syslog, nats' });
  });
});

describe('tenants and sinks', () => {
  it('networks must be CIDR blocks; a bare address becomes a /32 or /128 block', () => {
    const config = ok(
      stringify({ tenants: { a: { networks: ['10.0.0.0/8', '2001:db8::/32', '192.168.1.1', '::1', '0.0.0.0/0', '10.1.2.3/24'] } } }),
    );
    assert.deepEqual(config.tenants, [
      { id: 'a', networks: ['10.0.0.0/8', '2001:db8::/32', '192.168.1.1/32', '::1/128', '0.0.0.0/0', '10.1.2.3/24'], tokenHashes: [], certificates: [], limits: NO_LIMITS },
    ]);
    const wrong = ['10.0.0.0/33', '::1/129', 'not-an-ip', '10.0.0.0/', '10.0.0.0/8/8', '10.0.0/8', '10.0.0.0/-1', ' 10.0.0.0/8', '10.0.0.0/1a', 8];
    const problems = bad(stringify({ tenants: { a: { networks: ['10.0.0.0/8', ...wrong] } } }));
    assert.deepEqual(
      problems.map(brief),
      wrong.map((value, i) => ({ path: `tenants.a.networks[${i + 1}]`, value, expected: CIDR_EXPECTED })),
    );
  });

  it('networks must be a list', () => {
    assert.deepEqual(brief(one('tenants:\n  a:\n    networks: 10.0.0.0/8\n')), {
      path: 'tenants.a.networks',
      value: '10.0.0.0/8',
      expected: 'a list of CIDR blocks such as [10.0.0.0/8, "2001:db8::/32"]',
    });
  });

  it('giving tenants replaces the default tenant; a new tenant has no networks', () => {
    const config = ok('tenants:\n  acme:\n    networks: [10.0.0.0/8]\n  beta: {}\n');
    assert.deepEqual(config.tenants, [
      { id: 'acme', networks: ['10.0.0.0/8'], tokenHashes: [], certificates: [], limits: NO_LIMITS },
      { id: 'beta', networks: [], tokenHashes: [], certificates: [], limits: NO_LIMITS },
    ]);
    assert.deepEqual(config.sinks, DEFAULTS.sinks);
  });

  it('giving sinks replaces the default sink; its keys take their defaults', () => {
    const config = ok('sinks:\n  archive:\n    path: /srv/archive\n    tenants: [default]\n    max_files: 30\n');
    assert.deepEqual(config.sinks, [
      { ...DEFAULTS.sinks[0], name: 'archive', path: '/srv/archive', tenants: ['default'], maxFiles: 30 },
    ]);
    assert.deepEqual(config.tenants, DEFAULTS.tenants);
  });

  it('tenants and sinks keep the order of the file, numeric ids included', () => {
    const config = ok('tenants:\n  zeta: {}\n  "10": {}\n  alpha: {}\n  "2": {}\nsinks:\n  z: {}\n  "1": {}\n  a: {}\n');
    assert.deepEqual(
      config.tenants.map((t) => t.id),
      ['zeta', '10', 'alpha', '2'],
    );
    assert.deepEqual(
      config.sinks.map((s) => s.name),
      ['z', '1', 'a'],
    );
  });

  it('a sink naming an unknown tenant is reported, with the tenants that exist', () => {
    const problems = bad('tenants:\n  acme: {}\n  beta: {}\nsinks:\n  s:\n    tenants: [acme, gamma, "*", delta]\n');
    assert.deepEqual(problems.map(brief), [
      { path: 'sinks.s.tenants[1]', value: 'gamma', expected: '"*" or the id of a tenant under tenants (defined: acme, beta)' },
      { path: 'sinks.s.tenants[3]', value: 'delta', expected: '"*" or the id of a tenant under tenants (defined: acme, beta)' },
    ]);
    assert.deepEqual([problems[0]?.line, problems[0]?.column], [6, 21]);
  });

  it('a default sink keeps receiving every tenant when tenants change', () => {
    assert.deepEqual(ok('tenants:\n  acme: {}\n').sinks[0]?.tenants, ['*']);
  });

  it('a sink needs at least one tenant entry', () => {
    assert.deepEqual(brief(one('sinks:\n  s:\n    tenants: []\n')), {
      path: 'sinks.s.tenants',
      value: [],
      expected: 'a non-empty list of tenant ids or "*"',
    });
  });

  it('at least one tenant and one sink are needed', () => {
    assert.deepEqual(bad('tenants: {}\nsinks: {}\n').map(brief), [
      { path: 'tenants', value: {}, expected: 'a mapping of tenant ids to tenant settings, with at least one tenant' },
      { path: 'sinks', value: {}, expected: 'a mapping of sink names to sink settings, with at least one sink' },
    ]);
  });

  it('bad tenant ids and sink names are reported on the key, and their settings are still checked', () => {
    const good = ['a', '0', 'a_b-c', 'x'.repeat(63)];
    const config = ok(`tenants:\n${good.map((id) => `  "${id}": {}\n`).join('')}`);
    assert.deepEqual(
      config.tenants.map((t) => t.id),
      good,
    );

    const wrongIds = ['Acme', '-x', '_x', 'has space', 'x'.repeat(64), 'dot.ted', 'é'];
    const problems = bad(stringify({ tenants: Object.fromEntries(wrongIds.map((id) => [id, {}])) }));
    assert.deepEqual(
      problems.map((p) => [p.kind, p.value]),
      wrongIds.map((id) => ['bad-key', id]),
    );
    assert.equal(
      problems[0]?.expected,
      'a tenant id of 1 to 63 characters of a-z, 0-9, "_" and "-", starting with a letter or a digit',
    );

    const sink = bad('sinks:\n  Out:\n    batch_size: lots\n');
    assert.deepEqual(
      sink.map((p) => formatProblem(p)),
      [
        '2:3: sinks.Out: bad key "Out"; expected a sink name of 1 to 63 characters of a-z, 0-9, "_" and "-", starting with a letter or a digit',
        `3:17: sinks.Out.batch_size: got "lots"; expected ${SIZE_EXPECTED}`,
      ],
    );
  });
});

describe('all problems at once', () => {
  it('reports every problem of a file, in file order, with its line and column', () => {
    const text = [
      'data_dir: ./state', //                   1
      'log:', //                                2
      '  level: loud', //                       3
      'shutdown_timeout: soon', //              4
      'sources:', //                            5
      '  syslog_udp:', //                       6
      '    port: 99999', //                     7
      '    colour: red', //                     8
      '  syslog_tcp:', //                       9
      '    max_frame: 1GiB', //                 10
      'tenants:', //                            11
      '  acme:', //                             12
      '    networks:', //                       13
      '      - 10.0.0.0/8', //                  14
      '      - 10.0.0.0/40', //                 15
      'sinks:', //                              16
      '  files:', //                            17
      '    tenants: [acme, nobody]', //         18
      '    rotate_size: abc', //                19
      '',
    ].join('\n');
    const problems = bad(text);
    assert.deepEqual(
      problems.map((p) => [p.path, p.line, p.column]),
      [
        ['log.level', 3, 10],
        ['shutdown_timeout', 4, 19],
        ['sources.syslog_udp.port', 7, 11],
        ['sources.syslog_udp.colour', 8, 5],
        ['sources.syslog_tcp.max_frame', 10, 16],
        ['tenants.acme.networks[1]', 15, 9],
        ['sinks.files.tenants[1]', 18, 21],
        ['sinks.files.rotate_size', 19, 18],
      ],
    );
  });

  it('a value used through an alias is reported for each use, at the anchored value', () => {
    const problems = bad('tenants:\n  a: &t\n    networks: [bogus]\n  b: *t\n');
    assert.deepEqual(
      problems.map((p) => [p.path, p.line, p.column]),
      [
        ['tenants.a.networks[0]', 3, 16],
        ['tenants.b.networks[0]', 3, 16],
      ],
    );
  });

  it('positions point into flow collections', () => {
    const problems = bad('tenants: {a: {networks: [10.0.0.0/8, nope]}}\nsinks: {s: {max_files: -1}}\n');
    assert.deepEqual(
      problems.map((p) => [p.path, p.line, p.column]),
      [
        ['tenants.a.networks[1]', 1, 38],
        ['sinks.s.max_files', 2, 24],
      ],
    );
  });
});

describe('the file as a whole', () => {
  it('a YAML syntax error is a problem with its line', () => {
    const p = one('log:\n  level: info\nsources: [1\nsinks: {}\n');
    assert.equal(p.kind, 'syntax');
    assert.equal(p.line, 4);
    assert.match(formatProblem(p, 'sluice.yaml'), /^sluice\.yaml:4:1: invalid YAML: .+/);
  });

  it('a duplicate key is a syntax problem at the second key', () => {
    const p = one('log:\n  level: info\n  level: debug\n');
    assert.equal(p.kind, 'syntax');
    assert.deepEqual([p.line, p.column], [3, 3]);
  });

  it('two YAML documents in one file are a problem', () => {
    const p = one('log: {}\n---\nlog: {}\n');
    assert.equal(formatProblem(p), '2:1: invalid YAML: the file holds more than one YAML document (a second "---")');
  });

  it('a top-level list is one problem', () => {
    const p = one('- data_dir: ./data\n- log: {}\n');
    assert.deepEqual(brief(p), {
      path: '',
      value: [{ data_dir: './data' }, { log: {} }],
      expected: 'a mapping with the keys: data_dir, log, workers, connection_balancing, supervision, shutdown_timeout, sources, tenants, sinks, hostmeta, admin, memory, cluster',
    });
    assert.deepEqual([p.line, p.column], [1, 1]);
  });

  it('a top-level scalar is one problem', () => {
    assert.equal(
      formatProblem(one('sluice\n'), 'x.yaml'),
      'x.yaml:1:1: top level: got "sluice"; expected a mapping with the keys: data_dir, log, workers, connection_balancing, supervision, shutdown_timeout, sources, tenants, sinks, hostmeta, admin, memory, cluster',
    );
  });

  it('never throws, whatever the text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json().map((j) => stringify(JSON.parse(j)))), (text) => {
        const { config, problems } = parseConfig(text);
        assert.equal(config === null, problems.length > 0);
        for (const p of problems) assert.equal(typeof formatProblem(p, 'f.yaml'), 'string');
      }),
    );
  });
});

describe('formatProblem', () => {
  it('names the file, position, key path, value and what is expected', () => {
    const p = one('sinks:\n  files:\n    rotate_size: abc\n');
    assert.equal(
      formatProblem(p, 'sluice.yaml'),
      'sluice.yaml:3:18: sinks.files.rotate_size: got "abc"; expected a size such as 64KiB, 100MiB or a number of bytes',
    );
  });

  it('works without a file name or a position, and shortens long values', () => {
    const problem: ConfigProblem = { path: 'tenants.a.networks', value: 'x'.repeat(100), expected: 'a list' };
    assert.equal(formatProblem(problem), `tenants.a.networks: got "${'x'.repeat(58)}…; expected a list`);
    assert.equal(formatProblem({ ...problem, value: 7, line: 2, column: 4 }, 'f.yaml'), 'f.yaml:2:4: tenants.a.networks: got 7; expected a list');
  });
});

describe('loadConfigFile', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-config-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

  it('loads a valid file', () => {
    const file = path.join(dir, 'ok.yaml');
    writeFileSync(file, 'log:\n  level: debug\n');
    assert.deepEqual(loadConfigFile(file), { ...DEFAULTS, log: { ...DEFAULTS.log, level: 'debug' } });
  });

  it('throws a ConfigError listing every problem with the file name', () => {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, 'log:\n  level: loud\nsources:\n  syslog_udp:\n    port: -1\n');
    assert.throws(
      () => loadConfigFile(file),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.equal(e.problems.length, 2);
        assert.equal(
          e.message,
          [
            `configuration ${file} has 2 problems:`,
            `  ${file}:2:10: log.level: got "loud"; expected one of: trace, debug, info, warn, error, fatal, silent`,
            `  ${file}:5:11: sources.syslog_udp.port: got -1; expected an integer from 0 to 65535`,
          ].join('\n'),
        );
        return true;
      },
    );
  });

  it('throws a ConfigError for a missing file', () => {
    const file = path.join(dir, 'missing.yaml');
    assert.throws(
      () => loadConfigFile(file),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.equal(e.problems[0]?.kind, 'unreadable');
        assert.equal(e.message, `configuration ${file} has 1 problem:\n  ${file}: cannot read the configuration: no such file`);
        return true;
      },
    );
  });
});

describe('defaults', () => {
  it('are written once: the schema\'s are the components\' own constants', () => {
    const config = defaultConfig();
    const pick = <T extends object>(from: object, like: T): Partial<T> => Object.fromEntries(Object.keys(like).filter((k) => k in from).map((k) => [k, (from as Record<string, unknown>)[k]])) as Partial<T>;
    const same = <T extends object>(what: string, resolved: object, constant: T, except: string[] = []) => {
      const shared = Object.fromEntries(Object.entries(pick(resolved, constant)).filter(([k]) => !except.includes(k)));
      assert.deepEqual(shared, Object.fromEntries(Object.entries(constant).filter(([k]) => k in shared)), what);
    };
    same('http', config.sources.http, DEFAULT_HTTP_SOURCE_CONFIG);
    same('relp', config.sources.relp, DEFAULT_RELP_SOURCE_CONFIG);
    // The budget's default, `auto`, follows the number of workers (see 'memory budget').
    same('memory', config.memory, DEFAULT_MEMORY_CONFIG, ['budgetBytes']);
    same('tenant limits', config.tenants[0]!.limits, NO_LIMITS);
    same('log', config.log, DEFAULT_LOG_CONFIG);
    same('hostmeta service', config.hostmeta.service, DEFAULT_HOSTMETA_SERVICE_CONFIG);
    // url: null means the service this node runs, which the constant cannot know.
    same('hostmeta client', config.hostmeta.client, DEFAULT_HOSTMETA_CLIENT_CONFIG, ['url']);
    const policy = DEFAULT_SUPERVISOR_POLICY;
    assert.deepEqual(config.supervision, { initialBackoffMs: policy.backoff.initialMs, maxBackoffMs: policy.backoff.maxMs, stableAfterMs: policy.stableMs, crashLoopAfter: policy.crashLoopAfter });
    const [file] = config.sinks;
    same('file sink batching', file!, DEFAULT_DELIVERY);
    const [syslog, nats, disk] = ok('sinks:\n  syslog: { type: syslog }\n  nats: { type: nats }\n  disk: { buffer: { type: disk } }\n').sinks;
    same('syslog sink', syslog!, DEFAULT_SYSLOG_SINK);
    same('nats sink', nats!, DEFAULT_NATS_SINK);
    same('disk buffer', disk!.diskBuffer!, DEFAULT_DISK_BUFFER_CONFIG);
  });
});

describe('sink types', () => {
  it('syslog and nats sinks take their settings from their own section', () => {
    const config = ok([
      'sinks:',
      '  forward:',
      '    type: syslog',
      '    tenants: ["*"]',
      '    syslog: { protocol: tls, host: logs.example, tls: { ca: /etc/ca.pem } }',
      '  bus:',
      '    type: nats',
      '    batch_size: 128KiB',
      '    nats: { servers: ["nats://10.0.0.1:4222"], stream: LOGS, duplicate_window: 5m, replicas: 3 }',
    ].join('\n'));
    const [forward, bus] = config.sinks;
    assert.equal(forward?.type, 'syslog');
    if (forward?.type === 'syslog') {
      assert.equal(forward.protocol, 'tls');
      assert.equal(forward.port, 6514, 'port 0: the protocol\'s standard port');
      assert.equal(forward.host, 'logs.example');
      assert.equal(forward.tls.caFile, '/etc/ca.pem');
    }
    assert.equal(bus?.type, 'nats');
    if (bus?.type === 'nats') {
      assert.deepEqual(bus.servers, ['nats://10.0.0.1:4222']);
      assert.equal(bus.stream, 'LOGS');
      assert.equal(bus.duplicateWindowMs, 300_000);
      assert.equal(bus.replicas, 3);
      assert.equal(bus.batchBytes, 128 * 1024);
    }
  });

  it('a key of another type than the sink\'s is refused with its path, and the keys of its own type', () => {
    const problems = bad('sinks:\n  files:\n    type: file\n    nats: { stream: X }\n');
    assert.deepEqual(problems.map(brief), [{ path: 'sinks.files.nats', value: 'nats', expected: 'one of: type, tenants, path, rotate_size, rotate_interval, max_files, batch_size, batch_delay, queue_high_water, fsync_interval, buffer (the keys of a file sink)' }]);
    assert.equal(problems[0]?.kind, 'unknown-key');
    const bus = bad('sinks:\n  bus:\n    type: nats\n    rotate_size: 1MiB\n    fsync_interval: 5ms\n    syslog: { host: x }\n');
    assert.deepEqual(bus.map((p) => [p.path, p.kind, p.line, p.column]), [
      ['sinks.bus.rotate_size', 'unknown-key', 4, 5], ['sinks.bus.fsync_interval', 'unknown-key', 5, 5], ['sinks.bus.syslog', 'unknown-key', 6, 5],
    ]);
    assert.equal(bus[0]?.expected, 'one of: type, tenants, batch_size, batch_delay, queue_high_water, nats, buffer (the keys of a nats sink)');
    assert.equal(one('sinks:\n  fwd:\n    type: syslog\n    path: /tmp\n').path, 'sinks.fwd.path');
  });

  it('each type\'s own keys are still checked, and take their defaults, behind its type', () => {
    assert.deepEqual(brief(one('sinks:\n  bus:\n    type: nats\n    nats: { replicas: 9 }\n')), { path: 'sinks.bus.nats.replicas', value: 9, expected: 'an integer from 1 to 5' });
    assert.deepEqual(brief(one('sinks:\n  fwd:\n    type: syslog\n    batch_delay: soon\n')), { path: 'sinks.fwd.batch_delay', value: 'soon', expected: 'a duration such as 10s, 500ms or 1h' });
    const [fwd] = ok('sinks:\n  fwd:\n    type: syslog\n    syslog:\n').sinks;
    assert.equal(fwd?.type === 'syslog' && fwd.batchBytes, 256 * 1024, 'the documented batch_size, for every type');
  });
});

describe('memory budget', () => {
  const MiB = 1024 ** 2;
  it('auto (the default) grows with the workers: 192 MiB each and 256 MiB more', () => {
    assert.equal(ok('workers: 2').memory.budgetBytes, 640 * MiB);
    assert.equal(ok('workers: 1').memory.budgetBytes, 448 * MiB);
    assert.equal(ok('workers: 16\nmemory: { budget: auto }').memory.budgetBytes, (16 * 192 + 256) * MiB);
    assert.equal(ok('workers: auto').memory.budgetBytes, (os.availableParallelism() * 192 + 256) * MiB);
  });
  it('a size is taken as given, within 1MiB to 64GiB; anything else is refused with what is expected', () => {
    assert.equal(ok('workers: 16\nmemory: { budget: 256MiB }').memory.budgetBytes, 256 * MiB);
    for (const value of ['automatic', '512KiB', '65GiB']) {
      assert.deepEqual(brief(one(`memory: { budget: ${value} }`)), { path: 'memory.budget', value, expected: '"auto" or a size from 1MiB to 64GiB, such as 2GiB' });
    }
  });
});
