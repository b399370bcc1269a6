import test from 'ava';
import fc from 'fast-check';
import { isContentTooLargeError, isInvalidUtf8Error } from '../../lib/atoms/errors.js';
import {
  type InvalidMetadataError,
  isInvalidContentError,
  isInvalidContentTypeError,
  isInvalidMetadataError,
  isInvalidSourceIdError,
} from '../../lib/atoms/item-errors.js';
import { validateContent } from '../../lib/atoms/validate-content.js';
import { validateItem } from '../../lib/atoms/validate-item.js';

const LONE = /\p{Cs}/u;

test('a good item comes back in stored form; null fields mean none', (t) => {
  t.deepEqual(validateItem({ content: 'héllo' }), {
    text: 'héllo',
    byteSize: 6,
    contentType: 'text/plain',
    sourceId: undefined,
    metadata: undefined,
  });
  const metadata = { a: [1, 'x', null, { b: true }], when: new Date(0) };
  t.deepEqual(
    validateItem({
      content: new TextEncoder().encode('x'),
      contentType: 'text/markdown',
      sourceId: 'doc.md#1 😀',
      metadata,
    }),
    { text: 'x', byteSize: 1, contentType: 'text/markdown', sourceId: 'doc.md#1 😀', metadata },
  );
  t.is(validateItem({ content: 'x', contentType: null, sourceId: null }).contentType, 'text/plain');
});

test('content that is not a string or bytes is InvalidContentError, not a TypeError', (t) => {
  for (const input of [
    42,
    null,
    'just a string',
    [],
    { content: 42 },
    { content: null },
    { content: { text: 'x' } },
    { content: ['x'] },
    {},
  ]) {
    const e = t.throws(() => validateItem(input));
    t.true(isInvalidContentError(e), String(e));
  }
  t.true(isInvalidContentError(t.throws(() => validateContent(42 as unknown as string))));
  // the content rules of validateContent still apply
  t.true(isInvalidUtf8Error(t.throws(() => validateItem({ content: 'a\u0000b' }))));
  t.true(isInvalidUtf8Error(t.throws(() => validateItem({ content: 'a\ud800b' }))));
  t.true(
    isContentTooLargeError(
      t.throws(() => validateItem({ content: 'xxx' }, { maxContentBytes: 2 })),
    ),
  );
});

test('sourceId and contentType: type, NUL and lone surrogates each get their own reason', (t) => {
  const cases: [unknown, string][] = [
    [42, 'type'],
    [{}, 'type'],
    ['a\u0000b', 'nul'],
    ['a\udc00', 'lone-surrogate'],
    ['\ud83d', 'lone-surrogate'],
  ];
  for (const [value, reason] of cases) {
    const s = t.throws(() => validateItem({ content: 'x', sourceId: value }));
    t.true(isInvalidSourceIdError(s));
    t.is((s as { reason?: string }).reason, reason);
    const c = t.throws(() => validateItem({ content: 'x', contentType: value }));
    t.true(isInvalidContentTypeError(c));
    t.is((c as { reason?: string }).reason, reason);
  }
  t.is(
    (t.throws(() => validateItem({ content: 'x', contentType: ' ' })) as { reason?: string })
      .reason,
    'empty',
  );
  t.is(
    (
      t.throws(() => validateItem({ content: 'x', contentType: 'x'.repeat(256) })) as {
        reason?: string;
      }
    ).reason,
    'too-long',
  );
  t.notThrows(() => validateItem({ content: 'x', sourceId: '', contentType: 'x'.repeat(255) }));
});

test('metadata: each kind of unstorable value is named, with its path', (t) => {
  const circular: Record<string, unknown> = { a: { b: [] } };
  ((circular.a as Record<string, unknown>).b as unknown[]).push(circular);
  const shared = { x: 1 };
  const deep: Record<string, unknown> = {};
  let at = deep;
  for (let i = 0; i < 70; i++) {
    const next = {};
    at.d = next;
    at = next;
  }
  const cases: [unknown, string, string][] = [
    ['a string', 'not-an-object', '$'],
    [[1, 2], 'not-an-object', '$'],
    [circular, 'circular', '$.a.b[0]'],
    [{ n: 10n }, 'bigint', '$.n'],
    [{ list: [1, 2n] }, 'bigint', '$.list[1]'],
    [{ f: () => 1 }, 'not-serializable', '$.f'],
    [{ s: Symbol('s') }, 'not-serializable', '$.s'],
    [{ m: new Map([[1, 2]]) }, 'not-serializable', '$.m'],
    [{ set: new Set([1]) }, 'not-serializable', '$.set'],
    [{ bytes: new Uint8Array(2) }, 'not-serializable', '$.bytes'],
    [{ x: Number.NaN }, 'not-finite', '$.x'],
    [{ x: [Number.POSITIVE_INFINITY] }, 'not-finite', '$.x[0]'],
    [{ text: 'a\u0000' }, 'nul', '$.text'],
    [{ 'k\u0000': 1 }, 'nul', '$.k\u0000'],
    [{ text: 'a\ud800' }, 'lone-surrogate', '$.text'],
    [{ '\udfff': 1 }, 'lone-surrogate', '$.\udfff'],
    [deep, 'too-deep', `$${'.d'.repeat(64)}`],
  ];
  for (const [metadata, reason, path] of cases) {
    const e = t.throws<InvalidMetadataError>(() => validateItem({ content: 'x', metadata }));
    t.true(isInvalidMetadataError(e), `${reason}: ${String(e)}`);
    t.is(e?.reason as string | undefined, reason);
    t.is(e?.path, path);
  }
  // a shared (not circular) object is fine: JSON writes it twice
  t.notThrows(() => validateItem({ content: 'x', metadata: { a: shared, b: [shared] } }));
  t.notThrows(() => validateItem({ content: 'x', metadata: deep }, { maxMetadataDepth: 100 }));
});

/**
 * The brute-force oracle: metadata is storable exactly when JSON.stringify accepts it, the
 * JSON read back equals it (undefined properties left out, as JSON does), and no string or
 * key holds NUL or a lone surrogate.
 */
function storable(value: Record<string, unknown>): boolean {
  let back: unknown;
  try {
    back = JSON.parse(JSON.stringify(value));
  } catch {
    return false;
  }
  const same = (a: unknown, b: unknown, inArray: boolean): boolean => {
    if (a === undefined) return inArray ? b === null : false;
    if (typeof a === 'string') return a === b && !a.includes('\u0000') && !LONE.test(a);
    if (typeof a === 'number') return Number.isFinite(a) && (a === b || (a === 0 && b === 0));
    if (typeof a === 'boolean' || a === null) return a === b;
    if (typeof a !== 'object') return false;
    if (Array.isArray(a)) {
      return Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i], true));
    }
    const proto = Object.getPrototypeOf(a);
    if (proto !== Object.prototype && proto !== null) return false;
    if (typeof b !== 'object' || b === null || Array.isArray(b)) return false;
    const keys = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
    if (keys.some((k) => k.includes('\u0000') || LONE.test(k))) return false;
    if (keys.length !== Object.keys(b).length) return false;
    return keys.every((k) =>
      same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], false),
    );
  };
  return same(value, back, false);
}

test('property: validateItem accepts metadata exactly when it survives JSON unchanged', (t) => {
  const text = fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary' }),
    fc.constantFrom('a\u0000b', '\ud800', 'x\udc00y', '😀'),
  );
  const value = fc.anything({
    key: text,
    values: [
      text,
      fc.double(),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      fc.bigInt(),
      fc.constant(Number.NaN),
    ],
    maxDepth: 4,
    withMap: true,
    withSet: true,
    withTypedArray: true,
    withSparseArray: true,
    withNullPrototype: true,
    withBoxedValues: false,
  });
  fc.assert(
    fc.property(fc.dictionary(text, value), (metadata) => {
      let accepted = true;
      try {
        validateItem({ content: 'x', metadata });
      } catch (e) {
        if (!isInvalidMetadataError(e)) throw e;
        accepted = false;
      }
      return accepted === storable(metadata);
    }),
    { numRuns: 2_000 },
  );
  t.pass();
});
