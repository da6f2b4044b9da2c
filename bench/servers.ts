/**
 * The three servers under test, each started as a foreground child with a
 * configuration written into its own temporary folder: a TCP and a UDP
 * listener on loopback (and a RELP one for W5 relp, sluice and rsyslog),
 * writing every message to a file, either as one JSON object per line or
 * raw. Nothing system-wide is read or written.
 */
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { defaultInput, parseConfig } from '../src/ops/config/load.js';
import { findPeers, SLUICE_CLI, sluiceLaunch, type Peers } from './peers.js';
import { HOST, isBound } from './ports.js';
import type { ProcessGroup, TrackedProcess } from './processes.js';

export const SERVER_NAMES = ['sluice', 'rsyslog', 'syslog-ng'] as const;
export type ServerName = typeof SERVER_NAMES[number];

/** json: one JSON object per record (W1); raw: the message text, one per line (W2). */
export type OutputFormat = 'json' | 'raw';

export interface ServerSettings {
  tcpPort: number;
  udpPort: number;
  output: OutputFormat;
  /** SO_RCVBUF asked for on the UDP socket, in bytes; null keeps the operating system's default. */
  udpReceiveBuffer: number | null;
  /** TCP connections the server must hold at once. */
  maxConnections: number;
  /**
   * W5 relp: a RELP listener on this port too (sluice's RELP source, rsyslog's
   * imrelp; syslog-ng has none). Absent: rsyslog loads no imrelp and sluice's
   * RELP source takes any free port, as its other unused listeners do.
   */
  relpPort?: number;
  /** sluice's worker processes (null or absent: its default, one per core). */
  sluiceWorkers?: number | null;
  /** sluice only: the `tenants` section (W6: tenant tN owns loadgen's tenant N's network). */
  sluiceTenants?: Record<string, unknown>;
  /** sluice only: the `sinks` section, instead of the default file sink under data_dir/logs. */
  sluiceSinks?: (dataDir: string) => Record<string, unknown>;
}

export interface ServerConfig {
  /** Where the configuration file goes, inside the server's folder. */
  file: string;
  text: string;
  /** Folder the server writes its records to. */
  outputDir: string;
}

/** Largest message every server accepts: sluice's max_frame default. */
const MAX_MESSAGE_BYTES = 65536;
/** syslog-ng's flow control window per connection (messages read but not yet written). */
const SYSLOG_NG_WINDOW_PER_CONNECTION = 1000;

/**
 * Paths (in the YAML) of every listener sluice opens by default on a fixed port
 * besides the two syslog sources the benchmark uses (TLS, HTTP, the host
 * metadata API, …), found in the schema's defaults so that a listener added
 * later is covered too. Sinks and tenants are skipped: a port there is where
 * sluice connects to, not where it listens.
 */
function otherListenerPorts(s: ServerSettings): string[][] {
  const paths: string[][] = [];
  const walk = (value: unknown, at: string[]): void => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
    for (const [key, child] of Object.entries(value)) {
      if (key === 'port' && typeof child === 'number' && child > 0) paths.push(at);
      else walk(child, [...at, key]);
    }
  };
  const defaults = defaultInput() as unknown as Record<string, unknown>;
  for (const [section, value] of Object.entries(defaults)) {
    if (section !== 'sinks' && section !== 'tenants') walk(value, [section]);
  }
  const used = new Set(['sources.syslog_udp', 'sources.syslog_tcp', ...(s.relpPort === undefined ? [] : ['sources.relp'])]);
  return paths.filter((p) => !used.has(p.join('.')));
}

function setPath(target: Record<string, unknown>, at: string[], key: string, value: unknown): void {
  let node = target;
  for (const part of at) {
    node[part] ??= {};
    node = node[part] as Record<string, unknown>;
  }
  node[key] = value;
}

export function sluiceConfig(dir: string, s: ServerSettings): ServerConfig {
  const dataDir = path.join(dir, 'data');
  const config: Record<string, unknown> = {
    data_dir: dataDir,
    log: { level: 'info' },
    shutdown_timeout: '30s',
    ...(s.sluiceWorkers === undefined || s.sluiceWorkers === null ? {} : { workers: s.sluiceWorkers }),
    sources: {
      // receive_buffer 0: the operating system's default.
      syslog_udp: { address: HOST, port: s.udpPort, receive_buffer: s.udpReceiveBuffer ?? 0 },
      syslog_tcp: { address: HOST, port: s.tcpPort },
      ...(s.relpPort === undefined ? {} : { relp: { address: HOST, port: s.relpPort } }),
    },
    ...(s.sluiceTenants === undefined ? {} : { tenants: s.sluiceTenants }),
    ...(s.sluiceSinks === undefined ? {} : { sinks: s.sluiceSinks(dataDir) }),
  };
  // A fixed default port (8090, 8080, …) could be taken by another node on the machine.
  // Each move is kept only if the loader accepts it: the schema has the final word.
  for (const at of otherListenerPorts(s)) {
    const candidate = structuredClone(config);
    setPath(candidate, at, 'port', 0);
    if (parseConfig(YAML.stringify(candidate)).problems.length === 0) setPath(config, at, 'port', 0);
  }
  const text = [
    '# sluice benchmark configuration (generated by bench/servers.ts).',
    '# Everything not set here keeps its default: tenant `default` for loopback, the file sink under',
    '# data_dir/logs (NDJSON, sluice\'s one output format, so `raw` workloads get it too), host metadata.',
    '# The harness waits for the "node ready" line (log level info). Listeners the benchmark does not',
    '# use get port 0 (any free port).',
    YAML.stringify(config),
  ].join('\n');
  return { file: path.join(dir, 'sluice.yaml'), text, outputDir: path.join(dataDir, 'logs', 'default') };
}

export function rsyslogConfig(dir: string, s: ServerSettings): ServerConfig {
  // Laid out as sluice's file sink (<logs>/<tenant>/current.ndjson), so that loadgen's probe can follow it (W5).
  const outputDir = path.join(dir, 'out', 'default');
  const template = s.output === 'json'
    ? [
        // The same fields as sluice's record, where rsyslog has them.
        'template(name="bench" type="list" option.jsonf="on") {',
        '  property(outname="ts" name="timereported" dateFormat="rfc3339" format="jsonf")',
        '  property(outname="received" name="timegenerated" dateFormat="rfc3339" format="jsonf")',
        '  property(outname="hostname" name="hostname" format="jsonf")',
        '  property(outname="app" name="app-name" format="jsonf")',
        '  property(outname="procid" name="procid" format="jsonf")',
        '  property(outname="msgid" name="msgid" format="jsonf")',
        '  property(outname="facility" name="syslogfacility" format="jsonf" datatype="number")',
        '  property(outname="severity" name="syslogseverity" format="jsonf" datatype="number")',
        '  property(outname="sd" name="structured-data" format="jsonf")',
        '  property(outname="msg" name="msg" format="jsonf")',
        '  property(outname="address" name="fromhost-ip" format="jsonf")',
        '}',
      ]
    : ['template(name="bench" type="string" string="%msg%\\n")'];
  const rcvbuf = s.udpReceiveBuffer === null ? '' : ` rcvbufSize="${s.udpReceiveBuffer}"`;
  const text = [
    '# rsyslog benchmark configuration (generated by bench/servers.ts).',
    // No reverse lookup of each sender's address (sluice does none): with thousands of agents and no
    // DNS server answering, rsyslog would hold messages for seconds per new address.
    `global(workDirectory="${dir}" maxMessageSize="${MAX_MESSAGE_BYTES}" net.enableDNS="off")`,
    `module(load="imtcp" maxSessions="${s.maxConnections}")`,
    'module(load="imudp")',
    // imrelp answers 200 once the message is in rsyslog's queue, before omfile writes it.
    ...(s.relpPort === undefined ? [] : ['module(load="imrelp")']),
    ...template,
    'ruleset(name="bench") {',
    // 256 KiB write buffer, like sluice's batch_size; written at the end of every batch.
    `  action(type="omfile" file="${path.join(outputDir, 'current.ndjson')}" template="bench" ioBufferSize="256k")`,
    '}',
    `input(type="imtcp" address="${HOST}" port="${s.tcpPort}" ruleset="bench")`,
    `input(type="imudp" address="${HOST}" port="${s.udpPort}" ruleset="bench"${rcvbuf})`,
    ...(s.relpPort === undefined ? [] : [`input(type="imrelp" address="${HOST}" port="${s.relpPort}" ruleset="bench")`]),
    '',
  ].join('\n');
  return { file: path.join(dir, 'rsyslog.conf'), text, outputDir };
}

export function syslogNgConfig(dir: string, s: ServerSettings): ServerConfig {
  if (s.relpPort !== undefined) throw new Error('syslog-ng has no RELP listener (W5 relp runs against sluice and rsyslog)');
  const outputDir = path.join(dir, 'out');
  const template = s.output === 'json'
    ? '$(format-json ts=${ISODATE} received=${R_ISODATE} hostname=${HOST} app=${PROGRAM} procid=${PID} msgid=${MSGID}'
      + ' facility=int(${FACILITY_NUM}) severity=int(${LEVEL_NUM}) sd=${SDATA} msg=${MSG} address=${SOURCEIP})\\n'
    : '${MSG}\\n';
  const window = s.maxConnections * SYSLOG_NG_WINDOW_PER_CONNECTION;
  const rcvbuf = s.udpReceiveBuffer === null ? '' : ` so-rcvbuf(${s.udpReceiveBuffer})`;
  const text = [
    '@version: 3.38',
    '# syslog-ng benchmark configuration (generated by bench/servers.ts).',
    'options {',
    '  threaded(yes); use-dns(no); dns-cache(no); use-fqdn(no); keep-hostname(yes); chain-hostnames(no);',
    `  stats-freq(0); log-msg-size(${MAX_MESSAGE_BYTES}); frac-digits(3);`,
    '};',
    'source s_bench {',
    // syslog(): RFC 5424 with octet counting over TCP, RFC 5426 over UDP.
    `  syslog(transport("tcp") ip("${HOST}") port(${s.tcpPort}) max-connections(${s.maxConnections}) log-iw-size(${window}));`,
    `  syslog(transport("udp") ip("${HOST}") port(${s.udpPort})${rcvbuf});`,
    '};',
    `destination d_bench { file("${path.join(outputDir, 'out.log')}" template("${template}") log-fifo-size(${window})); };`,
    // flow-control: a full destination slows TCP senders down instead of dropping, as sluice does.
    'log { source(s_bench); destination(d_bench); flags(flow-control); };',
    '',
  ].join('\n');
  return { file: path.join(dir, 'syslog-ng.conf'), text, outputDir };
}

export function serverConfig(name: ServerName, dir: string, settings: ServerSettings): ServerConfig {
  switch (name) {
    case 'sluice': return sluiceConfig(dir, settings);
    case 'rsyslog': return rsyslogConfig(dir, settings);
    case 'syslog-ng': return syslogNgConfig(dir, settings);
  }
}

/** Whether the server's program is there to run. */
export function serverAvailable(name: ServerName, peers: Peers = findPeers()): boolean {
  switch (name) {
    case 'sluice': return existsSync(SLUICE_CLI);
    case 'rsyslog': return peers.rsyslogd !== null;
    case 'syslog-ng': return peers.syslogNg !== null;
  }
}

export interface RunningServer {
  name: ServerName;
  pid: number;
  settings: ServerSettings;
  config: ServerConfig;
  process: TrackedProcess;
  /** Every file the server has written records to so far. */
  outputFiles(): string[];
  stop(): Promise<void>;
}

function launch(name: ServerName, dir: string, config: ServerConfig, peers: Peers, group: ProcessGroup): TrackedProcess {
  switch (name) {
    case 'sluice': {
      // As the `sluice` command starts it (its #! line: npm start and the systemd unit run it too).
      const { env, nodeOptions } = sluiceLaunch();
      return group.spawnWithFileLimit('sluice', process.execPath, [...nodeOptions, SLUICE_CLI, 'start', '-c', config.file],
        { cwd: dir, env: { ...process.env, ...env } });
    }
    case 'rsyslog':
      if (!peers.rsyslogd) throw new Error('rsyslog is not installed');
      return group.spawnWithFileLimit('rsyslog', peers.rsyslogd, ['-n', '-f', config.file, '-i', path.join(dir, 'rsyslogd.pid')], { cwd: dir });
    case 'syslog-ng': {
      const ng = peers.syslogNg;
      if (!ng) throw new Error('syslog-ng is not unpacked');
      return group.spawnWithFileLimit('syslog-ng', ng.binary, [
        '-F', '--stderr', '-f', config.file,
        '--persist-file', path.join(dir, 'syslog-ng.persist'),
        '--pidfile', path.join(dir, 'syslog-ng.pid'),
        '--control', path.join(dir, 'syslog-ng.ctl'),
        '--module-path', ng.modulePath,
      ], { cwd: dir, env: ng.env });
    }
  }
}

function listOutput(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).map((name) => path.join(dir, name)).filter((file) => statSync(file, { throwIfNoEntry: false })?.isFile());
}

/** Start a server in `dir` and wait until its listeners (TCP, UDP, and RELP when asked for) are bound. */
export async function startServer(name: ServerName, dir: string, settings: ServerSettings, group: ProcessGroup,
  peers: Peers = findPeers(), timeoutMs = 30_000): Promise<RunningServer> {
  const config = serverConfig(name, dir, settings);
  mkdirSync(config.outputDir, { recursive: true });
  writeFileSync(config.file, config.text);
  const proc = launch(name, dir, config, peers, group);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!proc.running) {
      throw new Error(`${name} exited during start (${JSON.stringify(proc.status)}): ${proc.stderrTail().slice(-2000)}`);
    }
    const ready = isBound('tcp', settings.tcpPort) && isBound('udp', settings.udpPort)
      && (settings.relpPort === undefined || isBound('tcp', settings.relpPort))
      // sluice says when its sinks are up too, not only its listeners.
      && (name !== 'sluice' || proc.stderrTail().includes('"SLU0003I"'));
    if (ready) break;
    if (Date.now() > deadline) {
      await proc.stop(1000);
      throw new Error(`${name} did not listen on ${settings.tcpPort} within ${timeoutMs} ms: ${proc.stderrTail().slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return {
    name,
    pid: proc.pid,
    settings,
    config,
    process: proc,
    outputFiles: () => listOutput(config.outputDir),
    stop: async () => {
      await proc.stop(30_000);
    },
  };
}
