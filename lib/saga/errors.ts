/**
 * The named errors of the saga operator.
 *
 * @module
 */

import { errorGuard, messageOf, PipelineError } from '../core/errors.js';

/**
 * A saga failed and every completed step was undone: the failing step's error is `cause`,
 * `failedStep` names the step whose action failed (`undefined` when the saga failed between
 * steps, e.g. while recording its completion), and `compensated` lists the steps whose
 * compensations ran, in the order they ran (the reverse of the order they completed).
 *
 * A cancelled saga (its AbortSignal fired) ends with the signal's reason instead, after the
 * same compensation; only a saga whose compensation failed ends with
 * {@link CompensationFailedError}.
 *
 * @example
 * ```ts
 * import { isSagaFailedError } from '@hartonomous/pipelines';
 *
 * try {
 *   await orderSaga.run(order);
 * } catch (e) {
 *   if (isSagaFailedError(e)) console.warn(`${e.failedStep} failed, undid ${e.compensated.join(', ')}`);
 * }
 * ```
 */
export class SagaFailedError extends PipelineError {
  readonly code = 'SAGA_FAILED' as const;
  /**
   * @param saga - the saga's name
   * @param sagaId - the id of this execution
   * @param failedStep - the step whose action failed, if a step failed
   * @param compensated - steps whose compensations ran, in the order they ran
   * @param cause - the original error
   */
  constructor(
    readonly saga: string,
    readonly sagaId: string,
    readonly failedStep: string | undefined,
    readonly compensated: readonly string[],
    cause: unknown,
  ) {
    super(
      `saga '${saga}' failed${failedStep === undefined ? '' : ` at step '${failedStep}'`}: ${messageOf(cause)}` +
        (compensated.length > 0 ? ` (compensated: ${compensated.join(', ')})` : ''),
      { cause },
    );
  }
}

/**
 * Guard for {@link SagaFailedError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link SagaFailedError}
 * @example
 * ```ts
 * import { isSagaFailedError, SagaFailedError } from '@hartonomous/pipelines';
 * isSagaFailedError(new SagaFailedError('order', 'id-1', 'charge', [], new Error('declined'))); // true
 * ```
 */
export const isSagaFailedError: (e: unknown) => e is SagaFailedError =
  errorGuard<SagaFailedError>('SAGA_FAILED');

/**
 * One compensation that failed (after its retry policy gave up, or timed out).
 *
 * @example
 * ```ts
 * import type { FailedCompensation } from '@hartonomous/pipelines';
 * const line = (f: FailedCompensation) => `${f.step}: ${String(f.error)}`;
 * ```
 */
export interface FailedCompensation {
  /** The step whose compensation failed. */
  readonly step: string;
  /** What the compensation failed with. */
  readonly error: unknown;
}

/**
 * A saga failed (or was cancelled) and at least one compensation failed too, so the saga is
 * NOT fully undone: the system may be inconsistent and needs attention. Never swallowed: it
 * is the saga's final error whenever a compensation failed.
 *
 * - `compensated`: steps undone, in the order their compensations ran;
 * - `notCompensated`: completed steps left in place, latest first: those whose compensation
 *   failed (`failures` has their errors) and, with `onCompensationFailure: 'halt'`, those not
 *   attempted after the first failure;
 * - `cause`: the original error (the failed action's error, or the abort reason).
 *
 * @example
 * ```ts
 * import { isCompensationFailedError } from '@hartonomous/pipelines';
 *
 * try {
 *   await orderSaga.run(order);
 * } catch (e) {
 *   if (isCompensationFailedError(e)) {
 *     alertOps(`saga ${e.sagaId}: not undone: ${e.notCompensated.join(', ')}`, e.failures);
 *   }
 * }
 * ```
 */
export class CompensationFailedError extends PipelineError {
  readonly code = 'COMPENSATION_FAILED' as const;
  /**
   * @param saga - the saga's name
   * @param sagaId - the id of this execution
   * @param failedStep - the step whose action failed, if a step failed (not for a cancellation)
   * @param compensated - steps undone, in the order their compensations ran
   * @param notCompensated - completed steps left in place, latest first
   * @param failures - the compensations that failed, with their errors
   * @param cause - the original error
   */
  constructor(
    readonly saga: string,
    readonly sagaId: string,
    readonly failedStep: string | undefined,
    readonly compensated: readonly string[],
    readonly notCompensated: readonly string[],
    readonly failures: readonly FailedCompensation[],
    cause: unknown,
  ) {
    super(
      `saga '${saga}' could not be fully compensated: ${failures
        .map((f) => `'${f.step}' (${messageOf(f.error)})`)
        .join(', ')} failed` +
        `; not undone: ${notCompensated.join(', ') || 'none'}` +
        `; undone: ${compensated.join(', ') || 'none'}; original error: ${messageOf(cause)}`,
      { cause },
    );
  }
}

/**
 * Guard for {@link CompensationFailedError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link CompensationFailedError}
 * @example
 * ```ts
 * import { CompensationFailedError, isCompensationFailedError } from '@hartonomous/pipelines';
 * const e = new CompensationFailedError('order', 'id-1', 'ship', [], ['charge'], [], new Error('x'));
 * isCompensationFailedError(e); // true
 * ```
 */
export const isCompensationFailedError: (e: unknown) => e is CompensationFailedError =
  errorGuard<CompensationFailedError>('COMPENSATION_FAILED');

/**
 * A saga log refused a write because the saga's record changed since this process last wrote
 * it (its `version` moved on): another process, typically `resumeSagas` after deciding the
 * saga was stale, took it over.
 *
 * @example
 * ```ts
 * import { isSagaConflictError } from '@hartonomous/pipelines';
 * saga.events(input).subscribe({ error: (e) => isSagaConflictError(e.cause) && console.warn('taken over') });
 * ```
 */
export class SagaConflictError extends PipelineError {
  readonly code = 'SAGA_CONFLICT' as const;
  /**
   * @param sagaId - the saga's id
   * @param expectedVersion - the version this process expected to replace
   * @param cause - the store's own error, if any
   */
  constructor(
    readonly sagaId: string,
    readonly expectedVersion: number,
    cause?: unknown,
  ) {
    super(
      `saga ${sagaId} was changed by someone else (expected version ${expectedVersion})`,
      cause === undefined ? undefined : { cause },
    );
  }
}

/**
 * Guard for {@link SagaConflictError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link SagaConflictError}
 * @example
 * ```ts
 * import { isSagaConflictError, SagaConflictError } from '@hartonomous/pipelines';
 * isSagaConflictError(new SagaConflictError('id-1', 3)); // true
 * ```
 */
export const isSagaConflictError: (e: unknown) => e is SagaConflictError =
  errorGuard<SagaConflictError>('SAGA_CONFLICT');

/**
 * The cause recorded for a saga that `resumeSaga` found still running: the process running
 * it stopped (crashed, was killed) before it finished, so its completed steps are compensated.
 *
 * @example
 * ```ts
 * import { isSagaInterruptedError } from '@hartonomous/pipelines';
 * const outcome = (cause: unknown) => (isSagaInterruptedError(cause) ? 'crashed' : 'failed');
 * ```
 */
export class SagaInterruptedError extends PipelineError {
  readonly code = 'SAGA_INTERRUPTED' as const;
  /**
   * @param saga - the saga's name
   * @param sagaId - the saga's id
   * @param step - the step that was running, if one was
   */
  constructor(
    readonly saga: string,
    readonly sagaId: string,
    readonly step: string | undefined,
  ) {
    super(
      `saga '${saga}' (${sagaId}) was interrupted${step === undefined ? '' : ` during step '${step}'`} before it finished`,
    );
  }
}

/**
 * Guard for {@link SagaInterruptedError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link SagaInterruptedError}
 * @example
 * ```ts
 * import { isSagaInterruptedError, SagaInterruptedError } from '@hartonomous/pipelines';
 * isSagaInterruptedError(new SagaInterruptedError('order', 'id-1', 'charge')); // true
 * ```
 */
export const isSagaInterruptedError: (e: unknown) => e is SagaInterruptedError =
  errorGuard<SagaInterruptedError>('SAGA_INTERRUPTED');
