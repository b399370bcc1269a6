/**
 * Embedding model changes: `reembed` throughput (atoms/s) and what a search with a model costs
 * next to one without. 5,000 atoms are ingested with the local embedder (384 dimensions), then:
 * - 5 rounds of `reembed` into a fresh 64-dimension model each (the same work every round);
 *   median atoms/s;
 * - 5 interleaved rounds (contender order rotated each round) of 40 vector searches (k = 10)
 *   for each of: no model (the primary vectors, the path unchanged by migration 14), the primary
 *   model named (one `embedding_models` lookup more), and a model `reembed` added (the union of
 *   its vectors); median ms per search and the ratio to the first.
 *
 *   DATABASE_URL=postgres://... npx tsx bench/reembed.ts            # the server (bytea vectors)
 *   npx tsx bench/reembed.ts --pglite                                # embedded, in memory (pgvector)
 */
import { randomBytes } from 'node:crypto';
import { ingest, localEmbedder, searchSimilar } from '@hartonomous/pipelines/atoms';
import { reembed } from '@hartonomous/pipelines/documents';
import { openDatabase } from '@hartonomous/pipelines/postgres';

const pglite = process.argv.includes('--pglite');
const schema = `bench_reembed_${randomBytes(3).toString('hex')}`;
const db = pglite
  ? await openDatabase({ dataDir: 'memory://' })
  : await openDatabase({
      url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
      schema,
    });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
try {
  const ATOMS = 5_000;
  const primary = localEmbedder(db.embeddingDimensions);
  const words = ['cat', 'queue', 'retry', 'saga', 'vector', 'index', 'chunk', 'outbox', 'bus'];
  await ingest(
    Array.from({ length: ATOMS }, (_, i) => ({
      content: `atom ${i} about ${words[i % 9]} and ${words[(i * 7) % 9]}`,
    })),
    { db, embedder: primary },
  );
  const rates: number[] = [];
  let added = '';
  for (let round = 0; round < 5; round++) {
    const to = { ...localEmbedder(64), model: `bench-64-${round}` };
    const started = performance.now();
    const r = await reembed(db, { to, batchSize: 64 });
    if (r.embedded !== ATOMS) throw new Error(`expected ${ATOMS}, got ${JSON.stringify(r)}`);
    rates.push(ATOMS / ((performance.now() - started) / 1000));
    added = to.model;
  }
  console.log(
    `reembed (${pglite ? 'pglite, pgvector' : 'server, bytea'}): median ${median(rates).toFixed(0)} atoms/s (min ${Math.min(...rates).toFixed(0)}, max ${Math.max(...rates).toFixed(0)}), ${ATOMS} atoms, batch 64`,
  );

  const queries = Array.from({ length: 40 }, (_, i) => `${words[i % 9]} ${words[(i * 5) % 9]}`);
  const addedEmbedder = { ...localEmbedder(64), model: added };
  const contenders: [string, (q: string) => Promise<unknown>][] = [
    ['no model (primary vectors)', (q) => searchSimilar(db, q, 10, { embedder: primary })],
    [
      'the primary model named',
      (q) => searchSimilar(db, q, 10, { embedder: primary, model: primary.model }),
    ],
    [
      'a model reembed added',
      (q) => searchSimilar(db, q, 10, { embedder: addedEmbedder, model: added }),
    ],
  ];
  const times = new Map<string, number[]>(contenders.map(([name]) => [name, []]));
  for (let round = 0; round < 5; round++) {
    for (let c = 0; c < contenders.length; c++) {
      const [name, search] = contenders[(c + round) % contenders.length]!;
      const started = performance.now();
      for (const q of queries) await search(q);
      times.get(name)!.push((performance.now() - started) / queries.length);
    }
  }
  const base = median(times.get(contenders[0]![0])!);
  for (const [name] of contenders) {
    const ms = median(times.get(name)!);
    console.log(`  ${name.padEnd(28)} ${ms.toFixed(2)} ms/search  x${(ms / base).toFixed(2)}`);
  }
} finally {
  if (!pglite) await db.orm.em.getConnection().execute(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await db.close();
}
