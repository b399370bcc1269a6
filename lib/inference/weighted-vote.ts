import {
  type AggregationStrategy,
  minSuccessesOf,
  pickWinner,
  tally,
  tieOf,
  type VoteOptions,
} from './aggregation.js';

/**
 * Options of {@link weightedVote}.
 *
 * @example
 * ```ts
 * import type { WeightedVoteOptions } from '@hartonomous/pipelines/inference';
 * const options: WeightedVoteOptions = { useConfidence: true, tie: 'error' };
 * ```
 */
export interface WeightedVoteOptions extends VoteOptions {
  /** Multiply each vote's weight by the model's confidence (1 when it gives none). @default false */
  useConfidence?: boolean;
}

/**
 * The answer with the highest total weight of the models that gave it (a model's `weight`,
 * times its confidence with `useConfidence`). Ties (equal weight) are broken by more votes,
 * then by lexical order of the answer's text, unless `tie: 'error'`. `support` is the winning
 * total weight.
 *
 * @param options - `minSuccesses`, tie rule, `useConfidence`
 * @returns the strategy
 * @throws TypeError when an option is invalid
 *
 * @example
 * ```ts
 * import { ensemble, weightedVote } from '@hartonomous/pipelines/inference';
 * const sentiment = ensemble({ models, strategy: weightedVote({ useConfidence: true }) });
 * ```
 */
export function weightedVote(options: WeightedVoteOptions = {}): AggregationStrategy {
  const minSuccesses = minSuccessesOf('weightedVote', options.minSuccesses);
  const tie = tieOf('weightedVote', options.tie);
  const useConfidence = options.useConfidence ?? false;
  const strategy: AggregationStrategy = {
    name: 'weighted-vote',
    minSuccesses,
    aggregate(responses, requestId) {
      const groups = tally(responses, (r) =>
        useConfidence ? r.weight * (r.confidence ?? 1) : r.weight,
      );
      const winner = pickWinner(groups, 'weight', tie, 'weighted-vote', requestId);
      return { answer: winner.answer, support: winner.weight, agreeing: winner.models };
    },
  };
  return Object.freeze(strategy);
}
