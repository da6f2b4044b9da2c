/**
 * Loading the YAML configuration: parse (with positions), validate against
 * the schema with every problem reported at once and in plain words, apply the
 * defaults, run the checks a schema cannot express, and resolve the result
 * into a {@link SluiceConfig} (durations in ms, sizes in bytes, camelCase).
 */
import { sha256Hex } from '../../core/access-tokens.js';
import { DEFAULT_HOSTMETA_CLIENT_CONFIG } from '../../services/hostmeta/config.js';
import { DEFAULT_DELIVERY } from '../../sinks/delivery/chain.js';
import { DEFAULT_SYSLOG_PORTS, DEFAULT_SYSLOG_SINK } from '../../sinks/syslog/config.js';
import { DEFAULT_NATS_SINK } from '../../sinks/nats/config.js';
import { DEFAULT_DISK_BUFFER_CONFIG } from '../../sinks/buffer/config.js';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import {
  FACILITY_CODES,
  ANNOTATION_KEYWORDS,
  DURATION_PATTERN,
  DURATION_UNITS_MS,
  FORMAT_CIDR,
  FORMAT_IP_OR_LOCALHOST,
  SIZE_PATTERN,
  SIZE_UNITS_BYTES,
  SluiceConfigSchema,
  type SluiceConfigFilled,
} from './schema.js';
import type { SinkConfig, SluiceConfig } from './types.js';

/**
 * What a problem is about:
 * - `value`: the value at `path` is wrong (the default when `kind` is absent);
 * - `unknown-key`: the last segment of `path` is not an allowed key;
 * - `bad-key`: the last segment of `path` is not a valid map key (an id);
 * - `syntax`: the text is not valid YAML (`value` holds the parser's message);
 * - `unreadable`: the file could not be read (`value` holds the reason).
 */
export type ConfigProblemKind = 'value' | 'unknown-key' | 'bad-key' | 'syntax' | 'unreadable';

export interface ConfigProblem {
  /** Dot path of the key, e.g. `sources.syslog_tcp.port`; list items as `networks[1]`; `''` for the whole file. */
  path: string;
  /** The offending value as written (for a key problem: the key). */
  value: unknown;
  /** What would have been accepted, in plain words, e.g. `an integer from 0 to 65535`. */
  expected: string;
  /** 1-based position of the offending node in the file, when known. */
  line?: number;
  column?: number;
  kind?: ConfigProblemKind;
}

/** A configuration that cannot be used; the message lists every problem. */
export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];
  readonly fileName: string | undefined;

  constructor(problems: readonly ConfigProblem[], fileName?: string) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    const head = fileName === undefined ? `configuration has ${count}` : `configuration ${fileName} has ${count}`;
    super(`${head}:\n${problems.map((p) => `  ${formatProblem(p, fileName)}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
    this.fileName = fileName;
  }
}

/**
 * One line for one problem, e.g.
 * `sluice.yaml:12:5: sinks.files.rotate_size: got "abc"; expected a size such as 64KiB, 100MiB or a number of bytes`.
 */
export function formatProblem(p: ConfigProblem, fileName?: string): string {
  let where = '';
  if (p.line !== undefined) where = `${p.line}:${p.column ?? 1}`;
  if (fileName !== undefined) where = where === '' ? fileName : `${fileName}:${where}`;
  const prefix = where === '' ? '' : `${where}: `;
  const at = p.path === '' ? 'top level' : p.path;
  switch (p.kind ?? 'value') {
    case 'syntax':
      return `${prefix}invalid YAML: ${String(p.value)}`;
    case 'unreadable':
      return `${prefix}cannot read the configuration: ${String(p.value)}`;
    case 'unknown-key':
      return `${prefix}${at}: unknown key ${showValue(p.value)}; expected ${p.expected}`;
    case 'bad-key':
      return `${prefix}${at}: bad key ${showValue(p.value)}; expected ${p.expected}`;
    case 'value':
      return `${prefix}${at}: got ${showValue(p.value)}; expected ${p.expected}`;
  }
}

/** Parses and validates configuration text; `config` is null when there is any problem. */
export function parseConfig(text: string): { config: SluiceConfig | null; problems: ConfigProblem[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const locate = (segments: readonly string[], atKey: boolean) => position(doc, lineCounter, segments, atKey);

  const syntax: ConfigProblem[] = [...doc.errors, ...doc.warnings].map((e) => {
    const { line, col } = lineCounter.linePos(e.pos[0]);
    const message = e.code === 'MULTIPLE_DOCS' ? 'the file holds more than one YAML document (a second "---")' : e.message;
    return { path: '', value: message, expected: 'valid YAML', line, column: col, kind: 'syntax' };
  });
  let data: unknown;
  if (syntax.length === 0) {
    try {
      data = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      syntax.push({ path: '', value: (e as Error).message, expected: 'valid YAML', line: 1, column: 1, kind: 'syntax' });
    }
  }
  if (syntax.length > 0) return { config: null, problems: sortProblems(syntax) };

  if (data === null || data === undefined) data = {};
  if (!isPlainObject(data)) {
    const problem: ConfigProblem = { path: '', value: data, expected: describe(SluiceConfigSchema), ...locate([], false) };
    return { config: null, problems: [problem] };
  }

  const original = data;
  const filled = structuredClone(original);
  dropNullSections(SluiceConfigSchema, filled);
  const problems = schemaProblems(filled, original, locate);
  problems.push(...semanticProblems(filled, original, problems, locate));
  if (problems.length > 0) return { config: null, problems: sortProblems(problems) };

  return { config: resolve(filled as SluiceConfigFilled, doc), problems: [] };
}

/** Reads, parses and validates a configuration file; throws {@link ConfigError} listing every problem. */
export function loadConfigFile(filePath: string): SluiceConfig {
  let text: string;
  try {
    text = readFileSync(filePath, 'utf8');
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
    throw new ConfigError([{ path: '', value: reason, expected: 'a readable file', kind: 'unreadable' }], filePath);
  }
  const { config, problems } = parseConfig(text);
  if (config === null) throw new ConfigError(problems, filePath);
  return config;
}

/** The configuration a node runs with when there is no file: every default. */
export function defaultConfig(): SluiceConfig {
  const { config, problems } = parseConfig('');
  if (config === null) throw new ConfigError(problems, '(defaults)');
  return config;
}

/** The user-facing configuration with every default applied (the shape of the example in the docs). */
export function defaultInput(): SluiceConfigFilled {
  const data: Record<string, unknown> = {};
  if (!validate(data)) throw new Error('the schema defaults do not validate');
  return data as SluiceConfigFilled;
}

/** Milliseconds for a duration (seconds as a number, or `<number><ms|s|m|h|d>`); null when it is not one. */
export function parseDuration(value: unknown): number | null {
  let ms: number;
  if (typeof value === 'number') {
    ms = value * 1000;
  } else if (typeof value === 'string') {
    const m = DURATION_RE.exec(value);
    const unit = m?.[2] === undefined ? undefined : DURATION_UNITS_MS[m[2]];
    if (m?.[1] === undefined || unit === undefined) return null;
    ms = Number(m[1]) * unit;
  } else {
    return null;
  }
  if (!Number.isFinite(ms) || ms < 0) return null;
  const rounded = Math.round(ms);
  // A positive duration never rounds to 0, which would mean "off" to some settings.
  return rounded === 0 && ms > 0 ? 1 : rounded;
}

/** Bytes for a size (an integer of bytes, or `<number><B|KB|MB|GB|KiB|MiB|GiB>`); null when it is not one. */
export function parseSize(value: unknown): number | null {
  let bytes: number;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return null;
    bytes = value;
  } else if (typeof value === 'string') {
    const m = SIZE_RE.exec(value);
    const unit = m?.[2] === undefined ? undefined : SIZE_UNITS_BYTES[m[2]];
    if (m?.[1] === undefined || unit === undefined) return null;
    bytes = Math.round(Number(m[1]) * unit);
  } else {
    return null;
  }
  return Number.isSafeInteger(bytes) && bytes >= 0 ? bytes : null;
}

// ---------------------------------------------------------------------------
// Validation

const DURATION_RE = new RegExp(DURATION_PATTERN, 'u');
const SIZE_RE = new RegExp(SIZE_PATTERN, 'u');

const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true });
for (const keyword of ANNOTATION_KEYWORDS) ajv.addKeyword({ keyword });
ajv.addFormat(FORMAT_IP_OR_LOCALHOST, (s: string) => s === 'localhost' || isIP(s) !== 0);
ajv.addFormat(FORMAT_CIDR, isCidr);
const validate = ajv.compile(SluiceConfigSchema);

/** A schema node, read as plain JSON Schema. */
type SchemaNode = { [keyword: string]: unknown };

type Locate = (segments: readonly string[], atKey: boolean) => { line?: number; column?: number };

function isCidr(s: string): boolean {
  const slash = s.indexOf('/');
  const address = slash === -1 ? s : s.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return false;
  if (slash === -1) return true;
  const prefix = s.slice(slash + 1);
  if (!/^\d{1,3}$/u.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

/** Tokens are kept only as SHA-256 hex; `sha256:<hex>` in the file is already that. */
export function tokenHash(token: string): string {
  return token.startsWith('sha256:') ? token.slice(7) : sha256Hex(token);
}

/** A bare address becomes a /32 or /128 block; a block stays as written. */
function toCidr(s: string): string {
  if (s.includes('/')) return s;
  return `${s}/${isIP(s) === 4 ? 32 : 128}`;
}

function schemaProblems(filled: Record<string, unknown>, original: unknown, locate: Locate): ConfigProblem[] {
  if (validate(filled)) return [];
  const errors = validate.errors ?? [];
  // A failed union reports one error per branch plus its own; keep only the union's.
  const unions = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf').map((e) => `${e.schemaPath}/`);
  const seen = new Set<string>();
  const problems: ConfigProblem[] = [];
  for (const error of errors) {
    if (unions.some((prefix) => error.schemaPath.startsWith(prefix))) continue;
    // A bad map key yields the `propertyNames` error and the inner one that says why; keep the former.
    if (error.propertyName !== undefined) continue;
    const problem = errorToProblem(error, original, locate);
    const id = `${problem.kind ?? 'value'} ${problem.path}`;
    if (seen.has(id)) continue;
    seen.add(id);
    problems.push(problem);
  }
  return problems;
}

function errorToProblem(error: ErrorObject, original: unknown, locate: Locate): ConfigProblem {
  const segments = pointerSegments(error.instancePath);
  const schema = (error.parentSchema ?? {}) as SchemaNode;
  if (error.keyword === 'propertyNames') {
    const key = String((error.params as { propertyName: string }).propertyName);
    const keySegments = [...segments, key];
    const expected = typeof schema['x-key-expected'] === 'string' ? schema['x-key-expected'] : 'a valid key';
    return { path: dotPath(keySegments), value: key, expected, kind: 'bad-key', ...locate(keySegments, true) };
  }
  if (error.keyword === 'additionalProperties') {
    const key = String((error.params as { additionalProperty: string }).additionalProperty);
    const keySegments = [...segments, key];
    const allowed = Object.keys(isPlainObject(schema['properties']) ? schema['properties'] : {});
    const expected = `one of: ${allowed.join(', ')}`;
    return { path: dotPath(keySegments), value: key, expected, kind: 'unknown-key', ...locate(keySegments, true) };
  }
  return { path: dotPath(segments), value: valueAt(original, segments), expected: describe(schema), ...locate(segments, false) };
}

/**
 * Checks a schema cannot express: sizes and durations within range once
 * parsed (and finite), and sink tenants that exist. Runs on data that may have
 * failed validation, so it checks types as it goes and skips paths that
 * already have a problem.
 */
function semanticProblems(
  filled: Record<string, unknown>,
  original: unknown,
  already: readonly ConfigProblem[],
  locate: Locate,
): ConfigProblem[] {
  const taken = new Set(already.map((p) => p.path));
  const problems: ConfigProblem[] = [];
  const report = (segments: string[], expected: string) => {
    const p = dotPath(segments);
    if (taken.has(p)) return;
    taken.add(p);
    problems.push({ path: p, value: valueAt(original, segments), expected, ...locate(segments, false) });
  };

  walk(SluiceConfigSchema as unknown as SchemaNode, filled, [], (schema, value, segments) => {
    const type = schema['x-type'];
    if (type !== 'duration' && type !== 'size') return;
    if (typeof value !== 'number' && typeof value !== 'string') return;
    const parsed = type === 'duration' ? parseDuration(value) : parseSize(value);
    const min = typeof schema['x-min-bytes'] === 'number' ? schema['x-min-bytes'] : 0;
    const max = typeof schema['x-max-bytes'] === 'number' ? schema['x-max-bytes'] : Infinity;
    if (parsed === null || parsed < min || parsed > max) report(segments, describe(schema));
  });

  const tls = (filled['sources'] as Record<string, Record<string, unknown>> | undefined)?.['syslog_tls'];
  if (isPlainObject(tls)) {
    const has = (key: string) => typeof tls[key] === 'string';
    if (has('certificate') !== has('key')) {
      const missing = has('certificate') ? 'key' : 'certificate';
      report(['sources', 'syslog_tls', missing], `a file path: certificate and key go together`);
    }
    if (tls['client_certificates'] !== 'none' && !has('client_ca')) {
      report(['sources', 'syslog_tls', 'client_ca'], `a CA file path, since client_certificates is "${String(tls['client_certificates'])}"`);
    }
  }

  const memory = filled['memory'];
  if (isPlainObject(memory) && typeof memory['soft_mark'] === 'number' && typeof memory['hard_mark'] === 'number'
    && memory['soft_mark'] >= memory['hard_mark']) {
    report(['memory', 'soft_mark'], `a fraction below hard_mark (${memory['hard_mark']})`);
  }

  const cluster = filled['cluster'];
  if (isPlainObject(cluster)) {
    // A heartbeat must come at least twice within each time-to-live, or a live node would expire between two of them.
    const heartbeat = parseDuration(cluster['heartbeat_interval'] as number | string);
    for (const ttl of ['member_ttl', 'leader_ttl'] as const) {
      const value = parseDuration(cluster[ttl] as number | string);
      if (heartbeat !== null && value !== null && value < 2 * heartbeat) {
        report(['cluster', ttl], `a duration of at least twice heartbeat_interval (${String(cluster['heartbeat_interval'])})`);
      }
    }
  }

  const givenSinks = isPlainObject(original) ? original['sinks'] : undefined;
  if (isPlainObject(givenSinks)) {
    for (const [name, sink] of Object.entries(givenSinks)) {
      if (!isPlainObject(sink)) continue;
      const type = typeof sink['type'] === 'string' ? sink['type'] : 'file';
      for (const kind of ['syslog', 'nats']) {
        if (sink[kind] !== undefined && type !== kind) report(['sinks', name, kind], `no ${kind} settings: this sink's type is ${type}`);
      }
    }
  }

  const tenants = filled['tenants'];
  const sinks = filled['sinks'];
  if (isPlainObject(tenants)) {
    const owners = new Map<string, string>();
    for (const [id, tenant] of Object.entries(tenants)) {
      if (!isPlainObject(tenant) || !Array.isArray(tenant['tokens'])) continue;
      tenant['tokens'].forEach((token: unknown, i) => {
        if (typeof token !== 'string') return;
        const owner = owners.get(tokenHash(token));
        if (owner !== undefined) report(['tenants', id, 'tokens', String(i)], `a token no other tenant has (tenant ${owner} has this one)`);
        else owners.set(tokenHash(token), id);
      });
    }
  }
  const admin = filled['admin'];
  if (isPlainObject(tenants) && isPlainObject(admin) && Array.isArray(admin['tokens'])) {
    admin['tokens'].forEach((entry: unknown, i) => {
      if (!isPlainObject(entry) || typeof entry['tenant'] !== 'string') return;
      if (!(entry['tenant'] in tenants)) report(['admin', 'tokens', String(i), 'tenant'], `a configured tenant (${Object.keys(tenants).join(', ')})`);
    });
  }
  if (isPlainObject(tenants) && isPlainObject(sinks)) {
    const ids = Object.keys(tenants).filter((id) => !taken.has(dotPath(['tenants', id])));
    const idSet = new Set(ids);
    for (const [name, sink] of Object.entries(sinks)) {
      if (!isPlainObject(sink) || !Array.isArray(sink['tenants'])) continue;
      sink['tenants'].forEach((id: unknown, i) => {
        if (typeof id === 'string' && id !== '*' && !idSet.has(id)) {
          const known = ids.length === 0 ? 'no tenant is defined' : `defined: ${ids.join(', ')}`;
          report(['sinks', name, 'tenants', String(i)], `"*" or the id of a tenant under tenants (${known})`);
        }
      });
    }
  }
  return problems;
}

/** Visits every node of `value` that `schema` describes, depth first. */
function walk(
  schema: SchemaNode,
  value: unknown,
  segments: string[],
  visit: (schema: SchemaNode, value: unknown, segments: string[]) => void,
): void {
  visit(schema, value, segments);
  if (isPlainObject(value)) {
    for (const [key, child] of Object.entries(value)) {
      const childSchema = propertySchema(schema, key);
      if (childSchema !== undefined) walk(childSchema, child, [...segments, key], visit);
    }
  } else if (Array.isArray(value) && isPlainObject(schema['items'])) {
    const items = schema['items'];
    value.forEach((item: unknown, i) => walk(items, item, [...segments, String(i)], visit));
  }
}

function propertySchema(schema: SchemaNode, key: string): SchemaNode | undefined {
  const properties = schema['properties'];
  if (isPlainObject(properties) && Object.hasOwn(properties, key)) {
    const s = properties[key];
    return isPlainObject(s) ? s : undefined;
  }
  const patterns = schema['patternProperties'];
  if (isPlainObject(patterns)) {
    for (const [pattern, s] of Object.entries(patterns)) {
      if (new RegExp(pattern, 'u').test(key) && isPlainObject(s)) return s;
    }
  }
  return undefined;
}

/**
 * `key:` with nothing after it, where a mapping is expected, means the same as
 * leaving the key out (a section whose content is all commented out); for a
 * map entry (`sinks: { archive: }`) it means an entry with every default.
 */
function dropNullSections(schema: SchemaNode, value: unknown): void {
  if (!isPlainObject(value)) return;
  const properties = schema['properties'];
  for (const [key, child] of Object.entries(value)) {
    const childSchema = propertySchema(schema, key);
    if (childSchema === undefined) continue;
    if (child === null && childSchema['type'] === 'object') {
      if (isPlainObject(properties) && Object.hasOwn(properties, key)) delete value[key];
      else value[key] = {};
    } else {
      dropNullSections(childSchema, child);
    }
  }
}

/** What a valid value for `schema` looks like, in plain words. */
function describe(schema: SchemaNode): string {
  const explicit = schema['x-expected'];
  if (typeof explicit === 'string') return explicit;
  if ('const' in schema) return JSON.stringify(schema['const']);
  const options = Array.isArray(schema['anyOf']) ? (schema['anyOf'] as SchemaNode[]) : undefined;
  if (options !== undefined && options.every((o) => 'const' in o)) {
    return `one of: ${options.map((o) => String(o['const'])).join(', ')}`;
  }
  if (options !== undefined) return options.map(describe).join(', or ');
  const min = typeof schema['minimum'] === 'number' ? schema['minimum'] : undefined;
  const max = typeof schema['maximum'] === 'number' ? schema['maximum'] : undefined;
  switch (schema['type']) {
    case 'integer':
    case 'number': {
      const noun = schema['type'] === 'integer' ? 'integer' : 'number';
      if (min !== undefined && max !== undefined) return `an ${noun} from ${min} to ${max}`;
      if (min === 0) return `a non-negative ${noun}`;
      if (min !== undefined) return `an ${noun} of at least ${min}`;
      if (max !== undefined) return `an ${noun} of at most ${max}`;
      return `a ${noun}`;
    }
    case 'boolean':
      return 'true or false';
    case 'string':
      return typeof schema['minLength'] === 'number' && schema['minLength'] > 0 ? 'a non-empty string' : 'a string';
    case 'null':
      return 'null';
    case 'array':
      return 'a list';
    case 'object': {
      const properties = schema['properties'];
      return isPlainObject(properties) ? `a mapping with the keys: ${Object.keys(properties).join(', ')}` : 'a mapping';
    }
    default:
      return 'a valid value';
  }
}

// ---------------------------------------------------------------------------
// Resolution

function resolve(c: SluiceConfigFilled, doc: Document): SluiceConfig {
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
      budgetBytes: size(c.memory.budget),
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

// ---------------------------------------------------------------------------
// Positions and paths

function position(
  doc: Document,
  lineCounter: LineCounter,
  segments: readonly string[],
  atKey: boolean,
): { line?: number; column?: number } {
  let node: unknown = doc.contents;
  let keyNode: unknown = undefined;
  let last: unknown = node;
  for (const segment of segments) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => keyString(p.key) === segment);
      if (pair === undefined) break;
      keyNode = pair.key;
      node = pair.value;
    } else if (isSeq(node)) {
      keyNode = undefined;
      node = node.items[Number(segment)];
      if (node === undefined) break;
    } else {
      break;
    }
    last = node;
  }
  let target = atKey && keyNode !== undefined ? keyNode : last;
  // `key:` with no value: point at the key rather than past it.
  if (isScalar(target) && target.range && target.range[0] === target.range[1] && keyNode !== undefined) {
    target = keyNode;
  }
  const range = (target as Node | null | undefined)?.range;
  if (range === undefined || range === null) return {};
  const { line, col } = lineCounter.linePos(range[0]);
  return { line, column: col };
}

function keyString(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}

function pointerSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** `sources.syslog_tcp.port`, `tenants.default.networks[1]`, `tenants["Bad id"]`. */
function dotPath(segments: readonly string[]): string {
  let out = '';
  for (const s of segments) {
    if (/^\d+$/u.test(s) && out !== '') out += `[${s}]`;
    else if (/^[A-Za-z0-9_-]+$/u.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

function valueAt(root: unknown, segments: readonly string[]): unknown {
  let value = root;
  for (const s of segments) {
    if (Array.isArray(value)) value = value[Number(s)];
    else if (isPlainObject(value) && Object.hasOwn(value, s)) value = value[s];
    else return undefined;
  }
  return value;
}

function showValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  let shown: string;
  try {
    shown = JSON.stringify(value) ?? String(value);
  } catch {
    shown = String(value);
  }
  return shown.length > 60 ? `${shown.slice(0, 59)}…` : shown;
}

function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  const unknown = Number.MAX_SAFE_INTEGER; // problems without a position go last
  return problems.sort(
    (a, b) =>
      (a.line ?? unknown) - (b.line ?? unknown) ||
      (a.column ?? 0) - (b.column ?? 0) ||
      (a.path < b.path ? -1 : a.path > b.path ? 1 : 0),
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
