import test from 'ava';
import fc from 'fast-check';
import { isInvalidUtf8Error } from '../../lib/atoms/errors.js';
import { contentHash } from '../../lib/atoms/hash.js';

// FIPS 180-2 / NIST test vectors for SHA-256.
const VECTORS: [string, string][] = [
  ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  ['abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
  [
    'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq',
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  ],
  [
    'abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu',
    'cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1',
  ],
];

test('known SHA-256 test vectors (string and bytes)', (t) => {
  for (const [input, digest] of VECTORS) {
    t.is(contentHash(input), digest);
    t.is(contentHash(new TextEncoder().encode(input)), digest);
  }
  t.is(
    contentHash('a'.repeat(1_000_000)),
    'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0',
  );
});

test('a string hashes as its UTF-8 bytes', (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme' }), (s) => {
      return contentHash(s) === contentHash(Buffer.from(s, 'utf8'));
    }),
  );
  // U+00E9 is two UTF-8 bytes c3 a9.
  t.is(contentHash('é'), contentHash(new Uint8Array([0xc3, 0xa9])));
});

test("'nfc' makes composed and decomposed forms equal; 'none' keeps them apart", (t) => {
  const composed = 'Caf\u00e9';
  const decomposed = 'Cafe\u0301';
  t.not(contentHash(composed), contentHash(decomposed));
  t.is(contentHash(composed, { normalize: 'nfc' }), contentHash(decomposed, { normalize: 'nfc' }));
  t.is(contentHash(decomposed, { normalize: 'nfc' }), contentHash(composed));
  // Bytes are decoded, normalised and re-encoded too.
  t.is(contentHash(Buffer.from(decomposed), { normalize: 'nfc' }), contentHash(composed));
});

test("'nfc-trim-collapse' also trims and collapses whitespace runs to one space", (t) => {
  const h = (s: string) => contentHash(s, { normalize: 'nfc-trim-collapse' });
  t.is(h('  hello \t\n  world\u00a0 '), contentHash('hello world'));
  t.is(h('Cafe\u0301  au\r\nlait'), contentHash('Caf\u00e9 au lait'));
  t.not(h('hello world'), h('helloworld'));
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme' }), (s) => {
      const once = s.normalize('NFC').trim().replace(/\s+/g, ' ');
      return h(s) === contentHash(once) && h(once) === h(s);
    }),
  );
});

test('lone surrogates and invalid UTF-8 bytes are rejected with InvalidUtf8Error', (t) => {
  t.true(isInvalidUtf8Error(t.throws(() => contentHash('a\ud800b'))));
  t.true(
    isInvalidUtf8Error(
      t.throws(() => contentHash(new Uint8Array([0xff, 0xfe]), { normalize: 'nfc' })),
    ),
  );
  // Without normalisation bytes are hashed as they are.
  t.is(contentHash(new Uint8Array([0xff])).length, 64);
});

test('options are validated', (t) => {
  // @ts-expect-error: an unknown normalisation on purpose
  t.throws(() => contentHash('x', { normalize: 'nfkc' }), { instanceOf: TypeError });
  // @ts-expect-error: not content
  t.throws(() => contentHash(42), { instanceOf: TypeError });
});
