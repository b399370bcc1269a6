import { type AggregationStrategy, isFiniteNumber, minSuccessesOf } from './aggregation.js';

/**
 * Options of {@link trimmedMean}.
 *
 * @example
 * ```ts
 * import type { TrimmedMeanOptions } from '@hartonomous/pipelines/inference';
 * const options: TrimmedMeanOptions = { trim: 0.2, minSuccesses: 3 };
 * ```
 */
export interface TrimmedMeanOptions {
  /** Fraction of the values dropped at EACH end, in [0, 0.5). @default 0.1 */
  trim?: number;
  /** Least numeric answers needed. @default 1 */
  minSuccesses?: number;
}

/**
 * The mean after dropping the `floor(n * trim)` lowest and highest values (robust to a few
 * outlier models). A non-numeric answer makes that invocation `'invalid'`. `support` is the
 * number of values kept; `agreeing` their models.
 *
 * @param options - `trim` (default 0.1), `minSuccesses` (default 1)
 * @returns the strategy
 * @throws TypeError when an option is invalid
 *
 * @example
 * ```ts
 * import { ensemble, trimmedMean } from '@hartonomous/pipelines/inference';
 * // 5 models: the lowest and the highest answer are ignored
 * const score = ensemble({ models, strategy: trimmedMean({ trim: 0.2 }) });
 * ```
 */
export function trimmedMean(options: TrimmedMeanOptions = {}): AggregationStrategy {
  const minSuccesses = minSuccessesOf('trimmedMean', options.minSuccesses);
  const trim = options.trim ?? 0.1;
  if (!(trim >= 0 && trim < 0.5)) {
    throw new TypeError(`trimmedMean: trim must be in [0, 0.5), got ${String(options.trim)}`);
  }
  const strategy: AggregationStrategy = {
    name: 'trimmed-mean',
    minSuccesses,
    accepts: isFiniteNumber,
    aggregate(responses) {
      const sorted = [...responses].sort((a, b) => (a.answer as number) - (b.answer as number));
      const cut = Math.floor(sorted.length * trim);
      const kept = sorted.slice(cut, sorted.length - cut);
      const sum = kept.reduce((acc, r) => acc + (r.answer as number), 0);
      return {
        answer: sum / kept.length,
        support: kept.length,
        agreeing: kept.map((r) => r.model),
      };
    },
  };
  return Object.freeze(strategy);
}
