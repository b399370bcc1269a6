import type { OutgoingMessage } from '../broker/publisher.js';
import type { OutboxRow } from './outbox-row.js';

/**
 * The message an outbox row is published as, unless the relay is given its own `toMessage`:
 * the row's `messageId` (stable, so the broker's duplicate detection drops a replay), the
 * payload as a JSON body, the event type as `subject`, the row's `traceparent`/`tracestate`
 * (so the consumer's span links to the transaction that wrote the row, not to the relay),
 * and the application properties `eventType`, `aggregateKey` and `outboxId`.
 *
 * @param row - an outbox row
 * @returns the message to publish
 *
 * @example
 * ```ts
 * import { outboxMessage, outboxRelay } from '@hartonomous/pipelines/outbox';
 *
 * const relay = outboxRelay({
 *   db,
 *   publisher,
 *   toMessage: (row) => ({ ...outboxMessage(row), correlationId: row.aggregateKey }),
 * });
 * ```
 * @see {@link outboxRelay}
 */
export function outboxMessage(row: OutboxRow): OutgoingMessage {
  const message: {
    -readonly [K in keyof OutgoingMessage]: OutgoingMessage[K];
  } = {
    messageId: row.messageId,
    body: row.payload,
    contentType: 'application/json',
    subject: row.eventType,
    applicationProperties: {
      eventType: row.eventType,
      aggregateKey: row.aggregateKey,
      outboxId: row.id,
    },
  };
  if (row.traceparent) message.traceparent = row.traceparent;
  if (row.tracestate) message.tracestate = row.tracestate;
  return message;
}
