/**
 * The outbox event types document sync writes, each in the same transaction as its change.
 *
 * @module
 */

/**
 * Written when a document is added or its chunk list replaced. Payload: `collection`,
 * `documentId`, `documentHash`, `metadata`, `chunkCount`, `chunkHashes` (in order), `change`
 * (`'added'` or `'changed'`). Aggregate key: `document:<collection>/<id>`.
 *
 * @example
 * ```ts
 * import { DOCUMENT_UPSERTED_EVENT } from '@hartonomous/pipelines/documents';
 * const isUpsert = (eventType: string) => eventType === DOCUMENT_UPSERTED_EVENT;
 * ```
 */
export const DOCUMENT_UPSERTED_EVENT = 'document.upserted';

/**
 * Written when a document is deleted (`deleteDocuments`, or a `'full'` cleanup). Payload:
 * `collection`, `documentId`, `documentHash`. Aggregate key: `document:<collection>/<id>`.
 *
 * @example
 * ```ts
 * import { DOCUMENT_DELETED_EVENT } from '@hartonomous/pipelines/documents';
 * const isDelete = (eventType: string) => eventType === DOCUMENT_DELETED_EVENT;
 * ```
 */
export const DOCUMENT_DELETED_EVENT = 'document.deleted';

/**
 * Written when cleanup deletes an atom no document refers to any more. Payload: `atomId`,
 * `contentHash`. Aggregate key: the content hash (the key of its `atom.created` event), message
 * id `atom.deleted:<hash>:<atomId>`.
 *
 * @example
 * ```ts
 * import { ATOM_DELETED_EVENT } from '@hartonomous/pipelines/documents';
 * const isAtomDelete = (eventType: string) => eventType === ATOM_DELETED_EVENT;
 * ```
 */
export const ATOM_DELETED_EVENT = 'atom.deleted';
