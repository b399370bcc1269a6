/**
 * Deterministic benchmark data: distinct short texts and, for each, a unit-length vector with
 * six decimals per value (what an embeddings server's JSON looks like), so every contender
 * stores the same rows.
 */

const WORDS = (
  'atom vector stream batch graph model token index query cache shard replica ledger ' +
  'signal budget window buffer queue worker commit schema column record event outbox ' +
  'cosine cluster sample corpus filter reduce mirror anchor harbor copper silver river'
).split(' ');

/** A small seeded PRNG (mulberry32), values in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** N texts and their vectors. */
export interface Corpus {
  readonly texts: readonly string[];
  readonly vectors: readonly Float32Array[];
}

/**
 * `n` distinct texts of 12 to 28 words (about 80-220 bytes) and a vector of `dims` values for
 * each.
 */
export function corpus(n: number, dims: number, seed = 42): Corpus {
  const random = prng(seed);
  const texts: string[] = [];
  const vectors: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    const words = 12 + Math.floor(random() * 17);
    const parts = [`atom ${i}:`];
    for (let w = 0; w < words; w++) parts.push(WORDS[Math.floor(random() * WORDS.length)]!);
    texts.push(parts.join(' '));
    const v = new Float32Array(dims);
    let norm = 0;
    for (let d = 0; d < dims; d++) {
      const x = random() * 2 - 1;
      v[d] = x;
      norm += x * x;
    }
    const scale = 1 / Math.sqrt(norm);
    for (let d = 0; d < dims; d++) v[d] = Math.round(v[d]! * scale * 1e6) / 1e6;
    vectors.push(v);
  }
  return { texts, vectors };
}
