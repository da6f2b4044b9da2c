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
  }>;
}

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
      };
    },
  },
];

function randomKey(): string {
  return randomBytes(20).toString('hex');
}

const T0 = Date.parse('2026-11-27T14:00:00.000Z');

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
      assert.deepEqual(await first.open(), { applied: [1], version: 1 });
      const key = randomKey();
      await first.put('acme', key, { hostname: 'kept' }, T0);
      await first.close();

      const restarted = database.open();
      assert.deepEqual(await restarted.open(), { applied: [], version: 1 }, 'nothing to do on a restart');
      assert.deepEqual((await restarted.get('acme', key))?.metadata, { hostname: 'kept' });
      await restarted.close();

      const probe: Migration = {
        version: 2, name: 'probe table', sqlite: 'CREATE TABLE probe_two (x INTEGER);', postgres: (s) => `CREATE TABLE ${s}.probe_two (x integer);`,
      };
      const broken: Migration = {
        version: 3,
        name: 'broken',
        sqlite: 'CREATE TABLE probe_three (x INTEGER); THIS IS NOT SQL;',
        postgres: (s) => `CREATE TABLE ${s}.probe_three (x integer); THIS IS NOT SQL;`,
      };
      // Listed out of order on purpose: they are applied by number.
      const upgraded = database.open([broken, ...MIGRATIONS, probe]);
      await assert.rejects(upgraded.open(), /syntax error/);
      assert.equal(await database.tableExists('probe_two'), true, 'migration 2 committed before 3 failed');
      assert.equal(await database.tableExists('probe_three'), false, 'the failed migration left nothing behind');

      const atTwo = database.open([...MIGRATIONS, probe]);
      assert.deepEqual(await atTwo.open(), { applied: [], version: 2 });
      assert.deepEqual((await atTwo.appliedMigrations()).map((m) => [m.version, m.name]), [[1, 'host_metadata table'], [2, 'probe table']]);
      await atTwo.close();

      await assert.rejects(database.open(MIGRATIONS).open(), SchemaTooNewError, 'an older sluice refuses a newer schema');
    });

  test(name('two stores opening a fresh database at once both succeed and migrate once'), options, async (t) => {
    const database = await backend.database(t);
    const stores = [database.open(), database.open(), database.open()];
    const reports = await Promise.all(stores.map((s) => s.open()));
    assert.deepEqual(reports.map((r) => r.applied).flat(), [1], 'exactly one of them applied migration 1');
    assert.deepEqual((await stores[0]!.appliedMigrations()).map((m) => m.version), [1]);
    const key = randomKey();
    await stores[1]!.put('acme', key, { hostname: 'shared' }, T0);
    assert.deepEqual((await stores[2]!.get('acme', key))?.metadata, { hostname: 'shared' });
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
  assert.deepEqual(await store.open(), { applied: [1], version: 1 });
  const key = randomKey();
  await store.put('acme', key, { hostname: 'h' }, T0);
  assert.deepEqual((await store.get('acme', key))?.metadata, { hostname: 'h' });
});
