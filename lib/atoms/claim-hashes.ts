import { byteaArray, hashBytes } from '../postgres/binary.js';
import { type Database, prepared, readyStateOf, withClient } from '../postgres/database.js';
import { checkHashes, retryConflicts, type StoreOptions, sortedHashBytes } from './store.js';

/**
 * Options of {@link claimHashes}.
 *
 * @example
 * ```ts
 * import type { ClaimHashesOptions } from '@hartonomous/pipelines/atoms';
 * const options: ClaimHashesOptions = { staleAfterMs: 60_000 };
 * ```
 */
export interface ClaimHashesOptions extends StoreOptions {
  /**
   * A claim older than this is presumed abandoned (its worker died) and may be taken over.
   * Set it well above the time a batch takes to embed and persist.
   * @default 300_000 (5 minutes)
   */
  staleAfterMs?: number;
}

/**
 * Default age after which a claim may be taken over (5 minutes).
 *
 * @example
 * ```ts
 * import { claimHashes, DEFAULT_CLAIM_STALE_MS } from '@hartonomous/pipelines/atoms';
 * await claimHashes(db, hashes, 'worker-1', { staleAfterMs: 2 * DEFAULT_CLAIM_STALE_MS });
 * ```
 */
export const DEFAULT_CLAIM_STALE_MS = 300_000;

/**
 * Claims content hashes for `owner` before embedding them, so concurrent workers never pay to
 * embed the same content twice. In one statement: inserts a claim per hash that is not
 * already an atom (`ON CONFLICT DO NOTHING` semantics), takes over claims older than
 * `staleAfterMs`, renews this owner's own claims, and returns the hashes this owner now holds.
 * Hashes not returned are stored already or being embedded by another worker: skip them.
 * A second statement (fresh snapshot) then drops any claim whose atom a concurrent
 * {@link persistAtoms} committed meanwhile, so workers that claim before embedding never embed
 * the same content twice.
 *
 * Claims are an optimisation, not the correctness guarantee: {@link persistAtoms} inserts with
 * `ON CONFLICT DO NOTHING`, so even a lost claim cannot produce a duplicate row. Claims are
 * released by {@link persistAtoms} (on success) or {@link releaseClaims} (on failure).
 *
 * @param db - an open database
 * @param hashes - lowercase hex SHA-256 hashes (duplicates are fine)
 * @param owner - a stable id of this worker (e.g. host name and process id)
 * @param options - staleness and cancellation
 * @returns the hashes this owner holds now, in the order given
 *
 * @example
 * ```ts
 * import { claimHashes, releaseClaims } from '@hartonomous/pipelines/atoms';
 *
 * const won = await claimHashes(db, hashes, `worker-${process.pid}`, { staleAfterMs: 60_000 });
 * try {
 *   // embed and persist only `won`
 * } catch (e) {
 *   await releaseClaims(db, won, `worker-${process.pid}`);
 *   throw e;
 * }
 * ```
 */
export async function claimHashes(
  db: Database,
  hashes: readonly string[],
  owner: string,
  options: ClaimHashesOptions = {},
): Promise<string[]> {
  const state = readyStateOf(db);
  checkHashes('claimHashes', hashes);
  checkOwner('claimHashes', owner);
  const staleAfterMs = options.staleAfterMs ?? DEFAULT_CLAIM_STALE_MS;
  if (!Number.isFinite(staleAfterMs) || staleAfterMs < 0) {
    throw new TypeError(
      `claimHashes: staleAfterMs must be a non-negative number, got ${staleAfterMs}`,
    );
  }
  const bytes = sortedHashBytes(hashes);
  if (bytes.length === 0) return [];
  const q = state.qschema;
  const sql = `INSERT INTO ${q}.atom_claims AS c (hash, owner, claimed_at)
SELECT u.h, $2, now() FROM unnest($1::bytea[]) WITH ORDINALITY AS u(h, ord)
WHERE NOT EXISTS (SELECT 1 FROM ${q}.atoms a WHERE a.content_hash = u.h)
ORDER BY u.ord
ON CONFLICT (hash) DO UPDATE SET owner = EXCLUDED.owner, claimed_at = EXCLUDED.claimed_at
WHERE c.owner = EXCLUDED.owner OR c.claimed_at < now() - $3::float8 * interval '1 millisecond'
RETURNING encode(c.hash, 'hex') AS hash`;
  const values = [byteaArray(bytes), owner, staleAfterMs];
  // A second statement, with a fresh snapshot, drops claims on hashes whose atom a concurrent
  // persist committed while the first statement ran (it waited on that persist's claim row,
  // but its NOT EXISTS saw the older snapshot).
  const recheck = `DELETE FROM ${q}.atom_claims c USING ${q}.atoms a
WHERE c.hash = ANY($1::bytea[]) AND c.owner = $2 AND a.content_hash = c.hash
RETURNING encode(c.hash, 'hex') AS hash`;
  const rows = await retryConflicts(() =>
    withClient(state, options.signal, async (client) => {
      const claimed = await prepared<{ hash: string }>(client, 'claim_hashes', sql, values);
      if (claimed.rows.length === 0) return [];
      const dropped = await prepared<{ hash: string }>(client, 'claim_recheck', recheck, [
        byteaArray(claimed.rows.map((r) => hashBytes(r.hash)).sort(Buffer.compare)),
        owner,
      ]);
      const gone = new Set(dropped.rows.map((r) => r.hash));
      return claimed.rows.filter((r) => !gone.has(r.hash));
    }),
  );
  const won = new Set(rows.map((r) => r.hash));
  const seen = new Set<string>();
  return hashes.filter((h) => won.has(h) && !seen.has(h) && seen.add(h));
}

/** @internal */
export function checkOwner(fn: string, owner: unknown): asserts owner is string {
  if (typeof owner !== 'string' || owner.length === 0) {
    throw new TypeError(`${fn}: owner must be a non-empty string`);
  }
}
