import test from 'ava';
import fc from 'fast-check';
import {
  type ContentTooLargeError,
  type InvalidEmbeddingError,
  type InvalidEmbeddingReason,
  isContentTooLargeError,
  isEmptyContentError,
  isInvalidEmbeddingError,
  isInvalidUtf8Error,
} from '../../lib/atoms/errors.js';
import { DEFAULT_MAX_CONTENT_BYTES, validateContent } from '../../lib/atoms/validate-content.js';
import { validateVectors } from '../../lib/atoms/validate-vector.js';

test('valid content comes back with its UTF-8 size', (t) => {
  t.deepEqual(validateContent('héllo'), { text: 'héllo', byteSize: 6 });
  t.deepEqual(validateContent(new TextEncoder().encode('héllo')), { text: 'héllo', byteSize: 6 });
  t.deepEqual(validateContent('😀'), { text: '😀', byteSize: 4 });
});

test('empty and whitespace-only content is EmptyContentError', (t) => {
  for (const input of ['', '   \n\t', new Uint8Array(), new TextEncoder().encode('  ')]) {
    t.true(isEmptyContentError(t.throws(() => validateContent(input))));
  }
});

test('content over the limit is ContentTooLargeError{bytes, limit} (default 1 MiB)', (t) => {
  t.is(DEFAULT_MAX_CONTENT_BYTES, 1_048_576);
  const e = t.throws<ContentTooLargeError>(() => validateContent('x'.repeat(1_048_577)));
  t.true(isContentTooLargeError(e));
  t.is(e?.bytes, 1_048_577);
  t.is(e?.limit, 1_048_576);
  t.notThrows(() => validateContent('x'.repeat(1_048_576)));
  // Multi-byte text is measured in bytes, not characters.
  const multi = t.throws<ContentTooLargeError>(() => validateContent('é'.repeat(6), 10));
  t.is(multi?.bytes, 12);
  t.true(
    isContentTooLargeError(
      t.throws(() => validateContent(new Uint8Array(11).fill(65), { maxBytes: 10 })),
    ),
  );
  fc.assert(
    fc.property(
      fc.string({ minLength: 1, unit: 'grapheme' }),
      fc.integer({ min: 1, max: 40 }),
      (s, max) => {
        const bytes = Buffer.byteLength(s);
        try {
          validateContent(s, max);
          return bytes <= max;
        } catch (err) {
          return isContentTooLargeError(err) ? bytes > max : isEmptyContentError(err);
        }
      },
    ),
  );
});

test('bytes that are not UTF-8, and lone surrogates, are InvalidUtf8Error', (t) => {
  t.true(isInvalidUtf8Error(t.throws(() => validateContent(new Uint8Array([0x68, 0x69, 0xc3])))));
  t.true(isInvalidUtf8Error(t.throws(() => validateContent(new Uint8Array([0xed, 0xa0, 0x80])))));
  t.true(isInvalidUtf8Error(t.throws(() => validateContent('ok \udc00'))));
  const nul = t.throws(() => validateContent('before\u0000after'));
  t.true(isInvalidUtf8Error(nul));
  t.regex(nul?.message ?? '', /NUL/);
  t.true(isInvalidUtf8Error(t.throws(() => validateContent(new Uint8Array([0x61, 0x00])))));
  t.throws(() => validateContent('x', 0), { instanceOf: TypeError });
});

test('validateVectors accepts good vectors and converts number arrays', (t) => {
  const a = new Float32Array([1, 2, 3]);
  const out = validateVectors([a, [4, 5, 6]], 3, 2);
  t.is(out[0], a);
  t.true(out[1] instanceof Float32Array);
  t.deepEqual(Array.from(out[1]!), [4, 5, 6]);
});

test('validateVectors rejects count, dimension, non-finite and non-vector problems with the index', (t) => {
  const check = (
    vectors: unknown[],
    dims: number,
    count: number,
    index: number,
    reason: InvalidEmbeddingReason,
  ) => {
    const e = t.throws<InvalidEmbeddingError>(() => validateVectors(vectors, dims, count));
    t.true(isInvalidEmbeddingError(e));
    t.is(e?.index, index);
    t.is(e?.reason, reason);
  };
  check([new Float32Array(3)], 3, 2, -1, 'count');
  check([new Float32Array(3), new Float32Array(2)], 3, 2, 1, 'dimensions');
  check([new Float32Array([1, Number.NaN, 0])], 3, 1, 0, 'not-finite');
  check([[1, 2, Number.POSITIVE_INFINITY]], 3, 1, 0, 'not-finite');
  check([[1, null, 2]], 3, 1, 0, 'not-finite');
  check([[1, 2, 1e39]], 3, 1, 0, 'not-finite'); // overflows float32
  check([new Float32Array(3), 'nope'], 3, 2, 1, 'not-a-vector');
  t.throws(() => validateVectors([], 0, 0), { instanceOf: TypeError });
});
