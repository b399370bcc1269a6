import type { Migration } from './index.js';

/**
 * Migration 1: `pipeline_settings`, a key/value table holding what the first migration fixed
 * (embedding dimensions and storage form), read back on every open.
 * @internal
 */
export const pipelineSettingsMigration: Migration = {
  id: 1,
  name: 'pipeline-settings',
  up: (ctx) => [
    `CREATE TABLE pipeline_settings (
      key text PRIMARY KEY,
      value jsonb NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`,
    `INSERT INTO pipeline_settings (key, value) VALUES
      ('embedding_dimensions', '${Number(ctx.embeddingDimensions)}'::jsonb),
      ('vector_storage', '"${ctx.vectorStorage === 'pgvector' ? 'pgvector' : 'bytea'}"'::jsonb)`,
  ],
};
