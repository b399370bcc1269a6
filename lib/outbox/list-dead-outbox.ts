import { type Database, prepared, readyStateOf, withClient } from '../postgres/database.js';
import {
  type DeadOutboxRow,
  type RawOutboxRow,
  ROW_COLUMNS,
  toDate,
  toOutboxRow,
} from './outbox-row.js';

/**
 * Options of {@link listDeadOutbox}.
 *
 * @example
 * ```ts
 * import type { ListDeadOutboxOptions } from '@hartonomous/pipelines/outbox';
 * const page: ListDeadOutboxOptions = { limit: 50, afterId: '1200' };
 * ```
 */
export interface ListDeadOutboxOptions {
  /** Most rows returned. @default 100 */
  limit?: number;
  /** Only rows with a larger id (for paging: pass the last id of the previous page). @default none */
  afterId?: string;
  /** Cancels the query (checked before it is sent). @default none */
  signal?: AbortSignal;
}

/**
 * Lists outbox rows in the dead state, oldest id first: rows the relay gave up on after
 * `maxAttempts` failed publishing attempts, or at once for an error that can never succeed
 * (a message too large for the broker). Each comes with its last error. Fix the cause, then
 * {@link replayDeadOutbox}.
 *
 * @param db - an open database (`@hartonomous/pipelines/postgres`)
 * @param options - page size, paging cursor, cancellation
 * @returns the dead rows, by id
 *
 * @example
 * ```ts
 * import { listDeadOutbox, replayDeadOutbox } from '@hartonomous/pipelines/outbox';
 *
 * const dead = await listDeadOutbox(db, { limit: 20 });
 * for (const row of dead) console.warn(`#${row.id} ${row.eventType}: ${row.lastError}`);
 * await replayDeadOutbox(db, dead.map((row) => row.id));
 * ```
 * @see {@link replayDeadOutbox}
 */
export async function listDeadOutbox(
  db: Database,
  options: ListDeadOutboxOptions = {},
): Promise<DeadOutboxRow[]> {
  const limit = options.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new TypeError(`listDeadOutbox: limit must be a positive integer, got ${limit}`);
  }
  const afterId = options.afterId ?? '0';
  if (typeof afterId !== 'string' || !/^\d+$/.test(afterId)) {
    throw new TypeError(`listDeadOutbox: afterId must be a decimal id string, got ${afterId}`);
  }
  const state = readyStateOf(db);
  const sql = `SELECT ${ROW_COLUMNS}, o.last_error, o.dead_at
FROM ${state.qschema}.outbox o
WHERE o.dead_at IS NOT NULL AND o.id > $1::bigint
ORDER BY o.id
LIMIT $2`;
  const { rows } = await withClient(state, options.signal, (client) =>
    prepared<RawOutboxRow>(client, 'outbox_list_dead', sql, [afterId, limit]),
  );
  return rows.map((raw) => ({
    ...toOutboxRow(raw),
    lastError: raw.last_error ?? null,
    deadAt: toDate(raw.dead_at as Date | string),
  }));
}
