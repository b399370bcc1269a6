import { InvalidEmbeddingError } from './errors.js';

/**
 * Checks what an embedder returned: exactly `count` vectors, each `dims` long, every value a
 * finite number (after conversion to float32). Plain number arrays are accepted and converted.
 *
 * @param vectors - the embedder's output
 * @param dims - the expected length of each vector
 * @param count - the expected number of vectors (the number of inputs)
 * @returns the vectors as Float32Arrays (the same objects when they already were)
 * @throws {@link InvalidEmbeddingError} with the index of the first bad vector and the reason
 *
 * @example
 * ```ts
 * import { validateVectors } from '@hartonomous/pipelines/atoms';
 *
 * const texts = ['a', 'b'];
 * const vectors = validateVectors(await embedder.embed(texts, signal), embedder.dimensions, texts.length);
 * ```
 */
export function validateVectors(
  vectors: readonly unknown[],
  dims: number,
  count: number,
): Float32Array[] {
  if (!Number.isInteger(dims) || dims < 1) {
    throw new TypeError(`validateVectors: dims must be a positive integer, got ${dims}`);
  }
  if (!Array.isArray(vectors)) {
    throw new InvalidEmbeddingError(-1, 'not-a-vector', 'expected an array of vectors');
  }
  if (vectors.length !== count) {
    throw new InvalidEmbeddingError(
      -1,
      'count',
      `expected ${count} vectors, got ${vectors.length}`,
    );
  }
  const out: Float32Array[] = new Array(vectors.length);
  for (let i = 0; i < vectors.length; i++) {
    const v = vectors[i];
    let f: Float32Array;
    if (v instanceof Float32Array) {
      f = v;
    } else if (Array.isArray(v) || v instanceof Float64Array) {
      f = new Float32Array(v.length);
      for (let j = 0; j < v.length; j++) {
        const x = (v as ArrayLike<unknown>)[j];
        if (typeof x !== 'number') {
          throw new InvalidEmbeddingError(
            i,
            'not-finite',
            `value ${j} is ${String(x)}, not a number`,
          );
        }
        f[j] = x;
      }
    } else {
      throw new InvalidEmbeddingError(i, 'not-a-vector', 'not a Float32Array or number array');
    }
    if (f.length !== dims) {
      throw new InvalidEmbeddingError(
        i,
        'dimensions',
        `expected ${dims} dimensions, got ${f.length}`,
      );
    }
    for (let j = 0; j < f.length; j++) {
      if (!Number.isFinite(f[j])) {
        throw new InvalidEmbeddingError(i, 'not-finite', `value ${j} is ${f[j]}`);
      }
    }
    out[i] = f;
  }
  return out;
}
