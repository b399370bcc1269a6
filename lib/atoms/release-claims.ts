import { byteaArray } from '../postgres/binary.js';
import { type Database, prepared, readyStateOf, withClient } from '../postgres/database.js';
import { checkOwner } from './claim-hashes.js';
import { checkHashes, retryConflicts, type StoreOptions, sortedHashBytes } from './store.js';

/**
 * Releases claims `owner` holds on the given hashes, so another worker may embed them at
 * once (instead of waiting for the claims to go stale). Call it when embedding or persisting
 * a claimed batch fails. Claims held by other owners are left alone.
 *
 * @param db - an open database
 * @param hashes - lowercase hex SHA-256 hashes
 * @param owner - the owner passed to {@link claimHashes}
 * @param options - cancellation
 * @returns how many claims were released
 *
 * @example
 * ```ts
 * import { releaseClaims } from '@hartonomous/pipelines/atoms';
 * const released = await releaseClaims(db, won, 'worker-1');
 * ```
 */
export async function releaseClaims(
  db: Database,
  hashes: readonly string[],
  owner: string,
  options: StoreOptions = {},
): Promise<number> {
  const state = readyStateOf(db);
  checkHashes('releaseClaims', hashes);
  checkOwner('releaseClaims', owner);
  const bytes = sortedHashBytes(hashes);
  if (bytes.length === 0) return 0;
  const sql = `DELETE FROM ${state.qschema}.atom_claims WHERE hash = ANY($1::bytea[]) AND owner = $2`;
  const values = [byteaArray(bytes), owner];
  const { rowCount } = await retryConflicts(() =>
    withClient(state, options.signal, (client) => prepared(client, 'release_claims', sql, values)),
  );
  return rowCount ?? 0;
}
