/**
 * Which of a batch's hashes are stored, and whether each was stored before a run started.
 *
 * @internal
 * @module
 */
import { byteaArray } from '../postgres/binary.js';
import { type Database, prepared, readyStateOf, withClient } from '../postgres/database.js';
import { sortedHashBytes } from './store.js';

/**
 * The database clock now (`clock_timestamp()`), as text a later statement can compare with
 * `created_at`: taken when a run starts, before it inserts anything.
 * @internal
 */
export async function databaseNow(db: Database, signal?: AbortSignal): Promise<string> {
  const state = readyStateOf(db);
  const { rows } = await withClient(state, signal, (client) =>
    prepared<{ now: string }>(client, 'clock_now', 'SELECT clock_timestamp()::text AS now', []),
  );
  return rows[0]!.now;
}

/**
 * The stored hashes among `hashes`, each mapped to whether its atom was created at or after
 * `since` (by another process during the run: the run's own inserts are known to the run).
 * @internal
 */
export async function lookupStored(
  db: Database,
  hashes: readonly string[],
  since: string,
  signal?: AbortSignal,
): Promise<Map<string, boolean>> {
  const state = readyStateOf(db);
  const bytes = sortedHashBytes(hashes);
  if (bytes.length === 0) return new Map();
  const sql = `SELECT encode(content_hash, 'hex') AS hash, created_at >= $2::timestamptz AS during
FROM ${state.qschema}.atoms WHERE content_hash = ANY($1::bytea[])`;
  const { rows } = await withClient(state, signal, (client) =>
    prepared<{ hash: string; during: boolean }>(client, 'lookup_stored', sql, [
      byteaArray(bytes),
      since,
    ]),
  );
  return new Map(rows.map((r) => [r.hash, r.during === true]));
}
