/** `memory` in the YAML configuration: the schema of the memory governor's MemoryConfig (memory.ts). */
import { Type } from '@sinclair/typebox';
import { duration, section } from './config-schema.js';
import { SIZE_PATTERN } from './units.js';
import { DEFAULT_MEMORY_CONFIG } from './memory.js';

function fraction(def: number, description: string) {
  return Type.Number({ description, default: def, minimum: 0.05, maximum: 1, 'x-expected': 'a fraction of the budget from 0.05 to 1, such as 0.8' });
}

const defaults = DEFAULT_MEMORY_CONFIG;

export const MemorySchema = section(
  {
    budget: Type.Union([Type.Literal('auto'), Type.Integer({ minimum: 0 }), Type.String({ pattern: SIZE_PATTERN })], {
      description: 'What the node may hold in all: the resident memory (RSS) of its processes summed (the primary and its workers), and within it the bytes its queues and buffers account (sessions, lanes, sink queues, HTTP bodies). Each worker\'s V8 heap limit is derived from it. `auto`: 192MiB for each worker process and 256MiB more (640MiB with 2 workers), so that a node at rest (about 80MB of RSS a worker, 80-120MB the primary) stays well below its soft mark whatever the number of workers, and 10,000 trickling agents (about 450MB with 2 workers) stay below it too. A size: from 1MiB to 64GiB. See memory.md.',
      default: 'auto',
      'x-type': 'size',
      'x-auto': true,
      'x-expected': '"auto" or a size from 1MiB to 64GiB, such as 2GiB',
      'x-min-bytes': 1024 ** 2,
      'x-max-bytes': 64 * 1024 ** 3,
    }),
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
