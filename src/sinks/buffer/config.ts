/**
 * Settings of one sink's disk buffer. Another layer maps the user's
 * configuration onto this; every field has a default that works unchanged.
 */
import { ENTRY_HEADER_BYTES, SEGMENT_HEADER_BYTES } from './format.js';

export type WhenFull = 'block' | 'drop_newest';

export interface DiskBufferConfig {
  /** Upper bound on the bytes of segment files the buffer holds (headers included). */
  maxBytes: number;
  /** A segment is closed and a new one started before it would pass this size. Space is reclaimed a whole segment at a time. */
  segmentBytes: number;
  /** What append() does when an entry does not fit: wait for space (bounded by blockTimeoutMs) or refuse the entry. */
  whenFull: WhenFull;
  /** With `block`: how long an append may wait for space before the entry is refused (reason `timeout`). */
  blockTimeoutMs: number;
  /** Appends arriving within this many ms of each other share one write and one fsync. */
  syncIntervalMs: number;
  /** Start the write at once, without waiting for the interval, once this many bytes are waiting. */
  syncBytes: number;
  /** How often, at most, read progress is saved; at most this much acknowledged work can be replayed after a crash. */
  checkpointIntervalMs: number;
  /** Size of each reader's read buffer; entries larger than it are read on their own. */
  readBufferBytes: number;
}

export const DEFAULT_DISK_BUFFER_CONFIG: Readonly<DiskBufferConfig> = Object.freeze({
  maxBytes: 1024 * 1024 * 1024,
  segmentBytes: 32 * 1024 * 1024,
  whenFull: 'block',
  blockTimeoutMs: 30_000,
  syncIntervalMs: 5,
  syncBytes: 4 * 1024 * 1024,
  checkpointIntervalMs: 250,
  readBufferBytes: 256 * 1024,
});

/** Smallest segment: room for its header and one entry with a few KiB of payload. */
export const MIN_SEGMENT_BYTES = 4096;

/** Every problem with `config`, as sentences; empty when it is usable. */
export function diskBufferConfigProblems(config: DiskBufferConfig): string[] {
  const problems: string[] = [];
  const positiveInteger = (name: keyof DiskBufferConfig, min: number): void => {
    const value = config[name];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) problems.push(`${name} must be an integer ≥ ${min} (got ${String(value)})`);
  };
  positiveInteger('segmentBytes', MIN_SEGMENT_BYTES);
  positiveInteger('maxBytes', MIN_SEGMENT_BYTES);
  positiveInteger('blockTimeoutMs', 0);
  positiveInteger('syncIntervalMs', 0);
  positiveInteger('syncBytes', 1);
  positiveInteger('checkpointIntervalMs', 0);
  positiveInteger('readBufferBytes', ENTRY_HEADER_BYTES);
  if (config.segmentBytes > 0xffff_ffff) problems.push('segmentBytes must be below 4 GiB (an entry length is 32 bits)');
  if (config.maxBytes < config.segmentBytes) problems.push(`maxBytes (${config.maxBytes}) must be at least segmentBytes (${config.segmentBytes})`);
  if (config.whenFull !== 'block' && config.whenFull !== 'drop_newest') problems.push(`whenFull must be 'block' or 'drop_newest' (got ${String(config.whenFull)})`);
  return problems;
}

/** The largest payload one entry can carry: an entry never spans segments. */
export function maxPayloadBytes(config: DiskBufferConfig): number {
  return config.segmentBytes - SEGMENT_HEADER_BYTES - ENTRY_HEADER_BYTES;
}
