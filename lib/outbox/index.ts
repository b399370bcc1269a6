/**
 * `@hartonomous/pipelines/outbox`: the transactional outbox's relay. Rows written in the same
 * transaction as the change they announce (`persistAtoms` writes one `atom.created` row per new
 * atom) are published by {@link outboxRelay} to any {@link Publisher} (Azure Service Bus,
 * `memoryPublisher()`, your own) at least once, in order per key, with stable message ids and
 * the writer's trace context; rows that keep failing go to a dead state you can list and
 * replay. Several relays may run on one database (`FOR UPDATE SKIP LOCKED`).
 *
 * @example
 * ```ts
 * import { memoryPublisher } from '@hartonomous/pipelines/testing';
 * import { openDatabase } from '@hartonomous/pipelines/postgres';
 * import { outboxRelay } from '@hartonomous/pipelines/outbox';
 *
 * const db = await openDatabase({ dataDir: 'memory://' });
 * const publisher = memoryPublisher();
 * const relay = outboxRelay({ db, publisher });
 * await relay.flush(); // publish everything pending now
 * await relay.stop();
 * await db.close();
 * ```
 *
 * @module
 */
export type { OutgoingMessage, Publisher } from '../broker/publisher.js';
export {
  type ListDeadOutboxOptions,
  listDeadOutbox,
} from './list-dead-outbox.js';
export {
  type OutboxHealth,
  type OutboxHealthOptions,
  outboxHealth,
} from './outbox-health.js';
export { outboxMessage } from './outbox-message.js';
export {
  type OutboxRelay,
  type OutboxRelayHealth,
  type OutboxRelayOptions,
  type OutboxRelayRound,
  type OutboxRelayState,
  outboxRelay,
} from './outbox-relay.js';
export type { DeadOutboxRow, OutboxRow } from './outbox-row.js';
export {
  type ReplayDeadOutboxOptions,
  replayDeadOutbox,
} from './replay-dead-outbox.js';
