/**
 * Loading the YAML configuration: parse (with positions), validate against
 * the schema with every problem reported at once and in plain words, apply the
 * defaults, run the checks a schema cannot express (validate.ts), and resolve
 * the result into a {@link SluiceConfig} (resolve.ts).
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError, isPlainObject, position, sortProblems, type ConfigProblem } from './problems.js';
import { resolve } from './resolve.js';
import { SluiceConfigSchema, type SluiceConfigFilled } from './schema.js';
import type { SluiceConfig } from './types.js';
import { describe, dropNullSections, schemaProblems, semanticProblems, validate } from './validate.js';

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
