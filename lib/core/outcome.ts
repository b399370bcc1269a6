/**
 * The result of one item of a stream that finished: `ok: true` with its value, or `ok: false`
 * with its error and the step that failed. A failed item never ends the stream.
 *
 * @typeParam I - input type
 * @typeParam O - output type
 *
 * @example
 * ```ts
 * import { pipeline, step } from '@hartonomous/pipelines';
 *
 * const p = pipeline('half', step('half', (n: number) => {
 *   if (n % 2) throw new Error('odd');
 *   return n / 2;
 * }));
 * p.stream([1, 2, 3, 4]).subscribe((o) => console.log(o.ok ? o.value : o.failedStep));
 * ```
 */
export type Outcome<I, O> = Success<I, O> | Failure<I>;

/** Fields every outcome has. */
interface OutcomeBase<I> {
  /** The item's input as read from the source. */
  readonly input: I;
  /** The item's position in the source (after any dropped items). */
  readonly index: number;
  /** The item's correlation id. */
  readonly correlationId: string;
  /** Milliseconds from admission to finish. */
  readonly durationMs: number;
}

/**
 * An item that went through every step.
 * @typeParam I - input type
 * @typeParam O - output type
 */
export interface Success<I, O> extends OutcomeBase<I> {
  /** Discriminant. */
  readonly ok: true;
  /** The pipeline's output for the item. */
  readonly value: O;
}

/**
 * An item that failed at one step.
 * @typeParam I - input type
 */
export interface Failure<I> extends OutcomeBase<I> {
  /** Discriminant. */
  readonly ok: false;
  /** The error: a `StepError` naming the step and wrapping the cause, or the abort reason. */
  readonly error: unknown;
  /** Name of the step that failed. */
  readonly failedStep: string;
}
