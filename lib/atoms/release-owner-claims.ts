import { type Database, prepared, readyStateOf, withClient } from '../postgres/database.js';

/**
 * Deletes every claim `owner` still holds. `ingest` calls it when a run ends (completed,
 * cancelled or failed): a run that is over can finish nothing it claimed, and a claim left
 * behind would make the next run report that content as `claimed` by another worker, and skip
 * it, until the claim goes stale. Items between the dedupe and persist steps when a run is
 * cancelled leave such claims behind.
 *
 * @param db - an open, migrated database
 * @param owner - the owner the ingest claimed with
 * @returns how many claims were deleted
 *
 * @example
 * ```ts
 * import { releaseOwnerClaims } from '@hartonomous/pipelines/atoms';
 * // after a worker that claimed as 'host-1:4242' was stopped for good
 * await releaseOwnerClaims(db, 'host-1:4242');
 * ```
 */
export async function releaseOwnerClaims(db: Database, owner: string): Promise<number> {
  const state = readyStateOf(db);
  const { rowCount } = await withClient(state, undefined, (client) =>
    prepared(
      client,
      'release_owner_claims',
      `DELETE FROM ${state.qschema}.atom_claims WHERE owner = $1`,
      [owner],
    ),
  );
  return rowCount ?? 0;
}
