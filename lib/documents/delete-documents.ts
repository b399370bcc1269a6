import { retryConflicts } from '../atoms/store.js';
import type { Database } from '../postgres/database.js';
import { readyStateOf, withTransaction } from '../postgres/database.js';
import { removeDocuments } from './remove-documents.js';

/**
 * Options of {@link deleteDocuments}.
 *
 * @example
 * ```ts
 * import type { DeleteDocumentsOptions } from '@hartonomous/pipelines/documents';
 * const options: DeleteDocumentsOptions = { collection: 'docs', ids: ['old.md'] };
 * ```
 */
export interface DeleteDocumentsOptions {
  /** The collection. */
  collection: string;
  /** The document ids to delete; ids that are not stored are ignored. */
  ids: readonly string[];
  /** Cancels before the transaction commits. @default none */
  signal?: AbortSignal;
}

/**
 * What {@link deleteDocuments} deleted.
 *
 * @example
 * ```ts
 * import type { DeleteDocumentsResult } from '@hartonomous/pipelines/documents';
 * const line = (r: DeleteDocumentsResult) => `${r.deleted.length} documents, ${r.atomsDeleted} atoms`;
 * ```
 */
export interface DeleteDocumentsResult {
  /** Ids of the documents deleted (those that were stored). */
  readonly deleted: readonly string[];
  /** Atoms deleted because no document of any collection refers to them any more. */
  readonly atomsDeleted: number;
}

/**
 * Deletes documents of a collection, in one transaction: their chunk lists, a
 * `document.deleted` outbox row each, and the atoms (stored by document syncs) that no
 * document of any collection refers to any more, with an `atom.deleted` row each. Atoms stored
 * with `ingest` are never deleted.
 *
 * @param db - an open database
 * @param options - collection, ids, cancellation
 * @returns what was deleted
 *
 * @example
 * ```ts
 * import { deleteDocuments } from '@hartonomous/pipelines/documents';
 * const { deleted, atomsDeleted } = await deleteDocuments(db, { collection: 'docs', ids: ['old.md'] });
 * ```
 */
export async function deleteDocuments(
  db: Database,
  options: DeleteDocumentsOptions,
): Promise<DeleteDocumentsResult> {
  const state = readyStateOf(db);
  const { collection, ids } = options;
  if (typeof collection !== 'string' || collection.length === 0) {
    throw new TypeError('deleteDocuments: collection must be a non-empty string');
  }
  if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string')) {
    throw new TypeError('deleteDocuments: ids must be an array of strings');
  }
  const keys = [...new Set(ids)].map((id) => ({ collection, id }));
  if (keys.length === 0) return { deleted: [], atomsDeleted: 0 };
  const gone = await retryConflicts(() =>
    withTransaction(state, options.signal, (client) =>
      removeDocuments(client, state.qschema, keys),
    ),
  );
  return { deleted: gone.documents.map((d) => d.id), atomsDeleted: gone.atomIds.length };
}
