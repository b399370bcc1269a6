/**
 * The named errors that fail ONE atom input and nothing else: a field that cannot be stored
 * (content, content type, source id, metadata), a row the database refused, and a batch of
 * embeddings where only some inputs got a usable vector (that one belongs to the embedder
 * contract in lib/embedding and is re-exported here). Each carries structured fields and has
 * an `isXError` guard.
 *
 * @module
 */

import { errorGuard, PipelineError } from '../core/errors.js';

export { isPartialEmbeddingError, PartialEmbeddingError } from '../embedding/errors.js';

/**
 * The input has no usable content: it is not an object, or its `content` is neither a string
 * nor a `Uint8Array` (a number, `null`, an object, ...).
 *
 * @example
 * ```ts
 * import { isInvalidContentError, validateItem } from '@hartonomous/pipelines/atoms';
 *
 * try {
 *   validateItem({ content: 42 });
 * } catch (e) {
 *   if (isInvalidContentError(e)) console.log(e.received); // 'number'
 * }
 * ```
 */
export class InvalidContentError extends PipelineError {
  readonly code = 'INVALID_CONTENT' as const;
  /**
   * @param received - what was given instead (`typeof`, or `'null'`, `'array'`, a class name)
   * @param detail - what was wrong
   */
  constructor(
    readonly received: string,
    detail = `content must be a string or a Uint8Array, got ${received}`,
  ) {
    super(detail);
  }
}

/**
 * Guard for {@link InvalidContentError}.
 * @param e - any caught value
 * @returns whether `e` is an {@link InvalidContentError}
 * @example
 * ```ts
 * import { InvalidContentError, isInvalidContentError } from '@hartonomous/pipelines/atoms';
 * isInvalidContentError(new InvalidContentError('number')); // true
 * ```
 */
export const isInvalidContentError: (e: unknown) => e is InvalidContentError =
  errorGuard<InvalidContentError>('INVALID_CONTENT');

/**
 * Why a text field (`sourceId`, `contentType`) was rejected: not a string (`'type'`), empty
 * (`'empty'`), too long (`'too-long'`), holding a NUL character that PostgreSQL `text` cannot
 * store (`'nul'`), or a lone surrogate that has no UTF-8 form (`'lone-surrogate'`).
 *
 * @example
 * ```ts
 * import type { InvalidFieldReason } from '@hartonomous/pipelines/atoms';
 * const fixable: InvalidFieldReason[] = ['nul', 'lone-surrogate'];
 * ```
 */
export type InvalidFieldReason = 'type' | 'empty' | 'too-long' | 'nul' | 'lone-surrogate';

/**
 * The input's `sourceId` cannot be stored: not a string, or a string with a NUL character or
 * a lone surrogate.
 *
 * @example
 * ```ts
 * import { isInvalidSourceIdError, validateItem } from '@hartonomous/pipelines/atoms';
 *
 * try {
 *   validateItem({ content: 'hello', sourceId: 'a\u0000b' });
 * } catch (e) {
 *   if (isInvalidSourceIdError(e)) console.log(e.reason); // 'nul'
 * }
 * ```
 */
export class InvalidSourceIdError extends PipelineError {
  readonly code = 'INVALID_SOURCE_ID' as const;
  /**
   * @param reason - what was wrong
   * @param detail - a human-readable description
   */
  constructor(
    readonly reason: InvalidFieldReason,
    detail: string,
  ) {
    super(`invalid sourceId: ${detail}`);
  }
}

/**
 * Guard for {@link InvalidSourceIdError}.
 * @param e - any caught value
 * @returns whether `e` is an {@link InvalidSourceIdError}
 * @example
 * ```ts
 * import { InvalidSourceIdError, isInvalidSourceIdError } from '@hartonomous/pipelines/atoms';
 * isInvalidSourceIdError(new InvalidSourceIdError('type', 'got number')); // true
 * ```
 */
export const isInvalidSourceIdError: (e: unknown) => e is InvalidSourceIdError =
  errorGuard<InvalidSourceIdError>('INVALID_SOURCE_ID');

/**
 * The input's `contentType` cannot be stored: not a string, empty, longer than 255
 * characters, or holding a NUL character or a lone surrogate.
 *
 * @example
 * ```ts
 * import { isInvalidContentTypeError, validateItem } from '@hartonomous/pipelines/atoms';
 *
 * try {
 *   validateItem({ content: 'hello', contentType: 42 as unknown as string });
 * } catch (e) {
 *   if (isInvalidContentTypeError(e)) console.log(e.reason); // 'type'
 * }
 * ```
 */
export class InvalidContentTypeError extends PipelineError {
  readonly code = 'INVALID_CONTENT_TYPE' as const;
  /**
   * @param reason - what was wrong
   * @param detail - a human-readable description
   */
  constructor(
    readonly reason: InvalidFieldReason,
    detail: string,
  ) {
    super(`invalid contentType: ${detail}`);
  }
}

/**
 * Guard for {@link InvalidContentTypeError}.
 * @param e - any caught value
 * @returns whether `e` is an {@link InvalidContentTypeError}
 * @example
 * ```ts
 * import { InvalidContentTypeError, isInvalidContentTypeError } from '@hartonomous/pipelines/atoms';
 * isInvalidContentTypeError(new InvalidContentTypeError('empty', 'empty string')); // true
 * ```
 */
export const isInvalidContentTypeError: (e: unknown) => e is InvalidContentTypeError =
  errorGuard<InvalidContentTypeError>('INVALID_CONTENT_TYPE');

/**
 * Why metadata was rejected:
 * - `'not-an-object'`: the metadata is not a plain JSON object (an array, a string, ...);
 * - `'circular'`: it refers to itself;
 * - `'bigint'`: a BigInt value (JSON has no form for it);
 * - `'not-serializable'`: a function, a symbol, a Map, a Set or binary data (JSON would drop
 *   it or store `{}` silently);
 * - `'not-finite'`: NaN or Infinity (JSON would store `null`);
 * - `'nul'`: a NUL character in a string or key (PostgreSQL `jsonb` cannot hold U+0000);
 * - `'lone-surrogate'`: a lone surrogate in a string or key (no UTF-8 form);
 * - `'too-deep'`: nested deeper than the limit.
 *
 * @example
 * ```ts
 * import type { InvalidMetadataReason } from '@hartonomous/pipelines/atoms';
 * const shape: InvalidMetadataReason[] = ['not-an-object', 'circular', 'too-deep'];
 * ```
 */
export type InvalidMetadataReason =
  | 'not-an-object'
  | 'circular'
  | 'bigint'
  | 'not-serializable'
  | 'not-finite'
  | 'nul'
  | 'lone-surrogate'
  | 'too-deep';

/**
 * The input's `metadata` cannot be stored as `jsonb` without loss. `path` points at the bad
 * value (`$` is the metadata itself, e.g. `$.tags[2]`).
 *
 * @example
 * ```ts
 * import { isInvalidMetadataError, validateItem } from '@hartonomous/pipelines/atoms';
 *
 * try {
 *   validateItem({ content: 'hello', metadata: { size: 10n } });
 * } catch (e) {
 *   if (isInvalidMetadataError(e)) console.log(e.reason, e.path); // 'bigint' '$.size'
 * }
 * ```
 */
export class InvalidMetadataError extends PipelineError {
  readonly code = 'INVALID_METADATA' as const;
  /**
   * @param reason - what was wrong
   * @param path - where, as a JSONPath-like string (`$`, `$.a.b`, `$.list[3]`)
   * @param detail - a human-readable description
   */
  constructor(
    readonly reason: InvalidMetadataReason,
    readonly path: string,
    detail: string,
  ) {
    super(`invalid metadata at ${path}: ${detail}`);
  }
}

/**
 * Guard for {@link InvalidMetadataError}.
 * @param e - any caught value
 * @returns whether `e` is an {@link InvalidMetadataError}
 * @example
 * ```ts
 * import { InvalidMetadataError, isInvalidMetadataError } from '@hartonomous/pipelines/atoms';
 * isInvalidMetadataError(new InvalidMetadataError('circular', '$.self', 'refers to itself')); // true
 * ```
 */
export const isInvalidMetadataError: (e: unknown) => e is InvalidMetadataError =
  errorGuard<InvalidMetadataError>('INVALID_METADATA');

/**
 * The database refused ONE atom's row (a data error such as a source id too long for its
 * index): the rest of its batch was stored without it. `sqlState` is PostgreSQL's SQLSTATE
 * (e.g. `'54000'`); `cause` is the driver's error.
 *
 * @example
 * ```ts
 * import { isAtomRejectedError } from '@hartonomous/pipelines/atoms';
 *
 * const report = await ingest(items, { db });
 * const refused = report.failures.filter((f) => f.error === 'AtomRejectedError');
 * ```
 */
export class AtomRejectedError extends PipelineError {
  readonly code = 'ATOM_REJECTED' as const;
  /**
   * @param hash - the atom's content hash
   * @param sqlState - PostgreSQL's SQLSTATE, when the database gave one
   * @param detail - the database's message
   * @param options - `cause`: the driver's error
   */
  constructor(
    readonly hash: string,
    readonly sqlState: string | undefined,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(
      `the database refused atom ${hash}${sqlState ? ` (SQLSTATE ${sqlState})` : ''}: ${detail}`,
      options,
    );
  }
}

/**
 * Guard for {@link AtomRejectedError}.
 * @param e - any caught value
 * @returns whether `e` is an {@link AtomRejectedError}
 * @example
 * ```ts
 * import { AtomRejectedError, isAtomRejectedError } from '@hartonomous/pipelines/atoms';
 * isAtomRejectedError(new AtomRejectedError('ab'.repeat(32), '54000', 'index row too big')); // true
 * ```
 */
export const isAtomRejectedError: (e: unknown) => e is AtomRejectedError =
  errorGuard<AtomRejectedError>('ATOM_REJECTED');
