import { endianness } from 'node:os';
import { InvalidEmbeddingError } from '../embedding/errors.js';

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/**
 * Decodes and checks the `embedding` fields of an OpenAI-style response in one pass: base64
 * strings (float32 little-endian) are decoded straight into one `Float32Array` holding the
 * whole response, JSON number arrays are copied into it, and one loop over that array checks
 * that every value is finite. Each vector returned is a view (`subarray`) of that one array,
 * so a response costs one allocation instead of one per vector and no intermediate `Buffer`.
 * Either form may appear in any entry (a server that ignores `encoding_format: 'base64'`
 * answers with numbers, and that is read as such).
 *
 * @param embeddings - the `embedding` field of each `data` entry, in input order
 * @param count - the number of inputs (vectors expected)
 * @param dims - the length of each vector
 * @returns `count` vectors of `dims` float32 values
 * @throws {@link InvalidEmbeddingError} with the index of the first bad vector and why
 *
 * @internal
 */
export function decodeEmbeddings(
  embeddings: readonly unknown[],
  count: number,
  dims: number,
): Float32Array[] {
  if (embeddings.length !== count) {
    throw new InvalidEmbeddingError(
      -1,
      'count',
      `expected ${count} vectors, got ${embeddings.length}`,
    );
  }
  const all = new Float32Array(count * dims);
  const bytes = Buffer.from(all.buffer, all.byteOffset, all.byteLength);
  const out = new Array<Float32Array>(count);
  for (let i = 0; i < count; i++) {
    const e = embeddings[i];
    const offset = i * dims;
    if (typeof e === 'string') {
      const size = Buffer.byteLength(e, 'base64');
      if (size !== dims * 4) {
        throw new InvalidEmbeddingError(
          i,
          size % 4 === 0 ? 'dimensions' : 'not-a-vector',
          size % 4 === 0
            ? `expected ${dims} dimensions, got ${size / 4}`
            : `a base64 float32 vector must decode to a multiple of 4 bytes, got ${size}`,
        );
      }
      if (LITTLE_ENDIAN_HOST) {
        bytes.write(e, offset * 4, size, 'base64');
      } else {
        const decoded = Buffer.from(e, 'base64');
        for (let j = 0; j < dims; j++) all[offset + j] = decoded.readFloatLE(j * 4);
      }
    } else if (Array.isArray(e)) {
      if (e.length !== dims) {
        throw new InvalidEmbeddingError(
          i,
          'dimensions',
          `expected ${dims} dimensions, got ${e.length}`,
        );
      }
      for (let j = 0; j < dims; j++) {
        const x: unknown = e[j];
        if (typeof x !== 'number') {
          throw new InvalidEmbeddingError(
            i,
            'not-finite',
            `value ${j} is ${String(x)}, not a number`,
          );
        }
        all[offset + j] = x;
      }
    } else {
      throw new InvalidEmbeddingError(
        i,
        'not-a-vector',
        'not a base64 string or an array of numbers',
      );
    }
    out[i] = all.subarray(offset, offset + dims);
  }
  // one pass over every value (after float32 rounding: 1e39 becomes Infinity)
  for (let k = 0; k < all.length; k++) {
    const x = all[k]!;
    if (x - x !== 0) {
      const i = Math.floor(k / dims);
      throw new InvalidEmbeddingError(i, 'not-finite', `value ${k - i * dims} is ${x}`);
    }
  }
  return out;
}
