/**
 * Search the atoms stored by examples/ingest-directory.ts for the paragraphs most similar to a
 * query. When the database holds no atoms yet, the example corpus (examples/corpus) is
 * ingested first, so this example also runs on its own.
 *
 *   npx tsx examples/search.ts [query words...]
 *
 * Database: DATABASE_URL when set, else the embedded PGlite in .data/example. With SMOKE=1
 * (CI) the run uses a throw-away database: a unique schema on DATABASE_URL, dropped at the
 * end, or an in-memory PGlite.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Atom, ingest, localEmbedder, searchSimilar } from '@hartonomous/pipelines/atoms';
import { textAtoms } from '@hartonomous/pipelines/cli';
import { openDatabase } from '@hartonomous/pipelines/postgres';

const root = new URL('..', import.meta.url).pathname;
const query =
  process.argv.slice(2).join(' ') || 'what to do when a consumer is slower than the producer';
const smoke = Boolean(process.env.SMOKE);
const url = process.env.DATABASE_URL || undefined;

const schema =
  smoke && url ? `example_${process.pid}_${randomBytes(3).toString('hex')}` : undefined;
const db = url
  ? await openDatabase({ url, ...(schema ? { schema } : {}) })
  : await openDatabase({ dataDir: smoke ? 'memory://' : join(root, '.data', 'example') });
try {
  const embedder = localEmbedder(db.embeddingDimensions);
  const stored = await db.orm.em.fork().count(Atom, { embeddingModel: embedder.model });
  if (stored === 0) {
    console.log('the database holds no atoms yet: ingesting examples/corpus first');
    const report = await ingest(
      await textAtoms([join(root, 'examples', 'corpus')], { cwd: root }),
      {
        db,
        embedder,
      },
    );
    console.log(
      `  ${report.added} atoms added, ${report.duplicates} duplicates, ${report.failed} failed`,
    );
  } else {
    console.log(`${stored} atoms in the ${db.backend} database`);
  }

  console.log(`\nsearch: "${query}"`);
  const hits = await searchSimilar(db, query, 5, { embedder, model: embedder.model });
  for (const [i, hit] of hits.entries()) {
    const snippet = hit.content.replace(/\s+/g, ' ');
    console.log(`${i + 1}. ${hit.similarity.toFixed(3)}  ${hit.sourceId}`);
    console.log(`   ${snippet.length > 100 ? `${snippet.slice(0, 99)}…` : snippet}`);
  }
  if (smoke && hits.length === 0) throw new Error('the search found nothing');
} finally {
  if (schema) await db.orm.em.getConnection().execute(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await db.close();
}
