import { getEventListeners } from 'node:events';
import test from 'ava';
import fc from 'fast-check';
import { LOCAL_EMBEDDER_MODEL, localEmbedder } from '../../lib/atoms/local-embedder.js';
import { validateVectors } from '../../lib/atoms/validate-vector.js';

const signal = () => new AbortController().signal;
const cosine = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
const norm = (a: Float32Array) => Math.sqrt(cosine(a, a));

test('defaults: 384 dimensions and a stable model name', (t) => {
  const e = localEmbedder();
  t.is(e.dimensions, 384);
  t.is(e.model, LOCAL_EMBEDDER_MODEL);
  t.is(localEmbedder(64).dimensions, 64);
  t.is(localEmbedder({ dimensions: 16 }).dimensions, 16);
  t.throws(() => localEmbedder(0), { instanceOf: TypeError });
  t.throws(() => localEmbedder({ dimensions: 2.5 }), { instanceOf: TypeError });
});

test('deterministic: the same text gives the same vector, across instances', async (t) => {
  const [a] = await localEmbedder().embed(['The quick brown fox'], signal());
  const [b] = await localEmbedder().embed(['The quick brown fox'], signal());
  t.deepEqual(Array.from(a!), Array.from(b!));
  // A fixed expectation guards against accidental changes of the hashing scheme.
  const [c] = await localEmbedder(8).embed(['hello world'], signal());
  t.deepEqual(
    Array.from(c!).map((x) => Math.round(x * 1e6) / 1e6),
    [0.196116, -0.784465, -0.196116, 0, 0.392232, 0, 0.392232, 0],
  );
});

test('every vector is L2-normalised, finite and of the right length, even for odd input', async (t) => {
  const e = localEmbedder(96);
  await fc.assert(
    fc.asyncProperty(fc.array(fc.string({ unit: 'grapheme' }), { maxLength: 8 }), async (texts) => {
      const vectors = await e.embed(texts, signal());
      validateVectors(vectors, 96, texts.length);
      return vectors.every((v) => Math.abs(norm(v) - 1) < 1e-5);
    }),
  );
  const [empty, punctuation] = await e.embed(['', '!!! ???'], signal());
  t.true(Math.abs(norm(empty!) - 1) < 1e-5);
  t.true(Math.abs(norm(punctuation!) - 1) < 1e-5);
});

test('similar texts are closer than dissimilar ones', async (t) => {
  const e = localEmbedder();
  const [cat, cats, stock] = await e.embed(
    [
      'The cat sat on the warm mat by the window',
      'A cat was sitting on the mat near the window',
      'Quarterly earnings beat analyst expectations in the bond market',
    ],
    signal(),
  );
  t.true(cosine(cat!, cats!) > cosine(cat!, stock!) + 0.2);
  // Case and Unicode form do not matter.
  const [upper, lower] = await e.embed(['CAFE\u0301 Menu', 'caf\u00e9 menu'], signal());
  t.true(cosine(upper!, lower!) > 0.999);
});

test('an aborted signal rejects with its reason and leaves no listener', async (t) => {
  const ac = new AbortController();
  ac.abort(new Error('stop'));
  await t.throwsAsync(localEmbedder().embed(['x'], ac.signal), { message: 'stop' });
  const live = new AbortController();
  await localEmbedder().embed(['x'], live.signal);
  t.is(getEventListeners(live.signal, 'abort').length, 0);
});
