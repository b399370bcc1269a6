import { textArray } from '../postgres/binary.js';
import type { SqlClient } from '../postgres/database.js';
import { ATOM_DELETED_EVENT } from './events.js';

/**
 * Inside the caller's transaction: deletes the atoms among `candidateIds` that a document sync
 * stored (`document_owned`) and that no document refers to any more, writing one
 * `atom.deleted` outbox row each. Race-safe: the candidates are first locked `FOR UPDATE` (in
 * id order), which waits for any transaction adding a reference (it holds `FOR KEY SHARE`); a
 * second statement, with a fresh snapshot, then sees every committed reference. Atoms stored
 * by `ingest` are never touched.
 *
 * @param client - a client inside a transaction
 * @param qschema - the quoted schema
 * @param candidateIds - atom ids that may have lost their last reference
 * @returns the deleted atoms' ids
 * @internal
 */
export async function deleteOrphanAtoms(
  client: SqlClient,
  qschema: string,
  candidateIds: readonly string[],
): Promise<string[]> {
  const ids = [...new Set(candidateIds)];
  if (ids.length === 0) return [];
  const { rows: locked } = await client.query<{ id: string }>({
    text: `SELECT a.id::text AS id FROM ${qschema}.atoms a
WHERE a.id = ANY($1::text[]::bigint[]) AND a.document_owned ORDER BY a.id FOR UPDATE`,
    values: [textArray(ids)],
  });
  if (locked.length === 0) return [];
  const { rows } = await client.query<{ id: string }>({
    text: `WITH gone AS (
  DELETE FROM ${qschema}.atoms a
  WHERE a.id = ANY($1::text[]::bigint[])
    AND NOT EXISTS (SELECT 1 FROM ${qschema}.document_chunks c WHERE c.atom_id = a.id)
  RETURNING a.id, encode(a.content_hash, 'hex') AS hash
),
events AS (
  INSERT INTO ${qschema}.outbox (event_type, aggregate_key, payload, message_id)
  SELECT '${ATOM_DELETED_EVENT}', g.hash,
         jsonb_build_object('atomId', g.id::text, 'contentHash', g.hash),
         '${ATOM_DELETED_EVENT}:' || g.hash || ':' || g.id::text
  FROM gone g ORDER BY g.id
)
SELECT id::text AS id FROM gone`,
    values: [textArray(locked.map((r) => r.id))],
  });
  return rows.map((r) => r.id);
}
