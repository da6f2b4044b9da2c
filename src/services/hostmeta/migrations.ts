/**
 * The schema of the host metadata stores, as numbered migrations. Each is
 * applied once, in order, inside its own transaction together with its row in
 * `schema_migrations`, so a crash mid-migration leaves the previous version
 * intact and a restart resumes where it stopped. Append only: never edit a
 * migration that has shipped, add the next number instead.
 */
import { SchemaTooNewError } from './store.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sqlite: string;
  /** PostgreSQL statements; `schema` is the quoted schema name. */
  readonly postgres: (schema: string) => string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'host_metadata table',
    // WITHOUT ROWID: the primary key is the only access path, so the table is the index.
    sqlite: `
      CREATE TABLE host_metadata (
        tenant TEXT NOT NULL,
        host_key TEXT NOT NULL,
        metadata TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (tenant, host_key)
      ) WITHOUT ROWID;`,
    // COLLATE "C": paging is by key order, which must be byte order whatever the database's locale.
    // json, not jsonb: it keeps the document as written, and jsonb refuses strings JSON allows (\u0000).
    postgres: (schema) => `
      CREATE TABLE ${schema}.host_metadata (
        tenant text COLLATE "C" NOT NULL,
        host_key text COLLATE "C" NOT NULL,
        metadata json NOT NULL,
        updated_at bigint NOT NULL,
        PRIMARY KEY (tenant, host_key)
      );`,
  },
];

/** The migrations of `migrations` not yet in `applied`, in order; refuses a database newer than the list. */
export function pendingMigrations(migrations: readonly Migration[], applied: readonly number[]): Migration[] {
  const known = migrations.reduce((max, m) => Math.max(max, m.version), 0);
  const newest = applied.reduce((max, v) => Math.max(max, v), 0);
  if (newest > known) throw new SchemaTooNewError(newest, known);
  const done = new Set(applied);
  return [...migrations].sort((a, b) => a.version - b.version).filter((m) => !done.has(m.version));
}
