/**
 * The named errors of atom ingestion: bad input (empty, too large, not UTF-8), bad embeddings
 * and failed embedding requests. Each carries structured fields and has an `isXError` guard.
 *
 * @module
 */

import { errorGuard, PipelineError } from '../core/errors.js';

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
 * Why an embedding was rejected: the batch had the wrong number of vectors (`'count'`), a
 * vector had the wrong length (`'dimensions'`), a value was NaN or infinite (`'not-finite'`),
 * or an entry was not a vector at all (`'not-a-vector'`).
 *
 * @example
 * ```ts
 * import { isInvalidEmbeddingError, type InvalidEmbeddingReason } from '@hartonomous/pipelines/atoms';
 * const fatal: InvalidEmbeddingReason[] = ['dimensions', 'not-a-vector'];
 * const isFatal = (e: unknown) => isInvalidEmbeddingError(e) && fatal.includes(e.reason);
 * ```
 */
export type InvalidEmbeddingReason = 'count' | 'dimensions' | 'not-finite' | 'not-a-vector';

/**
 * An embedder returned something unusable. `index` is the position of the bad vector in the
 * batch (`-1` when the count is wrong).
 *
 * @example
 * ```ts
 * import { isInvalidEmbeddingError, validateVectors } from '@hartonomous/pipelines/atoms';
 *
 * try {
 *   validateVectors([new Float32Array([1, Number.NaN])], 2, 1);
 * } catch (e) {
 *   if (isInvalidEmbeddingError(e)) console.log(e.index, e.reason); // 0 'not-finite'
 * }
 * ```
 */
export class InvalidEmbeddingError extends PipelineError {
  readonly code = 'INVALID_EMBEDDING' as const;
  /**
   * @param index - position of the bad vector (`-1` for a count mismatch)
   * @param reason - what was wrong
   * @param detail - a human-readable description
   */
  constructor(
    readonly index: number,
    readonly reason: InvalidEmbeddingReason,
    detail: string,
  ) {
    super(index < 0 ? `invalid embeddings: ${detail}` : `invalid embedding #${index}: ${detail}`);
  }
}

/**
 * Guard for {@link InvalidEmbeddingError}.
 * @param e - any caught value
 * @returns whether `e` is an {@link InvalidEmbeddingError}
 * @example
 * ```ts
 * import { InvalidEmbeddingError, isInvalidEmbeddingError } from '@hartonomous/pipelines/atoms';
 * isInvalidEmbeddingError(new InvalidEmbeddingError(0, 'dimensions', 'expected 3')); // true
 * ```
 */
export const isInvalidEmbeddingError: (e: unknown) => e is InvalidEmbeddingError =
  errorGuard<InvalidEmbeddingError>('INVALID_EMBEDDING');

/**
 * An embeddings endpoint answered with an HTTP error (or not at all: `status` 0).
 * `retryAfterMs` is the server's `Retry-After` (seconds or an HTTP date) in milliseconds, when
 * it sent one. The message never contains the API key.
 *
 * @example
 * ```ts
 * import { isEmbeddingHttpError } from '@hartonomous/pipelines/atoms';
 *
 * try {
 *   await embedder.embed(['hello'], AbortSignal.timeout(10_000));
 * } catch (e) {
 *   if (isEmbeddingHttpError(e) && e.status === 429) console.log('slow down for', e.retryAfterMs);
 * }
 * ```
 */
export class EmbeddingHttpError extends PipelineError {
  readonly code = 'EMBEDDING_HTTP' as const;
  /**
   * @param status - HTTP status (0 when no response arrived)
   * @param retryAfterMs - the server's Retry-After in ms, if given
   * @param url - the endpoint (without credentials)
   * @param detail - a short description (response body excerpt or network error), redacted
   * @param options - `cause`, already redacted
   */
  constructor(
    readonly status: number,
    readonly retryAfterMs: number | undefined,
    readonly url: string,
    readonly detail: string,
    options?: ErrorOptions,
  ) {
    super(
      `embedding request to ${url} failed${status ? ` with HTTP ${status}` : ''}: ${detail}`,
      options,
    );
  }

  /** Whether retrying may help: 408, 409, 425, 429, 5xx, or no response. */
  get retryable(): boolean {
    const s = this.status;
    return s === 0 || s === 408 || s === 409 || s === 425 || s === 429 || s >= 500;
  }
}

/**
 * Guard for {@link EmbeddingHttpError}.
 * @param e - any caught value
 * @returns whether `e` is an {@link EmbeddingHttpError}
 * @example
 * ```ts
 * import { EmbeddingHttpError, isEmbeddingHttpError } from '@hartonomous/pipelines/atoms';
 * isEmbeddingHttpError(new EmbeddingHttpError(503, 1000, 'http://127.0.0.1/v1/embeddings', 'busy')); // true
 * ```
 */
export const isEmbeddingHttpError: (e: unknown) => e is EmbeddingHttpError =
  errorGuard<EmbeddingHttpError>('EMBEDDING_HTTP');

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
