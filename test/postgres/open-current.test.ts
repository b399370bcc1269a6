import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { type Migration, migrations } from '../../lib/postgres/migrations/index.js';
import { openDatabase } from '../../lib/postgres/open-database.js';
import { runScript } from '../support/child-process.js';

const KNOWN = migrations.at(-1)?.id ?? 0;

const extra: Migration = {
  id: KNOWN + 1,
  name: 'app-notes',
  up: () => ['CREATE TABLE app_notes (id serial PRIMARY KEY, note text NOT NULL)'],
};

test('opening a current PGlite folder runs no DDL; an older one is still migrated', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hartonomous-current-'));
  try {
    const first = await openDatabase({ dataDir: dir });
    // From now on any DDL statement fails: an event trigger raises on every command's start.
    await first.orm.em.getConnection().execute(
      `CREATE FUNCTION refuse_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'DDL refused: %', tg_tag; END $$;
       CREATE EVENT TRIGGER refuse_ddl ON ddl_command_start EXECUTE FUNCTION refuse_ddl()`,
    );
    await first.close();

    const current = await openDatabase({ dataDir: dir });
    t.is(current.schemaVersion, KNOWN);
    t.is(current.vectorStorage, 'pgvector');
    t.is(current.embeddingDimensions, 384);
    await current.close();
    const readOnly = await openDatabase({ dataDir: dir, migrate: false });
    t.is(readOnly.schemaVersion, KNOWN);
    await readOnly.close();

    // a migration the folder lacks is applied as before (here refused by the trigger, then
    // applied once the trigger is gone)
    await t.throwsAsync(openDatabase({ dataDir: dir, migrations: [...migrations, extra] }), {
      message: /DDL refused: CREATE TABLE/,
    });
    const fixer = await openDatabase({ dataDir: dir });
    await fixer.orm.em.getConnection().execute('DROP EVENT TRIGGER refuse_ddl');
    await fixer.close();
    const newer = await openDatabase({ dataDir: dir, migrations: [...migrations, extra] });
    t.is(newer.schemaVersion, KNOWN + 1);
    await newer.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** Bytes of a folder (files only, recursively). */
async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

test('a closed PGlite folder keeps little WAL after writing more than a segment of it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hartonomous-wal-'));
  try {
    const db = await openDatabase({ dataDir: dir });
    const conn = db.orm.em.getConnection();
    await conn.execute('CREATE TABLE filler (id serial PRIMARY KEY, body text NOT NULL)');
    // rows written and deleted: WAL well past several segments
    for (let i = 0; i < 3; i++) {
      await conn.execute(
        'INSERT INTO filler (body) SELECT md5(g::text) FROM generate_series(1, 100000) g',
      );
      await conn.execute('DELETE FROM filler');
    }
    const walWritten = await conn.execute<{ bytes: string }[]>(
      "SELECT (pg_current_wal_lsn() - '0/0')::text AS bytes",
    );
    await db.close();
    const wal = await folderBytes(join(dir, 'pg_wal'));
    t.log(`WAL position ${walWritten[0]?.bytes} bytes; pg_wal after close ${wal} bytes`);
    // PostgreSQL's defaults keep up to 80MB of WAL for reuse (16MB segments); what is left
    // after close here is the segment in use and perhaps one prepared after it.
    t.true(wal <= 4 * 1024 * 1024, `pg_wal holds ${wal} bytes after close`);
    t.true(Number(walWritten[0]?.bytes) > wal, 'more WAL was written than is kept');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('orm: false opens PGlite without loading MikroORM or knex; the hot path works on its one session', async (t) => {
  const child = runScript(
    fileURLToPath(new URL('../support/open-without-orm.ts', import.meta.url)),
    {},
    { bundle: false },
  );
  const line = await child.line('{', 110_000);
  await child.exited;
  const result = JSON.parse(line) as {
    added: number;
    stored: number;
    hits: number;
    ormError: string;
    loaded: string[];
  };
  t.deepEqual(result.loaded, []);
  t.is(result.ormError, 'TypeError');
  // 40 distinct texts, ingested twice at once: each stored once, counted once
  t.is(result.stored, 40);
  t.is(result.added, 40);
  t.is(result.hits, 5);
});
