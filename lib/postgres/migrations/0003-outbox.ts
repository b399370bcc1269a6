import type { Migration } from './index.js';

/**
 * Migration 3: `outbox`, the transactional outbox. A row is written in the same transaction
 * as the change it announces; a publisher sends pending rows (`published_at IS NULL AND
 * dead_at IS NULL`) in id order per `aggregate_key` and marks them. `message_id` is unique so
 * a consumer can deduplicate redeliveries.
 * @internal
 */
export const outboxMigration: Migration = {
  id: 3,
  name: 'outbox',
  up: () => [
    `CREATE TABLE outbox (
      id bigserial PRIMARY KEY,
      event_type text NOT NULL,
      aggregate_key text NOT NULL,
      payload jsonb NOT NULL,
      message_id text NOT NULL,
      traceparent text,
      tracestate text,
      created_at timestamptz NOT NULL DEFAULT now(),
      published_at timestamptz,
      attempts integer NOT NULL DEFAULT 0,
      last_error text,
      dead_at timestamptz,
      CONSTRAINT outbox_message_id_key UNIQUE (message_id)
    )`,
    'CREATE INDEX outbox_pending_idx ON outbox (id) WHERE published_at IS NULL AND dead_at IS NULL',
    'CREATE INDEX outbox_aggregate_key_idx ON outbox (aggregate_key, id)',
  ],
};
