/**
 * The configuration reference, generated from the schema: `npm run docs`
 * writes it to docs/config.md, and a test fails when that file is stale.
 */
import { stringify } from 'yaml';
import { defaultInput } from './load.js';
import { DURATION_UNITS_MS } from '../../core/units.js';
import { SluiceConfigSchema } from './schema.js';

/** A schema node, read as plain JSON Schema. */
type SchemaNode = { [keyword: string]: unknown };

interface Row {
  key: string;
  type: string;
  default: string;
  description: string;
}

/** The Markdown reference of every configuration key, with an example holding all the defaults. */
export function renderConfigDocs(): string {
  const rows: Row[] = [];
  collectRows(SluiceConfigSchema as unknown as SchemaNode, '', rows);
  const table = [
    '| Key | Type | Default | Description |',
    '| --- | --- | --- | --- |',
    ...rows.map((r) => `| \`${r.key}\` | ${cell(r.type)} | ${cell(r.default)} | ${cell(r.description)} |`),
  ];
  const example = stringify(defaultInput(), { lineWidth: 0 });
  const lines = [
    '# Configuration reference',
    '',
    '<!-- Generated from src/ops/config/schema.ts by `npm run docs`; do not edit by hand. -->',
    '',
    'A sluice node reads its settings from one YAML file. Every key is optional: a key left out takes',
    'the default listed below, so a node runs without any file at all, and an empty file (or one with',
    'only comments) means every default. A section left empty (`sources:` with nothing under it) counts',
    'as left out. Unknown keys are errors, and every problem in the file is reported at once, each with',
    'its line, its key path, the value found and what was expected.',
    '',
    '## Value formats',
    '',
    `- **duration**: a number of seconds (\`30\`, \`0.5\`), or a number followed by a unit: ${unitList(DURATION_UNITS_MS)}`,
    '  (`500ms`, `1.5s`, `10m`, `1h`). No space between number and unit.',
    '- **size**: a whole number of bytes (`65536`), or a number followed by a unit: `B`, `KB`, `MB`, `GB`',
    '  (powers of 1000) or `KiB`, `MiB`, `GiB` (powers of 1024), written with exactly that case',
    '  (`64KiB`, `1.5MB`).',
    '- **id**: tenant ids and sink names are 1 to 63 characters of `a-z`, `0-9`, `_` and `-`, starting',
    '  with a letter or a digit; they become folder names.',
    '- **CIDR block**: `10.0.0.0/8`, `2001:db8::/32`; a bare address means `/32` (IPv4) or `/128` (IPv6).',
    '',
    '`tenants` and `sinks` are maps from an id to its settings. Giving either one replaces its default',
    'entry as a whole (it is not merged with it); the keys of an entry are listed below as',
    '`tenants.<id>.*` and `sinks.<name>.*`.',
    '',
    '## Keys',
    '',
    ...table,
    '',
    '## Example',
    '',
    'Every default, written out:',
    '',
    '```yaml',
    example.trimEnd(),
    '```',
    '',
  ];
  return lines.join('\n');
}

function collectRows(schema: SchemaNode, prefix: string, rows: Row[]): void {
  const properties = schema['properties'];
  if (!isObject(properties)) return;
  collectProperties(Object.entries(properties), prefix, rows);
  collectBranches(schema, prefix, rows);
}

/**
 * The keys of a union discriminated by a tag (a sink's `type`): those every
 * branch has first, then each branch's own, marked with its tag.
 */
function collectBranches(schema: SchemaNode, prefix: string, rows: Row[]): void {
  const discriminator = schema['discriminator'];
  const branches = schema['oneOf'];
  if (!isObject(discriminator) || !Array.isArray(branches)) return;
  const tag = String(discriminator['propertyName']);
  const keyed = (branches as SchemaNode[]).map((branch) => {
    const properties = (branch['properties'] ?? {}) as Record<string, SchemaNode>;
    return { value: String(properties[tag]?.['const']), entries: Object.entries(properties).filter(([key]) => key !== tag) };
  });
  const inEvery = (key: string) => keyed.every((b) => b.entries.some(([k]) => k === key));
  collectProperties(keyed[0]?.entries.filter(([key]) => inEvery(key)) ?? [], prefix, rows);
  for (const branch of keyed) {
    collectProperties(branch.entries.filter(([key]) => !inEvery(key)), prefix, rows, `\`${tag}: ${branch.value}\` only. `);
  }
}

function collectProperties(properties: [string, unknown][], prefix: string, rows: Row[], note = ''): void {
  for (const [key, child] of properties) {
    if (!isObject(child)) continue;
    const path = prefix === '' ? key : `${prefix}.${key}`;
    const first = rows.length;
    rows.push(row(path, child));
    const entries = child['patternProperties'];
    if (isObject(entries)) {
      const entry = Object.values(entries)[0];
      if (!isObject(entry)) continue;
      const entryPath = `${path}.<${String(child['x-key'] ?? 'key')}>`;
      rows.push(row(entryPath, entry));
      collectRows(entry, entryPath, rows);
    } else {
      collectRows(child, path, rows);
    }
    if (note !== '') for (const r of rows.slice(first)) r.description = note + r.description;
  }
}

function row(key: string, schema: SchemaNode): Row {
  return {
    key,
    type: docType(schema),
    default: docDefault(schema),
    description: typeof schema['description'] === 'string' ? schema['description'] : '',
  };
}

function docType(schema: SchemaNode): string {
  const explicit = schema['x-type'];
  if (typeof explicit === 'string') return explicit;
  if ('const' in schema) return `\`${String(schema['const'])}\``;
  const options = schema['anyOf'];
  if (Array.isArray(options) && options.every((o) => isObject(o) && 'const' in o)) {
    return `one of ${options.map((o: SchemaNode) => `\`${String(o['const'])}\``).join(', ')}`;
  }
  const min = schema['minimum'];
  const max = schema['maximum'];
  switch (schema['type']) {
    case 'integer':
      if (typeof min === 'number' && typeof max === 'number') return `integer, ${min} to ${max}`;
      if (min === 0) return 'integer, 0 or more';
      return 'integer';
    case 'object':
      return 'mapping';
    default:
      return String(schema['type'] ?? 'any');
  }
}

function docDefault(schema: SchemaNode): string {
  if (!('default' in schema)) return '';
  const value = schema['default'];
  if (isObject(value)) {
    if (isObject(schema['patternProperties'])) {
      const names = Object.keys(value).map((k) => `\`${k}\``);
      return `${names.join(', ')} (as in the example)`;
    }
    return '';
  }
  return `\`${stringify(value, { collectionStyle: 'flow', lineWidth: 0 }).trimEnd()}\``;
}

function unitList(units: Readonly<Record<string, number>>): string {
  return Object.keys(units)
    .map((u) => `\`${u}\``)
    .join(', ');
}

/** A Markdown table cell: one line, pipes escaped. */
function cell(text: string): string {
  return text.replaceAll('\n', ' ').replaceAll('|', '\\|');
}

function isObject(value: unknown): value is SchemaNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
