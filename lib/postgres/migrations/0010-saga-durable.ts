import type { Migration } from './index.js';

/**
 * Migration 10: durable sagas. Saga ids become unique per saga name (primary key
 * `(name, id)`, so `start(input, { id })` can run each id of each saga once); each saga
 * records its recovery direction and, for forward sagas, its encoded input (a resumed saga
 * restarts from it). `updated_at` also moves with heartbeats, so recovery judges staleness on
 * it. Indexes serve `loadSaga` by id alone and `purgeSagas` (finished sagas by age).
 * @internal
 */
export const sagaDurableMigration: Migration = {
  id: 10,
  name: 'saga-durable',
  up: () => [
    'ALTER TABLE saga_log DROP CONSTRAINT saga_log_pkey',
    'ALTER TABLE saga_log ADD CONSTRAINT saga_log_pkey PRIMARY KEY (name, id)',
    `ALTER TABLE saga_log ADD COLUMN recovery text NOT NULL DEFAULT 'backward'
      CONSTRAINT saga_log_recovery_check CHECK (recovery IN ('backward', 'forward'))`,
    'ALTER TABLE saga_log ADD COLUMN input jsonb',
    'CREATE INDEX saga_log_id_idx ON saga_log (id)',
    `CREATE INDEX saga_log_finished_idx ON saga_log (updated_at)
      WHERE status IN ('completed', 'compensated', 'failed')`,
  ],
};
