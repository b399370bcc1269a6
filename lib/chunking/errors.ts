/**
 * The named errors of chunking.
 *
 * @module
 */

import { errorGuard, PipelineError } from '../core/errors.js';

/**
 * A chunker was given something that is not a document: no string `id` or no string
 * `content`. Nothing is cut.
 *
 * @example
 * ```ts
 * import { isInvalidDocumentError, paragraphChunker } from '@hartonomous/pipelines/chunking';
 *
 * try {
 *   paragraphChunker()({ id: 'a', content: 42 as unknown as string });
 * } catch (e) {
 *   if (isInvalidDocumentError(e)) console.log(e.field, e.message);
 * }
 * ```
 */
export class InvalidDocumentError extends PipelineError {
  readonly code = 'INVALID_DOCUMENT' as const;
  /**
   * @param field - the field that is wrong (`'id'` or `'content'`, or `'document'` itself)
   * @param received - the type received (`typeof`, or `null`)
   */
  constructor(
    readonly field: 'document' | 'id' | 'content',
    readonly received: string,
  ) {
    super(
      field === 'document'
        ? `a chunker needs a document ({ id: string, content: string }), got ${received}`
        : `a document's ${field} must be a string, got ${received}`,
    );
  }
}

/**
 * Guard for {@link InvalidDocumentError}.
 * @param e - any caught value
 * @returns whether `e` is an {@link InvalidDocumentError}
 * @example
 * ```ts
 * import { InvalidDocumentError, isInvalidDocumentError } from '@hartonomous/pipelines/chunking';
 * isInvalidDocumentError(new InvalidDocumentError('id', 'number')); // true
 * ```
 */
export const isInvalidDocumentError: (e: unknown) => e is InvalidDocumentError =
  errorGuard<InvalidDocumentError>('INVALID_DOCUMENT');

/**
 * {@link loadTokenizer} could not load `gpt-tokenizer` (an optional peer dependency: install it
 * with `npm i gpt-tokenizer` to measure budgets in tokens).
 *
 * @example
 * ```ts
 * import { isTokenizerUnavailableError, loadTokenizer } from '@hartonomous/pipelines/chunking';
 *
 * const tokenizer = await loadTokenizer().catch((e: unknown) => {
 *   if (isTokenizerUnavailableError(e)) return undefined; // fall back to characters
 *   throw e;
 * });
 * ```
 */
export class TokenizerUnavailableError extends PipelineError {
  readonly code = 'TOKENIZER_UNAVAILABLE' as const;
  /**
   * @param encoding - the encoding asked for
   * @param cause - the import failure
   */
  constructor(
    readonly encoding: string,
    cause: unknown,
  ) {
    super(
      `cannot load the ${encoding} tokenizer: install the optional peer dependency gpt-tokenizer (npm i gpt-tokenizer)`,
      { cause },
    );
  }
}

/**
 * Guard for {@link TokenizerUnavailableError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link TokenizerUnavailableError}
 * @example
 * ```ts
 * import { isTokenizerUnavailableError } from '@hartonomous/pipelines/chunking';
 * isTokenizerUnavailableError(new Error('x')); // false
 * ```
 */
export const isTokenizerUnavailableError: (e: unknown) => e is TokenizerUnavailableError =
  errorGuard<TokenizerUnavailableError>('TOKENIZER_UNAVAILABLE');
