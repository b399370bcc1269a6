import {
  type Database,
  type DatabaseState,
  prepared,
  readyStateOf,
  type SqlClient,
  withClient,
  withTransaction,
} from '../postgres/database.js';
import { ModelNotEmbeddedError } from './model-errors.js';

/**
 * Options of {@link setDefaultModel} and {@link dropModel}.
 *
 * @example
 * ```ts
 * import type { ModelChangeOptions } from '@hartonomous/pipelines/documents';
 * const options: ModelChangeOptions = { signal: AbortSignal.timeout(60_000) };
 * ```
 */
export interface ModelChangeOptions {
  /** Cancels before the transaction commits. @default none */
  signal?: AbortSignal;
}

/**
 * Makes `model` the default search model of a collection: `searchSimilar` with this
 * `collection` and no `model` then ranks by that model's vectors. Refused, with
 * {@link ModelNotEmbeddedError}, while some atom of the collection has no vector of the model
 * (run {@link reembed} with it first). One transaction; serialised with {@link dropModel}.
 *
 * A collection without a default (the initial state) searches every atom's primary vector,
 * as before models could be added.
 *
 * @param db - an open database
 * @param collection - the collection
 * @param model - the model its searches use from now on
 * @param options - cancellation
 * @returns when the default is switched
 * @throws {@link ModelNotEmbeddedError} when some atoms of the collection lack the model's vector
 *
 * @example
 * ```ts
 * import { reembed, setDefaultModel } from '@hartonomous/pipelines/documents';
 *
 * await reembed(db, { to: newEmbedder, collection: 'docs' });
 * await setDefaultModel(db, 'docs', newEmbedder.model);
 * ```
 * @see {@link reembed}
 * @see {@link defaultModelOf}
 */
export async function setDefaultModel(
  db: Database,
  collection: string,
  model: string,
  options: ModelChangeOptions = {},
): Promise<void> {
  const state = readyStateOf(db);
  if (typeof collection !== 'string' || collection.length === 0) {
    throw new TypeError('setDefaultModel: collection must be a non-empty string');
  }
  if (typeof model !== 'string' || model.length === 0) {
    throw new TypeError('setDefaultModel: model must be a non-empty string');
  }
  const q = state.qschema;
  await withTransaction(state, options.signal, async (client) => {
    await lockModels(state, client);
    const { rows } = await prepared<{ n: string }>(
      client,
      'model_missing',
      `SELECT count(DISTINCT c.atom_id) AS n
FROM ${q}.documents d
JOIN ${q}.document_chunks c ON c.document = d.id
JOIN ${q}.atoms a ON a.id = c.atom_id
WHERE d.collection = $1
  AND (a.embedding_model IS DISTINCT FROM $2 OR a.embedding IS NULL)
  AND NOT EXISTS (SELECT 1 FROM ${q}.atom_embeddings e WHERE e.model = $2 AND e.atom_id = a.id)`,
      [collection, model],
    );
    const missing = Number(rows[0]?.n ?? 0);
    if (missing > 0) throw new ModelNotEmbeddedError(collection, model, missing);
    await prepared(
      client,
      'set_default_model',
      `INSERT INTO ${q}.collection_models (collection, model) VALUES ($1, $2)
ON CONFLICT (collection) DO UPDATE SET model = EXCLUDED.model, updated_at = now()`,
      [collection, model],
    );
  });
}

/**
 * The default search model of a collection, or `undefined` when it has none (its searches
 * use every atom's primary vector).
 *
 * @param db - an open database
 * @param collection - the collection
 * @param options - cancellation
 * @returns the model, or undefined
 *
 * @example
 * ```ts
 * import { defaultModelOf } from '@hartonomous/pipelines/documents';
 * console.log((await defaultModelOf(db, 'docs')) ?? 'no default: primary vectors');
 * ```
 * @see {@link setDefaultModel}
 */
export async function defaultModelOf(
  db: Database,
  collection: string,
  options: ModelChangeOptions = {},
): Promise<string | undefined> {
  const state = readyStateOf(db);
  const { rows } = await withClient(state, options.signal, (client) =>
    prepared<{ model: string }>(
      client,
      'collection_model',
      `SELECT model FROM ${state.qschema}.collection_models WHERE collection = $1`,
      [collection],
    ),
  );
  return rows[0]?.model;
}

/**
 * Serialises the transactions that change models (`setDefaultModel`, `dropModel`) in one
 * schema: a default is never set on vectors being dropped.
 * @internal
 */
export async function lockModels(state: DatabaseState, client: SqlClient): Promise<void> {
  await client.query({
    text: "SELECT pg_advisory_xact_lock(hashtext($1 || '/embedding-models'))",
    values: [state.schema],
  });
}
