import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { type InvalidEmbeddingError, isInvalidEmbeddingError } from '../../lib/atoms/errors.js';
import { contentHash } from '../../lib/atoms/hash.js';
import { localEmbedder } from '../../lib/atoms/local-embedder.js';
import { persistAtoms } from '../../lib/atoms/persist-atoms.js';
import { searchSimilar } from '../../lib/atoms/search-similar.js';
import { createVectorIndex } from '../../lib/postgres/create-vector-index.js';
import type { Database } from '../../lib/postgres/database.js';
import { openDatabase } from '../../lib/postgres/open-database.js';
import { databaseSuite } from '../support/databases.js';

const suite = await databaseSuite('search');
const embedder = localEmbedder();
const WORDS =
  'cat dog bird fish tree river stone cloud rain snow wind fire light dark night day sun moon star sea'.split(
    ' ',
  );

/** A PGlite storing vectors as bytea, to run the fallback scan on the embedded database too. */
let byteaDb: Promise<Database> | undefined;
const pgliteBytea = () => {
  byteaDb ??= openDatabase({ dataDir: 'memory://', vector: 'bytea' });
  return byteaDb;
};
test.after.always(async () => {
  await (await byteaDb)?.close();
});

interface Corpus {
  model: string;
  texts: string[];
  vectors: Float32Array[];
}

/** Stores `n` pseudo-random sentences under a model name unique to the test. */
async function seed(db: Database, n = 300): Promise<Corpus> {
  const model = `test-${randomBytes(4).toString('hex')}`;
  let x = n * 7 + 3;
  const rnd = () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
  const texts = Array.from(
    { length: n },
    (_, i) =>
      `${model} ${i} ${Array.from({ length: 6 }, () => WORDS[Math.floor(rnd() * WORDS.length)]).join(' ')}`,
  );
  const vectors = await embedder.embed(texts, AbortSignal.timeout(10_000));
  await persistAtoms(
    db,
    texts.map((content, i) => ({
      hash: contentHash(content),
      content,
      embedding: vectors[i]!,
      embeddingModel: model,
    })),
  );
  return { model, texts, vectors };
}

function bruteForce(corpus: Corpus, query: Float32Array, k: number) {
  const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  const qn = norm(query);
  return corpus.vectors
    .map((v, i) => ({
      hash: contentHash(corpus.texts[i]!),
      similarity: v.reduce((s, x, j) => s + x * query[j]!, 0) / (norm(v) * qn),
    }))
    .sort((a, b) => b.similarity - a.similarity)
    .slice(0, k);
}

async function checkNearest(t: ExecutionContext, db: Database, chunkSize?: number): Promise<void> {
  const corpus = await seed(db);
  const [query] = await embedder.embed(['cat river moon night rain'], AbortSignal.timeout(5_000));
  const truth = new Map(
    bruteForce(corpus, query!, corpus.texts.length).map((e) => [e.hash, e.similarity]),
  );
  for (const k of [1, 5, 25]) {
    const hits = await searchSimilar(db, query!, k, { model: corpus.model, chunkSize });
    const expected = bruteForce(corpus, query!, k);
    const where = `k=${k} on ${db.backend}/${db.vectorStorage}`;
    t.is(hits.length, k, where);
    t.is(new Set(hits.map((h) => h.hash)).size, k, where);
    // Each hit is a stored atom with the similarity reported, and the ranks match the brute
    // force ranking (atoms with equal similarity may swap places).
    for (const [i, hit] of hits.entries()) {
      t.true(Math.abs(truth.get(hit.hash)! - hit.similarity) < 1e-5, where);
      t.true(Math.abs(hit.similarity - expected[i]!.similarity) < 1e-5, where);
    }
    const strictlyAbove = expected.filter((e) => e.similarity > expected.at(-1)!.similarity + 1e-5);
    for (const e of strictlyAbove)
      t.true(
        hits.some((h) => h.hash === e.hash),
        where,
      );
  }
  // A stored text finds itself first, with similarity 1.
  const [self] = await searchSimilar(db, corpus.texts[42]!, 1, { embedder, model: corpus.model });
  t.is(self?.content, corpus.texts[42]);
  t.true(Math.abs(self!.similarity - 1) < 1e-5);
  t.is(self?.embeddingModel, corpus.model);
  t.is(self?.contentType, 'text/plain');
}

suite.test('searchSimilar returns the exact nearest neighbours by cosine', async (t, db) => {
  await checkNearest(t, db);
});

test('searchSimilar fallback scan on PGlite (bytea storage) returns the same neighbours', async (t) => {
  const db = await pgliteBytea();
  t.is(db.vectorStorage, 'bytea');
  await checkNearest(t, db);
});

suite.test('the bounded scan gives the same answer in many small chunks', async (t, db) => {
  await checkNearest(t, db, 7);
});

test('small chunks on PGlite bytea storage too', async (t) => {
  await checkNearest(t, await pgliteBytea(), 13);
});

suite.test(
  'k larger than the matching atoms returns them all; unknown model returns none',
  async (t, db) => {
    const corpus = await seed(db, 8);
    const hits = await searchSimilar(db, corpus.vectors[0]!, 50, { model: corpus.model });
    t.is(hits.length, 8);
    t.true(hits.every((h, i) => i === 0 || h.similarity <= hits[i - 1]!.similarity));
    t.deepEqual(await searchSimilar(db, corpus.vectors[0]!, 3, { model: 'no-such-model' }), []);
  },
);

suite.test('bad queries are rejected clearly', async (t, db) => {
  const v = new Float32Array(384);
  v[0] = 1;
  await t.throwsAsync(searchSimilar(db, v, 0), { instanceOf: TypeError, message: /k must/ });
  await t.throwsAsync(searchSimilar(db, 'text needs an embedder', 3), { instanceOf: TypeError });
  const e = await t.throwsAsync<InvalidEmbeddingError>(searchSimilar(db, new Float32Array(3), 3));
  t.true(isInvalidEmbeddingError(e));
  t.is(e?.reason, 'dimensions');
  const ac = new AbortController();
  ac.abort(new Error('no search'));
  await t.throwsAsync(searchSimilar(db, v, 3, { signal: ac.signal }), { message: 'no search' });
});

// Serial tests run before the concurrent ones; the index is dropped again so the exact
// comparisons above are not made against an approximate index.
suite.serial(
  'createVectorIndex: HNSW on pgvector storage, a no-op (false) on bytea',
  async (t, db) => {
    await t.throwsAsync(createVectorIndex(db, { m: 1 }), { instanceOf: TypeError });
    const created = await createVectorIndex(db);
    try {
      t.is(created, db.vectorStorage === 'pgvector');
      t.is(await createVectorIndex(db), created, 'idempotent');
      const corpus = await seed(db, 60);
      const hit = await searchSimilar(db, corpus.vectors[7]!, 1, { model: corpus.model });
      t.is(hit[0]?.content, corpus.texts[7]);
      const exact = await searchSimilar(db, corpus.vectors[7]!, 5, {
        model: corpus.model,
        exact: true,
      });
      // same ranking as brute force (atoms with equal similarity, to float32 precision, may swap)
      const expected = bruteForce(corpus, corpus.vectors[7]!, 5);
      for (const [i, hit] of exact.entries()) {
        t.true(Math.abs(hit.similarity - expected[i]!.similarity) < 1e-5);
      }
    } finally {
      await db.orm.em
        .getConnection()
        .execute(`DROP INDEX IF EXISTS "${db.schema}".atoms_embedding_hnsw_idx`);
    }
  },
);
