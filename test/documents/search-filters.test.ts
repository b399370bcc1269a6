/**
 * `searchSimilar` with `collection` / `documentIds`: the same hits as a brute-force cosine over
 * the atoms those documents are made of, on every backend.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { ingest } from '../../lib/atoms/ingest.js';
import { localEmbedder } from '../../lib/atoms/local-embedder.js';
import { searchSimilar } from '../../lib/atoms/search-similar.js';
import { ingestDocuments } from '../../lib/documents/ingest-documents.js';
import { streamAtoms } from '../../lib/documents/stream-atoms.js';
import { streamDocuments } from '../../lib/documents/stream-documents.js';
import { databaseSuite } from '../support/databases.js';

const suite = await databaseSuite('docsearch');

const WORDS = ['cat', 'dog', 'queue', 'retry', 'saga', 'vector', 'index', 'chunk', 'outbox', 'bus'];

suite.test(
  'collection and documentIds filters equal a brute-force cosine over those documents’ atoms',
  async (t, db) => {
    t.timeout(400_000);
    const p = randomBytes(4).toString('hex');
    const embedder = localEmbedder(db.embeddingDimensions);
    const para = (i: number) => `${p} ${WORDS[i % 10]} ${WORDS[(i * 3) % 10]} note ${i}`;
    const cols = [`x-${p}`, `y-${p}`];
    const docsOf = (c: number) =>
      Array.from({ length: 8 }, (_, d) => ({
        id: `d${d}`,
        content: [d, d + 3 + c, 2 * d + c].map(para).join('\n\n'),
      }));
    for (const [c, name] of cols.entries()) {
      await ingestDocuments(docsOf(c), { db, collection: name, embedder });
    }
    await ingest(
      Array.from({ length: 10 }, (_, i) => ({ content: para(100 + i) })),
      { db, embedder },
    );
    // the truth: every atom with its vector, and which documents refer to it
    const vectors = new Map<string, { id: bigint; v: Float32Array }>();
    for await (const a of streamAtoms(db, { embeddings: true, batchSize: 50 })) {
      if (a.embedding) vectors.set(a.hash, { id: BigInt(a.id), v: a.embedding });
    }
    const members = new Map<string, { collection: string; id: string }[]>();
    for (const c of cols) {
      for await (const d of streamDocuments(db, { collection: c, chunks: true })) {
        for (const h of d.chunkHashes ?? []) {
          members.set(h, [...(members.get(h) ?? []), { collection: c, id: d.id }]);
        }
      }
    }
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 1 }),
        fc.option(fc.uniqueArray(fc.integer({ min: 0, max: 9 }), { maxLength: 3 }), {
          nil: undefined,
        }),
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.constantFrom(...WORDS), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 1, max: 7 }),
        async (c, ids, k, words, chunkSize) => {
          const collection = cols[c]!;
          const documentIds = ids?.map((d) => `d${d}`);
          const [query] = await embedder.embed([words.join(' ')], AbortSignal.timeout(5_000));
          const q = query!;
          const qn = Math.hypot(...q);
          const eligible = new Map<string, number>();
          for (const [h, { id, v }] of vectors) {
            const refs = members.get(h) ?? [];
            if (
              !refs.some(
                (m) => m.collection === collection && (!documentIds || documentIds.includes(m.id)),
              )
            )
              continue;
            let dot = 0;
            for (let i = 0; i < v.length; i++) dot += v[i]! * q[i]!;
            eligible.set(id.toString(), dot / (Math.hypot(...v) * qn));
          }
          const truth = [...eligible.values()].sort((a, b) => b - a).slice(0, k);
          const hits = await searchSimilar(db, q, k, {
            collection,
            ...(documentIds ? { documentIds } : {}),
            exact: true,
            chunkSize,
          });
          // exact up to float rounding: every hit passes the filter with its own true score,
          // and the i-th best score equals the brute force's i-th best (ties may swap ids)
          t.is(hits.length, truth.length);
          hits.forEach((h, i) => {
            const own = eligible.get(h.id);
            t.true(own !== undefined, `hit ${h.id} is not in the filter`);
            t.true(Math.abs(h.similarity - own!) < 1e-5);
            t.true(
              Math.abs(h.similarity - truth[i]!) < 1e-5,
              `rank ${i}: ${h.similarity} vs ${truth[i]}`,
            );
          });
          // text and hybrid search honour the same filter
          for (const mode of ['text', 'hybrid'] as const) {
            const more = await searchSimilar(db, words.join(' '), k, {
              mode,
              embedder,
              collection,
              ...(documentIds ? { documentIds } : {}),
            });
            for (const h of more)
              t.true(eligible.has(h.id), `${mode} hit ${h.id} is not in the filter`);
          }
        },
      ),
      { numRuns: 25 },
    );
    await t.throwsAsync(searchSimilar(db, 'cat', 3, { embedder, documentIds: ['d1'] }), {
      instanceOf: TypeError,
    });
  },
);
