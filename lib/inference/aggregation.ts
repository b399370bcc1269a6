/**
 * The contract of an aggregation strategy and the helpers the built-in strategies share.
 *
 * @module
 */

import { TieError } from './errors.js';
import type { Answer } from './types.js';

/**
 * One usable model answer, as strategies see it.
 *
 * @example
 * ```ts
 * import type { ModelResponse } from '@hartonomous/pipelines/inference';
 * const r: ModelResponse = { model: 'a', weight: 2, answer: 'positive', confidence: 0.9, arrival: 0 };
 * ```
 */
export interface ModelResponse {
  /** The model's name. */
  readonly model: string;
  /** The model's weight. */
  readonly weight: number;
  /** Its answer (already accepted by the strategy). */
  readonly answer: Answer;
  /** Its confidence, if given. */
  readonly confidence?: number;
  /** Position in the order the invocations ended, from 0. */
  readonly arrival: number;
}

/**
 * What a strategy decided.
 *
 * @example
 * ```ts
 * import type { Aggregation } from '@hartonomous/pipelines/inference';
 * const a: Aggregation = { answer: 'positive', support: 2, agreeing: ['a', 'c'] };
 * ```
 */
export interface Aggregation {
  /** The answer. */
  readonly answer: Answer;
  /** Votes, total weight or values used (see `EnsembleAnswer.support`). */
  readonly support: number;
  /** Models whose answers make up the result. */
  readonly agreeing: readonly string[];
}

/**
 * How an ensemble turns model answers into one answer. The built-ins are
 * {@link majorityVote}, {@link weightedVote}, {@link mean}, {@link median},
 * {@link trimmedMean}, {@link firstK} and {@link quorum}; implement this interface for your
 * own.
 *
 * The ensemble calls `accepts` on each answer (a rejected one makes that invocation
 * `'invalid'`), `enough` after each invocation ends (true cancels the invocations still
 * running), then, when at least `minSuccesses` answers were accepted (else
 * `EnsembleFailedError`), `aggregate` with the accepted answers in arrival order.
 *
 * @example
 * ```ts
 * import type { AggregationStrategy } from '@hartonomous/pipelines/inference';
 *
 * // the answer of the fastest model
 * const fastest: AggregationStrategy = {
 *   name: 'fastest',
 *   minSuccesses: 1,
 *   enough: (responses) => responses.length >= 1,
 *   aggregate: ([first]) => ({ answer: first!.answer, support: 1, agreeing: [first!.model] }),
 * };
 * ```
 */
export interface AggregationStrategy {
  /** Name, stored with each result. */
  readonly name: string;
  /** Least accepted answers needed to aggregate (>= 1). */
  readonly minSuccesses: number;
  /**
   * Whether the strategy can use an answer (e.g. numeric strategies need finite numbers).
   * @default every answer
   */
  accepts?(answer: Answer): boolean;
  /**
   * Called after each invocation ends, with the accepted answers so far (arrival order) and
   * how many invocations are still pending; true stops waiting and cancels the rest.
   * @default waits for every invocation
   */
  enough?(responses: readonly ModelResponse[], pending: number): boolean;
  /**
   * Decides the answer. May throw a `TieError` or an `EnsembleFailedError`.
   * @param responses - the accepted answers, in arrival order (at least `minSuccesses`)
   * @param requestId - the request, for errors
   */
  aggregate(responses: readonly ModelResponse[], requestId: string): Aggregation;
}

/**
 * Options shared by the vote strategies.
 *
 * @example
 * ```ts
 * import { majorityVote, type VoteOptions } from '@hartonomous/pipelines/inference';
 * const options: VoteOptions = { minSuccesses: 2, tie: 'error' };
 * const strategy = majorityVote(options);
 * ```
 */
export interface VoteOptions {
  /** Least usable answers needed. @default 1 */
  minSuccesses?: number;
  /**
   * What a tie on the strategy's main score does: `'break'` ranks the tied answers by the
   * other score (total weight for a majority vote, number of votes for a weighted vote), then
   * by lexical order of the answer's text (`String(answer)`, code-unit order), and takes the
   * first; `'error'` throws a `TieError` with the tied answers.
   * @default 'break'
   */
  tie?: 'break' | 'error';
}

/** Answers grouped by value. @internal */
export interface Tally {
  readonly answer: Answer;
  readonly key: string;
  votes: number;
  weight: number;
  readonly models: string[];
  /** arrival of the vote that gave this group its `votes`-th vote (for quorum) */
  reachedAt: number[];
}

/** Groups answers by value (a number and its string are different answers). @internal */
export function tally(
  responses: readonly ModelResponse[],
  weightOf: (r: ModelResponse) => number = (r) => r.weight,
): Tally[] {
  const groups = new Map<string, Tally>();
  for (const r of responses) {
    const key = `${typeof r.answer}:${String(r.answer)}`;
    let g = groups.get(key);
    if (!g) {
      g = { answer: r.answer, key, votes: 0, weight: 0, models: [], reachedAt: [] };
      groups.set(key, g);
    }
    g.votes++;
    g.weight += weightOf(r);
    g.models.push(r.model);
    g.reachedAt.push(r.arrival);
  }
  return [...groups.values()];
}

const EPSILON = 1e-9;

function same(a: number, b: number): boolean {
  return Math.abs(a - b) <= EPSILON * Math.max(1, Math.abs(a), Math.abs(b));
}

/**
 * Ranks groups by a main score, then a second score, then lexical order of the answer's
 * text, and returns the first; throws `TieError` on a main-score tie when asked to.
 * @internal
 */
export function pickWinner(
  groups: readonly Tally[],
  main: 'votes' | 'weight',
  tie: 'break' | 'error',
  strategy: string,
  requestId: string,
): Tally {
  const second = main === 'votes' ? 'weight' : 'votes';
  const ranked = [...groups].sort((a, b) => {
    if (!same(a[main], b[main])) return b[main] - a[main];
    if (!same(a[second], b[second])) return b[second] - a[second];
    const sa = String(a.answer);
    const sb = String(b.answer);
    if (sa !== sb) return sa < sb ? -1 : 1;
    return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
  });
  const [first] = ranked;
  if (!first) throw new TypeError(`${strategy}: nothing to aggregate`);
  const tied = ranked.filter((g) => same(g[main], first[main]));
  if (tied.length > 1 && tie === 'error') {
    throw new TieError(
      strategy,
      requestId,
      tied.map((g) => g.answer),
    );
  }
  return first;
}

/** Validates and defaults `minSuccesses`. @internal */
export function minSuccessesOf(where: string, value: number | undefined, fallback = 1): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1) {
    throw new TypeError(`${where}: minSuccesses must be a positive integer, got ${String(value)}`);
  }
  return v;
}

/** Validates `tie`. @internal */
export function tieOf(where: string, value: 'break' | 'error' | undefined): 'break' | 'error' {
  const v = value ?? 'break';
  if (v !== 'break' && v !== 'error') {
    throw new TypeError(`${where}: tie must be 'break' or 'error', got ${String(value)}`);
  }
  return v;
}

/** Whether an answer is a finite number. @internal */
export function isFiniteNumber(answer: Answer): answer is number {
  return typeof answer === 'number' && Number.isFinite(answer);
}
