import type { Embedder } from './embedder.js';

/**
 * Options of {@link localEmbedder}.
 *
 * @example
 * ```ts
 * import type { LocalEmbedderOptions } from '@hartonomous/pipelines/atoms';
 * const small: LocalEmbedderOptions = { dimensions: 128 };
 * ```
 */
export interface LocalEmbedderOptions {
  /** Length of the vectors (number of hash buckets). @default 384 */
  dimensions?: number;
}

/**
 * The model name the local embedder reports (and atoms record).
 *
 * @example
 * ```ts
 * import { LOCAL_EMBEDDER_MODEL, searchSimilar } from '@hartonomous/pipelines/atoms';
 * const hits = await searchSimilar(db, vector, 5, { model: LOCAL_EMBEDDER_MODEL });
 * ```
 */
export const LOCAL_EMBEDDER_MODEL = 'hartonomous/feature-hash-v1';

const WORD = /[\p{L}\p{N}]+/gu;
const WORD_WEIGHT = 1;
const TRIGRAM_WEIGHT = 0.5;
const WORD_SEED = 0x9e3779b1;
const TRIGRAM_SEED = 0x85ebca77;
const EMPTY_SEED = 0xc2b2ae3d;

/**
 * A deterministic embedder that needs no model and no service: feature hashing of word
 * unigrams and character trigrams into signed buckets, L2-normalised.
 *
 * The text is NFKC-normalised and lower-cased; words are runs of letters and digits; each
 * word contributes itself (weight 1) and its character trigrams with boundary marks (weight
 * 0.5). A feature's FNV-1a hash, finished with MurmurHash3's mixer, picks a bucket and a sign.
 * Texts sharing words or word pieces therefore point in similar directions (cosine
 * similarity), which is enough for deduplication-adjacent search, tests and demos; it does not
 * understand meaning the way a trained model does. Every vector has length 1, even for text
 * with no words.
 *
 * @param options - the dimension, or {@link LocalEmbedderOptions}
 * @returns an {@link Embedder} (model `'hartonomous/feature-hash-v1'`)
 *
 * @example
 * ```ts
 * import { localEmbedder } from '@hartonomous/pipelines/atoms';
 *
 * const embedder = localEmbedder(384);
 * const [a, b] = await embedder.embed(['the cat sat', 'a cat sat down'], AbortSignal.timeout(1_000));
 * ```
 * @see {@link Embedder}
 */
export function localEmbedder(options: number | LocalEmbedderOptions = {}): Embedder {
  const dimensions = typeof options === 'number' ? options : (options.dimensions ?? 384);
  if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > 16_000) {
    throw new TypeError(
      `localEmbedder: dimensions must be an integer in 1..16000, got ${String(dimensions)}`,
    );
  }
  return {
    model: LOCAL_EMBEDDER_MODEL,
    dimensions,
    async embed(texts: readonly string[], signal: AbortSignal): Promise<Float32Array[]> {
      signal.throwIfAborted();
      const out: Float32Array[] = new Array(texts.length);
      for (let i = 0; i < texts.length; i++) {
        const text = texts[i];
        if (typeof text !== 'string') {
          throw new TypeError(`localEmbedder: input ${i} is not a string`);
        }
        out[i] = embedOne(text, dimensions);
      }
      return out;
    },
  };
}

/** Embeds one text (synchronously). @internal */
export function embedOne(text: string, dimensions: number): Float32Array {
  const acc = new Float64Array(dimensions);
  const normalized = text.normalize('NFKC').toLowerCase();
  let features = 0;
  for (const match of normalized.matchAll(WORD)) {
    const word = match[0];
    add(acc, hashRange(word, 0, word.length, WORD_SEED), WORD_WEIGHT);
    features++;
    // Trigrams of "\u0002word\u0003": the marks make prefixes and suffixes distinct features.
    const padded = `\u0002${word}\u0003`;
    for (let j = 0; j + 3 <= padded.length; j++) {
      add(acc, hashRange(padded, j, j + 3, TRIGRAM_SEED), TRIGRAM_WEIGHT);
      features++;
    }
  }
  if (features === 0) add(acc, EMPTY_SEED, 1);
  let norm = 0;
  for (let i = 0; i < dimensions; i++) norm += acc[i]! * acc[i]!;
  norm = Math.sqrt(norm);
  const out = new Float32Array(dimensions);
  if (norm === 0) {
    // Every feature cancelled out (possible with signed buckets): fall back to one bucket.
    out[fmix32(EMPTY_SEED) % dimensions] = 1;
    return out;
  }
  for (let i = 0; i < dimensions; i++) out[i] = acc[i]! / norm;
  return out;
}

function add(acc: Float64Array, hash: number, weight: number): void {
  const mixed = fmix32(hash);
  const bucket = mixed % acc.length;
  acc[bucket]! += (mixed & 0x80000000) === 0 ? weight : -weight;
}

/** FNV-1a over UTF-16 code units `[start, end)` of `s`, seeded. */
function hashRange(s: string, start: number, end: number, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    h ^= c & 0xff;
    h = Math.imul(h, 0x01000193);
    h ^= c >>> 8;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** MurmurHash3's 32-bit finaliser: spreads every input bit over the output. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
