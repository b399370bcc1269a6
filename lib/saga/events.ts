/**
 * The events a saga reports, as a discriminated union on `type`.
 *
 * @module
 */

/** Fields every saga event has. */
interface SagaEventBase {
  /** The saga's name. */
  readonly saga: string;
  /** The id of this execution. */
  readonly sagaId: string;
}

/**
 * A step's action completed.
 * @example
 * ```ts
 * import type { SagaStepCompletedEvent } from '@hartonomous/pipelines';
 * const log = (e: SagaStepCompletedEvent) => console.log(`${e.step} done`, e.result);
 * ```
 */
export interface SagaStepCompletedEvent extends SagaEventBase {
  /** Discriminant. */
  readonly type: 'step-completed';
  /** The step. */
  readonly step: string;
  /** Its position, from 0. */
  readonly index: number;
  /** The action's result. */
  readonly result: unknown;
}

/**
 * A step's compensation is starting.
 * @example
 * ```ts
 * import type { SagaCompensatingEvent } from '@hartonomous/pipelines';
 * const log = (e: SagaCompensatingEvent) => console.warn(`undoing ${e.step}`);
 * ```
 */
export interface SagaCompensatingEvent extends SagaEventBase {
  /** Discriminant. */
  readonly type: 'compensating';
  /** The step being undone. */
  readonly step: string;
  /** Its position, from 0. */
  readonly index: number;
  /** Why the saga compensates. */
  readonly cause: unknown;
  /** Whether the step's own action failed (a `compensateFailed` step). */
  readonly actionFailed: boolean;
}

/**
 * A step's compensation succeeded.
 * @example
 * ```ts
 * import type { SagaCompensatedEvent } from '@hartonomous/pipelines';
 * const log = (e: SagaCompensatedEvent) => console.info(`undid ${e.step}`);
 * ```
 */
export interface SagaCompensatedEvent extends SagaEventBase {
  /** Discriminant. */
  readonly type: 'compensated';
  /** The step undone. */
  readonly step: string;
  /** Its position, from 0. */
  readonly index: number;
}

/**
 * A step's compensation failed (after its policy gave up).
 * @example
 * ```ts
 * import type { SagaCompensationFailedEvent } from '@hartonomous/pipelines';
 * const log = (e: SagaCompensationFailedEvent) => console.error(`could not undo ${e.step}`, e.error);
 * ```
 */
export interface SagaCompensationFailedEvent extends SagaEventBase {
  /** Discriminant. */
  readonly type: 'compensation-failed';
  /** The step not undone. */
  readonly step: string;
  /** Its position, from 0. */
  readonly index: number;
  /** What the compensation failed with. */
  readonly error: unknown;
}

/**
 * Every step completed; the last event of a successful saga, before `complete`.
 * @typeParam O - the saga's output type
 * @example
 * ```ts
 * import type { SagaCompletedEvent } from '@hartonomous/pipelines';
 * const log = (e: SagaCompletedEvent<string>) => console.log('result', e.result);
 * ```
 */
export interface SagaCompletedEvent<O> extends SagaEventBase {
  /** Discriminant. */
  readonly type: 'saga-completed';
  /** The last step's output. */
  readonly result: O;
}

/**
 * The saga failed; the last event before the Observable errors with `error`.
 * @example
 * ```ts
 * import type { SagaFailedEvent } from '@hartonomous/pipelines';
 * const log = (e: SagaFailedEvent) => console.warn(`failed at ${e.failedStep}`, e.compensated, e.notCompensated);
 * ```
 */
export interface SagaFailedEvent extends SagaEventBase {
  /** Discriminant. */
  readonly type: 'saga-failed';
  /**
   * The error the Observable errors with next: a `SagaFailedError`, a
   * `CompensationFailedError` (a compensation failed), or the abort reason (cancelled and
   * fully compensated).
   */
  readonly error: unknown;
  /** The original error: the failed action's error, or the abort reason. */
  readonly cause: unknown;
  /** The step whose action failed or was running when cancelled, if any. */
  readonly failedStep: string | undefined;
  /** Whether the saga was cancelled. */
  readonly cancelled: boolean;
  /** Steps undone, in the order their compensations ran. */
  readonly compensated: readonly string[];
  /** Completed steps left in place (their compensation failed or was not attempted), latest first. */
  readonly notCompensated: readonly string[];
}

/**
 * Everything a saga reports, in order, as a discriminated union on `type`:
 * `'step-completed'`* then `'saga-completed'`; or, on failure, `'step-completed'`*, then per
 * step undone (latest first) `'compensating'` and `'compensated'` or `'compensation-failed'`,
 * then `'saga-failed'`.
 *
 * @typeParam O - the saga's output type
 *
 * @example
 * ```ts
 * import type { SagaEvent } from '@hartonomous/pipelines';
 *
 * function show(e: SagaEvent<string>): string {
 *   switch (e.type) {
 *     case 'step-completed': return `done ${e.step}`;
 *     case 'compensating': return `undoing ${e.step}`;
 *     case 'compensated': return `undid ${e.step}`;
 *     case 'compensation-failed': return `could not undo ${e.step}`;
 *     case 'saga-completed': return `result ${e.result}`;
 *     case 'saga-failed': return `failed at ${e.failedStep}`;
 *   }
 * }
 * ```
 */
export type SagaEvent<O = unknown> =
  | SagaStepCompletedEvent
  | SagaCompensatingEvent
  | SagaCompensatedEvent
  | SagaCompensationFailedEvent
  | SagaCompletedEvent<O>
  | SagaFailedEvent;
