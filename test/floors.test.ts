/**
 * The import floors of src/ (DESIGN.md, "Floors"): the lint rule that enforces
 * their order fires on an import against it, and src/ holds no import circle.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ESLint } from 'eslint';
import ts from 'typescript';
import { ROOT } from './helpers.js';

const eslint = new ESLint({ cwd: ROOT });

/** The floor-rule messages ESLint gives `code` as if it were the file `file` (relative to the repository). */
async function floorProblems(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, file) });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'sluice/floors').map((m) => m.message);
}

test('floors: the lint rule refuses an import that runs back up or across, whatever its form', async () => {
  const refused: [string, string][] = [
    ['src/telemetry/telemetry.ts', "import { x } from '../core/clock.js';"],
    ['src/core/pipeline.ts', "import type { Telemetry } from '../ops/node.js';"],
    ['src/core/pipeline.ts', "export { x } from '../sinks/file/sink.js';"],
    ['src/sinks/file/sink.ts', "import { x } from '../../sources/syslog/parse.js';"],
    ['src/sources/relp/source.ts', "const m = await import('../../services/cluster/member.js');"],
    ['src/services/hostmeta/command.ts', "export * from '../../ops/log-output.js';"],
  ];
  for (const [file, code] of refused) {
    const problems = await floorProblems(file, code);
    assert.equal(problems.length, 1, `${file}: ${code}`);
    assert.match(problems[0]!, /^src\/\w+ may not import src\/\w+/);
  }
  assert.match((await floorProblems('src/sinks/nats/sink.ts', "import { x } from '../../sources/http/source.js';"))[0]!, /never import each other/);
  assert.match((await floorProblems('src/core/identity.ts', "import { x } from '../ops/config/types.js';"))[0]!, /imports run down the floors/);
});

test('floors: imports within a folder and down the floors pass, and tests may import anything', async () => {
  const allowed: [string, string][] = [
    ['src/ops/node.ts', "import { x } from '../sinks/file/sink.js';\nimport type { y } from '../telemetry/events.js';\nconst m = await import('../services/cluster/member.js');"],
    ['src/sinks/file/sink.ts', "import { x } from '../delivery/chain.js';\nimport { y } from '../../core/ndjson.js';\nimport { z } from '../../telemetry/telemetry.js';"],
    ['src/core/pipeline.ts', "import { x } from './fair.js';\nimport { y } from '../telemetry/telemetry.js';\nimport pino from 'pino';"],
    ['test/core/pipeline.test.ts', "import { x } from '../../src/ops/node.js';"],
  ];
  for (const [file, code] of allowed) assert.deepEqual(await floorProblems(file, code), [], `${file}: ${code}`);
});

/** Every .ts file under src/ and the src/ files it imports (static, type-only and dynamic imports alike). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const visit = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) visit(full);
      else if (entry.name.endsWith('.ts')) {
        const { importedFiles } = ts.preProcessFile(readFileSync(full, 'utf8'), true, true);
        const targets = importedFiles.filter((f) => f.fileName.startsWith('.'))
          .map((f) => path.relative(ROOT, path.resolve(path.dirname(full), f.fileName)).replace(/\.js$/, '.ts'));
        graph.set(path.relative(ROOT, full), targets);
      }
    }
  };
  visit(path.join(ROOT, 'src'));
  return graph;
}

test('floors: no import circle in src/', () => {
  const graph = importGraph();
  assert.ok(graph.size > 100 && [...graph.values()].some((targets) => targets.length > 0), 'the graph is read');
  const state = new Map<string, 'open' | 'done'>();
  const circles: string[] = [];
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const target of graph.get(file) ?? []) {
      if (state.get(target) === 'open') circles.push([...stack.slice(stack.indexOf(target)), target].join(' → '));
      else if (state.get(target) === undefined && graph.has(target)) visit(target);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (state.get(file) === undefined) visit(file);
  assert.deepEqual(circles, []);
});
