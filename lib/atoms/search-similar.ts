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
import { isPartialEmbeddingError } from './item-errors.js';
import { reciprocalRankFusion } from './reciprocal-rank-fusion.js';
import { checkFilter, filterSql, hasContentFilter, type SearchFilter } from './search-filter.js';
import { validateVectors } from './validate-vector.js';

/**
 * How {@link searchSimilar} ranks atoms:
 * - `'vector'`: cosine similarity of embeddings;
 * - `'text'`: PostgreSQL full-text search (`english` configuration; any word of the query may
 *   match, ranked by `ts_rank`), no embedding needed;
 * - `'hybrid'`: both, fused by reciprocal rank fusion.
 *
 * @example
 * ```ts
 * import type { SearchMode } from '@hartonomous/pipelines/atoms';
 * const mode: SearchMode = 'hybrid';
 * ```
 */
export type SearchMode = 'vector' | 'text' | 'hybrid';

/**
 * Options of {@link searchSimilar}.
 *
 * @example
 * ```ts
 * import { localEmbedder, type SearchSimilarOptions } from '@hartonomous/pipelines/atoms';
 * const options: SearchSimilarOptions = {
 *   embedder: localEmbedder(),
 *   model: 'hartonomous/feature-hash-v1',
 *   mode: 'hybrid',
 *   metadata: { lang: 'en' },
 * };
 * ```
 */
export interface SearchSimilarOptions extends SearchFilter {
  /** How atoms are ranked. @default 'vector' */
  mode?: SearchMode;
  /** Embeds a text query; required when the query is a string (except in `'text'` mode). @default none */
  embedder?: Embedder;
  /**
   * Hybrid mode: how many atoms each ranking (vector, text) contributes before fusion.
   * @default max(50, 2 * k)
   */
  candidates?: number;
  /** Hybrid mode: the reciprocal rank fusion constant (`1 / (rrfK + rank)`). @default 60 */
  rrfK?: number;
  /**
   * Force an exact search even where an HNSW index exists (pgvector storage). A search with a
   * `contentType` or `metadata` filter is always exact (an HNSW index would filter after
   * picking its candidates and could return fewer than `k`).
   * @default false
   */
  exact?: boolean;
  /** Rows per round trip of the exact scan used without pgvector (bounds memory). @default 2_000 */
  chunkSize?: number;
  /** Cancels the search (checked between round trips). @default none */
  signal?: AbortSignal;
}

/**
 * One search hit: an atom, the score it was ranked by, and its cosine similarity to the query
 * (1 = same direction).
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
  /**
   * What the hits are ordered by: the cosine similarity (`'vector'`), the `ts_rank` (`'text'`),
   * or the fused reciprocal-rank score (`'hybrid'`).
   */
  readonly score: number;
}

/**
 * A hit of a `'text'` search: no embedding is involved, so no similarity.
 *
 * @example
 * ```ts
 * import type { TextMatch } from '@hartonomous/pipelines/atoms';
 * const show = (hit: TextMatch) => `${hit.score.toFixed(3)} ${hit.content.slice(0, 40)}`;
 * ```
 */
export type TextMatch = Omit<SimilarAtom, 'similarity'> & {
  /** Always null: a text search involves no embedding. */
  readonly similarity: null;
};

/**
 * The `k` atoms best matching a query, best first (ties by id).
 *
 * **Vector** (the default): by cosine similarity. With pgvector storage this is one SQL query
 * ordered by `embedding <=> $1` (exact, or HNSW approximate once `createVectorIndex` has run,
 * with `hnsw.ef_search` raised to at least `2k`). Without pgvector it is an exact scan: vectors
 * are read in chunks of `chunkSize` (keyset pagination on `id`) and scored in JavaScript against
 * a top-`k` heap, so memory stays bounded by `chunkSize + k` whatever the table size; then the
 * `k` winners are fetched.
 *
 * **Text**: PostgreSQL full-text search on the `content_tsv` column (GIN index, `english`
 * configuration): atoms containing any of the query's words (stemmed, stop words dropped),
 * ranked by `ts_rank`. A query of stop words only matches nothing.
 *
 * **Hybrid**: the vector top-`candidates` and the text top-`candidates` (both among atoms with
 * an embedding), fused by reciprocal rank fusion; each hit carries its cosine similarity.
 *
 * Filters (`model`, `contentType`, `metadata` containment) are conditions of the SQL itself in
 * every mode and storage, so the `k` hits are the best among the atoms that pass them.
 *
 * @param db - an open database
 * @param query - a text (embedded with `options.embedder` unless in text mode) or, in vector
 *   mode, a vector of the database's dimension
 * @param k - how many atoms to return (positive integer)
 * @param options - mode, embedder, filters, exactness, cancellation
 * @returns up to `k` hits, best first
 * @throws {@link InvalidEmbeddingError} when the query vector has the wrong length or NaN values
 * @throws `TypeError` on invalid options (a vector query in text or hybrid mode, no embedder)
 *
 * @example
 * ```ts
 * import { localEmbedder, searchSimilar } from '@hartonomous/pipelines/atoms';
 *
 * const embedder = localEmbedder();
 * const hits = await searchSimilar(db, 'how do cats sleep', 5, { embedder, model: embedder.model });
 * for (const hit of hits) console.log(hit.similarity.toFixed(3), hit.content);
 *
 * const english = await searchSimilar(db, 'slow consumer', 5, {
 *   embedder, model: embedder.model, mode: 'hybrid', metadata: { lang: 'en' },
 * });
 * const words = await searchSimilar(db, 'backpressure', 5, { mode: 'text' }); // no embedder needed
 * ```
 */
export function searchSimilar(
  db: Database,
  query: string,
  k: number,
  options: SearchSimilarOptions & { mode: 'text' },
): Promise<TextMatch[]>;
export function searchSimilar(
  db: Database,
  query: string | Float32Array,
  k: number,
  options?: SearchSimilarOptions & { mode?: 'vector' | 'hybrid' },
): Promise<SimilarAtom[]>;
export function searchSimilar(
  db: Database,
  query: string | Float32Array,
  k: number,
  options?: SearchSimilarOptions,
): Promise<SimilarAtom[] | TextMatch[]>;
export async function searchSimilar(
  db: Database,
  query: string | Float32Array,
  k: number,
  options: SearchSimilarOptions = {},
): Promise<SimilarAtom[] | TextMatch[]> {
  const state = readyStateOf(db);
  if (!Number.isInteger(k) || k < 1) {
    throw new TypeError(`searchSimilar: k must be a positive integer, got ${k}`);
  }
  const chunkSize = options.chunkSize ?? 2_000;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw new TypeError(`searchSimilar: chunkSize must be a positive integer, got ${chunkSize}`);
  }
  const mode = options.mode ?? 'vector';
  if (mode !== 'vector' && mode !== 'text' && mode !== 'hybrid') {
    throw new TypeError(
      `searchSimilar: mode must be 'vector', 'text' or 'hybrid', got ${String(mode)}`,
    );
  }
  checkFilter(options);
  const candidates = options.candidates ?? Math.max(50, 2 * k);
  if (!Number.isInteger(candidates) || candidates < 1) {
    throw new TypeError(`searchSimilar: candidates must be a positive integer, got ${candidates}`);
  }
  if (mode !== 'vector' && typeof query !== 'string') {
    throw new TypeError(`searchSimilar: ${mode} mode needs a text query`);
  }
  const { signal } = options;
  signal?.throwIfAborted();
  const pgvector = state.settings.vectorStorage === 'pgvector';
  if (mode === 'text') {
    return (await searchText(state, query as string, k, options, undefined, false)) as TextMatch[];
  }
  const dims = state.settings.embeddingDimensions;
  let vector: Float32Array;
  if (typeof query === 'string') {
    const { embedder } = options;
    if (!embedder)
      throw new TypeError(`searchSimilar: a text query needs options.embedder in ${mode} mode`);
    const ac = signal ? undefined : new AbortController();
    const embedded = await embedder.embed([query], signal ?? ac!.signal).catch((e: unknown) => {
      // one input: its own InvalidEmbeddingError says more than "1 of 1 inputs failed"
      throw isPartialEmbeddingError(e) && e.results.length === 1 ? e.results[0] : e;
    });
    [vector] = validateVectors(embedded, dims, 1) as [Float32Array];
  } else {
    [vector] = validateVectors([query], dims, 1) as [Float32Array];
  }
  const byVector = (n: number) =>
    pgvector
      ? searchPgvector(state, vector, n, options)
      : searchScan(state, vector, n, chunkSize, options);
  if (mode === 'vector') return byVector(k);
  const [vectorHits, textHits] = [
    await byVector(candidates),
    // hybrid: only atoms with an embedding, so every hit has a cosine similarity
    (await searchText(
      state,
      query as string,
      candidates,
      options,
      vector,
      pgvector,
    )) as SimilarAtom[],
  ];
  const byId = new Map<string, SimilarAtom>();
  for (const hit of vectorHits) byId.set(hit.id, hit);
  for (const hit of textHits) if (!byId.has(hit.id)) byId.set(hit.id, hit);
  const fused = reciprocalRankFusion(
    [vectorHits.map((h) => h.id), textHits.map((h) => h.id)],
    options.rrfK === undefined ? {} : { k: options.rrfK },
  );
  return fused.slice(0, k).map(({ id, score }) => ({ ...byId.get(id)!, score }));
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
    score: similarity,
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
  const values: unknown[] = [pgvectorValue(vector), k];
  const sql = `SELECT ${COLUMNS}, 1 - (embedding <=> $1::vector) AS similarity
FROM ${state.qschema}.atoms
WHERE embedding IS NOT NULL${filterSql(options, values, state.qschema)}
ORDER BY embedding <=> $1::vector, atoms.id
LIMIT $2`;
  return withTransaction(state, options.signal, async (client) => {
    await client.query({
      text: "SELECT set_config('hnsw.ef_search', $1, true)",
      values: [String(Math.min(1000, Math.max(40, 2 * k)))],
    });
    if (options.exact || k > 1000 || hasContentFilter(options)) {
      await client.query('SET LOCAL enable_indexscan = off');
    }
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
  const { signal } = options;
  let queryNorm = 0;
  for (let i = 0; i < query.length; i++) queryNorm += query[i]! * query[i]!;
  queryNorm = Math.sqrt(queryNorm);
  if (queryNorm === 0) return [];

  const q = state.qschema;
  // The keyset is the bigint column itself: the id travels as text (JavaScript has no int8),
  // under another name, so `ORDER BY atoms.id` and `atoms.id > $1` never compare text (where
  // 10 sorts before 9 and a page boundary would skip rows).
  const filterValues: unknown[] = [null, chunkSize];
  const scanSql = `SELECT atoms.id::text AS id_text, embedding FROM ${q}.atoms
WHERE embedding IS NOT NULL AND atoms.id > $1::bigint${filterSql(options, filterValues, q)}
ORDER BY atoms.id LIMIT $2`;
  const heap = new TopK(k);
  let after = '0';
  for (;;) {
    const values: unknown[] = [after, ...filterValues.slice(1)];
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

/** A hit of either kind. */
type AnyHit = Omit<SimilarAtom, 'similarity'> & { readonly similarity: number | null };

/** The words of a text query, joined as alternatives for `websearch_to_tsquery`. */
function anyWordQuery(query: string): string {
  return (query.match(/[\p{L}\p{N}]+/gu) ?? []).join(' or ');
}

/**
 * Full-text top-`n`: atoms whose `content_tsv` matches any word of the query, by `ts_rank`,
 * ties by id. With a query vector (hybrid mode) only atoms with an embedding count, and each
 * hit carries its cosine similarity to that vector.
 */
async function searchText(
  state: DatabaseState,
  query: string,
  n: number,
  options: SearchSimilarOptions,
  vector: Float32Array | undefined,
  pgvector: boolean,
): Promise<AnyHit[]> {
  const words = anyWordQuery(query);
  if (words === '') return [];
  const values: unknown[] = [words, n];
  let extra = '';
  if (vector && pgvector) {
    values.push(pgvectorValue(vector));
    extra = `, 1 - (embedding <=> $${values.length}::vector) AS similarity`;
  } else if (vector) {
    extra = ', embedding AS vector_bytes';
  }
  const sql = `SELECT ${COLUMNS}, ts_rank(atoms.content_tsv, query) AS text_rank${extra}
FROM ${state.qschema}.atoms, websearch_to_tsquery('english', $1) AS query
WHERE atoms.content_tsv @@ query${vector ? ' AND embedding IS NOT NULL' : ''}${filterSql(options, values, state.qschema)}
ORDER BY text_rank DESC, atoms.id
LIMIT $2`;
  type TextRow = HitRow & { text_rank: number; vector_bytes?: Buffer };
  const { rows } = await withClient(state, options.signal, (client) =>
    prepared<TextRow>(client, 'search_text', sql, values),
  );
  return rows.map((row) => {
    let similarity: number | null = null;
    if (row.similarity !== undefined && row.similarity !== null)
      similarity = Number(row.similarity);
    else if (vector && row.vector_bytes)
      similarity = cosine(viewFloat32LE(row.vector_bytes), vector);
    return { ...toHit(row, 0), similarity, score: Number(row.text_rank) };
  });
}

/** Cosine similarity of two vectors of the same length (NaN when one is zero). */
function cosine(v: Float32Array, q: Float32Array): number {
  let dot = 0;
  let nv = 0;
  let nq = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    const y = q[i]!;
    dot += x * y;
    nv += x * x;
    nq += y * y;
  }
  return dot / (Math.sqrt(nv) * Math.sqrt(nq));
}
