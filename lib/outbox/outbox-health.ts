import { type Database, prepared, readyStateOf, withClient } from '../postgres/database.js';

/**
 * How far publishing is behind: the numbers behind the relay's lag metric.
 *
 * @example
 * ```ts
 * import { outboxHealth, type OutboxHealth } from '@hartonomous/pipelines/outbox';
 *
 * const h: OutboxHealth = await outboxHealth(db);
 * if (h.oldestPendingAgeMs > 60_000) console.warn(`outbox ${h.pending} rows behind`);
 * ```
 */
export interface OutboxHealth {
  /** Rows not yet published and not dead (rows held back behind a dead row of their key included). */
  readonly pending: number;
  /** Rows in the dead state (see `listDeadOutbox` and `replayDeadOutbox`). */
  readonly dead: number;
  /** Age of the oldest pending row in ms, by the database clock; 0 when nothing is pending. */
  readonly oldestPendingAgeMs: number;
}

/**
 * Options of {@link outboxHealth}.
 *
 * @example
 * ```ts
 * import type { OutboxHealthOptions } from '@hartonomous/pipelines/outbox';
 * const options: OutboxHealthOptions = { signal: AbortSignal.timeout(2_000) };
 * ```
 */
export interface OutboxHealthOptions {
  /** Cancels the query (checked before it is sent). @default none */
  signal?: AbortSignal;
}

/**
 * Reads the outbox's backlog: pending rows, dead rows, and the age of the oldest pending row
 * (the relay lag). Two index-only counts over partial indexes, so it is cheap however many
 * rows were published. Any process can call it; relays report it as the `hartonomous.outbox.lag`
 * (seconds), `hartonomous.outbox.pending` and `hartonomous.outbox.dead` gauges and in
 * `relay.health()`.
 *
 * @param db - an open database (`@hartonomous/pipelines/postgres`)
 * @param options - cancellation
 * @returns pending, dead and the oldest pending row's age
 *
 * @example
 * ```ts
 * import { openDatabase } from '@hartonomous/pipelines/postgres';
 * import { outboxHealth } from '@hartonomous/pipelines/outbox';
 *
 * const db = await openDatabase({ dataDir: 'memory://' });
 * console.log(await outboxHealth(db)); // { pending: 0, dead: 0, oldestPendingAgeMs: 0 }
 * await db.close();
 * ```
 * @see {@link outboxRelay}
 */
export async function outboxHealth(
  db: Database,
  options: OutboxHealthOptions = {},
): Promise<OutboxHealth> {
  const state = readyStateOf(db);
  const q = state.qschema;
  const sql = `SELECT
  (SELECT count(*) FROM ${q}.outbox WHERE published_at IS NULL AND dead_at IS NULL)::int AS pending,
  (SELECT count(*) FROM ${q}.outbox WHERE dead_at IS NOT NULL)::int AS dead,
  coalesce((SELECT floor(extract(epoch FROM clock_timestamp() - min(created_at)) * 1000)
            FROM ${q}.outbox WHERE published_at IS NULL AND dead_at IS NULL), 0)::float8 AS age_ms`;
  const { rows } = await withClient(state, options.signal, (client) =>
    prepared<{ pending: number; dead: number; age_ms: number }>(client, 'outbox_health', sql, []),
  );
  const row = rows[0];
  return {
    pending: Number(row?.pending ?? 0),
    dead: Number(row?.dead ?? 0),
    oldestPendingAgeMs: Math.max(0, Number(row?.age_ms ?? 0)),
  };
}
