import { pgvectorValue, viewFloat32LE } from '../postgres/binary.js';
import {
  type Database,
  type DatabaseState,
  prepared,
  readyStateOf,
  type SqlClient,
  withClient,
  withTransaction,
} from '../postgres/database.js';
import type { Embedder } from './embedder.js';
import { validateVectors } from './validate-vector.js';

/**
 * Options of {@link searchSimilar}.
 *
 * @example
 * ```ts
 * import { localEmbedder, type SearchSimilarOptions } from '@hartonomous/pipelines/atoms';
 * const options: SearchSimilarOptions = { embedder: localEmbedder(), model: 'hartonomous/feature-hash-v1' };
 * ```
 */
export interface SearchSimilarOptions {
  /** Embeds a text query; required when the query is a string. @default none */
  embedder?: Embedder;
  /** Only atoms embedded by this model (mixing embedding spaces is meaningless). @default all atoms */
  model?: string;
  /**
   * Force an exact search even where an HNSW index exists (pgvector storage).
   * @default false
   */
  exact?: boolean;
  /** Rows per round trip of the exact scan used without pgvector (bounds memory). @default 2_000 */
  chunkSize?: number;
  /** Cancels the search (checked between round trips). @default none */
  signal?: AbortSignal;
}

/**
 * One search hit: an atom and its cosine similarity to the query (1 = same direction).
 *
 * @example
 * ```ts
 * import type { SimilarAtom } from '@hartonomous/pipelines/atoms';
 * const show = (hit: SimilarAtom) => `${hit.similarity.toFixed(3)} ${hit.content.slice(0, 40)}`;
 * ```
 */
export interface SimilarAtom {
  /** Atom id (bigserial, as a string). */
  readonly id: string;
  /** Content hash (lowercase hex). */
  readonly hash: string;
  /** The content. */
  readonly content: string;
  /** MIME type of the content. */
  readonly contentType: string;
  /** Where the content came from. */
  readonly sourceId: string | null;
  /** The atom's metadata. */
  readonly metadata: Record<string, unknown>;
  /** Model that embedded it. */
  readonly embeddingModel: string | null;
  /** Cosine similarity to the query, in [-1, 1]. */
  readonly similarity: number;
}

/**
 * The `k` atoms nearest to a query by cosine similarity, most similar first (ties by id).
 *
 * With pgvector storage this is one SQL query ordered by `embedding <=> $1` (exact, or HNSW
 * approximate once `createVectorIndex` has run, with `hnsw.ef_search` raised to at least
 * `2k`). Without pgvector it is an exact scan: vectors are read in chunks of `chunkSize`
 * (keyset pagination on `id`) and scored in JavaScript against a top-`k` heap, so memory stays
 * bounded by `chunkSize + k` whatever the table size; then the `k` winners are fetched.
 *
 * @param db - an open database
 * @param query - a text (embedded with `options.embedder`) or a vector of the database's dimension
 * @param k - how many atoms to return (positive integer)
 * @param options - embedder, model filter, exactness, cancellation
 * @returns up to `k` hits, most similar first
 * @throws {@link InvalidEmbeddingError} when the query vector has the wrong length or NaN values
 *
 * @example
 * ```ts
 * import { localEmbedder, searchSimilar } from '@hartonomous/pipelines/atoms';
 *
 * const embedder = localEmbedder();
 * const hits = await searchSimilar(db, 'how do cats sleep', 5, { embedder, model: embedder.model });
 * for (const hit of hits) console.log(hit.similarity.toFixed(3), hit.content);
 * ```
 */
export async function searchSimilar(
  db: Database,
  query: string | Float32Array,
  k: number,
  options: SearchSimilarOptions = {},
): Promise<SimilarAtom[]> {
  const state = readyStateOf(db);
  if (!Number.isInteger(k) || k < 1) {
    throw new TypeError(`searchSimilar: k must be a positive integer, got ${k}`);
  }
  const chunkSize = options.chunkSize ?? 2_000;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw new TypeError(`searchSimilar: chunkSize must be a positive integer, got ${chunkSize}`);
  }
  const { signal } = options;
  signal?.throwIfAborted();
  const dims = state.settings.embeddingDimensions;
  let vector: Float32Array;
  if (typeof query === 'string') {
    const { embedder } = options;
    if (!embedder) throw new TypeError('searchSimilar: a text query needs options.embedder');
    const ac = signal ? undefined : new AbortController();
    const embedded = await embedder.embed([query], signal ?? ac!.signal);
    [vector] = validateVectors(embedded, dims, 1) as [Float32Array];
  } else {
    [vector] = validateVectors([query], dims, 1) as [Float32Array];
  }
  return state.settings.vectorStorage === 'pgvector'
    ? searchPgvector(state, vector, k, options)
    : searchScan(state, vector, k, chunkSize, options);
}

const COLUMNS = `id::text AS id, encode(content_hash, 'hex') AS hash, content,
  content_type, source_id, metadata, embedding_model`;

interface HitRow {
  id: string;
  hash: string;
  content: string;
  content_type: string;
  source_id: string | null;
  metadata: Record<string, unknown>;
  embedding_model: string | null;
  similarity?: number;
}

function toHit(row: HitRow, similarity: number): SimilarAtom {
  return {
    id: String(row.id),
    hash: row.hash,
    content: row.content,
    contentType: row.content_type,
    sourceId: row.source_id,
    metadata: row.metadata,
    embeddingModel: row.embedding_model,
    similarity,
  };
}

function searchPgvector(
  state: DatabaseState,
  vector: Float32Array,
  k: number,
  options: SearchSimilarOptions,
): Promise<SimilarAtom[]> {
  const model = options.model;
  const sql = `SELECT ${COLUMNS}, 1 - (embedding <=> $1::vector) AS similarity
FROM ${state.qschema}.atoms
WHERE embedding IS NOT NULL${model === undefined ? '' : ' AND embedding_model = $3'}
ORDER BY embedding <=> $1::vector, atoms.id
LIMIT $2`;
  const values: unknown[] = [pgvectorValue(vector), k];
  if (model !== undefined) values.push(model);
  return withTransaction(state, options.signal, async (client) => {
    await client.query({
      text: "SELECT set_config('hnsw.ef_search', $1, true)",
      values: [String(Math.min(1000, Math.max(40, 2 * k)))],
    });
    if (options.exact || k > 1000) await client.query('SET LOCAL enable_indexscan = off');
    const { rows } = await prepared<HitRow>(client, 'search_pgvector', sql, values);
    return rows.map((r) => toHit(r, Number(r.similarity)));
  });
}

/** Exact scan for `bytea` storage with a bounded top-k heap. */
async function searchScan(
  state: DatabaseState,
  query: Float32Array,
  k: number,
  chunkSize: number,
  options: SearchSimilarOptions,
): Promise<SimilarAtom[]> {
  const { signal, model } = options;
  let queryNorm = 0;
  for (let i = 0; i < query.length; i++) queryNorm += query[i]! * query[i]!;
  queryNorm = Math.sqrt(queryNorm);
  if (queryNorm === 0) return [];

  const q = state.qschema;
  // The keyset is the bigint column itself: the id travels as text (JavaScript has no int8),
  // under another name, so `ORDER BY atoms.id` and `atoms.id > $1` never compare text (where
  // 10 sorts before 9 and a page boundary would skip rows).
  const scanSql = `SELECT atoms.id::text AS id_text, embedding FROM ${q}.atoms
WHERE embedding IS NOT NULL AND atoms.id > $1::bigint${model === undefined ? '' : ' AND embedding_model = $3'}
ORDER BY atoms.id LIMIT $2`;
  const heap = new TopK(k);
  let after = '0';
  for (;;) {
    const values: unknown[] = [after, chunkSize];
    if (model !== undefined) values.push(model);
    const { rows } = await withClient(state, signal, (client: SqlClient) =>
      prepared<{ id_text: string; embedding: Buffer }>(client, 'search_scan', scanSql, values),
    );
    for (const row of rows) {
      const v = viewFloat32LE(row.embedding);
      let dot = 0;
      let norm = 0;
      for (let i = 0; i < v.length; i++) {
        const x = v[i]!;
        dot += x * query[i]!;
        norm += x * x;
      }
      if (norm > 0) heap.offer(BigInt(row.id_text), dot / (Math.sqrt(norm) * queryNorm));
    }
    if (rows.length < chunkSize) break;
    after = rows.at(-1)!.id_text;
  }

  const best = heap.sorted();
  if (best.length === 0) return [];
  const { rows } = await withClient(state, signal, (client) =>
    prepared<HitRow>(
      client,
      'search_fetch',
      `SELECT ${COLUMNS} FROM ${q}.atoms WHERE id = ANY($1::bigint[])`,
      [best.map((b) => b.id.toString())],
    ),
  );
  const byId = new Map(rows.map((r) => [String(r.id), r]));
  const hits: SimilarAtom[] = [];
  for (const b of best) {
    const row = byId.get(b.id.toString());
    if (row) hits.push(toHit(row, b.score));
  }
  return hits;
}

/**
 * The `k` best (highest score, then lowest id) of a stream, in a binary min-heap whose root is
 * the worst kept entry.
 * @internal
 */
export class TopK {
  private readonly ids: bigint[] = [];
  private readonly scores: number[] = [];

  constructor(private readonly k: number) {}

  /** `a` ranks below `b`. */
  private worse(i: number, j: number): boolean {
    const si = this.scores[i]!;
    const sj = this.scores[j]!;
    return si < sj || (si === sj && this.ids[i]! > this.ids[j]!);
  }

  offer(id: bigint, score: number): void {
    if (Number.isNaN(score)) return;
    const n = this.ids.length;
    if (n < this.k) {
      this.ids.push(id);
      this.scores.push(score);
      this.up(n);
      return;
    }
    const rootScore = this.scores[0]!;
    if (score < rootScore || (score === rootScore && id > this.ids[0]!)) return;
    this.ids[0] = id;
    this.scores[0] = score;
    this.down(0);
  }

  sorted(): { id: bigint; score: number }[] {
    return this.ids
      .map((id, i) => ({ id, score: this.scores[i]! }))
      .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  private swap(i: number, j: number): void {
    [this.ids[i], this.ids[j]] = [this.ids[j]!, this.ids[i]!];
    [this.scores[i], this.scores[j]] = [this.scores[j]!, this.scores[i]!];
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.worse(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    const n = this.ids.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.worse(l, m)) m = l;
      if (r < n && this.worse(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}
