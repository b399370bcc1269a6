import type { Migration } from './index.js';

/**
 * Migration 2: `atoms`, one row per distinct content (unique SHA-256 `content_hash`, 32 bytes).
 * The embedding column is `vector(dims)` where pgvector is available, else `bytea` holding
 * float32 little-endian values (length checked). No ANN index: search is exact until
 * `createVectorIndex` adds an HNSW index (it slows inserts a lot, on PGlite ~35x).
 * @internal
 */
export const atomsMigration: Migration = {
  id: 2,
  name: 'atoms',
  up: (ctx) => {
    const dims = Number(ctx.embeddingDimensions);
    const pgvector = ctx.vectorStorage === 'pgvector';
    return [
      `CREATE TABLE atoms (
        id bigserial PRIMARY KEY,
        content_hash bytea NOT NULL,
        content text NOT NULL,
        content_type text NOT NULL DEFAULT 'text/plain',
        byte_size integer NOT NULL,
        embedding ${pgvector ? `vector(${dims})` : 'bytea'},
        embedding_model text,
        embedding_dims integer,
        source_id text,
        metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT atoms_content_hash_key UNIQUE (content_hash),
        CONSTRAINT atoms_content_hash_length CHECK (octet_length(content_hash) = 32),
        CONSTRAINT atoms_byte_size_check CHECK (byte_size >= 0),
        CONSTRAINT atoms_embedding_dims_check CHECK (
          (embedding IS NULL AND embedding_dims IS NULL) OR embedding_dims = ${dims}
        )${
          pgvector
            ? ''
            : `,
        CONSTRAINT atoms_embedding_length CHECK (embedding IS NULL OR octet_length(embedding) = ${4 * dims})`
        }
      )`,
      'CREATE INDEX atoms_source_id_idx ON atoms (source_id) WHERE source_id IS NOT NULL',
    ];
  },
};
