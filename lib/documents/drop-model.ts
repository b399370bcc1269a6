import { type Database, prepared, readyStateOf, withTransaction } from '../postgres/database.js';
import { ModelInUseError } from './model-errors.js';
import { lockModels, type ModelChangeOptions } from './set-default-model.js';

/**
 * What {@link dropModel} deleted.
 *
 * @example
 * ```ts
 * import type { DropModelResult } from '@hartonomous/pipelines/documents';
 * const line = (r: DropModelResult) => `${r.model}: ${r.vectors} vectors dropped`;
 * ```
 */
export interface DropModelResult {
  /** The model. */
  readonly model: string;
  /** Vectors deleted in all: `added + primary`. */
  readonly vectors: number;
  /** Rows deleted from `atom_embeddings` (vectors added by `reembed`). */
  readonly added: number;
  /** Primary vectors cleared (`atoms.embedding` set to NULL where the model wrote it). */
  readonly primary: number;
}

/**
 * Deletes every vector of a model: its rows of `atom_embeddings`, its registration, and the
 * primary vectors (`atoms.embedding`) it wrote. The atoms stay. Refused, with
 * {@link ModelInUseError}, while the model is the default of some collection. One
 * transaction; serialised with {@link setDefaultModel}.
 *
 * @param db - an open database
 * @param model - the model to drop
 * @param options - cancellation
 * @returns the counts deleted (equal to the rows changed)
 * @throws {@link ModelInUseError} when some collection defaults to the model
 *
 * @example
 * ```ts
 * import { dropModel, setDefaultModel } from '@hartonomous/pipelines/documents';
 *
 * await setDefaultModel(db, 'docs', 'feature-hash-64');
 * const { vectors } = await dropModel(db, 'hartonomous/feature-hash-v1');
 * ```
 * @see {@link reembed}
 */
export async function dropModel(
  db: Database,
  model: string,
  options: ModelChangeOptions = {},
): Promise<DropModelResult> {
  const state = readyStateOf(db);
  if (typeof model !== 'string' || model.length === 0) {
    throw new TypeError('dropModel: model must be a non-empty string');
  }
  const q = state.qschema;
  return withTransaction(
    state,
    options.signal,
    async (client) => {
      await lockModels(state, client);
      const { rows } = await prepared<{ collection: string }>(
        client,
        'model_defaults',
        `SELECT collection FROM ${q}.collection_models WHERE model = $1 ORDER BY collection`,
        [model],
      );
      if (rows.length > 0) {
        throw new ModelInUseError(
          model,
          rows.map((r) => r.collection),
        );
      }
      const added = await prepared(
        client,
        'drop_model_added',
        `DELETE FROM ${q}.atom_embeddings WHERE model = $1`,
        [model],
      );
      await prepared(
        client,
        'drop_model_registered',
        `DELETE FROM ${q}.embedding_models WHERE model = $1`,
        [model],
      );
      const primary = await prepared(
        client,
        'drop_model_primary',
        `UPDATE ${q}.atoms SET embedding = NULL, embedding_model = NULL, embedding_dims = NULL
WHERE embedding_model = $1 AND embedding IS NOT NULL`,
        [model],
      );
      const a = added.rowCount ?? 0;
      const p = primary.rowCount ?? 0;
      return { model, vectors: a + p, added: a, primary: p };
    },
    { unlimited: true },
  );
}
