import { type AggregationStrategy, isFiniteNumber, minSuccessesOf } from './aggregation.js';

/**
 * The median of the numeric answers; with an even count, the mean of the two middle values.
 * A non-numeric answer makes that invocation `'invalid'`. `support` is the number of values
 * used.
 *
 * @param options - `minSuccesses` (default 1)
 * @returns the strategy
 * @throws TypeError when an option is invalid
 *
 * @example
 * ```ts
 * import { ensemble, median } from '@hartonomous/pipelines/inference';
 * const eta = ensemble({ models, strategy: median({ minSuccesses: 3 }) });
 * ```
 */
export function median(options: { minSuccesses?: number } = {}): AggregationStrategy {
  const minSuccesses = minSuccessesOf('median', options.minSuccesses);
  const strategy: AggregationStrategy = {
    name: 'median',
    minSuccesses,
    accepts: isFiniteNumber,
    aggregate(responses) {
      const values = responses.map((r) => r.answer as number).sort((a, b) => a - b);
      const mid = values.length >> 1;
      const answer =
        values.length % 2 === 1
          ? (values[mid] as number)
          : ((values[mid - 1] as number) + (values[mid] as number)) / 2;
      return { answer, support: values.length, agreeing: responses.map((r) => r.model) };
    },
  };
  return Object.freeze(strategy);
}
