/**
 * The process crash.test.ts kills. Forked with `--crash-child <dir> <first n>`:
 * appends numbered entries as fast as it can for three tenants in turn (many
 * in flight, so they share write rounds, each round writing several chains),
 * reports each entry's number, tenant and id to the parent as soon as its
 * append() resolves, and meanwhile reads and acknowledges, lagging behind, so
 * segments are deleted and checkpoints written while it runs.
 * It never stops on its own: the parent ends it with SIGKILL.
 *
 * Loaded any other way (a test runner scanning the folder) it does nothing.
 */
import pino from 'pino';
import { DiskBuffer, type BufferEntry } from '../../../src/sinks/buffer/disk-buffer.js';
import { DEFAULT_DISK_BUFFER_CONFIG, type DiskBufferConfig } from '../../../src/sinks/buffer/config.js';
import { Telemetry } from '../../../src/telemetry/telemetry.js';

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
  /** [n, tenant, id] of the appends that have resolved. */
  | { kind: 'appended'; entries: [number, string, number][] }
  /** Sent before an acknowledgement: after a kill, each tenant's entries up to its id may be gone. */
  | { kind: 'acknowledging'; upTo: Record<string, number> };

const IN_FLIGHT = 64;
/** Entry n is appended for TENANTS[n % 3]. */
export const TENANTS = ['acme', 'globex', 'initech'];
const ACK_LAG_ENTRIES = 300;

async function main(dir: string, firstN: number): Promise<void> {
  const send = (report: ChildReport): void => { process.send!(report); };
  const buffer = await DiskBuffer.open(dir, CRASH_CHILD_CONFIG, new Telemetry(pino({ level: 'silent' })), 'crash');
  send({ kind: 'ready' });

  let unreported: [number, string, number][] = [];
  const flushReports = (): void => {
    if (unreported.length > 0) send({ kind: 'appended', entries: unreported });
    unreported = [];
  };
  let nextN = firstN;
  const appendForever = async (): Promise<void> => {
    for (;;) {
      const n = nextN++; // taken and appended in the same tick: call order is number order
      const tenant = TENANTS[n % TENANTS.length]!;
      const result = await buffer.append(tenant, payloadFor(n), 1);
      if (!result.written) throw new Error(`append ${n} refused: ${result.reason}`);
      if (unreported.length === 0) setImmediate(flushReports);
      unreported.push([n, tenant, result.id]);
    }
  };
  for (let i = 0; i < IN_FLIGHT; i++) void appendForever();

  // Acknowledgements follow the read order, ACK_LAG_ENTRIES behind the last entry read.
  const unacknowledged: BufferEntry[] = [];
  for await (const batch of buffer.batches(256 * 1024)) {
    unacknowledged.push(...batch);
    if (unacknowledged.length <= ACK_LAG_ENTRIES) continue;
    const upTo: Record<string, number> = {};
    const acknowledged = unacknowledged.splice(0, unacknowledged.length - ACK_LAG_ENTRIES);
    for (const entry of acknowledged) upTo[entry.tenant!] = entry.id;
    send({ kind: 'acknowledging', upTo });
    buffer.acknowledge(acknowledged.at(-1)!);
  }
}

if (process.argv[2] === CRASH_CHILD_FLAG && process.send !== undefined) {
  main(process.argv[3]!, Number(process.argv[4])).catch((err: Error) => {
    process.stderr.write(`crash child failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  });
}
