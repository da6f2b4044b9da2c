/**
 * The default store: one SQLite file (better-sqlite3), in WAL mode so reads
 * never wait for a write. better-sqlite3 is synchronous; every statement here
 * touches one primary-key range, so each call costs microseconds of the event
 * loop, and a transaction can read, merge and write without interleaving.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS, pendingMigrations, SQLITE_SEEN_AT_FUNCTION, type Migration } from './migrations.js';
import type { HostMetadata, HostMetadataPatch } from './schema.js';
import {
  documentBytes,
  mergeDocument,
  seenAt,
  type AppliedMigration,
  type BatchAnswer,
  type BatchItem,
  type HostmetaStore,
  type MergeResult,
  type MigrationReport,
  type StoredHost,
} from './store.js';

export const SQLITE_FILE_NAME = 'hostmeta.sqlite';

interface HostRow {
  host_key: string;
  metadata: string;
  updated_at: number;
}

function toStoredHost(row: HostRow): StoredHost {
  return { key: row.host_key, metadata: JSON.parse(row.metadata) as HostMetadata, updatedAt: row.updated_at };
}

class Statements {
  readonly get: Database.Statement<[string, string], HostRow>;
  readonly upsert: Database.Statement<[string, string, string, number, number]>;
  readonly insertIfAbsent: Database.Statement<[string, string, string, number, number]>;
  readonly delete: Database.Statement<[string, string]>;
  readonly listFirst: Database.Statement<[string, number], HostRow>;
  readonly listAfter: Database.Statement<[string, string, number], HostRow>;
  readonly pruneUnseen: Database.Statement<[number, number]>;

  constructor(db: Database.Database) {
    this.get = db.prepare('SELECT host_key, metadata, updated_at FROM host_metadata WHERE tenant = ? AND host_key = ?');
    this.upsert = db.prepare(`INSERT INTO host_metadata (tenant, host_key, metadata, updated_at, seen_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (tenant, host_key) DO UPDATE SET metadata = excluded.metadata, updated_at = excluded.updated_at, seen_at = excluded.seen_at`);
    this.insertIfAbsent = db.prepare(`INSERT INTO host_metadata (tenant, host_key, metadata, updated_at, seen_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (tenant, host_key) DO NOTHING`);
    this.delete = db.prepare('DELETE FROM host_metadata WHERE tenant = ? AND host_key = ?');
    this.listFirst = db.prepare(`SELECT host_key, metadata, updated_at FROM host_metadata
      WHERE tenant = ? ORDER BY host_key LIMIT ?`);
    this.listAfter = db.prepare(`SELECT host_key, metadata, updated_at FROM host_metadata
      WHERE tenant = ? AND host_key > ? ORDER BY host_key LIMIT ?`);
    this.pruneUnseen = db.prepare(`DELETE FROM host_metadata WHERE (tenant, host_key) IN
      (SELECT tenant, host_key FROM host_metadata WHERE seen_at < ? ORDER BY seen_at LIMIT ?)`);
  }
}

export interface SqliteStoreOptions {
  /** The migrations to apply (tests add their own); defaults to {@link MIGRATIONS}. */
  migrations?: readonly Migration[];
}

export class SqliteHostmetaStore implements HostmetaStore {
  readonly kind = 'sqlite';
  private db: Database.Database | null = null;
  private statements: Statements | null = null;
  private readonly migrations: readonly Migration[];

  constructor(readonly file: string, options: SqliteStoreOptions = {}) {
    this.migrations = options.migrations ?? MIGRATIONS;
  }

  async open(): Promise<MigrationReport> {
    if (this.db) throw new Error('store already open');
    mkdirSync(path.dirname(this.file), { recursive: true });
    const db = new Database(this.file);
    try {
      db.pragma('journal_mode = WAL');
      // In WAL mode NORMAL never corrupts the file; an OS crash may lose the last
      // commits, which hosts re-register on their next touch anyway.
      db.pragma('synchronous = NORMAL');
      // Another process migrating or writing the same file: wait rather than fail.
      db.pragma('busy_timeout = 5000');
      db.function(SQLITE_SEEN_AT_FUNCTION, { deterministic: true }, (lastSeen: unknown, updatedAt: unknown) =>
        seenAt({ last_seen: lastSeen as string }, Number(updatedAt)));
      const report = this.migrate(db);
      this.statements = new Statements(db);
      this.db = db;
      return report;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  private migrate(db: Database.Database): MigrationReport {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
    const appliedVersions = db.prepare<[], { version: number }>('SELECT version FROM schema_migrations');
    const record = db.prepare<[number, string, string]>('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    const applied: number[] = [];
    for (const migration of pendingMigrations(this.migrations, appliedVersions.all().map((r) => r.version))) {
      // IMMEDIATE takes the write lock first, so two processes cannot both decide a migration is pending.
      const apply = db.transaction(() => {
        const done = appliedVersions.all().some((r) => r.version === migration.version);
        if (done) return;
        db.exec(migration.sqlite);
        record.run(migration.version, migration.name, new Date().toISOString());
        applied.push(migration.version);
      });
      apply.immediate();
    }
    const version = Math.max(0, ...appliedVersions.all().map((r) => r.version));
    return { applied, version };
  }

  private use(): { db: Database.Database; statements: Statements } {
    if (!this.db || !this.statements) throw new Error('host metadata store is not open');
    return { db: this.db, statements: this.statements };
  }

  async get(tenant: string, key: string): Promise<StoredHost | null> {
    const row = this.use().statements.get.get(tenant, key);
    return row ? toStoredHost(row) : null;
  }

  async put(tenant: string, key: string, metadata: HostMetadata, now: number): Promise<void> {
    this.use().statements.upsert.run(tenant, key, JSON.stringify(metadata), now, seenAt(metadata, now));
  }

  async create(tenant: string, key: string, metadata: HostMetadata, now: number): Promise<boolean> {
    return this.use().statements.insertIfAbsent.run(tenant, key, JSON.stringify(metadata), now, seenAt(metadata, now)).changes === 1;
  }

  async getOrCreateMany(tenant: string, items: readonly BatchItem[], now: number, maxBytes: number): Promise<BatchAnswer[]> {
    const { db, statements } = this.use();
    return db.transaction((): BatchAnswer[] => items.map(({ key, create, update }) => {
      const row = statements.get.get(tenant, key);
      if (row) {
        const current = JSON.parse(row.metadata) as HostMetadata;
        const merged = update === undefined ? current : mergeDocument(current, update);
        if (merged === current || documentBytes(merged) > maxBytes) return { key, metadata: current, created: false };
        statements.upsert.run(tenant, key, JSON.stringify(merged), now, seenAt(merged, now));
        return { key, metadata: merged, created: false };
      }
      if (create === undefined) return { key, metadata: null, created: false };
      statements.insertIfAbsent.run(tenant, key, JSON.stringify(create), now, seenAt(create, now));
      return { key, metadata: create, created: true };
    })).immediate();
  }

  async merge(tenant: string, key: string, fields: HostMetadataPatch, now: number, maxBytes: number): Promise<MergeResult> {
    const { db, statements } = this.use();
    return db.transaction((): MergeResult => {
      const row = statements.get.get(tenant, key);
      const merged = mergeDocument(row ? (JSON.parse(row.metadata) as HostMetadata) : {}, fields);
      if (documentBytes(merged) > maxBytes) return 'too_large';
      statements.upsert.run(tenant, key, JSON.stringify(merged), now, seenAt(merged, now));
      return row ? 'updated' : 'created';
    }).immediate();
  }

  async delete(tenant: string, key: string): Promise<boolean> {
    return this.use().statements.delete.run(tenant, key).changes === 1;
  }

  async list(tenant: string, afterKey: string | null, limit: number): Promise<StoredHost[]> {
    const { statements } = this.use();
    const rows = afterKey === null ? statements.listFirst.all(tenant, limit) : statements.listAfter.all(tenant, afterKey, limit);
    return rows.map(toStoredHost);
  }

  async pruneUnseen(cutoffMs: number, limit: number): Promise<number> {
    return this.use().statements.pruneUnseen.run(cutoffMs, limit).changes;
  }

  async appliedMigrations(): Promise<AppliedMigration[]> {
    return this.use().db.prepare<[], { version: number; name: string; applied_at: string }>(
      'SELECT version, name, applied_at FROM schema_migrations ORDER BY version').all()
      .map((r) => ({ version: r.version, name: r.name, appliedAt: r.applied_at }));
  }

  async ping(): Promise<void> {
    this.use().db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    const db = this.db;
    this.db = null;
    this.statements = null;
    db?.close();
  }
}
