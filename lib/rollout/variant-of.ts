import { createHash } from 'node:crypto';

/**
 * Which pipeline version serves an item: the current one or the new one.
 *
 * @example
 * ```ts
 * import type { RolloutVariant } from '@hartonomous/pipelines/rollout';
 * const variant: RolloutVariant = 'candidate';
 * ```
 */
export type RolloutVariant = 'stable' | 'candidate';

/**
 * The position of a key in a rollout, from 0 (inclusive) to 100 (exclusive): the first 32 bits
 * of SHA-256 over `<rollout name>\0<key>`, scaled. It depends on nothing but the two strings,
 * so every process, machine and restart puts a key at the same place; a key is on the
 * candidate while the rollout's percentage is above its position, so raising the percentage
 * only ever moves keys from stable to candidate. The rollout's name salts the hash: two
 * rollouts split the same keys independently.
 *
 * @param name - the rollout's name
 * @param key - the item's key
 * @returns a number in [0, 100)
 *
 * @example
 * ```ts
 * import { rolloutPosition } from '@hartonomous/pipelines/rollout';
 * rolloutPosition('ingest-v2', 'customer-42'); // the same number in every process
 * ```
 */
export function rolloutPosition(name: string, key: string): number {
  const digest = createHash('sha256').update(name).update('\0').update(key).digest();
  return (digest.readUInt32BE(0) / 2 ** 32) * 100;
}

/**
 * The variant a key gets in a rollout at a percentage: `'candidate'` when its
 * {@link rolloutPosition} is below `percent`, else `'stable'`.
 *
 * @param name - the rollout's name
 * @param key - the item's key
 * @param percent - share of keys on the candidate, 0 to 100
 * @returns the variant
 *
 * @example
 * ```ts
 * import { variantOf } from '@hartonomous/pipelines/rollout';
 * variantOf('ingest-v2', 'customer-42', 10); // 'stable' or 'candidate', the same everywhere
 * ```
 */
export function variantOf(name: string, key: string, percent: number): RolloutVariant {
  return rolloutPosition(name, key) < percent ? 'candidate' : 'stable';
}
