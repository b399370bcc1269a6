import { isPipelineError } from '../core/errors.js';

/** Codes of the errors that say an item's own data cannot be stored (retrying cannot help). */
const BAD_INPUT_CODES = new Set([
  'EMPTY_CONTENT',
  'CONTENT_TOO_LARGE',
  'INVALID_UTF8',
  'INVALID_CONTENT',
  'INVALID_SOURCE_ID',
  'INVALID_CONTENT_TYPE',
  'INVALID_METADATA',
  'ATOM_REJECTED',
]);

/**
 * Whether an item failed because of its own data, so that delivering it again can never
 * succeed: `EmptyContentError`, `ContentTooLargeError`, `InvalidUtf8Error`,
 * `InvalidContentError`, `InvalidSourceIdError`, `InvalidContentTypeError`,
 * `InvalidMetadataError` or `AtomRejectedError`, anywhere in the `cause` chain (a `StepError`
 * wraps what the step threw). Checked by code, so it works across copies of the package.
 * Use it as a broker source's `isPermanent`, so a bad message is dead-lettered at once instead
 * of being redelivered until `maxDeliveryCount`.
 *
 * @param error - any caught value (an item's outcome error)
 * @returns whether the error is about the item's own data
 *
 * @example
 * ```ts
 * import { isBadInputError } from '@hartonomous/pipelines/atoms';
 *
 * // e.g. serviceBusWorker({ ..., isPermanent: isBadInputError })
 * const isPermanent = (e: unknown) => isBadInputError(e);
 * ```
 */
export function isBadInputError(error: unknown): boolean {
  let e: unknown = error;
  for (let depth = 0; depth < 8 && e !== undefined && e !== null; depth++) {
    if (isPipelineError(e) && BAD_INPUT_CODES.has(e.code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
