/**
 * `searchSimilar` modes and filters against brute force, on every backend (the server stores
 * vectors as bytea and scans in JavaScript; PGlite uses pgvector): vector, text and hybrid
 * searches with random `contentType` and `metadata` filters return exactly the top k a
 * brute-force ranking of the filtered rows gives (full-text scores taken row by row from the
 * database, filtering, ordering, fusion and the limit done here).
 */
import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { contentHash } from '../../lib/atoms/hash.js';
import { localEmbedder } from '../../lib/atoms/local-embedder.js';
import { persistAtoms } from '../../lib/atoms/persist-atoms.js';
import { reciprocalRankFusion } from '../../lib/atoms/reciprocal-rank-fusion.js';
import { searchSimilar } from '../../lib/atoms/search-similar.js';
import { type Database, stateOf, withClient } from '../../lib/postgres/database.js';
import { databaseSuite } from '../support/databases.js';

const suite = await databaseSuite('search_modes');
const embedder = localEmbedder();
const WORDS =
  'consumer producer slower relay outbox queue retry circuit breaker saga atom vector search cats sleeping river'.split(
    ' ',
  );
const LANGS = ['en', 'fr', 'de'] as const;
const TYPES = ['text/plain', 'text/markdown'] as const;

interface Row {
  id: string;
  content: string;
  contentType: string;
  metadata: Record<string, unknown>;
  vector: Float32Array;
}

/** Stores `n` atoms with random words, types and metadata under a model unique to the call. */
async function seed(
  db: Database,
  n: number,
  seedValue: number,
): Promise<{ model: string; rows: Row[] }> {
  const model = `modes-${randomBytes(4).toString('hex')}`;
  let x = seedValue;
  const rnd = () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 2 ** 32;
  };
  const pick = <T>(a: readonly T[]) => a[Math.floor(rnd() * a.length)]!;
  const atoms = Array.from({ length: n }, (_, i) => {
    const words = Array.from({ length: 2 + Math.floor(rnd() * 6) }, () => pick(WORDS));
    const metadata: Record<string, unknown> = { lang: pick(LANGS), n: Math.floor(rnd() * 3) };
    if (rnd() < 0.3) metadata.tags = rnd() < 0.5 ? ['a', 'b'] : ['b'];
    return { content: `${i}: ${words.join(' ')}.`, contentType: pick(TYPES), metadata };
  });
  const vectors = await embedder.embed(
    atoms.map((a) => a.content),
    AbortSignal.timeout(10_000),
  );
  await persistAtoms(
    db,
    atoms.map((a, i) => ({
      hash: contentHash(a.content),
      ...a,
      embedding: vectors[i]!,
      embeddingModel: model,
    })),
  );
  const state = stateOf(db);
  const { rows } = await withClient(state, undefined, (client) =>
    client.query<{ id: string; content: string }>({
      text: `SELECT id::text AS id, content FROM ${state.qschema}.atoms WHERE embedding_model = $1`,
      values: [model],
    }),
  );
  const idOf = new Map(rows.map((r) => [r.content, r.id]));
  return {
    model,
    rows: atoms.map((a, i) => ({ ...a, id: idOf.get(a.content)!, vector: vectors[i]! })),
  };
}

/** JSON containment as jsonb `@>` defines it (objects by key, arrays by elements, scalars by value). */
function contains(a: unknown, b: unknown): boolean {
  if (Array.isArray(b)) return Array.isArray(a) && b.every((e) => a.some((x) => contains(x, e)));
  if (b !== null && typeof b === 'object') {
    if (a === null || typeof a !== 'object' || Array.isArray(a)) return false;
    return Object.entries(b).every(([k, v]) => contains((a as Record<string, unknown>)[k], v));
  }
  return a === b;
}

const cosine = (v: Float32Array, q: Float32Array) => {
  let dot = 0;
  let nv = 0;
  let nq = 0;
  for (let i = 0; i < v.length; i++) {
    dot += v[i]! * q[i]!;
    nv += v[i]! * v[i]!;
    nq += q[i]! * q[i]!;
  }
  return dot / (Math.sqrt(nv) * Math.sqrt(nq));
};
const byScoreThenId = (a: { id: string; score: number }, b: { id: string; score: number }) =>
  b.score - a.score || Number(BigInt(a.id) - BigInt(b.id));

/** ts_rank and match of every row of the model for a query, as the database computes them. */
async function textScores(
  db: Database,
  model: string,
  query: string,
): Promise<Map<string, number>> {
  const words = (query.match(/[\p{L}\p{N}]+/gu) ?? []).join(' or ');
  const state = stateOf(db);
  const { rows } = await withClient(state, undefined, (client) =>
    client.query<{ id: string; r: number; m: boolean }>({
      text: `SELECT id::text AS id, ts_rank(content_tsv, q) AS r, content_tsv @@ q AS m
FROM ${state.qschema}.atoms, websearch_to_tsquery('english', $2) AS q WHERE embedding_model = $1`,
      values: [model, words],
    }),
  );
  return new Map(rows.filter((r) => r.m).map((r) => [r.id, Number(r.r)]));
}

const filterArb = fc.record(
  {
    contentType: fc.constantFrom(...TYPES),
    metadata: fc.oneof(
      fc.constant({}),
      fc.record({ lang: fc.constantFrom(...LANGS) }),
      fc.record({ lang: fc.constantFrom(...LANGS), n: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ tags: fc.constantFrom(['a'], ['b'], ['a', 'b']) }),
    ),
  },
  { requiredKeys: [] },
);
const queryArb = fc.oneof(
  fc.array(fc.constantFrom(...WORDS), { minLength: 1, maxLength: 3 }).map((w) => w.join(' ')),
  fc.constant('the and what'),
  fc.constant('consumers slower than producers'),
);

async function checkModes(t: ExecutionContext, db: Database): Promise<void> {
  const { model, rows } = await seed(db, 160, 7);
  await fc.assert(
    fc.asyncProperty(
      queryArb,
      filterArb,
      fc.integer({ min: 1, max: 12 }),
      async (query, filter, k) => {
        const where = `${db.backend}/${db.vectorStorage} q=${query} f=${JSON.stringify(filter)} k=${k}`;
        const passing = rows.filter(
          (r) =>
            (filter.contentType === undefined || r.contentType === filter.contentType) &&
            (filter.metadata === undefined || contains(r.metadata, filter.metadata)),
        );
        const [qv] = await embedder.embed([query], AbortSignal.timeout(5_000));
        const vectorRank = passing
          .map((r) => ({ id: r.id, score: cosine(r.vector, qv!) }))
          .sort(byScoreThenId);
        const scores = await textScores(db, model, query);
        const textRank = passing
          .filter((r) => scores.has(r.id))
          .map((r) => ({ id: r.id, score: scores.get(r.id)! }))
          .sort(byScoreThenId);
        const options = { embedder, model, ...filter };

        // vector: the brute-force order; atoms whose similarities differ by less than 1e-5
        // may swap (pgvector computes in float4)
        const checkVector = (hits: readonly { id: string; similarity: number }[], n: number) => {
          const expected = vectorRank.slice(0, n);
          t.is(hits.length, expected.length, `vector ${where}`);
          hits.forEach((h, i) => {
            t.true(Math.abs(h.similarity - expected[i]!.score) < 1e-5, `vector ${where}`);
            const truth = vectorRank.find((r) => r.id === h.id);
            t.true(truth !== undefined && Math.abs(h.similarity - truth.score) < 1e-5, where);
          });
          const last = expected.at(-1)?.score ?? 0;
          for (const e of expected.filter((x) => x.score > last + 1e-5)) {
            t.true(
              hits.some((h) => h.id === e.id),
              `vector ${where}: ${e.id} missing`,
            );
          }
        };
        const vector = await searchSimilar(db, query, k, options);
        checkVector(vector, k);
        t.true(vector.every((h) => h.score === h.similarity));

        const text = await searchSimilar(db, query, k, { model, ...filter, mode: 'text' });
        t.deepEqual(
          text.map((h) => h.id),
          textRank.slice(0, k).map((r) => r.id),
          `text ${where}`,
        );
        t.true(text.every((h) => h.similarity === null));

        const candidates = 20;
        const hybrid = await searchSimilar(db, query, k, {
          ...options,
          mode: 'hybrid',
          candidates,
        });
        // the fusion of the vector top 20 (checked against brute force) and the text top 20
        const vectorTop = await searchSimilar(db, query, candidates, options);
        checkVector(vectorTop, candidates);
        const fused = reciprocalRankFusion([
          vectorTop.map((h) => h.id),
          textRank.slice(0, candidates).map((r) => r.id),
        ]);
        t.deepEqual(
          hybrid.map((h) => h.id),
          fused.slice(0, k).map((f) => f.id),
          `hybrid ${where}`,
        );
        for (const h of hybrid) {
          const row = rows.find((r) => r.id === h.id)!;
          t.true(Math.abs(h.similarity - cosine(row.vector, qv!)) < 1e-5, `similarity ${where}`);
          t.true(Math.abs(h.score - fused.find((f) => f.id === h.id)!.score) < 1e-12);
        }
      },
    ),
    { numRuns: 25 },
  );
}

suite.test('vector, text and hybrid search with filters equal brute force', async (t, db) => {
  await checkModes(t, db);
});

test('reciprocalRankFusion: sums 1/(k + rank), ties by numeric id, duplicates count once', (t) => {
  const fused = reciprocalRankFusion([
    ['7', '3', '9', '3'],
    ['3', '10', '9'],
  ]);
  t.deepEqual(
    fused.map((f) => f.id),
    ['3', '9', '7', '10'],
  );
  t.is(fused[0]!.score, 1 / 62 + 1 / 61);
  t.deepEqual(
    reciprocalRankFusion([['10'], ['9']]).map((f) => f.id),
    ['9', '10'],
  );
  t.is(reciprocalRankFusion([['a']], { k: 0 })[0]!.score, 1);
  t.throws(() => reciprocalRankFusion([], { k: -1 }), { instanceOf: TypeError });
});

suite.test(
  'search options are checked; a text query of stop words finds nothing',
  async (t, db) => {
    await t.throwsAsync(searchSimilar(db, 'x', 3, { mode: 'fuzzy' as never }), {
      instanceOf: TypeError,
      message: /mode/,
    });
    await t.throwsAsync(searchSimilar(db, new Float32Array(384), 3, { mode: 'hybrid' }), {
      instanceOf: TypeError,
      message: /text query/,
    });
    await t.throwsAsync(searchSimilar(db, 'x', 3, { mode: 'hybrid' }), {
      instanceOf: TypeError,
      message: /embedder/,
    });
    await t.throwsAsync(searchSimilar(db, 'x', 3, { mode: 'text', metadata: [] as never }), {
      instanceOf: TypeError,
      message: /metadata/,
    });
    await t.throwsAsync(searchSimilar(db, 'x', 3, { embedder, candidates: 0, mode: 'hybrid' }), {
      instanceOf: TypeError,
    });
    t.deepEqual(await searchSimilar(db, 'the of and', 3, { mode: 'text' }), []);
    t.deepEqual(await searchSimilar(db, '  ?! ', 3, { mode: 'text' }), []);
  },
);
