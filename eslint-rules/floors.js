/**
 * The import floors of src/ (DESIGN.md, "Floors"), as a lint rule:
 *
 *   ops → sources · sinks · services → core → telemetry
 *
 * A module may import its own folder and any floor below it, never one above,
 * and sources, sinks and services never import each other (what two of them
 * share belongs in core). Every static import, re-export and dynamic import()
 * with a relative specifier is resolved to the top folder it lands in, so the
 * depth of `../` cannot hide an import that runs back up.
 */
import path from 'node:path';

const FLOORS = { telemetry: 0, core: 1, sources: 2, sinks: 2, services: 2, ops: 3 };
const ORDER = 'telemetry ← core ← sources · sinks · services ← ops';

/** The top folder under src/ that `file` lies in, or undefined outside src/ or in none of the floors. */
function floorOf(srcRoot, file) {
  const relative = path.relative(srcRoot, file);
  if (relative.startsWith('..') || path.isAbsolute(relative)) return undefined;
  const top = relative.split(path.sep)[0];
  return Object.hasOwn(FLOORS, top) ? top : undefined;
}

export default {
  meta: {
    type: 'problem',
    docs: { description: `imports follow the floors of src/: ${ORDER}` },
    schema: [],
    messages: {
      up: 'src/{{from}} may not import src/{{to}}: imports run down the floors ({{order}}).',
      across: 'src/{{from}} may not import src/{{to}}: sources, sinks and services never import each other; what two of them share belongs in core.',
    },
  },
  create(context) {
    const srcRoot = path.join(context.cwd, 'src');
    const from = floorOf(srcRoot, context.filename);
    if (from === undefined) return {};
    const check = (source) => {
      if (source?.type !== 'Literal' || typeof source.value !== 'string' || !source.value.startsWith('.')) return;
      const to = floorOf(srcRoot, path.resolve(path.dirname(context.filename), source.value));
      if (to === undefined || to === from) return;
      if (FLOORS[to] < FLOORS[from]) return;
      const messageId = FLOORS[to] === FLOORS[from] ? 'across' : 'up';
      context.report({ node: source, messageId, data: { from, to, order: ORDER } });
    };
    return {
      ImportDeclaration: (node) => check(node.source),
      ExportNamedDeclaration: (node) => check(node.source),
      ExportAllDeclaration: (node) => check(node.source),
      ImportExpression: (node) => check(node.source),
    };
  },
};
