import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { openDatabase } from '../../lib/postgres/open-database.js';

// This file changes the working directory and DATABASE_URL, so it runs alone in its process.
test.serial(
  'with no URL and no DATABASE_URL, PGlite opens in .data/pglite under the working directory',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'hartonomous-cwd-'));
    const cwd = process.cwd();
    const url = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
    process.chdir(dir);
    try {
      const db = await openDatabase();
      t.is(db.backend, 'pglite');
      t.is(db.vectorStorage, 'pgvector');
      await db.close();
      t.true(existsSync(join(dir, '.data', 'pglite', 'PG_VERSION')));
    } finally {
      process.chdir(cwd);
      if (url !== undefined) process.env.DATABASE_URL = url;
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test.serial('a DATABASE_URL in the environment selects the server', async (t) => {
  const url = process.env.DATABASE_URL;
  process.env.DATABASE_URL = 'postgres://postgres@127.0.0.1:1/none';
  try {
    const e = await t.throwsAsync(openDatabase());
    t.regex(String(e), /postgres database is unavailable/);
  } finally {
    if (url === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = url;
  }
});
