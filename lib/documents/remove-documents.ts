import { textArray } from '../postgres/binary.js';
import type { SqlClient } from '../postgres/database.js';
import { deleteOrphanAtoms } from './delete-orphan-atoms.js';
import { DOCUMENT_DELETED_EVENT } from './events.js';

/** A document to delete: its collection and id. @internal */
export interface DocumentKey {
  readonly collection: string;
  readonly id: string;
}

/**
 * Inside the caller's transaction: deletes the given documents (those that exist), their chunk
 * lists, one `document.deleted` outbox row each, and then the atoms no document refers to any
 * more. Documents are locked in (collection, id) order first.
 *
 * @param client - a client inside a transaction
 * @param qschema - the quoted schema
 * @param keys - the documents
 * @returns the deleted documents and atoms
 * @internal
 */
export async function removeDocuments(
  client: SqlClient,
  qschema: string,
  keys: readonly DocumentKey[],
): Promise<{ documents: DocumentKey[]; atomIds: string[] }> {
  if (keys.length === 0) return { documents: [], atomIds: [] };
  const { rows: locked } = await client.query<{ id: string }>({
    text: `SELECT d.id::text AS id FROM ${qschema}.documents d
JOIN unnest($1::text[], $2::text[]) AS k(collection, document_id)
  ON d.collection = k.collection AND d.document_id = k.document_id
ORDER BY d.collection, d.document_id FOR UPDATE OF d`,
    values: [textArray(keys.map((k) => k.collection)), textArray(keys.map((k) => k.id))],
  });
  if (locked.length === 0) return { documents: [], atomIds: [] };
  const ids = locked.map((r) => r.id);
  const { rows: chunks } = await client.query<{ atom_id: string }>({
    text: `DELETE FROM ${qschema}.document_chunks WHERE document = ANY($1::text[]::bigint[])
RETURNING atom_id::text AS atom_id`,
    values: [textArray(ids)],
  });
  const { rows: gone } = await client.query<{ collection: string; document_id: string }>({
    text: `WITH gone AS (
  DELETE FROM ${qschema}.documents WHERE id = ANY($1::text[]::bigint[])
  RETURNING id, collection, document_id, encode(document_hash, 'hex') AS hash
),
events AS (
  INSERT INTO ${qschema}.outbox (event_type, aggregate_key, payload, message_id)
  SELECT '${DOCUMENT_DELETED_EVENT}', 'document:' || g.collection || '/' || g.document_id,
         jsonb_build_object('collection', g.collection, 'documentId', g.document_id,
                            'documentHash', g.hash),
         '${DOCUMENT_DELETED_EVENT}:' || gen_random_uuid()::text
  FROM gone g ORDER BY g.collection, g.document_id
)
SELECT collection, document_id FROM gone`,
    values: [textArray(ids)],
  });
  const atomIds = await deleteOrphanAtoms(
    client,
    qschema,
    chunks.map((c) => c.atom_id),
  );
  return {
    documents: gone.map((g) => ({ collection: g.collection, id: g.document_id })),
    atomIds,
  };
}
