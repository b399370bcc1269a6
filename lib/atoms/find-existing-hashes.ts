import { byteaArray } from '../postgres/binary.js';
import { type Database, prepared, readyStateOf, withClient } from '../postgres/database.js';
import { checkHashes, type StoreOptions, sortedHashBytes } from './store.js';

/**
 * Which of the given content hashes are already stored as atoms: the database half of
 * deduplication, ONE query per batch (`content_hash = ANY($1::bytea[])`, a named prepared
 * statement, the hashes sent as one binary array).
 *
 * @param db - an open database
 * @param hashes - lowercase hex SHA-256 hashes (duplicates are fine)
 * @param options - cancellation
 * @returns the subset that exists
 * @throws `DatabaseUnavailableError` (`@hartonomous/pipelines/postgres`) when the database is unreachable
 *
 * @example
 * ```ts
 * import { contentHash, findExistingHashes } from '@hartonomous/pipelines/atoms';
 *
 * const hashes = texts.map((t) => contentHash(t));
 * const existing = await findExistingHashes(db, hashes);
 * const fresh = texts.filter((_, i) => !existing.has(hashes[i]!));
 * ```
 */
export async function findExistingHashes(
  db: Database,
  hashes: readonly string[],
  options: StoreOptions = {},
): Promise<Set<string>> {
  const state = readyStateOf(db);
  checkHashes('findExistingHashes', hashes);
  const bytes = sortedHashBytes(hashes);
  if (bytes.length === 0) return new Set();
  const sql = `SELECT encode(content_hash, 'hex') AS hash FROM ${state.qschema}.atoms WHERE content_hash = ANY($1::bytea[])`;
  const { rows } = await withClient(state, options.signal, (client) =>
    prepared<{ hash: string }>(client, 'find_existing', sql, [byteaArray(bytes)]),
  );
  return new Set(rows.map((r) => r.hash));
}
