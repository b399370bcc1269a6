/**
 * The named errors of atom ingestion: bad input (empty, too large, not UTF-8), bad embeddings
 * and failed embedding requests. Each carries structured fields and has an `isXError` guard.
 * The embedding errors belong to the embedder contract (lib/embedding, which the HTTP embedder
 * imports too) and are re-exported here.
 *
 * @module
 */

import { errorGuard, PipelineError } from '../core/errors.js';

export {
  EmbeddingHttpError,
  InvalidEmbeddingError,
  type InvalidEmbeddingReason,
  isEmbeddingHttpError,
  isInvalidEmbeddingError,
} from '../embedding/errors.js';

/**
 * The content is empty, or only whitespace.
 *
 * @example
 * ```ts
 * import { isEmptyContentError, validateContent } from '@hartonomous/pipelines/atoms';
 *
 * try {
 *   validateContent('   ');
 * } catch (e) {
 *   if (isEmptyContentError(e)) console.log('skipped an empty document');
 * }
 * ```
 */
export class EmptyContentError extends PipelineError {
  readonly code = 'EMPTY_CONTENT' as const;
  /** Bad input: retrying cannot succeed (a Service Bus worker dead-letters its message at once). */
  get permanent(): true {
    return true;
  }
  /** @param byteSize - the content's size in bytes (0, or only whitespace) */
  constructor(readonly byteSize: number = 0) {
    super(byteSize === 0 ? 'content is empty' : `content is only whitespace (${byteSize} bytes)`);
  }
}

/**
 * Guard for {@link EmptyContentError}.
 * @param e - any caught value
 * @returns whether `e` is an {@link EmptyContentError}
 * @example
 * ```ts
 * import { EmptyContentError, isEmptyContentError } from '@hartonomous/pipelines/atoms';
 * isEmptyContentError(new EmptyContentError()); // true
 * ```
 */
export const isEmptyContentError: (e: unknown) => e is EmptyContentError =
  errorGuard<EmptyContentError>('EMPTY_CONTENT');

/**
 * The content is larger than the limit (in UTF-8 bytes).
 *
 * @example
 * ```ts
 * import { isContentTooLargeError, validateContent } from '@hartonomous/pipelines/atoms';
 *
 * try {
 *   validateContent('x'.repeat(2_000_000));
 * } catch (e) {
 *   if (isContentTooLargeError(e)) console.log(`${e.bytes} > ${e.limit}`);
 * }
 * ```
 */
export class ContentTooLargeError extends PipelineError {
  readonly code = 'CONTENT_TOO_LARGE' as const;
  /** Bad input: retrying cannot succeed (a Service Bus worker dead-letters its message at once). */
  get permanent(): true {
    return true;
  }
  /**
   * @param bytes - the content's size in bytes
   * @param limit - the largest size allowed
   */
  constructor(
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`content is ${bytes} bytes, more than the limit of ${limit}`);
  }
}

/**
 * Guard for {@link ContentTooLargeError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link ContentTooLargeError}
 * @example
 * ```ts
 * import { ContentTooLargeError, isContentTooLargeError } from '@hartonomous/pipelines/atoms';
 * isContentTooLargeError(new ContentTooLargeError(2, 1)); // true
 * ```
 */
export const isContentTooLargeError: (e: unknown) => e is ContentTooLargeError =
  errorGuard<ContentTooLargeError>('CONTENT_TOO_LARGE');

/**
 * Bytes declared as text are not valid UTF-8, a string holds a lone surrogate (which has no
 * UTF-8 form), or the text holds a NUL character (which PostgreSQL `text` cannot store).
 *
 * @example
 * ```ts
 * import { isInvalidUtf8Error, validateContent } from '@hartonomous/pipelines/atoms';
 *
 * try {
 *   validateContent(new Uint8Array([0xff, 0xfe]));
 * } catch (e) {
 *   if (isInvalidUtf8Error(e)) console.log(`${e.byteLength} bytes of non-UTF-8`);
 * }
 * ```
 */
export class InvalidUtf8Error extends PipelineError {
  readonly code = 'INVALID_UTF8' as const;
  /** Bad input: retrying cannot succeed (a Service Bus worker dead-letters its message at once). */
  get permanent(): true {
    return true;
  }
  /**
   * @param byteLength - size of the rejected input (bytes, or UTF-16 units for a string)
   * @param detail - what was wrong
   */
  constructor(
    readonly byteLength: number,
    readonly detail: string = 'not valid UTF-8',
  ) {
    super(`content is ${detail}`);
  }
}

/**
 * Guard for {@link InvalidUtf8Error}.
 * @param e - any caught value
 * @returns whether `e` is an {@link InvalidUtf8Error}
 * @example
 * ```ts
 * import { InvalidUtf8Error, isInvalidUtf8Error } from '@hartonomous/pipelines/atoms';
 * isInvalidUtf8Error(new InvalidUtf8Error(2)); // true
 * ```
 */
export const isInvalidUtf8Error: (e: unknown) => e is InvalidUtf8Error =
  errorGuard<InvalidUtf8Error>('INVALID_UTF8');

/**
 * Content another worker had claimed was not stored within `claimedWaitMs`: that worker is
 * slow or died holding the claim. Transient: retry the item later (a broker redelivers it);
 * a dead worker's claim is taken over once it is older than `claimStaleMs`.
 *
 * @example
 * ```ts
 * import { isClaimedElsewhereError } from '@hartonomous/pipelines/atoms';
 * const retryLater = (e: unknown) => isClaimedElsewhereError(e);
 * ```
 */
export class ClaimedElsewhereError extends PipelineError {
  readonly code = 'CLAIMED_ELSEWHERE' as const;
  /**
   * @param hash - the content hash
   * @param waitedMs - how long the item waited for the other worker
   */
  constructor(
    readonly hash: string,
    readonly waitedMs: number,
  ) {
    super(`content ${hash} is claimed by another worker and was not stored within ${waitedMs} ms`);
  }
}

/**
 * Guard for {@link ClaimedElsewhereError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link ClaimedElsewhereError}
 * @example
 * ```ts
 * import { ClaimedElsewhereError, isClaimedElsewhereError } from '@hartonomous/pipelines/atoms';
 * isClaimedElsewhereError(new ClaimedElsewhereError('ab'.repeat(32), 100)); // true
 * ```
 */
export const isClaimedElsewhereError: (e: unknown) => e is ClaimedElsewhereError =
  errorGuard<ClaimedElsewhereError>('CLAIMED_ELSEWHERE');
