/**
 * The outbox row as the relay and the dead-row functions see it.
 *
 * @module
 */

/**
 * One row of the `outbox` table, as the relay reads it: the event a transaction announced,
 * waiting to be published. `persistAtoms` (`@hartonomous/pipelines/atoms`) writes one
 * `atom.created` row per new atom; your own code may insert rows of its own event types in
 * its own transactions.
 *
 * @example
 * ```ts
 * import type { OutboxRow } from '@hartonomous/pipelines/outbox';
 *
 * const label = (row: OutboxRow) => `${row.eventType} ${row.aggregateKey} #${row.id}`;
 * ```
 */
export interface OutboxRow {
  /** Primary key (bigserial, as a string): the publishing order within a key. */
  readonly id: string;
  /** Event name, e.g. `atom.created`. */
  readonly eventType: string;
  /** Key whose rows are published strictly in id order (an atom's content hash). */
  readonly aggregateKey: string;
  /** The event body (JSON). */
  readonly payload: unknown;
  /** Stable, unique message id: the broker's duplicate detection drops a replay by it. */
  readonly messageId: string;
  /** W3C `traceparent` of the transaction that wrote the row, if it was traced. */
  readonly traceparent: string | null;
  /** W3C `tracestate` beside `traceparent`. */
  readonly tracestate: string | null;
  /** Failed publishing attempts so far. */
  readonly attempts: number;
  /** When the row was written. */
  readonly createdAt: Date;
}

/**
 * A row in the dead state: publishing it failed `maxAttempts` times, or with an error that
 * can never succeed. It stays until {@link replayDeadOutbox} returns it to the relay, and it
 * holds back the later rows of its key meanwhile (so a key is never published out of order).
 *
 * @example
 * ```ts
 * import { listDeadOutbox, type DeadOutboxRow } from '@hartonomous/pipelines/outbox';
 *
 * const dead: DeadOutboxRow[] = await listDeadOutbox(db);
 * for (const row of dead) console.warn(row.id, row.eventType, row.lastError);
 * ```
 */
export interface DeadOutboxRow extends OutboxRow {
  /** The last publishing error. */
  readonly lastError: string | null;
  /** When the row was moved to the dead state. */
  readonly deadAt: Date;
}

/** The columns the outbox functions select. @internal */
export const ROW_COLUMNS = `o.id::text AS id, o.event_type, o.aggregate_key, o.payload, o.message_id,
  o.traceparent, o.tracestate, o.attempts, o.created_at`;

/** A raw outbox row from the driver. @internal */
export interface RawOutboxRow {
  id: string;
  event_type: string;
  aggregate_key: string;
  payload: unknown;
  message_id: string;
  traceparent: string | null;
  tracestate: string | null;
  attempts: number | string;
  created_at: Date | string;
  last_error?: string | null;
  dead_at?: Date | string | null;
}

/** Maps a driver row to an {@link OutboxRow}. @internal */
export function toOutboxRow(raw: RawOutboxRow): OutboxRow {
  return {
    id: String(raw.id),
    eventType: raw.event_type,
    aggregateKey: raw.aggregate_key,
    payload: typeof raw.payload === 'string' ? parseJson(raw.payload) : raw.payload,
    messageId: raw.message_id,
    traceparent: raw.traceparent ?? null,
    tracestate: raw.tracestate ?? null,
    attempts: Number(raw.attempts),
    createdAt: toDate(raw.created_at),
  };
}

/** @internal */
export function toDate(value: Date | string): Date {
  return value instanceof Date ? value : new Date(value);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
