/**
 * Child script for the `orm: false` test: opens a new in-memory PGlite with `orm: false`,
 * ingests atoms (two ingests at once, so the one shared session is contended), searches, and
 * prints one JSON line: what was stored and found, whether `db.orm` threw a TypeError, and
 * which MikroORM or knex modules the process loaded (none expected).
 *
 * @internal
 * @module
 */
import { createRequire } from 'node:module';
import { ingest } from '../../lib/atoms/ingest.js';
import { localEmbedder } from '../../lib/atoms/local-embedder.js';
import { searchSimilar } from '../../lib/atoms/search-similar.js';
import { stateOf, withClient } from '../../lib/postgres/database.js';
import { openDatabase } from '../../lib/postgres/open-database.js';

const db = await openDatabase({ dataDir: 'memory://', orm: false });
let ormError = '';
try {
  void db.orm;
} catch (e) {
  ormError = e instanceof TypeError ? 'TypeError' : String(e);
}
const embedder = localEmbedder(db.embeddingDimensions);
const texts = (tag: string) =>
  Array.from({ length: 60 }, (_, i) => ({
    content: `${tag} paragraph ${i % 40} about copper rivers`,
  }));
const [a, b] = await Promise.all([
  ingest(texts('first'), { db, embedder, batchSize: 8 }),
  ingest(texts('first'), { db, embedder, batchSize: 8 }),
]);
const hits = await searchSimilar(db, 'copper rivers', 5, { embedder });
const stored = await withClient(stateOf(db), undefined, (client) =>
  client.query<{ n: number }>('SELECT count(*)::int AS n FROM atoms'),
);
await db.close();
const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) =>
  /node_modules\/(@mikro-orm|knex)\//.test(k),
);
console.log(
  JSON.stringify({
    added: (a?.added ?? 0) + (b?.added ?? 0),
    stored: stored.rows[0]?.n,
    hits: hits.length,
    ormError,
    loaded: loaded.slice(0, 5),
  }),
);
