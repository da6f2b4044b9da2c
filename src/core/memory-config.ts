/** `memory` in the YAML configuration: the schema of the memory governor's MemoryConfig (memory.ts). */
import { Type } from '@sinclair/typebox';
import { duration, section, size } from './config-schema.js';
import { DEFAULT_MEMORY_CONFIG } from './memory.js';

function fraction(def: number, description: string) {
  return Type.Number({ description, default: def, minimum: 0.05, maximum: 1, 'x-expected': 'a fraction of the budget from 0.05 to 1, such as 0.8' });
}

const defaults = DEFAULT_MEMORY_CONFIG;

export const MemorySchema = section(
  {
    budget: size(defaults.budgetBytes, 'What the node may hold in all: the resident memory (RSS) of its processes summed (the primary and its workers), and within it the bytes its queues and buffers account (sessions, lanes, sink queues, HTTP bodies). Each worker\'s V8 heap limit is derived from it. From 1MiB to 64GiB. See memory.md.',
      { min: 1024 ** 2, minText: '1MiB', max: 64 * 1024 ** 3, maxText: '64GiB' }),
    measure: Type.Union([Type.Literal('processes'), Type.Literal('queues')], {
      description: '`processes`: the processes\' resident memory counts against the budget, besides what the queues account; `queues`: only what the queues account (for a node that shares its process with other code, such as a test).',
      default: defaults.measure,
    }),
    soft_mark: fraction(defaults.softMark, 'Past this fraction of the budget the heaviest sessions pause reading (TCP backpressure) and acknowledgements are delayed.'),
    hard_mark: fraction(defaults.hardMark, 'Past this fraction of the budget new connections are refused, HTTP requests are answered 503 and UDP datagrams dropped (all counted). Above soft_mark.'),
    hysteresis: Type.Number({ description: 'How far below a mark (a fraction of the budget) pressure must fall before its state is left, so states do not flap.', default: defaults.hysteresis, minimum: 0, maximum: 0.5 }),
    sample_interval: duration(defaults.sampleIntervalMs, 'How often the governor measures (off the hot path, which reads only the resulting state).'),
  },
  'The memory governor (see memory.md).',
);
