import { decodeFloat32LE, parsePgvectorText, textArray } from '../postgres/binary.js';
import { type Database, prepared, readyStateOf, withClient } from '../postgres/database.js';

/**
 * Options of {@link streamAtoms}.
 *
 * @example
 * ```ts
 * import type { StreamAtomsOptions } from '@hartonomous/pipelines/documents';
 * const options: StreamAtomsOptions = { collection: 'docs', batchSize: 500, embeddings: true };
 * ```
 */
export interface StreamAtomsOptions {
  /** Only atoms some document of this collection refers to. @default every atom */
  collection?: string;
  /** With `collection`: only atoms of these documents. @default every document of the collection */
  documentIds?: readonly string[];
  /**
   * Only atoms with a vector of this model: their primary vector (`atoms.embedding`, written
   * by ingestion) or one added by {@link reembed}. With `embeddings: true` the vector read is
   * that model's. @default any
   */
  model?: string;
  /** Only atoms with no vector of this model yet (what {@link reembed} reads). @default any */
  missingModel?: string;
  /** Rows per page (one query each); memory holds one page. @default 1000 */
  batchSize?: number;
  /** Read the embeddings too (a `Float32Array`, or null without one). @default false */
  embeddings?: boolean;
  /** Cancels between pages; the iteration then rejects with the signal's reason. @default none */
  signal?: AbortSignal;
}

/**
 * A stored atom, as {@link streamAtoms} reads it.
 *
 * @example
 * ```ts
 * import type { StoredAtom } from '@hartonomous/pipelines/documents';
 * const line = (a: StoredAtom) => `${a.id} ${a.hash.slice(0, 8)} ${a.content.slice(0, 40)}`;
 * ```
 */
export interface StoredAtom {
  /** Atom id (bigserial, as a string). */
  readonly id: string;
  /** Content hash (lowercase hex). */
  readonly hash: string;
  /** The text. */
  readonly content: string;
  /** MIME type of the content. */
  readonly contentType: string;
  /** Size of the content in UTF-8 bytes. */
  readonly byteSize: number;
  /** The metadata stored with the atom (by the first writer). */
  readonly metadata: Record<string, unknown>;
  /** Where the content first came from (for document chunks: `<collection>/<id>#<position>`). */
  readonly sourceId: string | null;
  /** The model that embedded it, or null. */
  readonly embeddingModel: string | null;
  /** Only with `embeddings: true`: the vector, or null when the atom has none. */
  readonly embedding?: Float32Array | null;
}

/**
 * Reads atoms back in id order as an async iterable over keyset pages (`id > last`), so
 * memory holds one page whatever the table size and a consumer that stops early (`break`)
 * stops the reads. Filters by the documents of a collection (and their ids) and by model.
 * Usable as a pipeline source (`pipeline.stream(streamAtoms(db))`).
 *
 * @param db - an open database
 * @param options - filters, page size, embeddings, cancellation
 * @returns the atoms, in id order
 *
 * @example
 * ```ts
 * import { streamAtoms } from '@hartonomous/pipelines/documents';
 * let bytes = 0;
 * for await (const atom of streamAtoms(db, { collection: 'docs' })) bytes += atom.byteSize;
 * ```
 */
export async function* streamAtoms(
  db: Database,
  options: StreamAtomsOptions = {},
): AsyncGenerator<StoredAtom, void, undefined> {
  const state = readyStateOf(db);
  const batchSize = options.batchSize ?? 1000;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new TypeError(`streamAtoms: batchSize must be a positive integer, got ${batchSize}`);
  }
  const { collection, documentIds, model, missingModel, signal } = options;
  if (documentIds !== undefined && collection === undefined) {
    throw new TypeError('streamAtoms: documentIds needs a collection');
  }
  const pgvector = state.settings.vectorStorage === 'pgvector';
  const values: unknown[] = ['0', batchSize];
  const where: string[] = ['a.id > $1::bigint'];
  if (collection !== undefined) {
    values.push(collection);
    let docs = '';
    if (documentIds !== undefined) {
      values.push(textArray(documentIds));
      docs = ` AND d.document_id = ANY($${values.length}::text[])`;
    }
    where.push(`EXISTS (SELECT 1 FROM ${state.qschema}.document_chunks c
  JOIN ${state.qschema}.documents d ON d.id = c.document
  WHERE c.atom_id = a.id AND d.collection = $3${docs})`);
  }
  const q = state.qschema;
  let primary = pgvector ? 'a.embedding::text' : 'a.embedding';
  let modelColumn = 'a.embedding_model';
  if (model !== undefined) {
    values.push(model);
    const m = `$${values.length}`;
    // the model's vector is the primary one, else its row of atom_embeddings
    const added = `(SELECT ${pgvector ? 'e.embedding::text' : 'e.embedding'} FROM ${q}.atom_embeddings e
  WHERE e.model = ${m} AND e.atom_id = a.id)`;
    where.push(`(a.embedding_model = ${m} OR EXISTS (SELECT 1 FROM ${q}.atom_embeddings e
  WHERE e.model = ${m} AND e.atom_id = a.id))`);
    primary = `CASE WHEN a.embedding_model = ${m} AND a.embedding IS NOT NULL THEN ${primary} ELSE ${added} END`;
    modelColumn = `${m}::text`;
  }
  if (missingModel !== undefined) {
    values.push(missingModel);
    const m = `$${values.length}`;
    where.push(`(a.embedding_model IS DISTINCT FROM ${m} OR a.embedding IS NULL)`);
    where.push(
      `NOT EXISTS (SELECT 1 FROM ${q}.atom_embeddings e WHERE e.model = ${m} AND e.atom_id = a.id)`,
    );
  }
  const vector = options.embeddings ? `, ${primary} AS embedding` : '';
  const sql = `SELECT a.id::text AS id, encode(a.content_hash, 'hex') AS hash, a.content,
  a.content_type, a.byte_size, a.metadata, a.source_id, ${modelColumn} AS embedding_model${vector}
FROM ${state.qschema}.atoms a WHERE ${where.join(' AND ')} ORDER BY a.id LIMIT $2`;
  for (;;) {
    signal?.throwIfAborted();
    const { rows } = await withClient(state, signal, (client) =>
      prepared<AtomRow>(client, 'stream_atoms', sql, values),
    );
    for (const r of rows) {
      yield {
        id: r.id,
        hash: r.hash,
        content: r.content,
        contentType: r.content_type,
        byteSize: r.byte_size,
        metadata: r.metadata,
        sourceId: r.source_id,
        embeddingModel: r.embedding_model,
        ...(options.embeddings
          ? {
              embedding:
                r.embedding == null
                  ? null
                  : typeof r.embedding === 'string'
                    ? parsePgvectorText(r.embedding)
                    : decodeFloat32LE(r.embedding),
            }
          : {}),
      };
    }
    if (rows.length < batchSize) return;
    values[0] = rows.at(-1)!.id;
  }
}

interface AtomRow {
  id: string;
  hash: string;
  content: string;
  content_type: string;
  byte_size: number;
  metadata: Record<string, unknown>;
  source_id: string | null;
  embedding_model: string | null;
  embedding?: Buffer | string | null;
}
