import type { Migration } from './index.js';

/**
 * Migration 7: what the outbox relay (`@hartonomous/pipelines/outbox`) needs on `outbox`.
 * `next_attempt_at` holds when a row that failed to publish may be tried again (NULL: at
 * once); `outbox_pending_key_idx` finds the earliest unpublished row of a key (a row is only
 * published once every earlier row of its key is, dead ones included, so keys keep their
 * order); `outbox_dead_idx` lists and counts dead rows without scanning published ones.
 * @internal
 */
export const outboxRelayMigration: Migration = {
  id: 7,
  name: 'outbox-relay',
  up: () => [
    'ALTER TABLE outbox ADD COLUMN next_attempt_at timestamptz',
    'CREATE INDEX outbox_pending_key_idx ON outbox (aggregate_key, id) WHERE published_at IS NULL',
    'CREATE INDEX outbox_dead_idx ON outbox (id) WHERE dead_at IS NOT NULL',
  ],
};
