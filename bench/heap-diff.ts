/**
 * What a heap grew by, object kind by object kind: two V8 heap snapshots
 * (before and after, e.g. from idle-memory.js --heap-snapshots) summed by
 * type and constructor name; the difference, per `--per` units (connections).
 *
 *   node dist/bench/heap-diff.js before.heapsnapshot after.heapsnapshot [--per 10000] [--top 25]
 *
 * Prints one line per kind: bytes and objects added per unit, largest first.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Self size and count per `type:name` (strings together, as their text is not a kind). */
export function kinds(snap: Snapshot): Map<string, { bytes: number; count: number }> {
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const result = new Map<string, { bytes: number; count: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]!]!;
    const name = type.endsWith('string') ? '(text)' : snap.strings[snap.nodes[i + nameAt]!]!.slice(0, 60);
    const key = `${type}:${name}`;
    const entry = result.get(key) ?? { bytes: 0, count: 0 };
    entry.bytes += snap.nodes[i + sizeAt]!;
    entry.count++;
    result.set(key, entry);
  }
  return result;
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { per: { type: 'string', default: '1' }, top: { type: 'string', default: '25' } } });
if (positionals.length === 2) {
  const per = Number(values.per);
  const [before, after] = positionals.map((file) => kinds(JSON.parse(readFileSync(file!, 'utf8')) as Snapshot));
  const rows = [...after!].map(([key, a]) => {
    const b = before!.get(key) ?? { bytes: 0, count: 0 };
    return { key, bytes: (a.bytes - b.bytes) / per, count: (a.count - b.count) / per };
  }).sort((x, y) => y.bytes - x.bytes);
  const total = rows.reduce((sum, r) => sum + r.bytes, 0);
  process.stdout.write(`${total.toFixed(0)} bytes per unit in all\n`);
  for (const r of rows.slice(0, Number(values.top))) process.stdout.write(`${r.bytes.toFixed(0).padStart(8)} B ${r.count.toFixed(2).padStart(7)} × ${r.key}\n`);
} else {
  process.stderr.write('usage: heap-diff <before.heapsnapshot> <after.heapsnapshot> [--per N] [--top N]\n');
  process.exitCode = 2;
}
