// The floor of a search on the embedded database, for the `embedded` scenario: plain Node (no
// tsx, no library code) opening PGlite with pgvector on a folder, one exact top-10 query of a
// fixed vector, close, with the same PostgreSQL settings the library passes (PGLITE_SETTINGS in
// lib/postgres/open-database.ts). Usage: node bench/scenarios/embedded-floor.mjs <dataDir>
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';

const settings = [
  'shared_buffers=32MB',
  'full_page_writes=off',
  'wal_recycle=off',
  'max_wal_size=128MB',
];
const pglite = await PGlite.create(process.argv[2], {
  extensions: { vector },
  startParams: [...PGlite.defaultStartParams, ...settings.flatMap((s) => ['-c', s])],
});
const v = `[${Array.from({ length: 384 }, (_, i) => Math.sin(i).toFixed(4)).join(',')}]`;
const { rows } = await pglite.query(
  'SELECT id, content FROM atoms WHERE embedding IS NOT NULL ORDER BY embedding <=> $1::vector, id LIMIT 10',
  [v],
);
await pglite.close();
console.log(JSON.stringify({ hits: rows.length }));
