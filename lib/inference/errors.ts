/**
 * The named errors of ensemble inference.
 *
 * @module
 */

import { errorGuard, messageOf, PipelineError } from '../core/errors.js';
import type { Answer, InvocationOutcome } from './types.js';

/**
 * Why an ensemble produced no answer:
 * - `'no-models'`: the registry has no enabled model;
 * - `'all-failed'`: no model gave a usable answer;
 * - `'min-successes'`: fewer usable answers than the strategy's `minSuccesses`;
 * - `'no-quorum'`: no answer reached the quorum.
 *
 * @example
 * ```ts
 * import type { EnsembleFailureReason } from '@hartonomous/pipelines/inference';
 * const retryable = (r: EnsembleFailureReason) => r !== 'no-models';
 * ```
 */
export type EnsembleFailureReason = 'no-models' | 'all-failed' | 'min-successes' | 'no-quorum';

/**
 * One model's failure, as carried by {@link EnsembleFailedError}.
 *
 * @example
 * ```ts
 * import type { ModelFailure } from '@hartonomous/pipelines/inference';
 * const line = (f: ModelFailure) => `${f.model}: ${f.outcome} ${String(f.error)}`;
 * ```
 */
export interface ModelFailure {
  /** The model's name. */
  readonly model: string;
  /** How its invocation ended. */
  readonly outcome: InvocationOutcome;
  /** Its error (for `'ok'` outcomes that did not count, why). */
  readonly error: unknown;
  /** HTTP attempts made (0 when its breaker rejected it or it was never started). */
  readonly attempts?: number;
}

/**
 * The ensemble could not answer (see {@link EnsembleFailureReason}). `errors` has every model
 * that did not contribute, with its outcome and error; `successes` is how many usable answers
 * there were and `required` how many the strategy needed.
 *
 * @example
 * ```ts
 * import { isEnsembleFailedError } from '@hartonomous/pipelines/inference';
 *
 * try {
 *   await sentiment.run({ input: 'great product' });
 * } catch (e) {
 *   const cause = (e as { cause?: unknown }).cause ?? e;
 *   if (isEnsembleFailedError(cause)) for (const f of cause.errors) console.warn(f.model, f.outcome);
 * }
 * ```
 */
export class EnsembleFailedError extends PipelineError {
  readonly code = 'ENSEMBLE_FAILED' as const;
  /**
   * @param reason - why no answer was produced
   * @param requestId - the request
   * @param successes - usable answers received
   * @param required - usable answers needed
   * @param errors - each model that did not contribute
   */
  constructor(
    readonly reason: EnsembleFailureReason,
    readonly requestId: string,
    readonly successes: number,
    readonly required: number,
    readonly errors: readonly ModelFailure[],
  ) {
    super(
      `ensemble failed for request ${requestId} (${reason}): ${successes} usable answer(s), ${required} needed` +
        (errors.length > 0
          ? `; ${errors.map((f) => `${f.model}: ${f.outcome} (${messageOf(f.error)})`).join('; ')}`
          : ''),
    );
  }
}

/**
 * Guard for {@link EnsembleFailedError}.
 * @param e - any caught value
 * @returns whether `e` is an {@link EnsembleFailedError}
 * @example
 * ```ts
 * import { EnsembleFailedError, isEnsembleFailedError } from '@hartonomous/pipelines/inference';
 * isEnsembleFailedError(new EnsembleFailedError('all-failed', 'r1', 0, 1, [])); // true
 * ```
 */
export const isEnsembleFailedError: (e: unknown) => e is EnsembleFailedError =
  errorGuard<EnsembleFailedError>('ENSEMBLE_FAILED');

/**
 * A vote ended in a tie and the strategy was told to fail on ties (`tie: 'error'`).
 * `candidates` are the tied answers (in the order the tie-break would have ranked them).
 *
 * @example
 * ```ts
 * import { isTieError } from '@hartonomous/pipelines/inference';
 * if (isTieError(e)) console.warn('tied between', e.candidates);
 * ```
 */
export class TieError extends PipelineError {
  readonly code = 'TIE' as const;
  /**
   * @param strategy - the strategy's name
   * @param requestId - the request
   * @param candidates - the tied answers
   */
  constructor(
    readonly strategy: string,
    readonly requestId: string,
    readonly candidates: readonly Answer[],
  ) {
    super(
      `${strategy}: tie between ${candidates.map((c) => JSON.stringify(c)).join(', ')} for request ${requestId}`,
    );
  }
}

/**
 * Guard for {@link TieError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link TieError}
 * @example
 * ```ts
 * import { isTieError, TieError } from '@hartonomous/pipelines/inference';
 * isTieError(new TieError('majority-vote', 'r1', ['a', 'b'])); // true
 * ```
 */
export const isTieError: (e: unknown) => e is TieError = errorGuard<TieError>('TIE');

/**
 * A model endpoint answered with an HTTP error status, or could not be reached
 * (`status` 0). `retryable` is true for network errors and 408/425/429/5xx; other statuses are
 * wrapped in a `PermanentError` by the client so `retry` gives up at once.
 *
 * @example
 * ```ts
 * import { isModelHttpError } from '@hartonomous/pipelines/inference';
 * if (isModelHttpError(e) && e.status === 429) console.warn(`${e.model} throttled`, e.retryAfterMs);
 * ```
 */
export class ModelHttpError extends PipelineError {
  readonly code = 'MODEL_HTTP' as const;
  /** Whether a retry may succeed. */
  readonly retryable: boolean;
  /**
   * @param model - the model's name
   * @param status - HTTP status, 0 when no response arrived
   * @param url - the endpoint
   * @param detail - an excerpt of the response body, or the network error
   * @param retryAfterMs - the server's Retry-After, in ms
   * @param options - `cause`
   */
  constructor(
    readonly model: string,
    readonly status: number,
    readonly url: string,
    detail: string,
    readonly retryAfterMs?: number,
    options?: ErrorOptions,
  ) {
    super(
      `model '${model}' ${status === 0 ? 'unreachable' : `answered ${status}`} at ${url}: ${detail}`,
      options,
    );
    this.retryable =
      status === 0 || status === 408 || status === 425 || status === 429 || status >= 500;
  }
}

/**
 * Guard for {@link ModelHttpError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link ModelHttpError}
 * @example
 * ```ts
 * import { isModelHttpError, ModelHttpError } from '@hartonomous/pipelines/inference';
 * isModelHttpError(new ModelHttpError('m', 503, 'http://127.0.0.1:1/', 'busy')); // true
 * ```
 */
export const isModelHttpError: (e: unknown) => e is ModelHttpError =
  errorGuard<ModelHttpError>('MODEL_HTTP');

/**
 * A model answered 2xx with a body that is not a valid answer (not JSON, no `answer`, wrong
 * type), or with an answer the aggregation strategy cannot use (e.g. a label for `mean`).
 *
 * @example
 * ```ts
 * import { isInvalidAnswerError } from '@hartonomous/pipelines/inference';
 * if (isInvalidAnswerError(e)) console.warn(`${e.model}: ${e.message}`);
 * ```
 */
export class InvalidAnswerError extends PipelineError {
  readonly code = 'INVALID_ANSWER' as const;
  /**
   * @param model - the model's name
   * @param detail - what is wrong
   */
  constructor(
    readonly model: string,
    detail: string,
  ) {
    super(`model '${model}' gave an invalid answer: ${detail}`);
  }
}

/**
 * Guard for {@link InvalidAnswerError}.
 * @param e - any caught value
 * @returns whether `e` is an {@link InvalidAnswerError}
 * @example
 * ```ts
 * import { InvalidAnswerError, isInvalidAnswerError } from '@hartonomous/pipelines/inference';
 * isInvalidAnswerError(new InvalidAnswerError('m', 'no answer field')); // true
 * ```
 */
export const isInvalidAnswerError: (e: unknown) => e is InvalidAnswerError =
  errorGuard<InvalidAnswerError>('INVALID_ANSWER');
