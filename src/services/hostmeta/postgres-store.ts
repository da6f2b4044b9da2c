/**
 * The PostgreSQL store, for a fleet of nodes sharing one database. Its tables
 * live in a configurable schema; every value goes in as a query parameter, and
 * only the (validated, quoted) schema name is part of the SQL text.
 */
import { userInfo } from 'node:os';
import type pg from 'pg';
import { MIGRATIONS, pendingMigrations, type Migration } from './migrations.js';
import type { HostMetadata, HostMetadataPatch } from './schema.js';
import {
  documentBytes,
  mergeDocument,
  type AppliedMigration,
  type BatchAnswer,
  type BatchItem,
  type HostmetaStore,
  type MergeResult,
  type MigrationReport,
  type StoredHost,
} from './store.js';

/** Unquoted-identifier form, so the quoted name means what it looks like. */
export const POSTGRES_SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * `url` with a user when it names none: like libpq (psql), the operating-system
 * user. pg itself only falls back to $PGUSER and $USER, which services often lack.
 */
export function withDefaultUser(url: string): string {
  if (process.env.PGUSER || process.env.USER) return url;
  try {
    const parsed = new URL(url);
    if (parsed.username !== '' || parsed.host === '') return url;
    parsed.username = encodeURIComponent(userInfo().username);
    return parsed.href;
  } catch {
    return url;
  }
}

interface HostRow {
  host_key: string;
  metadata: HostMetadata;
  /** bigint arrives as a string. */
  updated_at: string;
}

function toStoredHost(row: HostRow): StoredHost {
  return { key: row.host_key, metadata: row.metadata, updatedAt: Number(row.updated_at) };
}

export interface PostgresStoreOptions {
  url: string;
  schema: string;
  poolSize: number;
  /** Errors of idle pool connections (the server restarted, the network dropped); without a listener they would crash the process. */
  onPoolError?: (err: Error) => void;
  migrations?: readonly Migration[];
}

export class PostgresHostmetaStore implements HostmetaStore {
  readonly kind = 'postgres';
  private pgPool: pg.Pool | null = null;
  private readonly schema: string;
  private readonly table: string;
  private readonly migrations: readonly Migration[];
  private opened = false;
  private closing: Promise<void> | null = null;

  constructor(private readonly options: PostgresStoreOptions) {
    if (!POSTGRES_SCHEMA_PATTERN.test(options.schema)) {
      throw new Error(`postgres schema ${JSON.stringify(options.schema)} must match ${POSTGRES_SCHEMA_PATTERN}`);
    }
    this.schema = `"${options.schema}"`;
    this.table = `${this.schema}.host_metadata`;
    this.migrations = options.migrations ?? MIGRATIONS;
  }

  /** The pool, once open() created it. */
  private get pool(): pg.Pool {
    if (this.pgPool === null) throw new Error('host metadata store is not open');
    return this.pgPool;
  }

  async open(): Promise<MigrationReport> {
    if (this.opened) throw new Error('store already open');
    // Loaded here, not at import: a node on SQLite never pays for the PostgreSQL client.
    const { default: pgModule } = await import('pg');
    this.pgPool ??= new pgModule.Pool({ connectionString: withDefaultUser(this.options.url), max: this.options.poolSize, connectionTimeoutMillis: 5_000 });
    this.pgPool.on('error', (err) => this.options.onPoolError?.(err));
    const client = await this.pool.connect();
    try {
      const applied: number[] = [];
      const recorded = await this.inTransaction(client, async () => {
        // Looked up first: CREATE SCHEMA checks the CREATE privilege on the database even when the
        // schema exists, and a DBA may well have created it for a user who lacks that privilege.
        const { rows } = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [this.options.schema]);
        if (rows.length === 0) await client.query(`CREATE SCHEMA ${this.schema}`);
        await client.query(`CREATE TABLE IF NOT EXISTS ${this.schema}.schema_migrations (
          version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)`);
        return this.appliedVersions(client);
      });
      for (const migration of pendingMigrations(this.migrations, recorded)) {
        await this.inTransaction(client, async () => {
          // Another node may have applied it while this one waited for the lock.
          if ((await this.appliedVersions(client)).includes(migration.version)) return;
          await client.query(migration.postgres(this.schema));
          await client.query(`INSERT INTO ${this.schema}.schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
            [migration.version, migration.name, new Date().toISOString()]);
          applied.push(migration.version);
        });
      }
      this.opened = true;
      return { applied, version: Math.max(0, ...(await this.appliedVersions(client))) };
    } finally {
      client.release();
    }
  }

  /** Runs `work` in a transaction holding this schema's migration lock, so nodes starting together migrate one at a time. */
  private async inTransaction<T>(client: pg.PoolClient, work: () => Promise<T>): Promise<T> {
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`sluice-hostmeta-migrations:${this.options.schema}`]);
      const result = await work();
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  private async appliedVersions(client: pg.PoolClient): Promise<number[]> {
    const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${this.schema}.schema_migrations`);
    return rows.map((r) => r.version);
  }

  async get(tenant: string, key: string): Promise<StoredHost | null> {
    const { rows } = await this.pool.query<HostRow>(
      `SELECT host_key, metadata, updated_at FROM ${this.table} WHERE tenant = $1 AND host_key = $2`, [tenant, key]);
    return rows[0] ? toStoredHost(rows[0]) : null;
  }

  async put(tenant: string, key: string, metadata: HostMetadata, now: number): Promise<void> {
    await this.pool.query(`INSERT INTO ${this.table} (tenant, host_key, metadata, updated_at) VALUES ($1, $2, $3, $4)
      ON CONFLICT (tenant, host_key) DO UPDATE SET metadata = EXCLUDED.metadata, updated_at = EXCLUDED.updated_at`,
    [tenant, key, JSON.stringify(metadata), now]);
  }

  async create(tenant: string, key: string, metadata: HostMetadata, now: number): Promise<boolean> {
    const result = await this.pool.query(`INSERT INTO ${this.table} (tenant, host_key, metadata, updated_at) VALUES ($1, $2, $3, $4)
      ON CONFLICT (tenant, host_key) DO NOTHING`, [tenant, key, JSON.stringify(metadata), now]);
    return result.rowCount === 1;
  }

  async getOrCreateMany(tenant: string, items: readonly BatchItem[], now: number, maxBytes: number): Promise<BatchAnswer[]> {
    // Rows are inserted and locked in key order, so two batches sharing keys wait for each other and never deadlock.
    const creates = items.filter((item) => item.create !== undefined).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const updates = new Map(items.flatMap((item) => (item.update === undefined ? [] : [[item.key, item.update] as const])));
    return this.transaction(async (client) => {
      const inserted = creates.length === 0 ? new Set<string>() : new Set((await client.query<{ host_key: string }>(
        `INSERT INTO ${this.table} (tenant, host_key, metadata, updated_at)
          SELECT $1, k.key, k.metadata, $4 FROM unnest($2::text[], $3::json[]) WITH ORDINALITY AS k(key, metadata, n) ORDER BY n
          ON CONFLICT (tenant, host_key) DO NOTHING RETURNING host_key`,
        [tenant, creates.map((c) => c.key), creates.map((c) => JSON.stringify(c.create)), now])).rows.map((r) => r.host_key));
      // A new statement: under READ COMMITTED it sees the rows other batches committed while this one waited on them.
      // Rows to update are locked, so the merge reads what it replaces.
      const { rows } = await client.query<{ host_key: string; metadata: HostMetadata }>(
        `SELECT host_key, metadata FROM ${this.table} WHERE tenant = $1 AND host_key = ANY($2::text[])
          ORDER BY host_key${updates.size > 0 ? ' FOR UPDATE' : ''}`, [tenant, items.map((i) => i.key)]);
      const found = new Map(rows.map((r) => [r.host_key, r.metadata]));
      const merged = new Map<string, HostMetadata>();
      for (const [key, update] of updates) {
        const current = found.get(key);
        if (current === undefined || inserted.has(key)) continue;
        const next = mergeDocument(current, update);
        if (documentBytes(next) <= maxBytes) merged.set(key, next);
      }
      if (merged.size > 0) {
        await client.query(`UPDATE ${this.table} AS t SET metadata = u.metadata, updated_at = $4
          FROM unnest($2::text[], $3::json[]) AS u(key, metadata) WHERE t.tenant = $1 AND t.host_key = u.key`,
        [tenant, [...merged.keys()], [...merged.values()].map((m) => JSON.stringify(m)), now]);
      }
      return items.map(({ key }) => ({ key, metadata: merged.get(key) ?? found.get(key) ?? null, created: inserted.has(key) }));
    });
  }

  async merge(tenant: string, key: string, fields: HostMetadataPatch, now: number, maxBytes: number): Promise<MergeResult> {
    return this.transaction((client) => this.mergeLocked(client, tenant, key, fields, now, maxBytes), (result) => result !== 'too_large');
  }

  /** `work` in a transaction on one pooled connection: committed when `commit(result)`, else (or when it throws) rolled back. */
  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>, commit: (result: T) => boolean = () => true): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      try {
        const result = await work(client);
        await client.query(commit(result) ? 'COMMIT' : 'ROLLBACK');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    } finally {
      client.release();
    }
  }

  private async mergeLocked(client: pg.PoolClient, tenant: string, key: string, fields: HostMetadataPatch, now: number,
    maxBytes: number): Promise<MergeResult> {
    // Two rounds at most: when a concurrent merge creates the row first, our insert
    // does nothing and the next SELECT (a new snapshot under READ COMMITTED) locks that row.
    for (let round = 0; round < 2; round++) {
      const { rows } = await client.query<{ metadata: HostMetadata }>(
        `SELECT metadata FROM ${this.table} WHERE tenant = $1 AND host_key = $2 FOR UPDATE`, [tenant, key]);
      const current = rows[0]?.metadata;
      const merged = mergeDocument(current ?? {}, fields);
      if (documentBytes(merged) > maxBytes) return 'too_large';
      if (current !== undefined) {
        await client.query(`UPDATE ${this.table} SET metadata = $3, updated_at = $4 WHERE tenant = $1 AND host_key = $2`,
          [tenant, key, JSON.stringify(merged), now]);
        return 'updated';
      }
      const inserted = await client.query(`INSERT INTO ${this.table} (tenant, host_key, metadata, updated_at)
        VALUES ($1, $2, $3, $4) ON CONFLICT (tenant, host_key) DO NOTHING`, [tenant, key, JSON.stringify(merged), now]);
      if (inserted.rowCount === 1) return 'created';
    }
    throw new Error('host metadata merge lost a race twice');
  }

  async delete(tenant: string, key: string): Promise<boolean> {
    const result = await this.pool.query(`DELETE FROM ${this.table} WHERE tenant = $1 AND host_key = $2`, [tenant, key]);
    return result.rowCount === 1;
  }

  async list(tenant: string, afterKey: string | null, limit: number): Promise<StoredHost[]> {
    const { rows } = afterKey === null
      ? await this.pool.query<HostRow>(`SELECT host_key, metadata, updated_at FROM ${this.table}
          WHERE tenant = $1 ORDER BY host_key LIMIT $2`, [tenant, limit])
      : await this.pool.query<HostRow>(`SELECT host_key, metadata, updated_at FROM ${this.table}
          WHERE tenant = $1 AND host_key > $2 ORDER BY host_key LIMIT $3`, [tenant, afterKey, limit]);
    return rows.map(toStoredHost);
  }

  async pruneUnseen(cutoffMs: number, limit: number): Promise<number> {
    // The expression is the one migration 2 indexes, so this is a range of that index.
    // SKIP LOCKED: a row a merge holds is being written (likely a host seen right now); the next round decides.
    const seenAt = `${this.schema}.host_seen_at(metadata, updated_at)`;
    const result = await this.pool.query(`DELETE FROM ${this.table} WHERE (tenant, host_key) IN
      (SELECT tenant, host_key FROM ${this.table} WHERE ${seenAt} < $1 ORDER BY ${seenAt} LIMIT $2 FOR UPDATE SKIP LOCKED)`, [cutoffMs, limit]);
    return result.rowCount ?? 0;
  }

  async appliedMigrations(): Promise<AppliedMigration[]> {
    const { rows } = await this.pool.query<{ version: number; name: string; applied_at: Date }>(
      `SELECT version, name, applied_at FROM ${this.schema}.schema_migrations ORDER BY version`);
    return rows.map((r) => ({ version: r.version, name: r.name, appliedAt: r.applied_at.toISOString() }));
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  close(): Promise<void> {
    this.closing ??= this.pgPool === null ? Promise.resolve() : this.pgPool.end();
    return this.closing;
  }
}
