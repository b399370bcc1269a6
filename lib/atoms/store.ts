/**
 * Types and helpers shared by the atom store functions ({@link findExistingHashes},
 * {@link claimHashes}, {@link releaseClaims}, {@link persistAtoms}).
 *
 * @module
 */

import { hashBytes } from '../postgres/binary.js';

/**
 * An atom to store. `hash` must be the {@link contentHash} of the content (with whatever
 * normalisation the caller uses for deduplication); it is the unique key.
 *
 * @example
 * ```ts
 * import { contentHash, type NewAtom } from '@hartonomous/pipelines/atoms';
 *
 * const content = 'The quick brown fox';
 * const atom: NewAtom = {
 *   hash: contentHash(content),
 *   content,
 *   embedding: new Float32Array(384),
 *   embeddingModel: 'hartonomous/feature-hash-v1',
 *   sourceId: 'doc-17',
 *   metadata: { lang: 'en' },
 * };
 * ```
 */
export interface NewAtom {
  /** SHA-256 of the content as 64 lowercase hex characters. */
  readonly hash: string;
  /** The text. */
  readonly content: string;
  /** MIME type of the content. @default 'text/plain' */
  readonly contentType?: string;
  /** UTF-8 size of the content. @default computed from `content` */
  readonly byteSize?: number;
  /** The embedding, as long as the database's `embeddingDimensions`. @default null (none) */
  readonly embedding?: Float32Array | null;
  /** Model that produced the embedding. @default null */
  readonly embeddingModel?: string | null;
  /** Where the content came from (a document id, a URL). @default null */
  readonly sourceId?: string | null;
  /** Any JSON object. @default {} */
  readonly metadata?: Record<string, unknown>;
  /** W3C `traceparent` to store with the outbox row. @default taken from the active OpenTelemetry context */
  readonly traceparent?: string;
  /** W3C `tracestate` to store with the outbox row. @default taken from the active OpenTelemetry context */
  readonly tracestate?: string;
}

/**
 * Options shared by the store functions.
 *
 * @example
 * ```ts
 * import type { StoreOptions } from '@hartonomous/pipelines/atoms';
 * const options: StoreOptions = { signal: AbortSignal.timeout(5_000) };
 * ```
 */
export interface StoreOptions {
  /**
   * Cancels the call. Checked before the statement is sent; a statement already running
   * completes (it is atomic either way).
   * @default none
   */
  signal?: AbortSignal;
}

/** Hex hashes to their bytes, deduplicated and sorted (a fixed lock order). @internal */
export function sortedHashBytes(hashes: readonly string[]): Buffer[] {
  const unique = [...new Set(hashes)].sort();
  return unique.map((h) => hashBytes(h));
}

/** Checks a hash list argument. @internal */
export function checkHashes(fn: string, hashes: unknown): asserts hashes is readonly string[] {
  if (!Array.isArray(hashes)) throw new TypeError(`${fn}: hashes must be an array of hex strings`);
}

/** SQLSTATEs worth re-running a statement for: deadlock, serialization failure. @internal */
export function isTransientConflict(e: unknown): boolean {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return code === '40P01' || code === '40001';
}

/** Runs `fn`, re-running it (up to `attempts` times) on a deadlock or serialization failure. @internal */
export async function retryConflicts<T>(fn: () => Promise<T>, attempts = 4): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (attempt >= attempts || !isTransientConflict(e)) throw e;
    }
  }
}
