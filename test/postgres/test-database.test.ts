/**
 * The test suite's own database: the one `DATABASE_URL` names is created when the server says
 * it does not exist (instead of every server test failing with 3D000), also when several test
 * files start at once.
 */

import { randomBytes } from 'node:crypto';
import { knex } from '@mikro-orm/postgresql';
import test from 'ava';
import { isDatabaseDoesNotExistError } from '../../lib/postgres/connection-errors.js';
import { openDatabase } from '../../lib/postgres/open-database.js';
import { ensureServerDatabase, SERVER_URL, serverUnavailableReason } from '../support/databases.js';

const serverTest = (await serverUnavailableReason()) ? test.skip : test;

serverTest('a missing DATABASE_URL database is created, once, by concurrent callers', async (t) => {
  const name = `test_created_${randomBytes(4).toString('hex')}`;
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  const admin = knex({ client: 'pg', connection: SERVER_URL, pool: { min: 0, max: 1 } });
  try {
    const missing = await t.throwsAsync(openDatabase({ url: url.toString(), migrate: false }));
    t.true(isDatabaseDoesNotExistError(missing), String(missing));
    await Promise.all([1, 2, 3].map(() => ensureServerDatabase(url)));
    const db = await openDatabase({ url: url.toString() });
    t.is(db.backend, 'postgres');
    t.true(db.schemaVersion > 0);
    await db.close();
    // an existing database is left alone
    await ensureServerDatabase(url);
    const { rows } = await admin.raw<{ rows: { n: number }[] }>(
      'SELECT count(*)::int AS n FROM pg_database WHERE datname = ?',
      [name],
    );
    t.is(rows[0]?.n, 1);
  } finally {
    await admin.raw(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.destroy();
  }
});
