import { type AggregationStrategy, isFiniteNumber, minSuccessesOf } from './aggregation.js';

/**
 * Options of {@link mean}.
 *
 * @example
 * ```ts
 * import type { MeanOptions } from '@hartonomous/pipelines/inference';
 * const options: MeanOptions = { weighted: true, minSuccesses: 2 };
 * ```
 */
export interface MeanOptions {
  /** Least numeric answers needed. @default 1 */
  minSuccesses?: number;
  /** Weight each answer by its model's weight (models of weight 0 are then ignored). @default false */
  weighted?: boolean;
}

/**
 * The arithmetic mean of the numeric answers (optionally weighted by model weight). A
 * non-numeric answer makes that invocation `'invalid'`. `support` is the number of values used.
 *
 * @param options - `minSuccesses`, `weighted`
 * @returns the strategy
 * @throws TypeError when an option is invalid
 *
 * @example
 * ```ts
 * import { ensemble, mean } from '@hartonomous/pipelines/inference';
 * const price = ensemble({ models, strategy: mean({ weighted: true }) });
 * ```
 */
export function mean(options: MeanOptions = {}): AggregationStrategy {
  const minSuccesses = minSuccessesOf('mean', options.minSuccesses);
  const weighted = options.weighted ?? false;
  const strategy: AggregationStrategy = {
    name: weighted ? 'weighted-mean' : 'mean',
    minSuccesses,
    accepts: isFiniteNumber,
    aggregate(responses) {
      const used = weighted ? responses.filter((r) => r.weight > 0) : responses;
      const source = used.length > 0 ? used : responses;
      let sum = 0;
      let total = 0;
      for (const r of source) {
        const w = weighted && used.length > 0 ? r.weight : 1;
        sum += (r.answer as number) * w;
        total += w;
      }
      return { answer: sum / total, support: source.length, agreeing: source.map((r) => r.model) };
    },
  };
  return Object.freeze(strategy);
}
