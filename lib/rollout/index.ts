/**
 * `@hartonomous/pipelines/rollout`: roll a new version of a pipeline out gradually. A
 * {@link rollout} routes each item to the stable or the candidate pipeline by a deterministic
 * hash of its key and a percentage (fixed, or an OpenFeature flag that can change at run
 * time), or runs the candidate in shadow. Needs the optional peer `@openfeature/server-sdk`.
 *
 * @example
 * ```ts
 * import { pipeline, step } from '@hartonomous/pipelines';
 * import { rollout } from '@hartonomous/pipelines/rollout';
 *
 * const v1 = pipeline('v1', step('double', (n: number) => n * 2));
 * const v2 = pipeline('v2', step('double', (n: number) => n + n));
 * const doubled = rollout({ name: 'double-v2', stable: v1, candidate: v2, key: String, percent: 10 });
 * console.log(await doubled.run(21)); // 42 from either variant
 * ```
 *
 * @module
 */

export { inMemoryFlags, type RolloutFlags } from './in-memory-flags.js';
export { type RolloutMode, type RolloutOptions, rollout } from './rollout.js';
export { type RolloutVariant, rolloutPosition, variantOf } from './variant-of.js';
