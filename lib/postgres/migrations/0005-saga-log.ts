import type { Migration } from './index.js';

/**
 * Migration 5: `saga_log`, one row per saga execution written as its state changes (see
 * `postgresSagaLog`): the saga's status, each step's status and serialized result (`steps`,
 * jsonb), the original error (`cause`) and an optimistic-concurrency `version` that every
 * update checks and increments. `resumeSagas` finds open sagas (`running`/`compensating`) by
 * `updated_at` through a partial index.
 * @internal
 */
export const sagaLogMigration: Migration = {
  id: 5,
  name: 'saga-log',
  up: () => [
    `CREATE TABLE saga_log (
      id text PRIMARY KEY,
      name text NOT NULL,
      status text NOT NULL,
      correlation_id text NOT NULL,
      steps jsonb NOT NULL,
      cause jsonb,
      failed_step text,
      version integer NOT NULL DEFAULT 1,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT saga_log_status_check
        CHECK (status IN ('running', 'compensating', 'completed', 'compensated', 'failed')),
      CONSTRAINT saga_log_version_check CHECK (version >= 1)
    )`,
    `CREATE INDEX saga_log_open_idx ON saga_log (updated_at)
      WHERE status IN ('running', 'compensating')`,
    'CREATE INDEX saga_log_name_idx ON saga_log (name, created_at)',
  ],
};
