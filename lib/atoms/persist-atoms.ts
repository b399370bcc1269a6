import { context, propagation } from '@opentelemetry/api';
import {
  byteaArray,
  float32ByteaArray,
  hashBytes,
  int4Array,
  jsonbArray,
  pgvectorArray,
  textArray,
} from '../postgres/binary.js';
import { type Database, prepared, readyStateOf, withClient } from '../postgres/database.js';
import { InvalidEmbeddingError } from './errors.js';
import { type NewAtom, retryConflicts, type StoreOptions } from './store.js';

/**
 * One atom {@link persistAtoms} inserted, with its outbox row.
 *
 * @example
 * ```ts
 * import type { PersistedAtom } from '@hartonomous/pipelines/atoms';
 * const line = (a: PersistedAtom) => `atom ${a.id} (${a.hash.slice(0, 8)}) -> outbox ${a.outboxId}`;
 * ```
 */
export interface PersistedAtom {
  /** The atom's id (bigserial, as a string). */
  readonly id: string;
  /** Its content hash (lowercase hex). */
  readonly hash: string;
  /** The id of its `atom.created` outbox row (bigserial, as a string). */
  readonly outboxId: string;
}

/**
 * What {@link persistAtoms} did with a batch.
 *
 * @example
 * ```ts
 * import { persistAtoms, type PersistAtomsResult } from '@hartonomous/pipelines/atoms';
 * const result: PersistAtomsResult = await persistAtoms(db, atoms);
 * console.log(`${result.inserted.length} new, ${result.duplicates.length} already stored`);
 * ```
 */
export interface PersistAtomsResult {
  /** Atoms inserted now, in input order. */
  readonly inserted: readonly PersistedAtom[];
  /** Hashes that were stored already (or repeated within the batch), in input order. */
  readonly duplicates: readonly string[];
}

/**
 * The outbox event type written for each new atom.
 *
 * @example
 * ```ts
 * import { ATOM_CREATED_EVENT, Outbox } from '@hartonomous/pipelines/atoms';
 * const created = await db.orm.em.fork().count(Outbox, { eventType: ATOM_CREATED_EVENT });
 * ```
 */
export const ATOM_CREATED_EVENT = 'atom.created';

/**
 * Writes a batch of atoms AND their outbox rows in ONE statement (so one transaction), and
 * releases the batch's claims in the same statement: there is never an atom without its
 * `atom.created` outbox row, nor the reverse. Race-safe deduplication: `INSERT ... ON CONFLICT
 * (content_hash) DO NOTHING RETURNING`, so two processes writing the same content at once end
 * with one row and neither fails; only new atoms get an outbox row. Rows go in hash order (a
 * fixed lock order, so concurrent batches cannot deadlock each other); a deadlock or
 * serialization failure anyway is retried.
 *
 * The hot path: every column travels as one binary array parameter of a named prepared
 * statement (`unnest(...)`); vectors are sent as binary float32 (`bytea`) or binary pgvector,
 * never as text.
 *
 * The outbox row: `event_type` `'atom.created'`, `aggregate_key` the content hash (per-key
 * ordering), `message_id` `'atom.created:<hash>'` (stable, so consumers can deduplicate; an
 * atom created again after a document cleanup deleted it gets `'atom.created:<hash>:<id>'`),
 * `payload` `{atomId, contentHash, contentType, byteSize, embeddingModel, embeddingDims,
 * sourceId, metadata, createdAt}`, and the atom's `traceparent`/`tracestate` (default: the
 * active OpenTelemetry context when called).
 *
 * @param db - an open database
 * @param atoms - the batch; an atom repeated in the batch is stored once
 * @param options - cancellation
 * @returns the inserted atoms (with ids) and the duplicates
 * @throws {@link InvalidEmbeddingError} for an embedding of the wrong length or with NaN/Infinity
 * @throws `DatabaseUnavailableError` (`@hartonomous/pipelines/postgres`) when the database is unreachable (nothing is written)
 *
 * @example
 * ```ts
 * import { contentHash, localEmbedder, persistAtoms } from '@hartonomous/pipelines/atoms';
 *
 * const embedder = localEmbedder();
 * const texts = ['first', 'second'];
 * const vectors = await embedder.embed(texts, AbortSignal.timeout(5_000));
 * const { inserted } = await persistAtoms(
 *   db,
 *   texts.map((content, i) => ({
 *     hash: contentHash(content),
 *     content,
 *     embedding: vectors[i],
 *     embeddingModel: embedder.model,
 *   })),
 * );
 * ```
 * @see {@link claimHashes}
 */
export async function persistAtoms(
  db: Database,
  atoms: readonly NewAtom[],
  options: StoreOptions = {},
): Promise<PersistAtomsResult> {
  const state = readyStateOf(db);
  if (!Array.isArray(atoms)) throw new TypeError('persistAtoms: atoms must be an array');
  options.signal?.throwIfAborted();
  const dims = state.settings.embeddingDimensions;

  // Deduplicate within the batch (first occurrence wins), check, then sort by hash.
  const byHash = new Map<string, { atom: NewAtom; index: number }>();
  const repeated: string[] = [];
  atoms.forEach((atom, index) => {
    checkAtom(atom, index, dims);
    if (byHash.has(atom.hash)) repeated.push(atom.hash);
    else byHash.set(atom.hash, { atom, index });
  });
  if (byHash.size === 0) return { inserted: [], duplicates: repeated };
  const batch = [...byHash.values()].sort((a, b) =>
    a.atom.hash < b.atom.hash ? -1 : a.atom.hash > b.atom.hash ? 1 : 0,
  );

  const ambient: Record<string, string> = {};
  propagation.inject(context.active(), ambient);
  const list = batch.map((b) => b.atom);
  const embeddings = list.map((a) => a.embedding ?? null);
  const pgvector = state.settings.vectorStorage === 'pgvector';
  const values = [
    byteaArray(list.map((a) => hashBytes(a.hash))),
    textArray(list.map((a) => a.content)),
    textArray(list.map((a) => a.contentType ?? 'text/plain')),
    int4Array(list.map((a) => a.byteSize ?? Buffer.byteLength(a.content, 'utf8'))),
    pgvector ? pgvectorArray(state.vectorOid!, embeddings) : float32ByteaArray(embeddings),
    textArray(list.map((a) => (a.embedding ? (a.embeddingModel ?? null) : null))),
    int4Array(embeddings.map((e) => e?.length ?? null)),
    textArray(list.map((a) => a.sourceId ?? null)),
    jsonbArray(list.map((a) => JSON.stringify(a.metadata ?? {}))),
    textArray(list.map((a) => a.traceparent ?? ambient.traceparent ?? null)),
    textArray(list.map((a) => a.tracestate ?? ambient.tracestate ?? null)),
  ];
  const sql = persistSql(state.qschema, pgvector ? 'vector' : 'bytea');
  const { rows } = await retryConflicts(() =>
    withClient(state, options.signal, (client) =>
      prepared<{ id: string; hash: string; outbox_id: string }>(
        client,
        'persist_atoms',
        sql,
        values,
      ),
    ),
  );

  const found = new Map(rows.map((r) => [r.hash, r]));
  const inserted: PersistedAtom[] = [];
  const duplicates: string[] = [];
  for (const { atom } of [...byHash.values()].sort((a, b) => a.index - b.index)) {
    const row = found.get(atom.hash);
    if (row)
      inserted.push({ id: String(row.id), hash: atom.hash, outboxId: String(row.outbox_id) });
    else duplicates.push(atom.hash);
  }
  duplicates.push(...repeated);
  return { inserted, duplicates };
}

function checkAtom(atom: NewAtom, index: number, dims: number): void {
  if (typeof atom !== 'object' || atom === null) {
    throw new TypeError(`persistAtoms: atom ${index} is not an object`);
  }
  hashBytes(atom.hash);
  if (typeof atom.content !== 'string') {
    throw new TypeError(`persistAtoms: atom ${index} has no string content`);
  }
  const e = atom.embedding;
  if (e == null) return;
  if (!(e instanceof Float32Array)) {
    throw new InvalidEmbeddingError(index, 'not-a-vector', 'the embedding is not a Float32Array');
  }
  if (e.length !== dims) {
    throw new InvalidEmbeddingError(
      index,
      'dimensions',
      `expected ${dims} dimensions, got ${e.length}`,
    );
  }
  for (let j = 0; j < e.length; j++) {
    if (!Number.isFinite(e[j]))
      throw new InvalidEmbeddingError(index, 'not-finite', `value ${j} is ${e[j]}`);
  }
}

const sqlCache = new Map<string, string>();

/** The persist statement for a schema and vector element type. @internal */
export function persistSql(qschema: string, vectorType: 'vector' | 'bytea'): string {
  const key = `${qschema}|${vectorType}`;
  let sql = sqlCache.get(key);
  if (!sql) {
    sql = `WITH input AS (
  SELECT * FROM unnest($1::bytea[], $2::text[], $3::text[], $4::int4[], $5::${vectorType}[],
                       $6::text[], $7::int4[], $8::text[], $9::jsonb[], $10::text[], $11::text[])
    WITH ORDINALITY AS t(content_hash, content, content_type, byte_size, embedding,
                         embedding_model, embedding_dims, source_id, metadata,
                         traceparent, tracestate, ord)
),
inserted AS (
  INSERT INTO ${qschema}.atoms (content_hash, content, content_type, byte_size, embedding,
                                embedding_model, embedding_dims, source_id, metadata)
  SELECT content_hash, content, content_type, byte_size, embedding,
         embedding_model, embedding_dims, source_id, metadata
  FROM input ORDER BY ord
  ON CONFLICT (content_hash) DO NOTHING
  RETURNING id, content_hash, content_type, byte_size, embedding_model, embedding_dims,
            source_id, metadata, created_at
),
events AS (
  INSERT INTO ${qschema}.outbox (event_type, aggregate_key, payload, message_id,
                                 traceparent, tracestate)
  SELECT '${ATOM_CREATED_EVENT}', encode(i.content_hash, 'hex'),
         jsonb_build_object(
           'atomId', i.id::text, 'contentHash', encode(i.content_hash, 'hex'),
           'contentType', i.content_type, 'byteSize', i.byte_size,
           'embeddingModel', i.embedding_model, 'embeddingDims', i.embedding_dims,
           'sourceId', i.source_id, 'metadata', i.metadata, 'createdAt', i.created_at),
         '${ATOM_CREATED_EVENT}:' || encode(i.content_hash, 'hex') || CASE WHEN EXISTS (
           SELECT 1 FROM ${qschema}.outbox o
           WHERE o.message_id = '${ATOM_CREATED_EVENT}:' || encode(i.content_hash, 'hex')
         ) THEN ':' || i.id::text ELSE '' END,
         input.traceparent, input.tracestate
  FROM inserted i JOIN input ON input.content_hash = i.content_hash
  ORDER BY input.ord
  RETURNING id, aggregate_key
),
released AS (
  DELETE FROM ${qschema}.atom_claims WHERE hash = ANY($1::bytea[])
)
SELECT i.id::text AS id, e.aggregate_key AS hash, e.id::text AS outbox_id
FROM inserted i JOIN events e ON e.aggregate_key = encode(i.content_hash, 'hex')`;
    sqlCache.set(key, sql);
  }
  return sql;
}
