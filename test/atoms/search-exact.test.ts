/**
 * `searchSimilar` is exact: a property against a brute-force cosine over every row, on a table
 * whose ids cross digit boundaries (1 to 25,000), with scan chunks smaller than the table, and
 * with many exactly tied rows (ties go to the lower id). Runs on every backend of the suite plus
 * PGlite with bytea storage (the JavaScript scan on the embedded database).
 */
import * as assert from 'node:assert/strict';
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { searchSimilar } from '../../lib/atoms/search-similar.js';
import { type Database, stateOf, withClient } from '../../lib/postgres/database.js';
import { BACKENDS, openTestDatabase, serverUnavailableReason } from '../support/databases.js';

const DIMS = 8;
const ROWS = 25_000;
/** Distinct vectors; every row takes one of them, so each appears ~12 times (exact ties). */
const POOL = 2_000;

/** A deterministic pseudo-random pool of float32 vectors (seeded LCG). */
function makePool(seed: number): Float32Array[] {
  let x = seed;
  const rnd = () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 2 ** 32;
  };
  return Array.from({ length: POOL }, () =>
    Float32Array.from({ length: DIMS }, () => rnd() * 2 - 1),
  );
}

/** Which pool vector row `id` holds: scattered so equal vectors sit on both sides of 9/10, 99/100... */
const poolIndex = (id: number) => (id * 7919) % POOL;
/** Model of row `id` (every third row has another model, to exercise the filter). */
const modelOf = (id: number) => (id % 3 === 0 ? 'b' : 'a');

/** Fills `atoms` with ids `1..rows` in one statement (no ingest: it would take minutes). */
async function fill(db: Database, pool: readonly Float32Array[], rows: number): Promise<void> {
  const state = stateOf(db);
  const q = state.qschema;
  const pgvector = db.vectorStorage === 'pgvector';
  const idx = `((g::bigint * 7919) % ${POOL})::int`;
  const embedding = pgvector
    ? `(($1::real[])[(${idx} * ${DIMS} + 1):(${idx} * ${DIMS} + ${DIMS})])::vector`
    : `substring($1::bytea from (${idx} * ${4 * DIMS} + 1) for ${4 * DIMS})`;
  const param = pgvector
    ? pool.flatMap((v) => [...v])
    : Buffer.concat(pool.map((v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength)));
  await withClient(state, undefined, (client) =>
    client.query({
      text: `INSERT INTO ${q}.atoms
  (id, content_hash, content, byte_size, embedding, embedding_model, embedding_dims)
SELECT g, sha256(convert_to('row ' || g, 'UTF8')), 'row ' || g, octet_length('row ' || g),
  ${embedding}, CASE WHEN g % 3 = 0 THEN 'b' ELSE 'a' END, ${DIMS}
FROM generate_series(1, $2::int) AS g`,
      values: [param, rows],
    }),
  );
}

/** The scan's own arithmetic, so the bytea path must match to the last bit. */
function cosine(v: Float32Array, query: Float32Array, queryNorm: number): number {
  let dot = 0;
  let norm = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    dot += x * query[i]!;
    norm += x * x;
  }
  return dot / (Math.sqrt(norm) * queryNorm);
}

interface Ranked {
  id: number;
  score: number;
  base: number;
}

/** Every row (of `model`, when given) by score, ties by id. */
function bruteForce(
  pool: readonly Float32Array[],
  rows: number,
  query: Float32Array,
  model: string | undefined,
): Ranked[] {
  let qn = 0;
  for (const x of query) qn += x * x;
  qn = Math.sqrt(qn);
  const scores = pool.map((v) => cosine(v, query, qn));
  const all: Ranked[] = [];
  for (let id = 1; id <= rows; id++) {
    if (model !== undefined && modelOf(id) !== model) continue;
    const base = poolIndex(id);
    all.push({ id, score: scores[base]!, base });
  }
  return all.sort((a, b) => b.score - a.score || a.id - b.id);
}

type Target = 'postgres' | 'pglite' | 'pglite-bytea';
const TARGETS: readonly Target[] = [...BACKENDS, 'pglite-bytea'] as Target[];

async function open(target: Target, tag: string) {
  return target === 'pglite-bytea'
    ? openTestDatabase('pglite', tag, { dimensions: DIMS, vector: 'bytea' })
    : openTestDatabase(target, tag, { dimensions: DIMS });
}

const unavailable = await serverUnavailableReason();
const register = (title: string, fn: (t: ExecutionContext, target: Target) => Promise<void>) => {
  for (const target of TARGETS) {
    if (target === 'postgres' && unavailable) {
      test.skip(`${title} [${target}] (server unreachable: ${unavailable})`, () => undefined);
      continue;
    }
    // Serial: each PGlite instance is heavy to start; four at once crowd a small machine.
    test.serial(`${title} [${target}]`, (t) => fn(t, target));
  }
};

register(
  'an exact scan in chunks finds a row that sorts late as text (1, 10, 100 ...)',
  async (t, target) => {
    const d = await open(target, 'search_order');
    try {
      const far = new Float32Array(DIMS);
      far[1] = 1;
      const near = new Float32Array(DIMS);
      near[0] = 1;
      // Rows 1..150 point away from the query except row 57: as text, 57 sorts after 150.
      const pool = Array.from({ length: POOL }, () => far);
      pool[poolIndex(57)] = near;
      await fill(d.db, pool, 150);
      for (const chunkSize of [10, 49, 100]) {
        const [hit] = await searchSimilar(d.db, near, 1, { chunkSize });
        t.is(hit?.id, '57', `chunkSize ${chunkSize} on ${target}`);
        t.is(hit?.similarity, 1);
      }
      // Ties go to the lowest id as a number: 2, 3, ... 9 before 10.
      const tied = await searchSimilar(d.db, far, 12, { chunkSize: 7 });
      t.deepEqual(
        tied.map((h) => h.id),
        ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12'],
      );
    } finally {
      await d.dispose();
    }
  },
);

register('searchSimilar equals a brute-force cosine over 25,000 rows', async (t, target) => {
  const d = await open(target, 'search_exact');
  try {
    const pool = makePool(20_261_206);
    await fill(d.db, pool, ROWS);
    const exactBits = d.db.vectorStorage === 'bytea';
    let checked = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.float({ min: -1, max: 1, noNaN: true }), {
          minLength: DIMS,
          maxLength: DIMS,
        }),
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 500, max: ROWS - 1 }),
        fc.constantFrom(undefined, 'a', 'b'),
        async (components, k, chunkSize, model) => {
          const query = Float32Array.from(components);
          fc.pre(query.some((x) => Math.abs(x) > 1e-3));
          const truth = bruteForce(pool, ROWS, query, model);
          // Distinct vectors whose cosines differ by less than pgvector's float arithmetic can
          // resolve are not a fair question; equal vectors tie exactly and must go by id.
          for (let i = 0; i < Math.min(k, truth.length - 1); i++) {
            const [a, b] = [truth[i]!, truth[i + 1]!];
            fc.pre(a.base === b.base || a.score - b.score > 1e-6);
          }
          const expected = truth.slice(0, k);
          const hits = await searchSimilar(d.db, query, k, { chunkSize, model });
          const where = `${target} k=${k} chunkSize=${chunkSize} model=${model}`;
          assert.deepEqual(
            hits.map((h) => Number(h.id)),
            expected.map((e) => e.id),
            where,
          );
          for (const [i, hit] of hits.entries()) {
            const want = expected[i]!.score;
            if (exactBits) assert.equal(hit.similarity, want, where);
            else
              assert.ok(
                Math.abs(hit.similarity - want) < 1e-6,
                `${where}: ${hit.similarity} vs ${want}`,
              );
            assert.equal(hit.content, `row ${hit.id}`);
          }
          checked++;
        },
      ),
      { numRuns: 12 },
    );
    t.true(checked >= 6, `only ${checked} queries checked`);
  } finally {
    await d.dispose();
  }
});
