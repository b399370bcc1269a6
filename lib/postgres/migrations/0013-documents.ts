import type { Migration } from './index.js';

/**
 * Migration 13: documents and their chunk lists (`@hartonomous/pipelines/documents`).
 * - `documents`: one row per (collection, document id) with the document's hash (SHA-256 of
 *   its content and metadata, 32 bytes), metadata and chunk count; `id` is a surrogate key
 *   (bigserial) the chunk list and keyset pages use.
 * - `document_chunks`: the atoms a document is made of, in order (`position` 0, 1, ...). An
 *   atom may appear in many documents of many collections; the foreign key to `atoms` keeps a
 *   referenced atom from being deleted (cleanup locks and re-checks before deleting).
 * - `atoms.document_owned`: true once a document sync stored the atom; cleanup only ever
 *   deletes such atoms, and only when no document refers to them. Atoms stored by `ingest`
 *   keep `false` and are never deleted by cleanup.
 * @internal
 */
export const documentsMigration: Migration = {
  id: 13,
  name: 'documents',
  up: () => [
    `CREATE TABLE documents (
      id bigserial PRIMARY KEY,
      collection text NOT NULL,
      document_id text NOT NULL,
      document_hash bytea NOT NULL,
      metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
      chunk_count integer NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT documents_collection_document_id_key UNIQUE (collection, document_id),
      CONSTRAINT documents_hash_length CHECK (octet_length(document_hash) = 32),
      CONSTRAINT documents_chunk_count_check CHECK (chunk_count >= 0)
    )`,
    `CREATE TABLE document_chunks (
      document bigint NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
      position integer NOT NULL,
      atom_id bigint NOT NULL REFERENCES atoms (id),
      PRIMARY KEY (document, position)
    )`,
    'CREATE INDEX document_chunks_atom_id_idx ON document_chunks (atom_id)',
    'ALTER TABLE atoms ADD COLUMN document_owned boolean NOT NULL DEFAULT false',
  ],
};
