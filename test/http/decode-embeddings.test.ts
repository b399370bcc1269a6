import test from 'ava';
import fc from 'fast-check';
import {
  type InvalidEmbeddingError,
  type InvalidEmbeddingReason,
  isInvalidEmbeddingError,
} from '../../lib/atoms/errors.js';
import { decodeEmbeddings } from '../../lib/http/decode-embeddings.js';

const base64Of = (v: Float32Array): string =>
  Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');

const vectorsArb = fc.integer({ min: 1, max: 40 }).chain((dims) =>
  fc.tuple(
    fc.constant(dims),
    fc.array(
      fc.tuple(
        fc.array(fc.float({ noNaN: true, noDefaultInfinity: true }), {
          minLength: dims,
          maxLength: dims,
        }),
        fc.boolean(),
      ),
      { minLength: 0, maxLength: 12 },
    ),
  ),
);

test('decodes any mix of base64 and JSON vectors to exactly Float32Array.from of each', (t) => {
  fc.assert(
    fc.property(vectorsArb, ([dims, rows]) => {
      const expected = rows.map(([v]) => Float32Array.from(v));
      const wire = rows.map(([v], i) => (rows[i]![1] ? base64Of(Float32Array.from(v)) : v));
      const got = decodeEmbeddings(wire, rows.length, dims);
      t.is(got.length, rows.length);
      for (let i = 0; i < got.length; i++) {
        t.true(got[i] instanceof Float32Array);
        t.deepEqual(Array.from(got[i]!), Array.from(expected[i]!));
      }
    }),
  );
});

test('a non-finite value anywhere is reported at its vector and position', (t) => {
  fc.assert(
    fc.property(
      vectorsArb.filter(([, rows]) => rows.length > 0),
      fc.nat(),
      fc.nat(),
      fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e39),
      ([dims, rows], vi, pi, bad) => {
        const i = vi % rows.length;
        const j = pi % dims;
        const wire = rows.map(([v, b], k) => {
          const f = Float32Array.from(v);
          if (k === i) f[j] = bad;
          return b ? base64Of(f) : k === i ? v.map((x, m) => (m === j ? bad : x)) : v;
        });
        const err = t.throws<InvalidEmbeddingError>(() =>
          decodeEmbeddings(wire, rows.length, dims),
        );
        t.true(isInvalidEmbeddingError(err));
        t.is(err?.reason, 'not-finite');
        // the first bad vector is reported: only vector i has one
        t.is(err?.index, i);
        t.regex(err?.message ?? '', new RegExp(`value ${j} is`));
      },
    ),
  );
});

test('wrong counts, lengths and shapes are named errors', (t) => {
  const v = new Float32Array([1, 2, 3]);
  const check = (fn: () => unknown, reason: InvalidEmbeddingReason, index: number) => {
    const err = t.throws<InvalidEmbeddingError>(fn);
    t.true(isInvalidEmbeddingError(err));
    t.is(err?.reason, reason);
    t.is(err?.index, index);
  };
  check(() => decodeEmbeddings([base64Of(v)], 2, 3), 'count', -1);
  check(() => decodeEmbeddings([base64Of(v), base64Of(v.subarray(1))], 2, 3), 'dimensions', 1);
  check(() => decodeEmbeddings([[1, 2]], 1, 3), 'dimensions', 0);
  check(() => decodeEmbeddings([[1, 2, '3']], 1, 3), 'not-finite', 0);
  check(() => decodeEmbeddings([[1, 2, 3], { a: 1 }], 2, 3), 'not-a-vector', 1);
  check(
    () => decodeEmbeddings([Buffer.from([1, 2, 3, 4, 5]).toString('base64')], 1, 3),
    'not-a-vector',
    0,
  );
});
