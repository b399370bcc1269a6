/**
 * `@hartonomous/pipelines/documents`: keep a corpus of documents in sync with the atom store.
 * Documents (id, content, metadata, collection) are cut into chunks; each distinct chunk is
 * stored once as an atom, shared between documents and collections; a document's chunk list
 * is recorded in order; changed documents are replaced and (with cleanup) stale atoms and
 * documents are deleted, each change with its outbox events. Read everything back with
 * `streamAtoms` and `streamDocuments`. Change embedding models with `reembed` (a resumable job
 * filling a new model's vectors), `setDefaultModel` and `dropModel`.
 *
 * @example
 * ```ts
 * import { deleteDocuments, ingestDocuments, streamDocuments } from '@hartonomous/pipelines/documents';
 * import { openDatabase } from '@hartonomous/pipelines/postgres';
 *
 * const db = await openDatabase({ dataDir: 'memory://' });
 * await ingestDocuments([{ id: 'a.md', content: 'Hello.\n\nWorld.' }], { db, collection: 'docs' });
 * for await (const doc of streamDocuments(db, { collection: 'docs' })) console.log(doc.id, doc.chunkCount);
 * await deleteDocuments(db, { collection: 'docs', ids: ['a.md'] });
 * await db.close();
 * ```
 *
 * @module
 */

export {
  type DeleteDocumentsOptions,
  type DeleteDocumentsResult,
  deleteDocuments,
} from './delete-documents.js';
export type { Chunker, ChunkLike, CleanupMode, DocumentInput } from './document.js';
export { documentHash } from './document-hash.js';
export { type DropModelResult, dropModel } from './drop-model.js';
export {
  ChunkerError,
  ChunkFailedError,
  DuplicateDocumentError,
  InvalidDocumentError,
  isChunkerError,
  isChunkFailedError,
  isDuplicateDocumentError,
  isInvalidDocumentError,
} from './errors.js';
export { ATOM_DELETED_EVENT, DOCUMENT_DELETED_EVENT, DOCUMENT_UPSERTED_EVENT } from './events.js';
export {
  type DocumentSyncFailure,
  type DocumentSyncProgress,
  type DocumentSyncReport,
  type IngestDocumentsOptions,
  ingestDocuments,
} from './ingest-documents.js';
export {
  DefaultModelNotGivenError,
  isDefaultModelNotGivenError,
  isModelDimensionsError,
  isModelInUseError,
  isModelNotEmbeddedError,
  ModelDimensionsError,
  ModelInUseError,
  ModelNotEmbeddedError,
} from './model-errors.js';
export { paragraphChunker } from './paragraph-chunker.js';
export {
  type ReembedFailure,
  type ReembedOptions,
  type ReembedProgress,
  type ReembedReport,
  reembed,
} from './reembed.js';
export { defaultModelOf, type ModelChangeOptions, setDefaultModel } from './set-default-model.js';
export { type StoredAtom, type StreamAtomsOptions, streamAtoms } from './stream-atoms.js';
export {
  type StoredDocument,
  type StreamDocumentsOptions,
  streamDocuments,
} from './stream-documents.js';
