/**
 * One contract, two stores: every test here runs against SQLite (in a temp
 * folder) and PostgreSQL (in a schema of its own, dropped afterwards).
 * PostgreSQL missing: those tests skip with the reason, except under CI=true.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { MIGRATIONS, type Migration } from '../../../src/services/hostmeta/migrations.js';
import { PostgresHostmetaStore, withDefaultUser } from '../../../src/services/hostmeta/postgres-store.js';
import { SqliteHostmetaStore } from '../../../src/services/hostmeta/sqlite-store.js';
import { SchemaTooNewError, type HostmetaStore } from '../../../src/services/hostmeta/store.js';
import { POSTGRES_URL, requirePostgres, tempDir } from '../../helpers.js';

const postgresSkip = await requirePostgres(POSTGRES_URL);

type Cleanup = { after(fn: () => void | Promise<void>): void };

/** One database per test; `open` may be called several times (restarts), each store is closed when the test ends. */
interface Backend {
  name: string;
  skip: string | false;
  database(t: Cleanup): Promise<{
    open(migrations?: readonly Migration[]): HostmetaStore;
    tableExists(table: string): Promise<boolean>;
    /** Make it a database a sluice of schema version 1 left behind, holding `rows` (before any store opens it). */
    atVersionOne(rows: readonly LegacyRow[]): Promise<void>;
  }>;
}

interface LegacyRow {
  tenant: string;
  key: string;
  /** As stored: a document written before PATCH validated `last_seen` may hold anything there. */
  metadata: Record<string, unknown>;
  updatedAt: number;
}

const MIGRATIONS_TABLE = {
  sqlite: 'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
  postgres: (s: string) => `CREATE TABLE ${s}.schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)`,
};

const backends: Backend[] = [
  {
    name: 'sqlite',
    skip: false,
    async database(t) {
      const file = path.join(tempDir(t, 'sluice-hostmeta-'), 'hostmeta.sqlite');
      return {
        open(migrations = MIGRATIONS) {
          const store = new SqliteHostmetaStore(file, { migrations });
          t.after(() => store.close());
          return store;
        },
        async tableExists(table) {
          const db = new Database(file, { readonly: true });
          try {
            return db.prepare('SELECT 1 FROM sqlite_master WHERE type = \'table\' AND name = ?').get(table) !== undefined;
          } finally {
            db.close();
          }
        },
        async atVersionOne(rows) {
          const db = new Database(file);
          try {
            db.exec(MIGRATIONS_TABLE.sqlite);
            db.exec(MIGRATIONS[0]!.sqlite);
            db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, ?, ?)').run(MIGRATIONS[0]!.name, new Date().toISOString());
            const insert = db.prepare('INSERT INTO host_metadata (tenant, host_key, metadata, updated_at) VALUES (?, ?, ?, ?)');
            for (const row of rows) insert.run(row.tenant, row.key, JSON.stringify(row.metadata), row.updatedAt);
          } finally {
            db.close();
          }
        },
      };
    },
  },
  {
    name: 'postgres',
    skip: postgresSkip,
    async database(t) {
      const schema = `hostmeta_test_${randomBytes(6).toString('hex')}`;
      const admin = new pg.Client({ connectionString: withDefaultUser(POSTGRES_URL) });
      await admin.connect();
      // Registered first, so it runs last: after every store of the test is closed.
      t.after(async () => {
        await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await admin.end();
      });
      return {
        open(migrations = MIGRATIONS) {
          const store = new PostgresHostmetaStore({ url: POSTGRES_URL, schema, poolSize: 4, migrations });
          t.after(() => store.close());
          return store;
        },
        async tableExists(table) {
          const { rows } = await admin.query('SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2',
            [schema, table]);
          return rows.length > 0;
        },
        async atVersionOne(rows) {
          const quoted = `"${schema}"`;
          await admin.query(`CREATE SCHEMA ${quoted}`);
          await admin.query(MIGRATIONS_TABLE.postgres(quoted));
          await admin.query(MIGRATIONS[0]!.postgres(quoted));
          await admin.query(`INSERT INTO ${quoted}.schema_migrations (version, name, applied_at) VALUES (1, $1, now())`, [MIGRATIONS[0]!.name]);
          for (const row of rows) {
            await admin.query(`INSERT INTO ${quoted}.host_metadata (tenant, host_key, metadata, updated_at) VALUES ($1, $2, $3, $4)`,
              [row.tenant, row.key, JSON.stringify(row.metadata), row.updatedAt]);
          }
        },
      };
    },
  },
];

function randomKey(): string {
  return randomBytes(20).toString('hex');
}

const T0 = Date.parse('2026-11-27T14:00:00.000Z');
const DAY = 86_400_000;
const LATEST = MIGRATIONS.at(-1)!.version;
const ALL_VERSIONS = MIGRATIONS.map((m) => m.version);

for (const backend of backends) {
  const name = (what: string) => `hostmeta store (${backend.name}): ${what}`;
  const options = { skip: backend.skip };

  test(name('get, put (upsert), delete'), options, async (t) => {
    const store = (await backend.database(t)).open();
    await store.open();
    const key = randomKey();
    assert.equal(await store.get('acme', key), null);

    const first = { hostname: 'web-1', labels: { role: 'web' }, rack: 7 };
    await store.put('acme', key, first, T0);
    assert.deepEqual(await store.get('acme', key), { key, metadata: first, updatedAt: T0 });

    // A put replaces the whole document: fields it leaves out are gone.
    await store.put('acme', key, { hostname: 'web-1b' }, T0 + 1000);
    assert.deepEqual(await store.get('acme', key), { key, metadata: { hostname: 'web-1b' }, updatedAt: T0 + 1000 });

    assert.equal(await store.delete('acme', key), true);
    assert.equal(await store.get('acme', key), null);
    assert.equal(await store.delete('acme', key), false, 'nothing left to delete');
  });

  test(name('create only when absent leaves an existing document alone'), options, async (t) => {
    const store = (await backend.database(t)).open();
    await store.open();
    const key = randomKey();
    assert.equal(await store.create('acme', key, { hostname: 'first' }, T0), true);
    assert.equal(await store.create('acme', key, { hostname: 'second' }, T0 + 1), false);
    assert.deepEqual(await store.get('acme', key), { key, metadata: { hostname: 'first' }, updatedAt: T0 });
  });

  test(name('getOrCreateMany: one call creates the missing, merges updates into the present, reads the rest, answers in order; concurrent overlapping batches create each host once'),
    options, async (t) => {
      const store = (await backend.database(t)).open();
      await store.open();
      const [known, fresh, readOnly, seen, big] = [randomKey(), randomKey(), randomKey(), randomKey(), randomKey()];
      await store.put('acme', known, { hostname: 'known', labels: { owner: 'ops' } }, T0);
      await store.put('acme', seen, { hostname: 'seen', labels: { owner: 'ops' }, last_seen: '2026-11-20T00:00:00Z' }, T0);
      await store.put('acme', big, { hostname: 'big', blob: 'x'.repeat(150) }, T0);
      await store.put('other', fresh, { hostname: 'of another tenant' }, T0);
      const sighting = { hostname: 'seen-again', last_seen: '2026-11-27T14:00:09Z' };
      assert.deepEqual(await store.getOrCreateMany('acme', [
        { key: fresh, create: { hostname: 'fresh', last_seen: '2026-11-27T14:00:05Z' }, update: sighting },
        { key: known, create: { hostname: 'replaced?' } },
        { key: readOnly },
        { key: seen, create: { hostname: 'replaced?' }, update: { ...sighting, labels: null } },
        { key: big, update: { blob: 'x'.repeat(300) } },
      ], T0 + 10, 200), [
        { key: fresh, metadata: { hostname: 'fresh', last_seen: '2026-11-27T14:00:05Z' }, created: true },
        { key: known, metadata: { hostname: 'known', labels: { owner: 'ops' } }, created: false },
        { key: readOnly, metadata: null, created: false },
        { key: seen, metadata: { hostname: 'seen-again', last_seen: '2026-11-27T14:00:09Z' }, created: false },
        { key: big, metadata: { hostname: 'big', blob: 'x'.repeat(150) }, created: false },
      ]);
      assert.deepEqual(await store.get('acme', fresh), { key: fresh, metadata: { hostname: 'fresh', last_seen: '2026-11-27T14:00:05Z' }, updatedAt: T0 + 10 });
      assert.deepEqual(await store.get('acme', seen), { key: seen, metadata: { hostname: 'seen-again', last_seen: '2026-11-27T14:00:09Z' }, updatedAt: T0 + 10 },
        'an update merges into the present document, as a PATCH does');
      assert.deepEqual(await store.get('acme', big), { key: big, metadata: { hostname: 'big', blob: 'x'.repeat(150) }, updatedAt: T0 }, 'a merge over the limit writes nothing');
      assert.equal(await store.get('acme', readOnly), null);
      assert.deepEqual((await store.get('other', fresh))?.metadata, { hostname: 'of another tenant' }, 'tenants stay apart');
      // The batch's rows are indexed as seen like any other write: pruning finds them.
      assert.equal(await store.pruneUnseen(Date.parse('2026-11-27T14:00:06Z'), 10), 4, 'known and big (T0), fresh (its last_seen) and other\'s host; not seen (14:00:09)');

      // Batches sharing keys in opposite orders, at once: each host created exactly once, every answer its document.
      const keys = Array.from({ length: 200 }, randomKey);
      const batches = Array.from({ length: 8 }, (_, b) => {
        const order = b % 2 === 0 ? keys : [...keys].reverse();
        return store.getOrCreateMany('acme', order.map((key) => ({ key, create: { hostname: `batch-${b}` }, update: { [`seen_by_${b}`]: true } })), T0, 65536);
      });
      const answers = (await Promise.all(batches)).flat();
      assert.equal(answers.filter((a) => a.created).length, keys.length);
      for (const key of keys) {
        const stored = (await store.get('acme', key))!.metadata;
        // The creating batch wrote its document; each other batch merged its update in: nothing was lost.
        const creator = Number(String(stored.hostname).slice('batch-'.length));
        const others = Array.from({ length: 8 }, (_, b) => b).filter((b) => b !== creator);
        assert.deepEqual(stored, { hostname: `batch-${creator}`, ...Object.fromEntries(others.map((b) => [`seen_by_${b}`, true])) },
          `${key}: created once, updated by every other batch`);
      }
    });

  test(name('merge replaces top-level fields, null removes one, a missing document is created, too large writes nothing'),
    options, async (t) => {
      const store = (await backend.database(t)).open();
      await store.open();
      const key = randomKey();
      assert.equal(await store.merge('acme', key, { last_seen: '2026-11-27T14:00:00.000Z' }, T0, 65536), 'created');
      assert.deepEqual((await store.get('acme', key))?.metadata, { last_seen: '2026-11-27T14:00:00.000Z' });

      await store.put('acme', key, { hostname: 'db-1', labels: { env: 'prod', team: 'data' }, owner: 'ops' }, T0);
      assert.equal(await store.merge('acme', key, { labels: { env: 'staging' }, owner: null, last_seen: 'x' }, T0 + 5, 65536), 'updated');
      assert.deepEqual(await store.get('acme', key), {
        key, metadata: { hostname: 'db-1', labels: { env: 'staging' }, last_seen: 'x' }, updatedAt: T0 + 5,
      });

      assert.equal(await store.merge('acme', key, { blob: 'x'.repeat(200) }, T0 + 9, 200), 'too_large');
      assert.deepEqual((await store.get('acme', key))?.updatedAt, T0 + 5, 'a refused merge changes nothing');
      assert.equal(await store.merge('acme', randomKey(), { blob: 'x'.repeat(200) }, T0, 200), 'too_large');
    });

  test(name('concurrent merges of one missing document all land'), options, async (t) => {
    const store = (await backend.database(t)).open();
    await store.open();
    const key = randomKey();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.merge('acme', key, { [`field_${i}`]: i }, T0, 65536)));
    assert.equal(results.filter((r) => r === 'created').length, 1);
    assert.equal(results.filter((r) => r === 'updated').length, 19);
    const metadata = (await store.get('acme', key))?.metadata ?? {};
    assert.equal(Object.keys(metadata).length, 20, 'no merge lost another one\'s field');
  });

  test(name('listing pages through 250 hosts in key order'), options, async (t) => {
    const store = (await backend.database(t)).open();
    await store.open();
    const keys = Array.from({ length: 250 }, randomKey);
    for (const key of keys) await store.put('acme', key, { hostname: `h-${key.slice(0, 6)}` }, T0);
    await store.put('other', randomKey(), { hostname: 'not acme' }, T0);
    keys.sort();

    const seen: string[] = [];
    const pageSizes: number[] = [];
    let after: string | null = null;
    for (;;) {
      const page = await store.list('acme', after, 100);
      pageSizes.push(page.length);
      if (page.length === 0) break;
      seen.push(...page.map((h) => h.key));
      after = page.at(-1)!.key;
    }
    assert.deepEqual(pageSizes, [100, 100, 50, 0]);
    assert.deepEqual(seen, keys);
    const first = (await store.list('acme', null, 1))[0];
    assert.deepEqual(first, { key: keys[0], metadata: { hostname: `h-${keys[0]!.slice(0, 6)}` }, updatedAt: T0 });
  });

  test(name('tenants are isolated: one key under two tenants is two documents'), options, async (t) => {
    const store = (await backend.database(t)).open();
    await store.open();
    const key = randomKey();
    await store.put('tenant-a', key, { hostname: 'a' }, T0);
    await store.put('tenant-b', key, { hostname: 'b' }, T0);
    assert.deepEqual((await store.get('tenant-a', key))?.metadata, { hostname: 'a' });
    assert.deepEqual((await store.get('tenant-b', key))?.metadata, { hostname: 'b' });
    await store.merge('tenant-a', key, { hostname: 'a2' }, T0, 65536);
    assert.equal(await store.delete('tenant-b', key), true);
    assert.deepEqual((await store.get('tenant-a', key))?.metadata, { hostname: 'a2' });
    assert.deepEqual((await store.list('tenant-a', null, 10)).map((h) => h.key), [key]);
    assert.deepEqual(await store.list('tenant-b', null, 10), []);
  });

  test(name('migrations: applied once, in order, idempotent on restart; a failing one is rolled back; a newer schema is refused'),
    options, async (t) => {
      const database = await backend.database(t);
      const first = database.open();
      assert.deepEqual(await first.open(), { applied: ALL_VERSIONS, version: LATEST });
      const key = randomKey();
      await first.put('acme', key, { hostname: 'kept' }, T0);
      await first.close();

      const restarted = database.open();
      assert.deepEqual(await restarted.open(), { applied: [], version: LATEST }, 'nothing to do on a restart');
      assert.deepEqual((await restarted.get('acme', key))?.metadata, { hostname: 'kept' });
      await restarted.close();

      const probe: Migration = {
        version: LATEST + 1, name: 'probe table', sqlite: 'CREATE TABLE probe_next (x INTEGER);', postgres: (s) => `CREATE TABLE ${s}.probe_next (x integer);`,
      };
      const broken: Migration = {
        version: LATEST + 2,
        name: 'broken',
        sqlite: 'CREATE TABLE probe_broken (x INTEGER); THIS IS NOT SQL;',
        postgres: (s) => `CREATE TABLE ${s}.probe_broken (x integer); THIS IS NOT SQL;`,
      };
      // Listed out of order on purpose: they are applied by number.
      const upgraded = database.open([broken, ...MIGRATIONS, probe]);
      await assert.rejects(upgraded.open(), /syntax error/);
      assert.equal(await database.tableExists('probe_next'), true, 'the probe migration committed before the broken one failed');
      assert.equal(await database.tableExists('probe_broken'), false, 'the failed migration left nothing behind');

      const atProbe = database.open([...MIGRATIONS, probe]);
      assert.deepEqual(await atProbe.open(), { applied: [], version: LATEST + 1 });
      assert.deepEqual((await atProbe.appliedMigrations()).map((m) => [m.version, m.name]),
        [...MIGRATIONS.map((m) => [m.version, m.name]), [LATEST + 1, 'probe table']]);
      await atProbe.close();

      await assert.rejects(database.open(MIGRATIONS).open(), SchemaTooNewError, 'an older sluice refuses a newer schema');
    });

  test(name('two stores opening a fresh database at once both succeed and migrate once'), options, async (t) => {
    const database = await backend.database(t);
    const stores = [database.open(), database.open(), database.open()];
    const reports = await Promise.all(stores.map((s) => s.open()));
    assert.deepEqual(reports.map((r) => r.applied).flat().sort((a, b) => a - b), ALL_VERSIONS, 'each migration applied by exactly one of them');
    assert.deepEqual((await stores[0]!.appliedMigrations()).map((m) => m.version), ALL_VERSIONS);
    const key = randomKey();
    await stores[1]!.put('acme', key, { hostname: 'shared' }, T0);
    assert.deepEqual((await stores[2]!.get('acme', key))?.metadata, { hostname: 'shared' });
  });

  test(name('pruneUnseen deletes hosts of every tenant last seen before the cutoff, oldest first, at most limit at a time'),
    options, async (t) => {
      const store = (await backend.database(t)).open();
      await store.open();
      const cutoff = T0 - 7 * DAY;
      const iso = (ms: number) => new Date(ms).toISOString();
      const hosts = {
        tenDays: ['acme', randomKey()], nineDaysNoLastSeen: ['acme', randomKey()], eightDays: ['other', randomKey()],
        refreshed: ['acme', randomKey()], droppedLastSeen: ['other', randomKey()], oneDay: ['acme', randomKey()],
        atCutoffWithOffset: ['acme', randomKey()], notATime: ['other', randomKey()], dayTheMonthLacks: ['acme', randomKey()],
      } as const;
      await store.put(...hosts.tenDays, { hostname: 'a', last_seen: iso(T0 - 10 * DAY) }, T0);
      await store.put(...hosts.nineDaysNoLastSeen, { hostname: 'b' }, T0 - 9 * DAY);
      assert.equal(await store.create(...hosts.eightDays, { last_seen: iso(T0 - 8 * DAY) }, T0), true);
      await store.put(...hosts.refreshed, { last_seen: iso(T0 - 30 * DAY) }, T0 - 30 * DAY);
      assert.equal(await store.merge(...hosts.refreshed, { last_seen: iso(T0 - DAY) }, T0 - DAY, 65536), 'updated');
      await store.put(...hosts.droppedLastSeen, { last_seen: iso(T0) }, T0 - 20 * DAY);
      assert.equal(await store.merge(...hosts.droppedLastSeen, { last_seen: null }, T0 - 7.5 * DAY, 65536), 'updated');
      await store.put(...hosts.oneDay, { last_seen: iso(T0 - DAY) }, T0 - 60 * DAY);
      // 16:00+02:00 is 14:00Z: exactly the cutoff, which is not before it.
      await store.put(...hosts.atCutoffWithOffset, { last_seen: '2026-11-20T16:00:00.000+02:00' }, T0 - 60 * DAY);
      // A last_seen that is no time counts as the last write (PATCH validates it; PUT leaves unknown formats alone).
      await store.put(...hosts.notATime, { last_seen: 'yesterday' }, T0 - DAY);
      await store.put(...hosts.dayTheMonthLacks, { last_seen: '2026-11-31T00:00:00Z' }, T0 - 7.2 * DAY);

      assert.equal(await store.pruneUnseen(cutoff, 2), 2);
      assert.equal(await store.get(...hosts.tenDays), null, 'the longest unseen went first');
      assert.equal(await store.get(...hosts.nineDaysNoLastSeen), null, 'no last_seen: its last write counts');
      assert.notEqual(await store.get(...hosts.eightDays), null, 'left for the next batch');
      assert.equal(await store.pruneUnseen(cutoff, 100), 3);
      assert.equal(await store.get(...hosts.eightDays), null, 'another tenant: pruned too');
      assert.equal(await store.get(...hosts.dayTheMonthLacks), null, 'November 31st is no time: its last write counts');
      assert.equal(await store.get(...hosts.droppedLastSeen), null, 'last_seen removed by a merge: its write time counts');
      for (const kept of [hosts.refreshed, hosts.oneDay, hosts.atCutoffWithOffset, hosts.notATime]) {
        assert.notEqual(await store.get(kept[0], kept[1]), null, `kept: ${kept.join('/')}`);
      }
      assert.equal(await store.pruneUnseen(cutoff, 100), 0, 'nothing left before the cutoff');
      assert.equal(await store.pruneUnseen(cutoff + 1, 100), 1, 'one ms later the host at the cutoff goes');
    });

  test(name('migration 2 computes seen_at of the hosts a schema-1 database holds as the stores write it'), options, async (t) => {
    const database = await backend.database(t);
    const oldWrite = Date.parse('2026-11-04T00:00:00Z');
    const rows = [
      { name: 'old, Z', metadata: { last_seen: '2026-11-01T00:00:00Z' }, updatedAt: T0 },
      { name: 'old, offset and nanoseconds', metadata: { last_seen: '2026-11-02T02:00:00.123999999+02:00' }, updatedAt: T0 },
      { name: 'no last_seen, old write', metadata: { hostname: 'h' }, updatedAt: Date.parse('2026-11-03T00:00:00Z') },
      // Each of these would be kept (or go at the first cutoff) if it were taken for a time.
      ...[
        'x', 5, '2026-11-31T00:00:00Z', '2026-11-26T23:59:60Z', '2026-11-26T24:00:00Z', '0000-01-01T00:00:00Z', '2026-11-26',
        '2026-11-26T00:00:00', '2026-11-26 00:00:00Z', '2026-11-26T00:00:00+24:00',
      ].map((lastSeen) => ({ name: `not a time: ${lastSeen}`, metadata: { last_seen: lastSeen }, updatedAt: oldWrite })),
      { name: 'recent', metadata: { last_seen: '2026-11-26T00:00:00Z' }, updatedAt: Date.parse('2026-11-01T00:00:00Z') },
    ].map((r, i) => ({ ...r, tenant: i % 2 === 0 ? 'acme' : 'other', key: randomKey() }));
    await database.atVersionOne(rows);
    const store = database.open();
    assert.deepEqual(await store.open(), { applied: ALL_VERSIONS.filter((v) => v > 1), version: LATEST });
    const remaining = async () => (await Promise.all(rows.map(async (r) => ((await store.get(r.tenant, r.key)) === null ? null : r.name)))).filter((n) => n !== null);
    // Each step of the cutoff passes exactly one more host.
    assert.equal(await store.pruneUnseen(Date.parse('2026-11-01T00:00:00Z'), 100), 0);
    assert.equal(await store.pruneUnseen(Date.parse('2026-11-01T00:00:00.001Z'), 100), 1);
    assert.equal(await store.pruneUnseen(Date.parse('2026-11-02T00:00:00.123Z'), 100), 0, 'the offset applied, the digits past the millisecond cut');
    assert.equal(await store.pruneUnseen(Date.parse('2026-11-02T00:00:00.124Z'), 100), 1);
    assert.equal(await store.pruneUnseen(Date.parse('2026-11-03T12:00:00Z'), 100), 1);
    assert.equal(await store.pruneUnseen(Date.parse('2026-11-04T12:00:00Z'), 100), 10, 'the last write counts for each that is no time');
    assert.deepEqual(await remaining(), ['recent']);
    const recent = rows.at(-1)!;
    assert.deepEqual((await store.get(recent.tenant, recent.key))?.metadata, recent.metadata, 'documents are as they were');
  });

  test(name('ping answers; close is safe twice'), options, async (t) => {
    const store = (await backend.database(t)).open();
    await store.open();
    await store.ping();
    await store.close();
    await store.close();
  });
}

test('hostmeta store (postgres): opens in a schema a DBA created, as a user who may not create schemas', { skip: postgresSkip }, async (t) => {
  const suffix = randomBytes(6).toString('hex');
  const role = `hostmeta_test_role_${suffix}`;
  const schema = `hostmeta_test_${suffix}`;
  const admin = new pg.Client({ connectionString: withDefaultUser(POSTGRES_URL) });
  await admin.connect();
  await admin.query(`CREATE ROLE "${role}" LOGIN`);
  await admin.query(`CREATE SCHEMA "${schema}" AUTHORIZATION "${role}"`);
  t.after(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.query(`DROP ROLE IF EXISTS "${role}"`);
    await admin.end();
  });
  const url = new URL(POSTGRES_URL);
  url.username = role;
  const store = new PostgresHostmetaStore({ url: url.href, schema, poolSize: 2 });
  t.after(() => store.close());
  const { rows } = await admin.query('SELECT has_database_privilege($1, current_database(), \'CREATE\') AS can_create', [role]);
  assert.equal(rows[0].can_create, false, 'the role really lacks CREATE on the database');
  assert.deepEqual(await store.open(), { applied: ALL_VERSIONS, version: LATEST });
  const key = randomKey();
  await store.put('acme', key, { hostname: 'h' }, T0);
  assert.deepEqual((await store.get('acme', key))?.metadata, { hostname: 'h' });
});
