import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { persistAtoms } from '../../lib/atoms/persist-atoms.js';
import {
  isDatabaseSettingsMismatchError,
  isSchemaOutdatedError,
  isSchemaTooNewError,
  isVectorExtensionUnavailableError,
  type SchemaTooNewError,
} from '../../lib/postgres/errors.js';
import { migrate } from '../../lib/postgres/migrate.js';
import { type Migration, migrations } from '../../lib/postgres/migrations/index.js';
import { openDatabase } from '../../lib/postgres/open-database.js';
import {
  databaseSuite,
  dropSchemaAndClose,
  SERVER_URL,
  serverUnavailableReason,
  uniqueSchema,
} from '../support/databases.js';

const KNOWN = migrations.at(-1)!.id;
const suite = await databaseSuite('migrate');
const serverDown = await serverUnavailableReason();
const serverTest = serverDown ? test.skip : test;

async function tableNames(db: Awaited<ReturnType<typeof openDatabase>>): Promise<string[]> {
  const rows: { table_name: string }[] = await db.orm.em
    .getConnection()
    .execute(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name',
      [db.schema],
    );
  return rows.map((r) => r.table_name);
}

suite.test(
  'migrations apply: every table and one schema_migrations row per migration',
  async (t, db) => {
    t.is(db.schemaVersion, KNOWN);
    t.is(db.knownVersion, KNOWN);
    const tables = await tableNames(db);
    for (const name of [
      'atom_claims',
      'atoms',
      'outbox',
      'pipeline_settings',
      'schema_migrations',
    ]) {
      t.true(tables.includes(name), `${name} in ${tables.join(', ')}`);
    }

    const rows: { version: number; name: string }[] = await db.orm.em
      .getConnection()
      .execute(`SELECT version, name FROM "${db.schema}".schema_migrations ORDER BY version`);
    t.deepEqual(
      rows.map((r) => [r.version, r.name]),
      migrations.map((m) => [m.id, m.name]),
    );
    t.is(db.embeddingDimensions, 384);
  },
);

suite.test('migrate is idempotent', async (t, db) => {
  const again = await migrate(db);
  t.deepEqual(again, { from: KNOWN, to: KNOWN, applied: [] });
  t.is(db.schemaVersion, KNOWN);
});

suite.test(
  'vector storage follows the extension: pgvector on PGlite (also by URL), detected on the server',
  async (t, db, backend) => {
    if (backend !== 'postgres') {
      t.is(db.vectorStorage, 'pgvector');
      return;
    }
    const rows: unknown[] = await db.orm.em
      .getConnection()
      .execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'");
    t.is(db.vectorStorage, rows.length > 0 ? 'pgvector' : 'bytea');
  },
);

test('migration lists must be numbered 1, 2, 3, ... (TypeError)', async (t) => {
  const bad: Migration[] = [...migrations, { id: KNOWN + 2, name: 'gap', up: () => [] }];
  await t.throwsAsync(openDatabase({ dataDir: 'memory://', migrations: bad }), {
    instanceOf: TypeError,
    message: /ids must be 1, 2, 3/,
  });
});

serverTest('concurrent opens of one new schema migrate it exactly once', async (t) => {
  const schema = uniqueSchema('concurrent');
  const dbs = await Promise.all(
    Array.from({ length: 4 }, () => openDatabase({ url: SERVER_URL, schema, poolSize: 2 })),
  );
  try {
    for (const db of dbs) t.is(db.schemaVersion, KNOWN);
    const rows: { n: string }[] = await dbs[0]!.orm.em
      .getConnection()
      .execute(`SELECT count(*) AS n FROM "${schema}".schema_migrations`);
    t.is(Number(rows[0]!.n), KNOWN);
    const results = await Promise.all(dbs.map((db) => migrate(db)));
    t.true(results.every((r) => r.applied.length === 0));
  } finally {
    await Promise.all(dbs.slice(1).map((db) => db.close()));
    await dropSchemaAndClose(dbs[0]!, schema);
  }
});

test('concurrent migrate() calls on one PGlite apply each migration once', async (t) => {
  const db = await openDatabase({ dataDir: 'memory://', migrate: false });
  try {
    t.is(db.schemaVersion, 0);
    const results = await Promise.all([migrate(db), migrate(db), migrate(db)]);
    t.is(
      results.reduce((n, r) => n + r.applied.length, 0),
      KNOWN,
    );
    t.is(db.schemaVersion, KNOWN);
  } finally {
    await db.close();
  }
});

serverTest(
  'a schema newer than the library fails with SchemaTooNewError (found/known)',
  async (t) => {
    const schema = uniqueSchema('toonew');
    const extra: Migration = {
      id: KNOWN + 1,
      name: 'from-the-future',
      up: () => 'CREATE TABLE future (id int)',
    };
    const newer = await openDatabase({
      url: SERVER_URL,
      schema,
      migrations: [...migrations, extra],
    });
    t.is(newer.schemaVersion, KNOWN + 1);
    try {
      const e = await t.throwsAsync<SchemaTooNewError>(openDatabase({ url: SERVER_URL, schema }));
      t.true(isSchemaTooNewError(e));
      t.is(e?.found, KNOWN + 1);
      t.is(e?.known, KNOWN);
      t.is(e?.schema, schema);
      t.regex(e?.message ?? '', /newer/);
      // migrate: false fails the same way: the check is made on every open.
      const e2 = await t.throwsAsync(openDatabase({ url: SERVER_URL, schema, migrate: false }));
      t.true(isSchemaTooNewError(e2));
    } finally {
      await dropSchemaAndClose(newer, schema);
    }
  },
);

test('a PGlite data folder keeps its schema across opens; a newer one is refused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hartonomous-pglite-'));
  try {
    const first = await openDatabase({ dataDir: dir });
    t.is(first.schemaVersion, KNOWN);
    await first.orm.em
      .getConnection()
      .execute(`INSERT INTO schema_migrations (version, name) VALUES (${KNOWN + 1}, 'future')`);
    await first.close();
    const e = await t.throwsAsync<SchemaTooNewError>(openDatabase({ dataDir: dir }));
    t.true(isSchemaTooNewError(e));
    t.is(e?.found, KNOWN + 1);
    t.is(e?.known, KNOWN);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

serverTest(
  'migrate: false opens an empty schema; the hot path then asks for migrate()',
  async (t) => {
    const schema = uniqueSchema('nomigrate');
    const db = await openDatabase({ url: SERVER_URL, schema, migrate: false });
    try {
      t.is(db.schemaVersion, 0);
      t.throws(() => db.embeddingDimensions, { message: /run migrate/ });
      const e = await t.throwsAsync(persistAtoms(db, []));
      t.true(isSchemaOutdatedError(e));
      const result = await migrate(db);
      t.is(result.from, 0);
      t.is(result.to, KNOWN);
      t.deepEqual(
        result.applied.map((m) => m.id),
        migrations.map((m) => m.id),
      );
      t.deepEqual(await persistAtoms(db, []), { inserted: [], duplicates: [] });
    } finally {
      await dropSchemaAndClose(db, schema);
    }
  },
);

serverTest('dimensions are fixed at creation: reopening with others fails clearly', async (t) => {
  const schema = uniqueSchema('dims');
  const db = await openDatabase({ url: SERVER_URL, schema, dimensions: 16 });
  try {
    t.is(db.embeddingDimensions, 16);
    const e = await t.throwsAsync(openDatabase({ url: SERVER_URL, schema, dimensions: 32 }));
    t.true(isDatabaseSettingsMismatchError(e));
    t.like(e, { setting: 'embeddingDimensions', requested: 32, stored: 16 });
    const same = await openDatabase({ url: SERVER_URL, schema });
    t.is(same.embeddingDimensions, 16);
    await same.close();
  } finally {
    await dropSchemaAndClose(db, schema);
  }
});

serverTest("vector: 'pgvector' where the server has no pgvector fails clearly", async (t) => {
  const probe = await openDatabase({
    url: SERVER_URL,
    schema: uniqueSchema('probe'),
    migrate: false,
  });
  const rows: unknown[] = await probe.orm.em
    .getConnection()
    .execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'");
  await probe.close();
  if (rows.length > 0) {
    t.pass('this server has pgvector');
    return;
  }
  const schema = uniqueSchema('novector');
  const e = await t.throwsAsync(openDatabase({ url: SERVER_URL, schema, vector: 'pgvector' }));
  t.true(isVectorExtensionUnavailableError(e));
  const cleanup = await openDatabase({ url: SERVER_URL, schema, migrate: false });
  await dropSchemaAndClose(cleanup, schema);
});
