import { type Database, readyStateOf, withClient } from './database.js';

/**
 * Options of {@link createVectorIndex}.
 *
 * @example
 * ```ts
 * import type { CreateVectorIndexOptions } from '@hartonomous/pipelines/postgres';
 * const options: CreateVectorIndexOptions = { m: 24, efConstruction: 128 };
 * ```
 */
export interface CreateVectorIndexOptions {
  /** HNSW `m`: links per node (recall and size grow with it). @default 16 */
  m?: number;
  /** HNSW `ef_construction`: candidate list while building. @default 64 */
  efConstruction?: number;
  /** Cancels before the statement is sent. @default none */
  signal?: AbortSignal;
}

/**
 * Adds an HNSW cosine index on `atoms.embedding` (pgvector storage only), turning
 * `searchSimilar` from an exact scan into an approximate nearest-neighbour search. Not part of
 * the migrations on purpose: the index makes every insert much slower (measured on PGlite:
 * ~200 instead of ~6,800 rows/s with 384 dimensions), so add it when the table is large and
 * searches matter more than ingestion, ideally after a bulk load. Idempotent.
 *
 * @param db - an open database
 * @param options - HNSW parameters and cancellation
 * @returns `true` if the index exists now, `false` when embeddings are stored as `bytea`
 *   (there is no ANN index for that form)
 *
 * @example
 * ```ts
 * import { createVectorIndex, openDatabase } from '@hartonomous/pipelines/postgres';
 *
 * const db = await openDatabase();
 * // ... bulk ingestion ...
 * await createVectorIndex(db);
 * ```
 */
export async function createVectorIndex(
  db: Database,
  options: CreateVectorIndexOptions = {},
): Promise<boolean> {
  const state = readyStateOf(db);
  const m = options.m ?? 16;
  const ef = options.efConstruction ?? 64;
  if (!Number.isInteger(m) || m < 2 || m > 100) {
    throw new TypeError(`createVectorIndex: m must be an integer in 2..100, got ${m}`);
  }
  if (!Number.isInteger(ef) || ef < 4 || ef > 1000) {
    throw new TypeError(
      `createVectorIndex: efConstruction must be an integer in 4..1000, got ${ef}`,
    );
  }
  if (state.settings.vectorStorage !== 'pgvector') return false;
  await withClient(
    state,
    options.signal,
    (client) =>
      client.query(
        `CREATE INDEX IF NOT EXISTS atoms_embedding_hnsw_idx ON ${state.qschema}.atoms
       USING hnsw (embedding vector_cosine_ops) WITH (m = ${m}, ef_construction = ${ef})`,
      ),
    { unlimited: true },
  );
  return true;
}
