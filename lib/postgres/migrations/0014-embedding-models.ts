import type { Migration } from './index.js';

/**
 * Migration 14: embeddings of several models in one database.
 * - `atoms.embedding` stays what it was: one vector per atom at the database's fixed
 *   dimensions, written by ingestion, with its model in `atoms.embedding_model` (the *primary*
 *   slot). Ingestion and a search without a model are untouched by this migration.
 * - `embedding_models`: one row per model stored in `atom_embeddings`, with its dimensions
 *   (every vector of a model has the same length).
 * - `atom_embeddings`: the vectors of further models, one row per (atom, model), with their
 *   dimensions; `vector` (pgvector, any length, checked per row) or float32 `bytea`. Deleting
 *   an atom deletes its vectors (cascade; indexed by `atom_id` for that).
 * - `collection_models`: a collection's default search model, set by `setDefaultModel` once
 *   every atom of the collection has a vector of that model.
 * @internal
 */
export const embeddingModelsMigration: Migration = {
  id: 14,
  name: 'embedding-models',
  up: (ctx) => {
    const pgvector = ctx.vectorStorage === 'pgvector';
    return [
      `CREATE TABLE embedding_models (
        model text PRIMARY KEY,
        dimensions integer NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT embedding_models_model_check CHECK (length(model) > 0),
        CONSTRAINT embedding_models_dimensions_check CHECK (dimensions BETWEEN 1 AND 16000)
      )`,
      `CREATE TABLE atom_embeddings (
        model text NOT NULL REFERENCES embedding_models (model),
        atom_id bigint NOT NULL REFERENCES atoms (id) ON DELETE CASCADE,
        dimensions integer NOT NULL,
        embedding ${pgvector ? 'vector' : 'bytea'} NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (model, atom_id),
        CONSTRAINT atom_embeddings_length CHECK (${
          pgvector
            ? 'vector_dims(embedding) = dimensions'
            : 'octet_length(embedding) = 4 * dimensions'
        })
      )`,
      'CREATE INDEX atom_embeddings_atom_id_idx ON atom_embeddings (atom_id)',
      `CREATE TABLE collection_models (
        collection text PRIMARY KEY,
        model text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`,
    ];
  },
};
