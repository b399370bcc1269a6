/**
 * The named errors of document sync. Each carries structured fields and has an `isXError`
 * guard.
 *
 * @module
 */

import { errorGuard, PipelineError } from '../core/errors.js';

/**
 * A document is malformed: no string id, no string content, metadata that is not a plain
 * object, or no collection. Only that document fails; the run goes on.
 *
 * @example
 * ```ts
 * import { isInvalidDocumentError } from '@hartonomous/pipelines/documents';
 * const failed = report.failures.filter((f) => f.error === 'InvalidDocumentError');
 * ```
 */
export class InvalidDocumentError extends PipelineError {
  readonly code = 'INVALID_DOCUMENT' as const;
  /**
   * @param index - the document's position in the run's source
   * @param field - the field that is wrong (`id`, `content`, `metadata`, `collection`, `document`)
   * @param detail - what is wrong with it
   */
  constructor(
    readonly index: number,
    readonly field: string,
    detail: string,
  ) {
    super(`document ${index}: ${field} ${detail}`);
  }
}

/**
 * Guard for {@link InvalidDocumentError}.
 * @param e - any caught value
 * @returns whether `e` is an {@link InvalidDocumentError}
 * @example
 * ```ts
 * import { InvalidDocumentError, isInvalidDocumentError } from '@hartonomous/pipelines/documents';
 * isInvalidDocumentError(new InvalidDocumentError(0, 'id', 'is missing')); // true
 * ```
 */
export const isInvalidDocumentError: (e: unknown) => e is InvalidDocumentError =
  errorGuard<InvalidDocumentError>('INVALID_DOCUMENT');

/**
 * The same document id came twice in one run (in the same collection). The first one is
 * synced; the later ones fail with this error, so a run never writes a document twice.
 *
 * @example
 * ```ts
 * import { DuplicateDocumentError } from '@hartonomous/pipelines/documents';
 * const e = new DuplicateDocumentError('docs', 'a.md', 3);
 * console.log(e.message); // document 'a.md' of collection 'docs' came twice in one run (again at 3)
 * ```
 */
export class DuplicateDocumentError extends PipelineError {
  readonly code = 'DUPLICATE_DOCUMENT' as const;
  /**
   * @param collection - the collection
   * @param documentId - the repeated id
   * @param index - position of the repeat in the source
   */
  constructor(
    readonly collection: string,
    readonly documentId: string,
    readonly index: number,
  ) {
    super(
      `document '${documentId}' of collection '${collection}' came twice in one run (again at ${index})`,
    );
  }
}

/**
 * Guard for {@link DuplicateDocumentError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link DuplicateDocumentError}
 * @example
 * ```ts
 * import { DuplicateDocumentError, isDuplicateDocumentError } from '@hartonomous/pipelines/documents';
 * isDuplicateDocumentError(new DuplicateDocumentError('c', 'a', 1)); // true
 * ```
 */
export const isDuplicateDocumentError: (e: unknown) => e is DuplicateDocumentError =
  errorGuard<DuplicateDocumentError>('DUPLICATE_DOCUMENT');

/**
 * The chunker threw, or returned something that is not a list of chunks (strings or objects
 * with a string `content`). Only that document fails.
 *
 * @example
 * ```ts
 * import { ChunkerError } from '@hartonomous/pipelines/documents';
 * const e = new ChunkerError('a.md', 'returned undefined');
 * console.log(e.documentId, e.message);
 * ```
 */
export class ChunkerError extends PipelineError {
  readonly code = 'CHUNKER_FAILED' as const;
  /**
   * @param documentId - the document being chunked
   * @param detail - what went wrong
   * @param cause - the chunker's error, if it threw
   */
  constructor(
    readonly documentId: string,
    detail: string,
    cause?: unknown,
  ) {
    super(`chunking document '${documentId}' failed: ${detail}`, { cause });
  }
}

/**
 * Guard for {@link ChunkerError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link ChunkerError}
 * @example
 * ```ts
 * import { ChunkerError, isChunkerError } from '@hartonomous/pipelines/documents';
 * isChunkerError(new ChunkerError('a', 'threw')); // true
 * ```
 */
export const isChunkerError: (e: unknown) => e is ChunkerError =
  errorGuard<ChunkerError>('CHUNKER_FAILED');

/**
 * A chunk of the document could not be stored as an atom (too large, invalid text, the
 * embedding failed, ...). `cause` is the atom ingestion's error; the document keeps its old
 * chunk list, and a re-run tries again.
 *
 * @example
 * ```ts
 * import { isChunkFailedError } from '@hartonomous/pipelines/documents';
 * const why = (e: unknown) => (isChunkFailedError(e) ? `chunk ${e.position}: ${e.message}` : String(e));
 * ```
 */
export class ChunkFailedError extends PipelineError {
  readonly code = 'CHUNK_FAILED' as const;
  /**
   * @param documentId - the document
   * @param position - the chunk's position in the document
   * @param reason - the error's name and message
   * @param cause - the atom ingestion's error
   */
  constructor(
    readonly documentId: string,
    readonly position: number,
    reason: string,
    cause?: unknown,
  ) {
    super(`chunk ${position} of document '${documentId}' was not stored: ${reason}`, { cause });
  }
}

/**
 * Guard for {@link ChunkFailedError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link ChunkFailedError}
 * @example
 * ```ts
 * import { ChunkFailedError, isChunkFailedError } from '@hartonomous/pipelines/documents';
 * isChunkFailedError(new ChunkFailedError('a', 0, 'too large')); // true
 * ```
 */
export const isChunkFailedError: (e: unknown) => e is ChunkFailedError =
  errorGuard<ChunkFailedError>('CHUNK_FAILED');
