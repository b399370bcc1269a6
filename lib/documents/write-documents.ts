import { byteaArray, hashBytes, int4Array, jsonbArray, textArray } from '../postgres/binary.js';
import type { SqlClient } from '../postgres/database.js';
import { deleteOrphanAtoms } from './delete-orphan-atoms.js';
import type { CleanupMode } from './document.js';
import { DOCUMENT_UPSERTED_EVENT } from './events.js';
import type { DocumentKey } from './remove-documents.js';

/** A document ready to be written: its chunks are stored atoms (by content hash). @internal */
export interface DocumentWrite extends DocumentKey {
  /** The document hash (hex). */
  readonly hash: string;
  readonly metadata: Record<string, unknown>;
  /** Content hashes of its chunks, in order. */
  readonly chunkHashes: readonly string[];
}

/** What {@link writeDocuments} did. @internal */
export interface WriteDocumentsResult {
  readonly added: DocumentKey[];
  readonly changed: DocumentKey[];
  /** Written meanwhile by another process with the same hash: nothing to do. */
  readonly unchanged: DocumentKey[];
  /** Atoms the cleanup deleted. */
  readonly atomsDeleted: string[];
}

/**
 * Some chunks' atoms were deleted (by another process's cleanup) between storing them and
 * writing the document. The transaction is rolled back; the caller stores them again.
 * @internal
 */
export class MissingAtomsSignal {
  constructor(readonly hashes: readonly string[]) {}
}

/**
 * Inside the caller's transaction: writes a batch of new or changed documents with their chunk
 * lists and `document.upserted` events, marks the atoms this run stored as document-owned, and
 * (cleanup `incremental`/`full`) deletes the atoms of replaced chunk lists that lost their last
 * reference. Documents are locked first (upsert in (collection, id) order), then the chunks'
 * atoms `FOR KEY SHARE` (in id order), so a concurrent cleanup cannot delete them; a chunk
 * whose atom is gone throws {@link MissingAtomsSignal}.
 *
 * @internal
 */
export async function writeDocuments(
  client: SqlClient,
  qschema: string,
  docs: readonly DocumentWrite[],
  addedByRun: ReadonlyMap<string, string>,
  cleanup: CleanupMode,
): Promise<WriteDocumentsResult> {
  const result: WriteDocumentsResult = { added: [], changed: [], unchanged: [], atomsDeleted: [] };
  if (docs.length === 0) return result;
  const sorted = [...docs].sort(
    (a, b) => compare(a.collection, b.collection) || compare(a.id, b.id),
  );

  // 1. lock (or insert) every document row
  const { rows: upserted } = await client.query<{
    id: string;
    collection: string;
    document_id: string;
    hash: string;
    inserted: boolean;
  }>({
    text: `INSERT INTO ${qschema}.documents AS d (collection, document_id, document_hash, metadata, chunk_count)
SELECT u.collection, u.document_id, u.document_hash, u.metadata, u.chunk_count
FROM unnest($1::text[], $2::text[], $3::bytea[], $4::jsonb[], $5::int4[])
  WITH ORDINALITY AS u(collection, document_id, document_hash, metadata, chunk_count, ord)
ORDER BY u.ord
ON CONFLICT (collection, document_id) DO UPDATE SET document_hash = d.document_hash
RETURNING d.id::text AS id, d.collection, d.document_id, encode(d.document_hash, 'hex') AS hash,
          (d.xmax::text = '0') AS inserted`,
    values: [
      textArray(sorted.map((d) => d.collection)),
      textArray(sorted.map((d) => d.id)),
      byteaArray(sorted.map((d) => hashBytes(d.hash))),
      jsonbArray(sorted.map((d) => JSON.stringify(d.metadata))),
      int4Array(sorted.map((d) => d.chunkHashes.length)),
    ],
  });
  const rowOf = new Map(upserted.map((r) => [keyOf(r.collection, r.document_id), r]));
  const toWrite: { doc: DocumentWrite; rowId: string; change: 'added' | 'changed' }[] = [];
  for (const doc of sorted) {
    const row = rowOf.get(keyOf(doc.collection, doc.id));
    if (!row) throw new Error(`document '${doc.id}' was neither inserted nor locked`);
    const key = { collection: doc.collection, id: doc.id };
    if (row.inserted) {
      result.added.push(key);
      toWrite.push({ doc, rowId: row.id, change: 'added' });
    } else if (row.hash === doc.hash) result.unchanged.push(key);
    else {
      result.changed.push(key);
      toWrite.push({ doc, rowId: row.id, change: 'changed' });
    }
  }
  if (toWrite.length === 0) {
    await markOwned(client, qschema, docs, addedByRun);
    return result;
  }

  // 2. the chunks' atoms, locked so no cleanup deletes them before we commit
  const wanted = [...new Set(toWrite.flatMap((w) => w.doc.chunkHashes))].sort();
  const atomOf = new Map<string, string>();
  if (wanted.length > 0) {
    const { rows } = await client.query<{ id: string; hash: string }>({
      text: `SELECT a.id::text AS id, encode(a.content_hash, 'hex') AS hash FROM ${qschema}.atoms a
WHERE a.content_hash = ANY($1::bytea[]) ORDER BY a.id FOR KEY SHARE`,
      values: [byteaArray(wanted.map((h) => hashBytes(h)))],
    });
    for (const r of rows) atomOf.set(r.hash, r.id);
    const missing = wanted.filter((h) => !atomOf.has(h));
    if (missing.length > 0) throw new MissingAtomsSignal(missing);
  }

  // 3. replace the chunk lists of changed documents, update their rows
  const changed = toWrite.filter((w) => w.change === 'changed');
  let oldAtomIds: string[] = [];
  if (changed.length > 0) {
    const { rows } = await client.query<{ atom_id: string }>({
      text: `DELETE FROM ${qschema}.document_chunks WHERE document = ANY($1::text[]::bigint[])
RETURNING atom_id::text AS atom_id`,
      values: [textArray(changed.map((w) => w.rowId))],
    });
    oldAtomIds = rows.map((r) => r.atom_id);
    await client.query({
      text: `UPDATE ${qschema}.documents d
SET document_hash = u.document_hash, metadata = u.metadata, chunk_count = u.chunk_count, updated_at = now()
FROM unnest($1::text[], $2::bytea[], $3::jsonb[], $4::int4[]) AS u(id, document_hash, metadata, chunk_count)
WHERE d.id = u.id::bigint`,
      values: [
        textArray(changed.map((w) => w.rowId)),
        byteaArray(changed.map((w) => hashBytes(w.doc.hash))),
        jsonbArray(changed.map((w) => JSON.stringify(w.doc.metadata))),
        int4Array(changed.map((w) => w.doc.chunkHashes.length)),
      ],
    });
  }

  // 4. the new chunk lists
  const documents: string[] = [];
  const positions: number[] = [];
  const atomIds: string[] = [];
  for (const w of toWrite) {
    w.doc.chunkHashes.forEach((h, position) => {
      documents.push(w.rowId);
      positions.push(position);
      atomIds.push(atomOf.get(h)!);
    });
  }
  if (atomIds.length > 0) {
    await client.query({
      text: `INSERT INTO ${qschema}.document_chunks (document, position, atom_id)
SELECT d::bigint, p, a::bigint FROM unnest($1::text[], $2::int4[], $3::text[]) AS u(d, p, a)`,
      values: [textArray(documents), int4Array(positions), textArray(atomIds)],
    });
  }
  await markOwned(client, qschema, docs, addedByRun);

  // 5. one event per document written
  await client.query({
    text: `INSERT INTO ${qschema}.outbox (event_type, aggregate_key, payload, message_id)
SELECT '${DOCUMENT_UPSERTED_EVENT}', u.aggregate_key, u.payload,
       '${DOCUMENT_UPSERTED_EVENT}:' || gen_random_uuid()::text
FROM unnest($1::text[], $2::jsonb[]) WITH ORDINALITY AS u(aggregate_key, payload, ord)
ORDER BY u.ord`,
    values: [
      textArray(toWrite.map((w) => `document:${w.doc.collection}/${w.doc.id}`)),
      jsonbArray(
        toWrite.map((w) =>
          JSON.stringify({
            collection: w.doc.collection,
            documentId: w.doc.id,
            documentHash: w.doc.hash,
            metadata: w.doc.metadata,
            chunkCount: w.doc.chunkHashes.length,
            chunkHashes: w.doc.chunkHashes,
            change: w.change,
          }),
        ),
      ),
    ],
  });

  // 6. cleanup: atoms of replaced chunk lists that nothing refers to any more
  if (cleanup !== 'none' && oldAtomIds.length > 0) {
    const kept = new Set(atomIds);
    result.atomsDeleted.push(
      ...(await deleteOrphanAtoms(
        client,
        qschema,
        oldAtomIds.filter((id) => !kept.has(id)),
      )),
    );
  }
  return result;
}

/**
 * Marks as document-owned the atoms this run stored (`addedByRun`: hash to id) that are chunks
 * of these documents and that some document refers to now (also when another process wrote
 * the same document first).
 */
async function markOwned(
  client: SqlClient,
  qschema: string,
  docs: readonly DocumentWrite[],
  addedByRun: ReadonlyMap<string, string>,
): Promise<void> {
  const ids = new Set<string>();
  for (const d of docs) {
    for (const h of d.chunkHashes) {
      const id = addedByRun.get(h);
      if (id !== undefined) ids.add(id);
    }
  }
  if (ids.size === 0) return;
  await client.query({
    text: `UPDATE ${qschema}.atoms a SET document_owned = true
WHERE a.id = ANY($1::text[]::bigint[]) AND NOT a.document_owned
  AND EXISTS (SELECT 1 FROM ${qschema}.document_chunks c WHERE c.atom_id = a.id)`,
    values: [textArray([...ids].sort())],
  });
}

/** A map key of a (collection, id) pair. @internal */
export function keyOf(collection: string, id: string): string {
  return `${collection}\u0000${id}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
