/**
 * Re-sync of an unchanged corpus with `ingestDocuments` (documents/s): 2,000 documents of 10
 * paragraphs (20k chunks, 12k distinct) are synced once, then re-synced unchanged 5 times with
 * `cleanup: 'incremental'`; prints the median documents/s of the re-syncs and the first sync's.
 * Not yet a bench/run.ts scenario and no LangChain contender (its `index()` needs pgvector,
 * reachable here only through pglite-socket).
 *
 *   DATABASE_URL=postgres://... npx tsx bench/resync.ts            # the server
 *   npx tsx bench/resync.ts --pglite                                # embedded, in memory
 */
import { randomBytes } from 'node:crypto';
import { ingestDocuments } from '@hartonomous/pipelines/documents';
import { openDatabase } from '@hartonomous/pipelines/postgres';

const pglite = process.argv.includes('--pglite');
const schema = `bench_resync_${randomBytes(3).toString('hex')}`;
const db = pglite
  ? await openDatabase({ dataDir: 'memory://' })
  : await openDatabase({
      url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
      schema,
    });
try {
  const docs = Array.from({ length: 2_000 }, (_, d) => ({
    id: `doc-${d}.md`,
    content: Array.from(
      { length: 10 },
      (_, p) => `Paragraph ${(d * 10 + p) % 12_000} of the bench corpus, about topic ${p}.`,
    ).join('\n\n'),
  }));
  const options = { db, collection: 'bench', cleanup: 'incremental' as const };
  const first = await ingestDocuments(docs, options);
  console.log(
    `first sync: ${first.added} documents, ${first.atomsAdded} atoms, ${first.documentsPerSecond.toFixed(0)} documents/s`,
  );
  const rates: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await ingestDocuments(docs, options);
    if (r.unchanged !== docs.length)
      throw new Error(`expected all unchanged, got ${JSON.stringify(r)}`);
    rates.push(r.documentsPerSecond);
  }
  rates.sort((a, b) => a - b);
  console.log(
    `unchanged re-sync (${pglite ? 'pglite' : 'server'}): median ${rates[2]!.toFixed(0)} documents/s (min ${rates[0]!.toFixed(0)}, max ${rates[4]!.toFixed(0)})`,
  );
} finally {
  if (!pglite) await db.orm.em.getConnection().execute(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await db.close();
}
