/**
 * `@hartonomous/pipelines/atoms`: the pieces of atom ingestion. Validate and hash content,
 * deduplicate against the database, claim hashes, embed (built-in local embedder or any
 * OpenAI-compatible server), persist atoms with their outbox rows in one transaction, and
 * search by similarity. Every function works on a batch and takes an AbortSignal.
 *
 * @example
 * ```ts
 * import { openDatabase } from '@hartonomous/pipelines/postgres';
 * import { contentHash, localEmbedder, persistAtoms, searchSimilar } from '@hartonomous/pipelines/atoms';
 *
 * const db = await openDatabase({ dataDir: 'memory://' });
 * const embedder = localEmbedder();
 * const texts = ['cats sleep a lot', 'dogs bark'];
 * const vectors = await embedder.embed(texts, AbortSignal.timeout(5_000));
 * await persistAtoms(db, texts.map((content, i) => ({
 *   hash: contentHash(content), content, embedding: vectors[i], embeddingModel: embedder.model,
 * })));
 * console.log(await searchSimilar(db, 'sleeping cats', 1, { embedder }));
 * await db.close();
 * ```
 *
 * @module
 */

export {
  type OpenAIEmbedder,
  type OpenAIEmbedderOptions,
  openAIEmbedder,
} from '../http/openai-embedder.js';
export {
  type ClaimHashesOptions,
  claimHashes,
  DEFAULT_CLAIM_STALE_MS,
} from './claim-hashes.js';
export type { Embedder } from './embedder.js';
export {
  ClaimedElsewhereError,
  ContentTooLargeError,
  EmbeddingHttpError,
  EmptyContentError,
  InvalidEmbeddingError,
  type InvalidEmbeddingReason,
  InvalidUtf8Error,
  isClaimedElsewhereError,
  isContentTooLargeError,
  isEmbeddingHttpError,
  isEmptyContentError,
  isInvalidEmbeddingError,
  isInvalidUtf8Error,
} from './errors.js';
export { findExistingHashes } from './find-existing-hashes.js';
export { type ContentHashOptions, contentHash, type HashNormalization } from './hash.js';
export {
  type IngestFailure,
  type IngestionReport,
  type IngestOptions,
  type IngestProgress,
  type IngestRunOptions,
  ingest,
  ingestionPipeline,
} from './ingest.js';
export type { AtomInput, DuplicateOf, IngestResult } from './ingest-steps.js';
export { isBadInputError } from './is-bad-input-error.js';
export {
  AtomRejectedError,
  InvalidContentError,
  InvalidContentTypeError,
  type InvalidFieldReason,
  InvalidMetadataError,
  type InvalidMetadataReason,
  InvalidSourceIdError,
  isAtomRejectedError,
  isInvalidContentError,
  isInvalidContentTypeError,
  isInvalidMetadataError,
  isInvalidSourceIdError,
  isPartialEmbeddingError,
  PartialEmbeddingError,
} from './item-errors.js';
export {
  LOCAL_EMBEDDER_MODEL,
  type LocalEmbedderOptions,
  localEmbedder,
} from './local-embedder.js';
export {
  ATOM_CREATED_EVENT,
  type PersistAtomsResult,
  type PersistedAtom,
  persistAtoms,
} from './persist-atoms.js';
export {
  type PersistWithFallbackResult,
  persistWithFallback,
} from './persist-with-fallback.js';
export {
  type FusedRank,
  type ReciprocalRankFusionOptions,
  reciprocalRankFusion,
} from './reciprocal-rank-fusion.js';
export { releaseClaims } from './release-claims.js';
export { releaseOwnerClaims } from './release-owner-claims.js';
export {
  Atom,
  AtomClaim,
  type AtomClaimEntity,
  type AtomEntity,
  Outbox,
  type OutboxEntity,
} from './schema.js';
export type { SearchFilter } from './search-filter.js';
export {
  type SearchMode,
  type SearchSimilarOptions,
  type SimilarAtom,
  searchSimilar,
  type TextMatch,
} from './search-similar.js';
export type { NewAtom, StoreOptions } from './store.js';
export {
  DEFAULT_MAX_CONTENT_BYTES,
  type ValidateContentOptions,
  type ValidContent,
  validateContent,
} from './validate-content.js';
export { type ValidateItemOptions, type ValidItem, validateItem } from './validate-item.js';
export { validateVectors } from './validate-vector.js';
