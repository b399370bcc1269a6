import { textArray } from '../postgres/binary.js';
import { type Database, prepared, readyStateOf, withClient } from '../postgres/database.js';

/**
 * Options of {@link replayDeadOutbox}.
 *
 * @example
 * ```ts
 * import type { ReplayDeadOutboxOptions } from '@hartonomous/pipelines/outbox';
 * const options: ReplayDeadOutboxOptions = { signal: AbortSignal.timeout(5_000) };
 * ```
 */
export interface ReplayDeadOutboxOptions {
  /** Cancels the update (checked before it is sent). @default none */
  signal?: AbortSignal;
}

/**
 * Returns dead outbox rows to the relay: clears `dead_at`, resets `attempts` to 0 and makes
 * them due at once (`last_error` is kept for the record). The relay then publishes them in id
 * order before the later rows of their keys, which were held back meanwhile. The message ids
 * are unchanged, so a row that did reach the broker before it was declared dead is dropped
 * there as a duplicate.
 *
 * @param db - an open database (`@hartonomous/pipelines/postgres`)
 * @param ids - the rows to replay (ids as strings); rows that are not dead are ignored.
 *   Omit to replay every dead row.
 * @param options - cancellation
 * @returns how many rows were returned to the relay
 *
 * @example
 * ```ts
 * import { listDeadOutbox, replayDeadOutbox } from '@hartonomous/pipelines/outbox';
 *
 * const dead = await listDeadOutbox(db);
 * const replayed = await replayDeadOutbox(db, dead.filter((r) => r.eventType === 'atom.created').map((r) => r.id));
 * console.log(`${replayed} rows back in the outbox`);
 * ```
 * @see {@link listDeadOutbox}
 */
export async function replayDeadOutbox(
  db: Database,
  ids?: readonly string[],
  options: ReplayDeadOutboxOptions = {},
): Promise<number> {
  if (ids !== undefined) {
    if (!Array.isArray(ids)) throw new TypeError('replayDeadOutbox: ids must be an array');
    for (const id of ids) {
      if (typeof id !== 'string' || !/^\d+$/.test(id)) {
        throw new TypeError(`replayDeadOutbox: ids must be decimal id strings, got ${String(id)}`);
      }
    }
    if (ids.length === 0) return 0;
  }
  const state = readyStateOf(db);
  const q = state.qschema;
  const set = 'SET dead_at = NULL, attempts = 0, next_attempt_at = NULL';
  const { rowCount } = await withClient(state, options.signal, (client) =>
    ids === undefined
      ? prepared(
          client,
          'outbox_replay_all',
          `UPDATE ${q}.outbox ${set} WHERE dead_at IS NOT NULL`,
          [],
        )
      : prepared(
          client,
          'outbox_replay',
          `UPDATE ${q}.outbox ${set} WHERE dead_at IS NOT NULL AND id = ANY($1::text[]::bigint[])`,
          [textArray(ids)],
        ),
  );
  return rowCount ?? 0;
}
