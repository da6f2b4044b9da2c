/**
 * The schema of the host metadata stores, as numbered migrations. Each is
 * applied once, in order, inside its own transaction together with its row in
 * `schema_migrations`, so a crash mid-migration leaves the previous version
 * intact and a restart resumes where it stopped. Append only: never edit a
 * migration that has shipped, add the next number instead.
 */
import { LAST_SEEN_TIME, SchemaTooNewError } from './store.js';

/**
 * The name under which the SQLite store offers {@link seenAt} to SQL while it
 * migrates (a function of the connection, not of the file), so migration 2
 * fills `seen_at` exactly as the store's writes do.
 */
export const SQLITE_SEEN_AT_FUNCTION = 'sluice_seen_at';

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
  {
    version: 2,
    name: 'host_metadata.seen_at, indexed, for pruning hosts unseen for days',
    // SQLite: a column the store writes with every document (an index cannot call a function of
    // the application: the file would be unwritable without it), filled here once for the rows there are.
    sqlite: `
      ALTER TABLE host_metadata ADD COLUMN seen_at INTEGER NOT NULL DEFAULT 0;
      UPDATE host_metadata SET seen_at = ${SQLITE_SEEN_AT_FUNCTION}(json_extract(metadata, '$.last_seen'), updated_at);
      CREATE INDEX host_metadata_seen_at ON host_metadata (seen_at);`,
    // An index on an expression rather than a column: building it reads every row once and rewrites
    // none, and reads go on meanwhile (writes wait). The function is seenAt() in SQL: a last_seen
    // counts only in the form LAST_SEEN_TIME checks, whose explicit offset makes the cast independent
    // of the session's TimeZone, so IMMUTABLE (what an index needs) is true. A day its month lacks is
    // checked before the cast, which then cannot fail (no exception block: that would cost a
    // subtransaction per row and forbid a parallel build). Digits past the millisecond are cut, as
    // Date.parse does.
    postgres: (schema) => `
      CREATE FUNCTION ${schema}.host_seen_at(metadata json, updated_at bigint) RETURNS bigint
      LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
      DECLARE
        last_seen text := metadata->>'last_seen';
        year integer;
        month integer;
        day integer;
      BEGIN
        IF json_typeof(metadata->'last_seen') IS DISTINCT FROM 'string' OR last_seen !~ '${LAST_SEEN_TIME.source}' THEN
          RETURN updated_at;
        END IF;
        year := substr(last_seen, 1, 4)::integer;
        month := substr(last_seen, 6, 2)::integer;
        day := substr(last_seen, 9, 2)::integer;
        IF year < 1 OR month < 1 OR month > 12 OR day < 1 THEN
          RETURN updated_at;
        END IF;
        IF day > extract(day FROM make_date(year, month, 1) + interval '1 month - 1 day') THEN
          RETURN updated_at;
        END IF;
        RETURN (extract(epoch FROM regexp_replace(last_seen, '(\\.\\d{3})\\d+', '\\1')::timestamptz) * 1000)::bigint;
      END $$;
      CREATE INDEX host_metadata_seen_at ON ${schema}.host_metadata (${schema}.host_seen_at(metadata, updated_at));`,
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
