/**
 * Validation: the schema, with every problem reported at once and in plain
 * words (Ajv fills in the defaults as it goes), then the checks a schema
 * cannot express.
 */
import { isIP } from 'node:net';
import { Ajv, type ErrorObject } from 'ajv';
import { ANNOTATION_KEYWORDS, FORMAT_CIDR, FORMAT_IP_OR_LOCALHOST } from '../../core/config-schema.js';
import { tokenHash } from '../../core/tenant-config.js';
import { parseDuration, parseSize } from '../../core/units.js';
import { dotPath, isPlainObject, pointerSegments, valueAt, type ConfigProblem, type Locate } from './problems.js';
import { SluiceConfigSchema } from './schema.js';

const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true, discriminator: true });
for (const keyword of ANNOTATION_KEYWORDS) ajv.addKeyword({ keyword });
ajv.addFormat(FORMAT_IP_OR_LOCALHOST, (s: string) => s === 'localhost' || isIP(s) !== 0);
ajv.addFormat(FORMAT_CIDR, isCidr);
/** Validates a configuration in place, filling in every default. */
export const validate = ajv.compile(SluiceConfigSchema);

/** A schema node, read as plain JSON Schema. */
type SchemaNode = { [keyword: string]: unknown };

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

export function schemaProblems(filled: Record<string, unknown>, original: unknown, locate: Locate): ConfigProblem[] {
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
    // A tag that names no branch is reported at the tag itself (the union's `properties`).
    if (error.keyword === 'discriminator') continue;
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
    const keysOf = typeof schema['x-keys-of'] === 'string' ? ` (the keys of ${schema['x-keys-of']})` : '';
    const expected = `one of: ${allowed.join(', ')}${keysOf}`;
    return { path: dotPath(keySegments), value: key, expected, kind: 'unknown-key', ...locate(keySegments, true) };
  }
  return { path: dotPath(segments), value: valueAt(original, segments), expected: describe(schema), ...locate(segments, false) };
}

/**
 * Checks a schema cannot express: sizes and durations within range once
 * parsed (and finite), sink tenants that exist, and tenants some sink takes. Runs on data that may have
 * failed validation, so it checks types as it goes and skips paths that
 * already have a problem.
 */
export function semanticProblems(
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
    if (value === 'auto' && schema['x-auto'] === true) return;
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
    // A tenant no sink takes would have every record dropped (no_route): a configuration mistake, refused here.
    const routed = new Set<string>();
    for (const sink of Object.values(sinks)) {
      if (isPlainObject(sink) && Array.isArray(sink['tenants'])) for (const id of sink['tenants']) if (typeof id === 'string') routed.add(id);
    }
    // Only once the sinks themselves are valid: a broken sink entry is the problem to fix first.
    const sinksValid = ![...taken].some((p) => p === 'sinks' || p.startsWith('sinks.'));
    if (sinksValid && !routed.has('*')) {
      for (const id of ids) {
        if (!routed.has(id)) report(['tenants', id], `a tenant some sink takes: list it (or "*") under a sink's tenants, or every record of it is dropped (no_route)`);
      }
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
  schema = branchOf(schema, value);
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

/**
 * For a union discriminated by a tag (core/config-schema.ts), the branch
 * `value`'s tag names, or the default tag's when it has none yet; any other
 * schema as it is.
 */
function branchOf(schema: SchemaNode, value: unknown): SchemaNode {
  const discriminator = schema['discriminator'];
  const branches = schema['oneOf'];
  if (!isPlainObject(discriminator) || !Array.isArray(branches) || !isPlainObject(value)) return schema;
  const tag = String(discriminator['propertyName']);
  const tagSchema = (schema['properties'] as Record<string, SchemaNode>)[tag];
  const wanted = value[tag] ?? tagSchema?.['default'];
  const branch = (branches as SchemaNode[]).find((b) => (b['properties'] as Record<string, SchemaNode>)[tag]?.['const'] === wanted);
  return branch ?? schema;
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
export function dropNullSections(schema: SchemaNode, value: unknown): void {
  if (!isPlainObject(value)) return;
  schema = branchOf(schema, value);
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
export function describe(schema: SchemaNode): string {
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
