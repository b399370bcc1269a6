import type { Migration } from './index.js';

/**
 * Migration 4: `atom_claims`, short-lived claims on content hashes so concurrent workers do
 * not embed the same content twice. A claim is deleted when its atom is persisted or the
 * work fails; a claim older than the caller's `staleAfterMs` may be taken over.
 * @internal
 */
export const atomClaimsMigration: Migration = {
  id: 4,
  name: 'atom-claims',
  up: () => [
    `CREATE TABLE atom_claims (
      hash bytea PRIMARY KEY,
      owner text NOT NULL,
      claimed_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT atom_claims_hash_length CHECK (octet_length(hash) = 32)
    )`,
  ],
};
