import { createHash } from 'node:crypto';

/**
 * The hash that tells whether a document changed: SHA-256 (lowercase hex) of its content and
 * its metadata (as JSON with keys sorted at every level, so key order does not matter). The
 * chunker is not part of it: after changing the chunker, re-sync with a new collection or
 * delete the documents first.
 *
 * @param content - the document's text
 * @param metadata - its metadata
 * @returns 64 lowercase hex characters
 *
 * @example
 * ```ts
 * import { documentHash } from '@hartonomous/pipelines/documents';
 * documentHash('hello', { a: 1, b: 2 }) === documentHash('hello', { b: 2, a: 1 }); // true
 * ```
 */
export function documentHash(content: string, metadata: Record<string, unknown> = {}): string {
  return createHash('sha256')
    .update(JSON.stringify([content, sortKeys(metadata)]), 'utf8')
    .digest('hex');
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    out[key] = sortKeys((value as Record<string, unknown>)[key]);
  }
  return out;
}
