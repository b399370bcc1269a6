import { createHash } from 'node:crypto';
import { InvalidUtf8Error } from './errors.js';

/**
 * How text is normalised before hashing, so that contents that differ only in Unicode form
 * or spacing get the same hash (and are stored once):
 *
 * - `'none'`: the exact UTF-8 bytes (a `Uint8Array` is hashed as given).
 * - `'nfc'`: Unicode NFC (composed form), so `é` typed as `e` + combining accent matches `é`.
 * - `'nfc-trim-collapse'`: NFC, then leading and trailing whitespace removed and every run of
 *   whitespace (JavaScript `\s`: spaces, tabs, newlines, NBSP and other Unicode spaces)
 *   replaced by one ASCII space.
 *
 * @example
 * ```ts
 * import { contentHash, type HashNormalization } from '@hartonomous/pipelines/atoms';
 * const normalize: HashNormalization = 'nfc';
 * contentHash('Cafe\u0301', { normalize }) === contentHash('Caf\u00e9'); // true
 * ```
 */
export type HashNormalization = 'none' | 'nfc' | 'nfc-trim-collapse';

/**
 * Options of {@link contentHash}.
 *
 * @example
 * ```ts
 * import type { ContentHashOptions } from '@hartonomous/pipelines/atoms';
 * const loose: ContentHashOptions = { normalize: 'nfc-trim-collapse' };
 * ```
 */
export interface ContentHashOptions {
  /** Normalisation applied before hashing. @default 'none' */
  normalize?: HashNormalization;
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * The SHA-256 of content's UTF-8 bytes, as 64 lowercase hex characters: the key atoms are
 * deduplicated by (stored as 32 bytes in `atoms.content_hash`). Uses `node:crypto`.
 *
 * @param content - text, or bytes that are UTF-8 text
 * @param options - normalisation (see {@link HashNormalization}); `'none'` by default
 * @returns lowercase hex SHA-256
 * @throws {@link InvalidUtf8Error} for bytes that are not UTF-8 (when normalising) or a string
 *   with a lone surrogate
 *
 * @example
 * ```ts
 * import { contentHash } from '@hartonomous/pipelines/atoms';
 *
 * contentHash('abc');
 * // 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
 * contentHash('  Caf\u0065\u0301 \n', { normalize: 'nfc-trim-collapse' }) === contentHash('Café', { normalize: 'nfc' });
 * // true
 * ```
 */
export function contentHash(
  content: string | Uint8Array,
  options: ContentHashOptions = {},
): string {
  const normalize = options.normalize ?? 'none';
  if (normalize !== 'none' && normalize !== 'nfc' && normalize !== 'nfc-trim-collapse') {
    throw new TypeError(
      `contentHash: normalize must be 'none', 'nfc' or 'nfc-trim-collapse', got ${String(normalize)}`,
    );
  }
  const hash = createHash('sha256');
  if (typeof content === 'string') {
    if (LONE_SURROGATE.test(content)) {
      throw new InvalidUtf8Error(content.length, 'a string with a lone surrogate (no UTF-8 form)');
    }
    hash.update(normalizeText(content, normalize), 'utf8');
  } else if (content instanceof Uint8Array) {
    if (normalize === 'none') {
      hash.update(content);
    } else {
      let text: string;
      try {
        text = decoder.decode(content);
      } catch {
        throw new InvalidUtf8Error(content.byteLength);
      }
      hash.update(normalizeText(text, normalize), 'utf8');
    }
  } else {
    throw new TypeError('contentHash: content must be a string or a Uint8Array');
  }
  return hash.digest('hex');
}

/**
 * Applies a {@link HashNormalization} to text.
 * @internal
 */
export function normalizeText(text: string, normalize: HashNormalization): string {
  if (normalize === 'none') return text;
  const nfc = text.normalize('NFC');
  return normalize === 'nfc' ? nfc : nfc.trim().replace(/\s+/g, ' ');
}
