import { textArray } from '../postgres/binary.js';
import { type Database, prepared, readyStateOf, withClient } from '../postgres/database.js';

/**
 * Options of {@link streamDocuments}.
 *
 * @example
 * ```ts
 * import type { StreamDocumentsOptions } from '@hartonomous/pipelines/documents';
 * const options: StreamDocumentsOptions = { collection: 'docs', chunks: true };
 * ```
 */
export interface StreamDocumentsOptions {
  /** Only documents of this collection. @default every collection */
  collection?: string;
  /** With `collection`: only these document ids. @default all */
  ids?: readonly string[];
  /** Rows per page (one query each); memory holds one page. @default 1000 */
  batchSize?: number;
  /** Read each document's chunk list too (content hashes, in order). @default false */
  chunks?: boolean;
  /** Cancels between pages; the iteration then rejects with the signal's reason. @default none */
  signal?: AbortSignal;
}

/**
 * A stored document, as {@link streamDocuments} reads it.
 *
 * @example
 * ```ts
 * import type { StoredDocument } from '@hartonomous/pipelines/documents';
 * const line = (d: StoredDocument) => `${d.collection}/${d.id}: ${d.chunkCount} chunks`;
 * ```
 */
export interface StoredDocument {
  /** The collection. */
  readonly collection: string;
  /** The document id within the collection. */
  readonly id: string;
  /** The document hash (content and metadata), lowercase hex. */
  readonly hash: string;
  /** The document's metadata. */
  readonly metadata: Record<string, unknown>;
  /** How many chunks it has. */
  readonly chunkCount: number;
  /** When it was last written. */
  readonly updatedAt: Date;
  /** Only with `chunks: true`: content hashes of its chunks, in order. */
  readonly chunkHashes?: readonly string[];
}

/**
 * Reads documents back in storage order as an async iterable over keyset pages, so memory
 * holds one page whatever the table size; `break` stops the reads. Usable as a pipeline
 * source.
 *
 * @param db - an open database
 * @param options - collection, ids, page size, chunk lists, cancellation
 * @returns the documents
 *
 * @example
 * ```ts
 * import { streamDocuments } from '@hartonomous/pipelines/documents';
 * for await (const doc of streamDocuments(db, { collection: 'docs' })) console.log(doc.id, doc.chunkCount);
 * ```
 */
export async function* streamDocuments(
  db: Database,
  options: StreamDocumentsOptions = {},
): AsyncGenerator<StoredDocument, void, undefined> {
  const state = readyStateOf(db);
  const batchSize = options.batchSize ?? 1000;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new TypeError(`streamDocuments: batchSize must be a positive integer, got ${batchSize}`);
  }
  const { collection, ids, signal } = options;
  if (ids !== undefined && collection === undefined) {
    throw new TypeError('streamDocuments: ids needs a collection');
  }
  const q = state.qschema;
  const values: unknown[] = ['0', batchSize];
  const where = ['d.id > $1::bigint'];
  if (collection !== undefined) {
    values.push(collection);
    where.push(`d.collection = $${values.length}`);
  }
  if (ids !== undefined) {
    values.push(textArray(ids));
    where.push(`d.document_id = ANY($${values.length}::text[])`);
  }
  const chunks = options.chunks
    ? `, ARRAY(SELECT encode(a.content_hash, 'hex') FROM ${q}.document_chunks c
  JOIN ${q}.atoms a ON a.id = c.atom_id WHERE c.document = d.id ORDER BY c.position) AS chunk_hashes`
    : '';
  const sql = `SELECT d.id::text AS rid, d.collection, d.document_id, encode(d.document_hash, 'hex') AS hash,
  d.metadata, d.chunk_count, d.updated_at${chunks}
FROM ${q}.documents d WHERE ${where.join(' AND ')} ORDER BY d.id LIMIT $2`;
  for (;;) {
    signal?.throwIfAborted();
    const { rows } = await withClient(state, signal, (client) =>
      prepared<DocumentRow>(client, 'stream_documents', sql, values),
    );
    for (const r of rows) {
      yield {
        collection: r.collection,
        id: r.document_id,
        hash: r.hash,
        metadata: r.metadata,
        chunkCount: r.chunk_count,
        updatedAt: new Date(r.updated_at),
        ...(r.chunk_hashes ? { chunkHashes: r.chunk_hashes } : {}),
      };
    }
    if (rows.length < batchSize) return;
    values[0] = rows.at(-1)!.rid;
  }
}

interface DocumentRow {
  rid: string;
  collection: string;
  document_id: string;
  hash: string;
  metadata: Record<string, unknown>;
  chunk_count: number;
  updated_at: Date | string;
  chunk_hashes?: string[];
}
