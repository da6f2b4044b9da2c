import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { EVENTS, type EventDef } from '../../src/telemetry/events.js';
import { Telemetry } from '../../src/telemetry/telemetry.js';
import { ROOT, memoryLogger } from '../helpers.js';

const REGISTRY = Object.entries(EVENTS) as [string, EventDef][];
const LETTER = { info: 'I', warn: 'W', error: 'E' } as const;

/** Every .ts file under src/, with its path relative to the repository. */
function sourceFiles(dir = path.join(ROOT, 'src')): { file: string; text: string }[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [{ file: path.relative(ROOT, full), text: readFileSync(full, 'utf8') }] : [];
  });
}

test('events: codes are unique, well-formed, and their letter matches the level', () => {
  const codes = new Set<string>();
  for (const [name, def] of REGISTRY) {
    assert.match(def.code, /^SLU\d{4}[IWE]$/, name);
    assert.ok(!codes.has(def.code), `duplicate code ${def.code}`);
    codes.add(def.code);
    assert.equal(def.code.at(-1), LETTER[def.level], name);
    assert.ok(def.text.length > 0 && !def.text.includes('|'), `${name}: a message that fits a table cell`);
  }
});

test('events: every warning and error says what it means and what to do', () => {
  for (const [name, def] of REGISTRY) {
    if (def.level === 'info') continue;
    assert.ok(def.help !== undefined && def.help.length >= 40, `${name} (${def.code}) needs a help text`);
  }
});

test('events: docs/log-codes.md lists exactly the registry, each code with its level and message, and the help of each', () => {
  const doc = readFileSync(path.join(ROOT, 'docs', 'log-codes.md'), 'utf8');
  const rows = new Map<string, string[]>();
  for (const line of doc.split('\n')) {
    const cells = /^\| (SLU\d{4}[IWE]) \|/.test(line) ? line.split('|').slice(1, -1).map((c) => c.trim()) : null;
    if (cells === null) continue;
    assert.ok(!rows.has(cells[0]!), `${cells[0]} listed twice`);
    rows.set(cells[0]!, cells);
  }
  for (const [name, def] of REGISTRY) {
    const row = rows.get(def.code);
    assert.ok(row, `${def.code} (${name}) is missing from docs/log-codes.md`);
    assert.deepEqual(row.slice(0, 4), [def.code, def.level, name, def.text], def.code);
    if (def.help !== undefined) {
      assert.ok(doc.includes(`### ${def.code}\n\n*${def.level}* — ${def.text}\n\n${def.help}\n`), `${def.code}: its help is in the doc`);
    }
  }
  const registered = new Set(REGISTRY.map(([, def]) => def.code));
  for (const code of rows.keys()) assert.ok(registered.has(code), `docs/log-codes.md lists ${code}, which the registry does not have`);
  for (const [, code] of doc.matchAll(/^### (\S+)$/gm)) assert.ok(registered.has(code!), `docs/log-codes.md explains ${code}, which the registry does not have`);
});

test('events: src/ uses only registered events, every registered event is used, and nothing logs without a code', () => {
  const names = new Set(REGISTRY.map(([name]) => name));
  const used = new Set<string>();
  for (const { file, text } of sourceFiles()) {
    for (const [, name] of text.matchAll(/\bemit\(\s*'(\w+)'/g)) {
      assert.ok(names.has(name!), `${file} emits '${name}', which is not in src/telemetry/events.ts`);
      used.add(name!);
    }
    for (const [, name] of text.matchAll(/\bEVENTS\.(\w+)/g)) {
      assert.ok(names.has(name!), `${file} uses EVENTS.${name}, which is not in src/telemetry/events.ts`);
      used.add(name!);
    }
    // Direct logger calls would write lines without a code; only the emitters may call the logger.
    if (file !== path.join('src', 'telemetry', 'telemetry.ts') && file !== path.join('src', 'ops', 'log-output.ts')) {
      const direct = /\blogger\s*\.\s*(?:trace|debug|info|warn|error|fatal)\s*\(/.exec(text);
      assert.equal(direct, null, `${file} logs directly (${direct?.[0]}): emit a registered event instead`);
    }
  }
  for (const name of names) assert.ok(used.has(name), `event ${name} (${EVENTS[name as keyof typeof EVENTS].code}) is registered but never logged`);
});

test('events: one emit logs the code and bumps the counter; throttling is per event, source and reason', async () => {
  const { logger, lines } = memoryLogger();
  const telemetry = new Telemetry(logger);
  for (let i = 0; i < 5; i++) telemetry.emit('frameRejected', { source: 'syslog_tcp', reason: 'too_large', peer: `p${i}` });
  assert.equal(await telemetry.value('sluice_source_bad_frames_total', { source: 'syslog_tcp', reason: 'too_large' }), 5);
  const logged = lines.filter((l) => l.code === 'SLU0101W');
  assert.equal(logged.length, 1, 'throttled to one line per 10 s');
  assert.equal(logged[0]?.msg, 'bad frame: connection closed');
  telemetry.emit('frameRejected', { source: 'syslog_tcp', reason: 'bad_octet_count' });
  assert.equal(lines.filter((l) => l.code === 'SLU0101W').length, 2, 'another reason is not throttled by the first');
});
