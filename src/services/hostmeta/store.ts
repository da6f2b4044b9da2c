/**
 * The one interface both stores implement (SQLite, PostgreSQL). A contract
 * test suite runs against each, so the service never needs to know which it has.
 */
import type { HostMetadata, HostMetadataPatch } from './schema.js';

export interface StoredHost {
  key: string;
  metadata: HostMetadata;
  /** Epoch ms of the last write. */
  updatedAt: number;
}

export type MergeResult = 'created' | 'updated' | 'too_large';

/**
 * One host of a batch: its key; the document to create when it has none; the
 * fields to merge (as a PATCH does) when it has one. Without either the host is only read.
 */
export interface BatchItem {
  key: string;
  create?: HostMetadata;
  update?: HostMetadataPatch;
}

/** What a batch says of one host: its document (null: none, and none was to be created) and whether this batch created it. */
export interface BatchAnswer {
  key: string;
  metadata: HostMetadata | null;
  created: boolean;
}

export interface AppliedMigration {
  version: number;
  name: string;
  /** RFC 3339 time it was applied. */
  appliedAt: string;
}

export interface MigrationReport {
  /** Versions applied by this open(), in order; empty when the schema was current. */
  applied: number[];
  /** Schema version after open(). */
  version: number;
}

export interface HostmetaStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Connect and bring the schema up to date; safe on every start and from several processes at once. */
  open(): Promise<MigrationReport>;
  get(tenant: string, key: string): Promise<StoredHost | null>;
  /** Create or replace the whole document. */
  put(tenant: string, key: string, metadata: HostMetadata, now: number): Promise<void>;
  /** Create the document only when there is none; false when one exists (it is left as it was). */
  create(tenant: string, key: string, metadata: HostMetadata, now: number): Promise<boolean>;
  /**
   * Get-or-create many hosts of one tenant in one transaction: each host's
   * document, created from its `create` when it has none, or with its
   * `update` merged in (see {@link mergeDocument}) when it has one — unless
   * the merged document would exceed `maxBytes`, when it is left as it was.
   * Answers with the documents as the batch leaves them, in the order of
   * `items`; keys are distinct.
   */
  getOrCreateMany(tenant: string, items: readonly BatchItem[], now: number, maxBytes: number): Promise<BatchAnswer[]>;
  /**
   * Merge `fields` into the document atomically (see {@link mergeDocument}),
   * creating it when missing; nothing is written when the result would exceed `maxBytes`.
   */
  merge(tenant: string, key: string, fields: HostMetadataPatch, now: number, maxBytes: number): Promise<MergeResult>;
  /** False when there was nothing to delete. */
  delete(tenant: string, key: string): Promise<boolean>;
  /** Up to `limit` hosts of `tenant` whose keys sort after `afterKey` (all when null), in key order. */
  list(tenant: string, afterKey: string | null, limit: number): Promise<StoredHost[]>;
  /**
   * Delete up to `limit` hosts, of any tenant, last seen before `cutoffMs`
   * (epoch ms; see {@link seenAt}), the longest unseen first; returns how many.
   * One short statement over an index: callers loop for more.
   */
  pruneUnseen(cutoffMs: number, limit: number): Promise<number>;
  appliedMigrations(): Promise<AppliedMigration[]>;
  /** Resolves when the store answers a trivial query. */
  ping(): Promise<void>;
  /** Safe to call twice and before open(). */
  close(): Promise<void>;
}

/**
 * A merge in the manner of RFC 7396 at the top level: each field of `fields`
 * replaces the field of that name (objects such as `labels` are replaced
 * whole, not merged), `null` removes it, and other fields stay as they were.
 */
export function mergeDocument(current: HostMetadata, fields: HostMetadataPatch): HostMetadata {
  // A Map, then fromEntries: assigning a key named "__proto__" to an object would change its prototype.
  const merged = new Map(Object.entries(current));
  for (const [name, value] of Object.entries(fields)) {
    if (value === null) merged.delete(name);
    else merged.set(name, value);
  }
  return Object.fromEntries(merged) as HostMetadata;
}

/**
 * A `last_seen` that counts as a time: RFC 3339 with an explicit offset (the
 * schema's form), clock fields in range. Shared with SQL (PostgreSQL's
 * migration 2), so it uses only syntax both regex dialects read alike.
 */
export const LAST_SEEN_TIME = /^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

/**
 * When a document says its host was last seen (epoch ms): its `last_seen`
 * when that is a time (see {@link LAST_SEEN_TIME}; a day its month lacks is
 * none), else `updatedAt`, its last write. Both stores index it (SQLite as a
 * column written from here, PostgreSQL as the same function in SQL), so
 * pruning hosts unseen for days is a range of an index.
 */
export function seenAt(metadata: HostMetadata, updatedAt: number): number {
  const lastSeen = metadata.last_seen;
  const match = typeof lastSeen === 'string' ? LAST_SEEN_TIME.exec(lastSeen) : null;
  if (match === null) return updatedAt;
  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = Number(match[3]);
  // Date.parse would roll 02-31 over into March; PostgreSQL refuses it.
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return updatedAt;
  return Date.parse(lastSeen!);
}

/** The size a document counts for against the limit: its compact JSON in UTF-8. */
export function documentBytes(metadata: HostMetadata): number {
  return Buffer.byteLength(JSON.stringify(metadata));
}

/** Thrown by open() when the database was migrated by a newer sluice than this one. */
export class SchemaTooNewError extends Error {
  constructor(found: number, known: number) {
    super(`host metadata schema is at version ${found}; this sluice knows up to ${known}: upgrade sluice`);
    this.name = 'SchemaTooNewError';
  }
}
