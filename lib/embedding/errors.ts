/**
 * The embedding contract's named errors, shared by every embedder (the built-in local one, the
 * OpenAI-compatible HTTP client) and by atom ingestion, which fails only the inputs they name.
 * Each carries structured fields and has an `isXError` guard.
 *
 * @module
 */

import { errorGuard, PipelineError } from '../core/errors.js';

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
 * An embedder answered every input, but some vectors are unusable (wrong length, NaN,
 * missing): `results` holds, per input in order, its vector or the {@link InvalidEmbeddingError}
 * that fails that input alone. The ingestion pipeline stores the good ones and fails only the
 * bad ones; a caller that wants all or nothing just treats it as a failure.
 *
 * @example
 * ```ts
 * import { isPartialEmbeddingError } from '@hartonomous/pipelines/atoms';
 *
 * try {
 *   await embedder.embed(texts, signal);
 * } catch (e) {
 *   if (isPartialEmbeddingError(e)) console.log(`${e.failed} of ${e.results.length} inputs got no vector`);
 * }
 * ```
 */
export class PartialEmbeddingError extends PipelineError {
  readonly code = 'PARTIAL_EMBEDDING' as const;
  /** How many inputs got no usable vector. */
  readonly failed: number;
  /**
   * @param results - per input, its vector or why it has none
   */
  constructor(readonly results: readonly (Float32Array | InvalidEmbeddingError)[]) {
    let failed = 0;
    let first: InvalidEmbeddingError | undefined;
    for (const r of results) {
      if (!(r instanceof Float32Array)) {
        failed++;
        first ??= r;
      }
    }
    super(
      `${failed} of ${results.length} inputs got no usable embedding${first ? ` (first: ${first.message})` : ''}`,
    );
    this.failed = failed;
  }

  /** A short description for logs (not the vectors). */
  override toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      failed: this.failed,
      inputs: this.results.length,
    };
  }
}

/**
 * Guard for {@link PartialEmbeddingError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link PartialEmbeddingError}
 * @example
 * ```ts
 * import { isPartialEmbeddingError, PartialEmbeddingError } from '@hartonomous/pipelines/atoms';
 * isPartialEmbeddingError(new PartialEmbeddingError([new Float32Array(2)])); // true
 * ```
 */
export const isPartialEmbeddingError: (e: unknown) => e is PartialEmbeddingError =
  errorGuard<PartialEmbeddingError>('PARTIAL_EMBEDDING');
