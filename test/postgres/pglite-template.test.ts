/**
 * New embedded databases start from a migrated template: built once (by whichever opener gets
 * there first, safely when several build it at once), keyed so that changed migrations never
 * reuse a stale one, and giving a database equal to one migrated from scratch.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { stateOf, withClient } from '../../lib/postgres/database.js';
import { type Migration, migrations } from '../../lib/postgres/migrations/index.js';
import { openDatabase, PGLITE_INITDB_PARAMS } from '../../lib/postgres/open-database.js';
import {
  PGLITE_TEMPLATE_DIR_ENV,
  pgliteTemplateDir,
  pgliteTemplateKey,
} from '../../lib/postgres/pglite-template.js';

// Every test of this file uses its own template folders, named through the environment: the
// tests run one at a time.
const root = await mkdtemp(join(tmpdir(), 'hartonomous-templates-'));
const saved = process.env[PGLITE_TEMPLATE_DIR_ENV];
test.after.always(async () => {
  if (saved === undefined) delete process.env[PGLITE_TEMPLATE_DIR_ENV];
  else process.env[PGLITE_TEMPLATE_DIR_ENV] = saved;
  await rm(root, { recursive: true, force: true });
});

const spec = {
  migrations,
  schema: 'public',
  vectorStorage: 'pgvector' as const,
  embeddingDimensions: 384,
  initdbParams: PGLITE_INITDB_PARAMS,
};

const extra: Migration = {
  id: migrations.length + 1,
  name: 'app-notes',
  up: () => 'CREATE TABLE app_notes (id int PRIMARY KEY, note text NOT NULL)',
};

/** The tables of the schema, sorted, and the rows of schema_migrations and pipeline_settings. */
async function describe(db: Awaited<ReturnType<typeof openDatabase>>) {
  return withClient(stateOf(db), undefined, async (client) => {
    const tables = await client.query<{ t: string }>(
      `SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
    );
    const versions = await client.query<{ version: number; name: string }>(
      'SELECT version, name FROM schema_migrations ORDER BY version',
    );
    const settings = await client.query<{ key: string; value: string }>(
      'SELECT key, value::text AS value FROM pipeline_settings',
    );
    return {
      tables: tables.rows.map((r) => r.t),
      versions: versions.rows.map((r) => `${r.version}-${r.name}`),
      settings: settings.rows.map((r) => `${r.key}=${r.value}`).sort(),
    };
  });
}

const templatesIn = async (dir: string) => (existsSync(dir) ? (await readdir(dir)).sort() : []);

test('the key changes with the migrations, the storage and the dimensions, and only with them', (t) => {
  const key = pgliteTemplateKey(spec);
  t.regex(key, /^[0-9a-f]{32}$/);
  t.is(pgliteTemplateKey({ ...spec }), key);
  t.not(pgliteTemplateKey({ ...spec, migrations: [...migrations, extra] }), key);
  const edited = migrations.map((m, i) =>
    i === 1 ? { ...m, up: () => [...[m.up(spec)].flat(), 'SELECT 1'] } : m,
  );
  t.not(pgliteTemplateKey({ ...spec, migrations: edited }), key);
  t.not(pgliteTemplateKey({ ...spec, vectorStorage: 'bytea' }), key);
  t.not(pgliteTemplateKey({ ...spec, embeddingDimensions: 8 }), key);
  t.not(pgliteTemplateKey({ ...spec, schema: 'other' }), key);
});

test.serial(
  'the folder is the environment variable, node_modules/.cache, or a temporary one',
  (t) => {
    const cwd = process.cwd();
    delete process.env[PGLITE_TEMPLATE_DIR_ENV];
    t.is(pgliteTemplateDir(cwd), join(cwd, 'node_modules', '.cache', '@hartonomous', 'pipelines'));
    t.true(pgliteTemplateDir(root)?.startsWith(tmpdir()));
    process.env[PGLITE_TEMPLATE_DIR_ENV] = 'off';
    t.is(pgliteTemplateDir(cwd), undefined);
    process.env[PGLITE_TEMPLATE_DIR_ENV] = join(root, 'x');
    t.is(pgliteTemplateDir(cwd), join(root, 'x'));
  },
);

test.serial(
  'two opens at once build one template; later databases load it and equal a migrated one',
  async (t) => {
    const dir = join(root, 'concurrent');
    process.env[PGLITE_TEMPLATE_DIR_ENV] = dir;
    const key = pgliteTemplateKey(spec);
    const first = await Promise.all(
      [1, 2].map(() => openDatabase({ dataDir: 'memory://', orm: false })),
    );
    try {
      // every writer renamed a whole file of its own into place: one template, no temp files
      t.deepEqual(await templatesIn(dir), [`pglite-${key}.tar`]);
      const fromScratch = await describe(first[0]!);
      t.is(fromScratch.versions.length, migrations.length);

      const fromTemplate = await openDatabase({ dataDir: 'memory://', orm: false });
      try {
        t.is(fromTemplate.schemaVersion, migrations.length);
        t.is(fromTemplate.vectorStorage, 'pgvector');
        t.deepEqual(await describe(fromTemplate), fromScratch);
        // a copy, not a shared database: a row written here is not in another copy
        await withClient(stateOf(fromTemplate), undefined, (c) =>
          c.query(`INSERT INTO pipeline_settings (key, value) VALUES ('probe', '"x"')`),
        );
        t.deepEqual(await describe(first[1]!), fromScratch);
      } finally {
        await fromTemplate.close();
      }
    } finally {
      await Promise.all(first.map((db) => db.close()));
    }
  },
);

test.serial(
  'a new folder starts from the template and reopens as an ordinary database',
  async (t) => {
    // the folder of the test above: its template is loaded here (built when this test runs
    // alone), one initdb less
    const dir = join(root, 'concurrent');
    process.env[PGLITE_TEMPLATE_DIR_ENV] = dir;
    const dataDir = join(root, 'data-1');
    const built = await openDatabase({ dataDir: 'memory://', orm: false });
    const expected = await describe(built);
    await built.close();
    t.is((await templatesIn(dir)).length, 1);

    const db = await openDatabase({ dataDir, orm: false });
    await withClient(stateOf(db), undefined, (c) =>
      c.query(`INSERT INTO pipeline_settings (key, value) VALUES ('probe', '"kept"')`),
    );
    await db.close();
    t.true(existsSync(join(dataDir, 'PG_VERSION')));
    // one database in the folder (template0 and template1 dropped), and no WAL segments
    // recycled ahead by initdb: the WAL of a new folder is one or two 1 MB segments
    const segments = (await readdir(join(dataDir, 'pg_wal'))).filter((f) =>
      /^[0-9A-F]{24}$/.test(f),
    );
    t.true(segments.length <= 2, `WAL segments in a new folder: ${segments.join(', ')}`);
    const reopened = await openDatabase({ dataDir, orm: false });
    try {
      const now = await describe(reopened);
      t.deepEqual(now.tables, expected.tables);
      t.deepEqual(now.versions, expected.versions);
      t.deepEqual(now.settings, [...expected.settings, 'probe="kept"'].sort());
      const databases = await withClient(stateOf(reopened), undefined, (c) =>
        c.query<{ datname: string }>('SELECT datname FROM pg_database ORDER BY 1'),
      );
      t.deepEqual(
        databases.rows.map((r) => r.datname),
        ['postgres'],
      );
    } finally {
      await reopened.close();
    }
  },
);

test.serial('other migrations, storage or dimensions get a template of their own', async (t) => {
  const dir = join(root, 'variants');
  process.env[PGLITE_TEMPLATE_DIR_ENV] = dir;
  const withExtra = [...migrations, extra];
  for (let round = 0; round < 2; round++) {
    const db = await openDatabase({
      dataDir: 'memory://',
      orm: false,
      migrations: withExtra,
      vector: 'bytea',
      dimensions: 8,
    });
    try {
      t.is(db.schemaVersion, extra.id);
      t.is(db.vectorStorage, 'bytea');
      t.is(db.embeddingDimensions, 8);
      t.true((await describe(db)).tables.includes('app_notes'));
    } finally {
      await db.close();
    }
  }
  const key = pgliteTemplateKey({
    ...spec,
    migrations: withExtra,
    vectorStorage: 'bytea',
    embeddingDimensions: 8,
  });
  t.deepEqual(await templatesIn(dir), [`pglite-${key}.tar`]);
});

test.serial('migrate: false and an unwritable folder build nothing and still open', async (t) => {
  const dir = join(root, 'none');
  process.env[PGLITE_TEMPLATE_DIR_ENV] = dir;
  const bare = await openDatabase({ dataDir: 'memory://', orm: false, migrate: false });
  t.is(bare.schemaVersion, 0);
  await bare.close();
  t.deepEqual(await templatesIn(dir), []);

  // a folder that cannot be made (its parent is a file): the database still opens
  const blocked = join(root, 'a-file');
  await writeFile(blocked, 'not a folder');
  process.env[PGLITE_TEMPLATE_DIR_ENV] = join(blocked, 'templates');
  const db = await openDatabase({ dataDir: 'memory://', orm: false });
  t.is(db.schemaVersion, migrations.length);
  await db.close();
  t.false(existsSync(join(blocked, 'templates')));
});
