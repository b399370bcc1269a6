import { type AggregationStrategy, minSuccessesOf, tally } from './aggregation.js';
import { EnsembleFailedError } from './errors.js';

/**
 * Options of {@link quorum}.
 *
 * @example
 * ```ts
 * import type { QuorumOptions } from '@hartonomous/pipelines/inference';
 * const options: QuorumOptions = { k: 2 };
 * ```
 */
export interface QuorumOptions {
  /** How many models must give the same answer. */
  k: number;
  /** Least usable answers needed before the quorum is even considered. @default 1 */
  minSuccesses?: number;
}

/**
 * Answers as soon as `k` models agree on the same answer, cancelling the invocations still
 * running (recorded as `'cancelled'`). It also stops early once no answer can reach `k`
 * any more. Without a quorum it fails with `EnsembleFailedError` (reason `'no-quorum'`).
 * Only one answer can be the first to reach `k`, so there are no ties. `support` is `k`.
 *
 * @param options - `k` and `minSuccesses`
 * @returns the strategy
 * @throws TypeError when an option is invalid
 *
 * @example
 * ```ts
 * import { ensemble, quorum } from '@hartonomous/pipelines/inference';
 * // 3 models, answer when 2 agree (the slowest one is not waited for)
 * const safe = ensemble({ models, strategy: quorum({ k: 2 }) });
 * ```
 */
export function quorum(options: QuorumOptions): AggregationStrategy {
  const k = options?.k;
  if (!Number.isInteger(k) || k < 1) {
    throw new TypeError(`quorum: k must be a positive integer, got ${String(k)}`);
  }
  const minSuccesses = minSuccessesOf('quorum', options.minSuccesses);
  const best = (responses: Parameters<AggregationStrategy['aggregate']>[0]) =>
    tally(responses).reduce<ReturnType<typeof tally>[number] | undefined>((acc, g) => {
      if (g.votes < k) return acc;
      // the group whose k-th vote arrived first
      const at = g.reachedAt[k - 1] as number;
      return acc === undefined || at < (acc.reachedAt[k - 1] as number) ? g : acc;
    }, undefined);
  const strategy: AggregationStrategy = {
    name: `quorum-${k}`,
    minSuccesses,
    enough(responses, pending) {
      const groups = tally(responses);
      const most = groups.reduce((m, g) => Math.max(m, g.votes), 0);
      return most >= k || most + pending < k;
    },
    aggregate(responses, requestId) {
      const winner = best(responses);
      if (!winner) {
        throw new EnsembleFailedError(
          'no-quorum',
          requestId,
          responses.length,
          k,
          tally(responses).map((g) => ({
            model: g.models.join('+'),
            outcome: 'ok' as const,
            error: new Error(`${g.votes} of ${k} votes for ${JSON.stringify(g.answer)}`),
          })),
        );
      }
      return {
        answer: winner.answer,
        support: k,
        agreeing: winner.models.filter(
          (_, i) => (winner.reachedAt[i] as number) <= (winner.reachedAt[k - 1] as number),
        ),
      };
    },
  };
  return Object.freeze(strategy);
}
