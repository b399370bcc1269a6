import {
  type AggregationStrategy,
  minSuccessesOf,
  pickWinner,
  tally,
  tieOf,
  type VoteOptions,
} from './aggregation.js';

/**
 * The answer most models gave (one model, one vote). Ties (equal votes) are broken by the
 * higher total weight of the voters, then by lexical order of the answer's text, unless
 * `tie: 'error'`, which throws a `TieError`. `support` is the winning number of votes.
 *
 * @param options - `minSuccesses` (default 1) and the tie rule (default `'break'`)
 * @returns the strategy
 * @throws TypeError when an option is invalid
 *
 * @example
 * ```ts
 * import { ensemble, majorityVote } from '@hartonomous/pipelines/inference';
 *
 * const sentiment = ensemble({ models, strategy: majorityVote({ minSuccesses: 2 }) });
 * const { answer, support } = await sentiment.run({ input: 'I love it' }); // e.g. 'positive', 2
 * ```
 */
export function majorityVote(options: VoteOptions = {}): AggregationStrategy {
  const minSuccesses = minSuccessesOf('majorityVote', options.minSuccesses);
  const tie = tieOf('majorityVote', options.tie);
  const strategy: AggregationStrategy = {
    name: 'majority-vote',
    minSuccesses,
    aggregate(responses, requestId) {
      const winner = pickWinner(tally(responses), 'votes', tie, 'majority-vote', requestId);
      return { answer: winner.answer, support: winner.votes, agreeing: winner.models };
    },
  };
  return Object.freeze(strategy);
}
