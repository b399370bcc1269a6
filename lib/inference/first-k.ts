import { type AggregationStrategy, minSuccessesOf } from './aggregation.js';
import { majorityVote } from './majority-vote.js';

/**
 * Options of {@link firstK}.
 *
 * @example
 * ```ts
 * import { type FirstKOptions, median } from '@hartonomous/pipelines/inference';
 * const options: FirstKOptions = { k: 2, combine: median() };
 * ```
 */
export interface FirstKOptions {
  /** How many answers to wait for. */
  k: number;
  /** How the first `k` answers are combined. @default majorityVote() */
  combine?: AggregationStrategy;
  /**
   * Least answers needed when fewer than `k` models answer at all. @default k (fewer than `k`
   * answers is an `EnsembleFailedError`)
   */
  minSuccesses?: number;
}

/**
 * Answers as soon as `k` models have given a usable answer, cancelling the invocations still
 * running (they are recorded as `'cancelled'`), then combines those `k` answers with `combine`
 * (by default a majority vote, whose tie rule applies). The fastest `k` models win.
 *
 * @param options - `k`, the combining strategy, `minSuccesses`
 * @returns the strategy
 * @throws TypeError when an option is invalid
 *
 * @example
 * ```ts
 * import { ensemble, firstK } from '@hartonomous/pipelines/inference';
 * // 5 replicas of a model: the answer of the fastest 2 (if they agree; else the tie rule)
 * const fast = ensemble({ models, strategy: firstK({ k: 2 }) });
 * ```
 */
export function firstK(options: FirstKOptions): AggregationStrategy {
  const k = options?.k;
  if (!Number.isInteger(k) || k < 1) {
    throw new TypeError(`firstK: k must be a positive integer, got ${String(k)}`);
  }
  const combine = options.combine ?? majorityVote();
  if (typeof combine?.aggregate !== 'function') {
    throw new TypeError('firstK: combine must be an aggregation strategy');
  }
  const minSuccesses = minSuccessesOf('firstK', options.minSuccesses, k);
  if (minSuccesses > k) throw new TypeError('firstK: minSuccesses cannot exceed k');
  const strategy: AggregationStrategy = {
    name: `first-${k}`,
    minSuccesses,
    ...(combine.accepts ? { accepts: combine.accepts.bind(combine) } : {}),
    enough: (responses) => responses.length >= k,
    aggregate: (responses, requestId) => combine.aggregate(responses.slice(0, k), requestId),
  };
  return Object.freeze(strategy);
}
