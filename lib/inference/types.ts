/**
 * The data types of ensemble inference: models, requests, answers, invocations.
 *
 * @module
 */

/**
 * What a model answers: a label (`string`, for votes) or a number (for mean, median, ...).
 *
 * @example
 * ```ts
 * import type { Answer } from '@hartonomous/pipelines/inference';
 * const label: Answer = 'positive';
 * const score: Answer = 0.82;
 * ```
 */
export type Answer = string | number;

/**
 * One model of the registry (a row of `inference_models`).
 *
 * @example
 * ```ts
 * import type { ModelDefinition } from '@hartonomous/pipelines/inference';
 *
 * const model: ModelDefinition = {
 *   name: 'sentiment-small',
 *   endpoint: 'http://127.0.0.1:8001/predict',
 *   kind: 'json',
 *   weight: 1,
 *   timeoutMs: 2_000,
 *   enabled: true,
 * };
 * ```
 */
export interface ModelDefinition {
  /** Unique name; used in invocations, breakers, metrics and logs. */
  readonly name: string;
  /** The URL requests are POSTed to. */
  readonly endpoint: string;
  /** Which protocol adapter talks to it (`'json'` is the library's protocol). @default 'json' */
  readonly kind?: string;
  /** Weight in weighted strategies (>= 0). @default 1 */
  readonly weight?: number;
  /** Limit of one attempt, in ms (the request is aborted when it expires). @default 5_000 */
  readonly timeoutMs?: number;
  /** Disabled models are kept in the registry but never invoked. @default true */
  readonly enabled?: boolean;
  /** Adapter-specific settings (e.g. the remote model id for an OpenAI-compatible server). @default {} */
  readonly options?: Readonly<Record<string, unknown>>;
}

/**
 * A model definition with every default applied.
 *
 * @example
 * ```ts
 * import type { ResolvedModel } from '@hartonomous/pipelines/inference';
 * const describe = (m: ResolvedModel) => `${m.name} (${m.kind}, weight ${m.weight}, ${m.timeoutMs} ms)`;
 * ```
 */
export interface ResolvedModel extends Required<ModelDefinition> {}

/**
 * One inference request.
 *
 * @example
 * ```ts
 * import type { EnsembleRequest } from '@hartonomous/pipelines/inference';
 * const request: EnsembleRequest = { id: 'req-1', input: 'The food was great', parameters: { language: 'en' } };
 * ```
 */
export interface EnsembleRequest {
  /** The request's id (primary key of `inference_requests` when persisted). @default a random UUID */
  readonly id?: string;
  /** The input, sent to every model (must be JSON-serializable). */
  readonly input: unknown;
  /** Extra parameters sent to every model. @default none */
  readonly parameters?: Readonly<Record<string, unknown>>;
}

/**
 * What one model answered, as an adapter returns it.
 *
 * @example
 * ```ts
 * import type { ModelAnswer } from '@hartonomous/pipelines/inference';
 * const a: ModelAnswer = { answer: 'positive', confidence: 0.93 };
 * ```
 */
export interface ModelAnswer {
  /** The answer. */
  readonly answer: Answer;
  /** The model's confidence in [0, 1], if it gives one. */
  readonly confidence?: number;
}

/**
 * How one model invocation ended:
 * `'ok'` (a usable answer), `'error'` (HTTP or network error after retries), `'timeout'`
 * (every attempt timed out), `'rejected'` (its circuit breaker is open: not called),
 * `'invalid'` (an answer the protocol or the strategy cannot use), `'cancelled'` (not needed
 * any more: first-k/quorum had its answer, or the request was cancelled).
 *
 * @example
 * ```ts
 * import type { InvocationOutcome } from '@hartonomous/pipelines/inference';
 * const failed = (o: InvocationOutcome) => o !== 'ok' && o !== 'cancelled';
 * ```
 */
export type InvocationOutcome = 'ok' | 'error' | 'timeout' | 'rejected' | 'invalid' | 'cancelled';

/**
 * The record of one model's invocation for one request: outcome, answer, latency, attempts.
 *
 * @example
 * ```ts
 * import type { ModelInvocation } from '@hartonomous/pipelines/inference';
 * const line = (i: ModelInvocation) => `${i.model}: ${i.outcome} in ${i.latencyMs.toFixed(1)} ms (${i.attempts} attempt(s))`;
 * ```
 */
export interface ModelInvocation {
  /** The model's name. */
  readonly model: string;
  /** Its weight at the time. */
  readonly weight: number;
  /** How it ended. */
  readonly outcome: InvocationOutcome;
  /** The answer, for `'ok'` (and the unusable one, for `'invalid'`, when there was one). */
  readonly answer?: Answer;
  /** The model's confidence, if given. */
  readonly confidence?: number;
  /** The error, for every outcome but `'ok'`. */
  readonly error?: unknown;
  /** Milliseconds from the start of the invocation to its end (0 when never started). */
  readonly latencyMs: number;
  /** HTTP attempts made (0 when rejected by the breaker or never started). */
  readonly attempts: number;
  /** Position in the order the invocations of this request ended, from 0. */
  readonly arrival: number;
}

/**
 * The ensemble's answer to one request.
 *
 * @example
 * ```ts
 * import type { EnsembleAnswer } from '@hartonomous/pipelines/inference';
 * const show = (a: EnsembleAnswer) =>
 *   `${a.requestId}: ${a.answer} (${a.strategy}, support ${a.support}, from ${a.agreeing.join('+')})`;
 * ```
 */
export interface EnsembleAnswer {
  /** The request's id. */
  readonly requestId: string;
  /** The aggregated answer. */
  readonly answer: Answer;
  /** The strategy that produced it. */
  readonly strategy: string;
  /**
   * How strongly it is supported: votes (majority, first-k, quorum), total weight (weighted
   * vote), or the number of values used (mean, median, trimmed mean).
   */
  readonly support: number;
  /** Models whose answers make up the result (the winning voters, or the values used). */
  readonly agreeing: readonly string[];
  /** Models that gave a usable answer. */
  readonly responded: number;
  /** Every model's invocation, in the order they ended. */
  readonly invocations: readonly ModelInvocation[];
  /** Whether the request, invocations and answer were written to the database. */
  readonly persisted: boolean;
}
