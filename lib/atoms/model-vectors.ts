/**
 * Which vectors a search with a model reads. A model's vectors live in two places: the
 * primary slot (`atoms.embedding`, written by ingestion, model in `atoms.embedding_model`) and
 * `atom_embeddings` (written by `reembed` of `@hartonomous/pipelines/documents`, one row per
 * atom and model). A model with no row in `embedding_models` has only primary vectors: its
 * search is the plain `atoms.embedding` search, exactly as before models could be added.
 *
 * @internal
 * @module
 */

import type { DatabaseState, SqlClient } from '../postgres/database.js';
import { prepared } from '../postgres/database.js';

/** A model stored (also) in `atom_embeddings`, with its dimensions. @internal */
export interface ExtraModel {
  readonly model: string;
  readonly dimensions: number;
}

/**
 * The model a search uses: the one given, else the default of the collection searched (if it
 * has one), else none (every primary vector, as before). `extra` is set when that model has
 * vectors in `atom_embeddings`.
 * @internal
 */
export async function resolveSearchModel(
  state: DatabaseState,
  client: SqlClient,
  options: { readonly model?: string; readonly collection?: string },
): Promise<{ model?: string; extra?: ExtraModel }> {
  let { model } = options;
  if (model === undefined && options.collection !== undefined) {
    const { rows } = await prepared<{ model: string }>(
      client,
      'collection_model',
      `SELECT model FROM ${state.qschema}.collection_models WHERE collection = $1`,
      [options.collection],
    );
    model = rows[0]?.model;
  }
  if (model === undefined) return {};
  const extra = await extraModel(state, client, model);
  return extra ? { model, extra } : { model };
}

/** The registered model `model`, or undefined when it has no `atom_embeddings` row. @internal */
export async function extraModel(
  state: DatabaseState,
  client: SqlClient,
  model: string,
): Promise<ExtraModel | undefined> {
  const { rows } = await prepared<{ dimensions: number }>(
    client,
    'embedding_model',
    `SELECT dimensions FROM ${state.qschema}.embedding_models WHERE model = $1`,
    [model],
  );
  const row = rows[0];
  return row ? { model, dimensions: Number(row.dimensions) } : undefined;
}

/**
 * A relation `(atom_id, vec)` of every vector of the model bound as parameter `$param`, from
 * both slots; with `after`, only atoms with `id > $after` (pushed into both branches so each
 * uses its index). The two branches never hold the same atom: `reembed` skips atoms whose
 * primary vector is already of the model.
 * @internal
 */
export function modelVectorsSql(qschema: string, param: number, after?: number): string {
  const p = after === undefined ? '' : ` AND p.id > $${after}::bigint`;
  const e = after === undefined ? '' : ` AND e.atom_id > $${after}::bigint`;
  return `(SELECT p.id AS atom_id, p.embedding AS vec FROM ${qschema}.atoms p
  WHERE p.embedding_model = $${param} AND p.embedding IS NOT NULL${p}
UNION ALL
SELECT e.atom_id, e.embedding FROM ${qschema}.atom_embeddings e WHERE e.model = $${param}${e})`;
}
