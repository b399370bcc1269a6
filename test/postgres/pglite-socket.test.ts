/**
 * PGlite served over the wire by @electric-sql/pglite-socket, opened by URL: one backend
 * session shared by every connection the pool ever makes. A connection that replaces an idle
 * one must be able to run the library's named prepared statements again.
 */

import test from 'ava';
import { findExistingHashes } from '../../lib/atoms/find-existing-hashes.js';
import { stateOf } from '../../lib/postgres/database.js';
import { openDatabase } from '../../lib/postgres/open-database.js';
import { startPgliteServer } from '../support/databases.js';

test('a replaced pool connection runs the prepared statements again (the session outlives it)', async (t) => {
  const server = await startPgliteServer();
  const db = await openDatabase({
    url: server.url,
    poolSize: 1,
    idleTimeoutMs: 100,
    connectTimeoutMs: 120_000,
  });
  try {
    t.is(db.vectorStorage, 'pgvector');
    const hash = 'a'.repeat(64);
    t.is((await findExistingHashes(db, [hash])).size, 0);
    // wait (event-driven, generous) until the idle connection is gone from the pool
    const pool = (stateOf(db).knex!.client as unknown as { pool: { numFree(): number } }).pool;
    const end = Date.now() + 60_000;
    while (pool.numFree() > 0) {
      if (Date.now() > end) throw new Error('the idle connection was never closed');
      await new Promise((r) => setTimeout(r, 50));
    }
    // a new connection, the same session: the statement prepared before still exists there
    t.is((await findExistingHashes(db, [hash])).size, 0);
  } finally {
    await db.close();
    await server.stop();
  }
});
