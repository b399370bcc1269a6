import { ContentTooLargeError, EmptyContentError, InvalidUtf8Error } from './errors.js';
import { InvalidContentError } from './item-errors.js';

/**
 * The default largest content accepted: 1 MiB of UTF-8.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_CONTENT_BYTES, validateContent } from '@hartonomous/pipelines/atoms';
 * validateContent(text, { maxBytes: 4 * DEFAULT_MAX_CONTENT_BYTES });
 * ```
 */
export const DEFAULT_MAX_CONTENT_BYTES = 1_048_576;

/**
 * Options of {@link validateContent}.
 *
 * @example
 * ```ts
 * import type { ValidateContentOptions } from '@hartonomous/pipelines/atoms';
 * const strict: ValidateContentOptions = { maxBytes: 64 * 1024 };
 * ```
 */
export interface ValidateContentOptions {
  /** Largest content accepted, in UTF-8 bytes. @default 1_048_576 (1 MiB) */
  maxBytes?: number;
}

/**
 * Content that passed {@link validateContent}: the text and its size in UTF-8 bytes.
 *
 * @example
 * ```ts
 * import { validateContent, type ValidContent } from '@hartonomous/pipelines/atoms';
 * const ok: ValidContent = validateContent('hello'); // { text: 'hello', byteSize: 5 }
 * ```
 */
export interface ValidContent {
  /** The content as a string (decoded from bytes if bytes were given). */
  readonly text: string;
  /** Its size in UTF-8 bytes. */
  readonly byteSize: number;
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Checks one piece of content before ingestion: not empty or only whitespace, not larger than
 * the limit, valid UTF-8 (bytes are decoded with a fatal `TextDecoder`; a string must have no
 * lone surrogates) and free of NUL characters (PostgreSQL `text` cannot hold U+0000; reported
 * as {@link InvalidUtf8Error} too). The size is checked first, so oversized bytes are never
 * decoded.
 *
 * @param content - text, or bytes declared as UTF-8 text
 * @param options - a byte limit, or {@link ValidateContentOptions}
 * @returns the text and its UTF-8 size
 * @throws {@link EmptyContentError}, {@link ContentTooLargeError}, {@link InvalidUtf8Error},
 * `InvalidContentError` (neither a string nor bytes)
 *
 * @example
 * ```ts
 * import { validateContent } from '@hartonomous/pipelines/atoms';
 *
 * const { text, byteSize } = validateContent(new TextEncoder().encode('héllo'));
 * // text 'héllo', byteSize 6
 * ```
 */
export function validateContent(
  content: string | Uint8Array,
  options: number | ValidateContentOptions = {},
): ValidContent {
  const maxBytes =
    typeof options === 'number' ? options : (options.maxBytes ?? DEFAULT_MAX_CONTENT_BYTES);
  if (!Number.isInteger(maxBytes) || maxBytes < 1) {
    throw new TypeError(`validateContent: maxBytes must be a positive integer, got ${maxBytes}`);
  }
  let text: string;
  let byteSize: number;
  if (typeof content === 'string') {
    // Every UTF-16 unit needs at least one UTF-8 byte, so a string longer than the limit is
    // too large whatever it holds.
    if (content.length > maxBytes) {
      byteSize = Buffer.byteLength(content, 'utf8');
      throw new ContentTooLargeError(byteSize, maxBytes);
    }
    if (LONE_SURROGATE.test(content)) {
      throw new InvalidUtf8Error(content.length, 'a string with a lone surrogate (no UTF-8 form)');
    }
    text = content;
    byteSize = Buffer.byteLength(content, 'utf8');
  } else if (content instanceof Uint8Array) {
    byteSize = content.byteLength;
    if (byteSize > maxBytes) throw new ContentTooLargeError(byteSize, maxBytes);
    try {
      text = decoder.decode(content);
    } catch {
      throw new InvalidUtf8Error(byteSize);
    }
  } else {
    throw new InvalidContentError(typeof content);
  }
  if (byteSize > maxBytes) throw new ContentTooLargeError(byteSize, maxBytes);
  if (text.includes('\u0000')) {
    throw new InvalidUtf8Error(
      byteSize,
      'text with a NUL character (U+0000), which PostgreSQL cannot store',
    );
  }
  if (text.trim().length === 0) throw new EmptyContentError(byteSize);
  return { text, byteSize };
}
