/**
 * The process crash.test.ts kills. Forked with `--crash-child <dir> <first n>`:
 * appends numbered entries as fast as it can (many in flight, so they share
 * write rounds), reports each entry's number and id to the parent as soon as
 * its append() resolves, and meanwhile reads and acknowledges, lagging
 * behind, so segments are deleted and checkpoints written while it runs.
 * It never stops on its own: the parent ends it with SIGKILL.
 *
 * Loaded any other way (a test runner scanning the folder) it does nothing.
 */
import pino from 'pino';
import { DiskBuffer } from '../../../src/sinks/buffer/disk-buffer.js';
import { DEFAULT_DISK_BUFFER_CONFIG, type DiskBufferConfig } from '../../../src/sinks/buffer/config.js';
import { Telemetry } from '../../../src/ops/telemetry.js';

export const CRASH_CHILD_FLAG = '--crash-child';

export const CRASH_CHILD_CONFIG: DiskBufferConfig = {
  ...DEFAULT_DISK_BUFFER_CONFIG,
  segmentBytes: 64 * 1024,
  maxBytes: 16 * 1024 * 1024,
  syncIntervalMs: 2,
  checkpointIntervalMs: 20,
};

/** Entry n's payload: its number, then filler of a length that varies with n. The parent recomputes it to spot garbage. */
export function payloadFor(n: number): Buffer {
  const head = `${n}:`;
  return Buffer.from(head.padEnd(head.length + 40 + ((n * 7919) % 1500), String.fromCharCode(97 + (n % 26))));
}

export type ChildReport =
  | { kind: 'ready' }
  /** [n, id] pairs whose appends have resolved. */
  | { kind: 'appended'; entries: [number, number][] }
  /** Sent before acknowledge(id) is called: after a kill, entries up to id may be gone. */
  | { kind: 'acknowledging'; id: number };

const IN_FLIGHT = 64;
export const TENANT = 'acme';
const ACK_LAG_ENTRIES = 300;

async function main(dir: string, firstN: number): Promise<void> {
  const send = (report: ChildReport): void => { process.send!(report); };
  const buffer = await DiskBuffer.open(dir, CRASH_CHILD_CONFIG, new Telemetry(pino({ level: 'silent' })), 'crash');
  send({ kind: 'ready' });

  let unreported: [number, number][] = [];
  const flushReports = (): void => {
    if (unreported.length > 0) send({ kind: 'appended', entries: unreported });
    unreported = [];
  };
  let nextN = firstN;
  const appendForever = async (): Promise<void> => {
    for (;;) {
      const n = nextN++; // taken and appended in the same tick: call order is number order
      const result = await buffer.append(TENANT, payloadFor(n), 1);
      if (!result.written) throw new Error(`append ${n} refused: ${result.reason}`);
      if (unreported.length === 0) setImmediate(flushReports);
      unreported.push([n, result.id]);
    }
  };
  for (let i = 0; i < IN_FLIGHT; i++) void appendForever();

  for await (const batch of buffer.batches(256 * 1024)) {
    const target = batch[batch.length - 1]!.id - ACK_LAG_ENTRIES;
    if (target > 0) {
      send({ kind: 'acknowledging', id: target });
      buffer.acknowledge({ tenant: TENANT, id: target });
    }
  }
}

if (process.argv[2] === CRASH_CHILD_FLAG && process.send !== undefined) {
  main(process.argv[3]!, Number(process.argv[4])).catch((err: Error) => {
    process.stderr.write(`crash child failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  });
}
