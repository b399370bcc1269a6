import type { Migration } from './index.js';

/**
 * Migration 12: full-text search on atoms. `content_tsv` is a stored generated column,
 * `to_tsvector('english', content)`, with a GIN index, so `searchSimilar` in `'text'` and
 * `'hybrid'` mode ranks atoms by PostgreSQL full-text search, on the server and on PGlite alike.
 * Also a GIN index on `metadata` (`jsonb_path_ops`) for containment filters (`metadata @> ...`).
 *
 * Why `english` rather than `simple`: questions match statements ("consumers" and "consumer"
 * share the stem `consum`, stop words like "what", "to", "the" are dropped), which is what a
 * relevance search needs; on the library's relevance set `simple` ranked worse. The cost: other
 * languages get English stemming (still exact-word matches for most words).
 * @internal
 */
export const atomsFullTextMigration: Migration = {
  id: 12,
  name: 'atoms-full-text',
  up: () => [
    `ALTER TABLE atoms ADD COLUMN content_tsv tsvector
      GENERATED ALWAYS AS (to_tsvector('english'::regconfig, content)) STORED`,
    'CREATE INDEX atoms_content_tsv_idx ON atoms USING gin (content_tsv)',
    'CREATE INDEX atoms_metadata_idx ON atoms USING gin (metadata jsonb_path_ops)',
  ],
};
