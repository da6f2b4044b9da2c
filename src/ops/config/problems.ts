/**
 * What is wrong with a configuration, said in plain words and placed: each
 * problem names its key path, the value found, what was expected, and its
 * line and column in the file.
 */
import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';

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

/** Where the node at a path is in the file: at its key (`atKey`) or at its value. */
export type Locate = (segments: readonly string[], atKey: boolean) => { line?: number; column?: number };

export function position(
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

export function keyString(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}

export function pointerSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** `sources.syslog_tcp.port`, `tenants.default.networks[1]`, `tenants["Bad id"]`. */
export function dotPath(segments: readonly string[]): string {
  let out = '';
  for (const s of segments) {
    if (/^\d+$/u.test(s) && out !== '') out += `[${s}]`;
    else if (/^[A-Za-z0-9_-]+$/u.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

export function valueAt(root: unknown, segments: readonly string[]): unknown {
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

export function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  const unknown = Number.MAX_SAFE_INTEGER; // problems without a position go last
  return problems.sort(
    (a, b) =>
      (a.line ?? unknown) - (b.line ?? unknown) ||
      (a.column ?? 0) - (b.column ?? 0) ||
      (a.path < b.path ? -1 : a.path > b.path ? 1 : 0),
  );
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
