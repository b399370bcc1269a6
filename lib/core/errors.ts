/**
 * The error classes of the core and the one base they share.
 *
 * Every error the library throws on purpose is a {@link PipelineError} with a stable `code`,
 * structured fields, and an `isXError(e: unknown)` guard that works across duplicated copies
 * of the package (it checks a registered symbol and the code, not `instanceof`).
 *
 * @module
 */

const BRAND = Symbol.for('@hartonomous/pipelines.error');

/**
 * Base class of every error the library raises on purpose.
 *
 * @example
 * ```ts
 * import { isPipelineError } from '@hartonomous/pipelines';
 *
 * try {
 *   await somePipeline.run(input);
 * } catch (e) {
 *   if (isPipelineError(e)) console.error(e.code, e.message);
 * }
 * ```
 */
export abstract class PipelineError extends Error {
  /** A stable machine-readable code, e.g. `'STEP_FAILED'`. */
  abstract readonly code: string;

  /** @internal */
  readonly [BRAND] = true;

  /**
   * @param message - human-readable text
   * @param options - standard `ErrorOptions`; `cause` is kept
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }

  /**
   * A plain object for logs and JSON: name, code, message and the subclass's own fields.
   * @returns a JSON-safe description of the error
   */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = {
      name: this.name,
      code: this.code,
      message: this.message,
    };
    for (const [k, v] of Object.entries(this)) {
      if (k === 'cause') continue;
      out[k] = v;
    }
    if (this.cause !== undefined) out.cause = describeError(this.cause);
    return out;
  }
}

/**
 * True when `e` is any error raised by this library.
 * @param e - any caught value
 * @returns whether `e` is a {@link PipelineError}
 *
 * @example
 * ```ts
 * import { isPipelineError } from '@hartonomous/pipelines';
 * const known = isPipelineError(new Error('x')); // false
 * ```
 */
export function isPipelineError(e: unknown): e is PipelineError {
  return typeof e === 'object' && e !== null && (e as { [BRAND]?: unknown })[BRAND] === true;
}

/**
 * Builds an `isXError` guard for a {@link PipelineError} subclass from its code.
 * @internal
 */
export function errorGuard<E extends PipelineError>(code: E['code']): (e: unknown) => e is E {
  return (e: unknown): e is E => isPipelineError(e) && e.code === code;
}

/**
 * A step threw or rejected. Wraps the original error as `cause` and names the step.
 *
 * @example
 * ```ts
 * import { isStepError } from '@hartonomous/pipelines';
 *
 * for await (const outcome of results) {
 *   if (!outcome.ok && isStepError(outcome.error)) console.log(outcome.error.step);
 * }
 * ```
 */
export class StepError extends PipelineError {
  readonly code = 'STEP_FAILED' as const;
  /**
   * @param pipeline - name of the pipeline the step ran in
   * @param step - name of the step that failed
   * @param correlationId - correlation id of the item
   * @param cause - what the step threw
   */
  constructor(
    readonly pipeline: string,
    readonly step: string,
    readonly correlationId: string,
    cause: unknown,
  ) {
    super(`step '${step}' of pipeline '${pipeline}' failed: ${messageOf(cause)}`, { cause });
  }
}

/**
 * Guard for {@link StepError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link StepError}
 * @example
 * ```ts
 * import { isStepError } from '@hartonomous/pipelines';
 * isStepError(new Error('no')); // false
 * ```
 */
export const isStepError: (e: unknown) => e is StepError = errorGuard<StepError>('STEP_FAILED');

/**
 * Work was cancelled: its AbortSignal fired or its subscriber unsubscribed.
 * Used as the abort `reason` when the library itself cancels work.
 *
 * @example
 * ```ts
 * import { isCancelledError } from '@hartonomous/pipelines';
 * const ac = new AbortController();
 * ac.abort();
 * isCancelledError(ac.signal.reason); // false: a plain abort() gives a DOMException
 * ```
 */
export class CancelledError extends PipelineError {
  readonly code = 'CANCELLED' as const;
  /** @param what - what was cancelled, e.g. `"step 'embed'"` */
  constructor(readonly what: string = 'work') {
    super(`${what} was cancelled`);
  }
}

/**
 * Guard for {@link CancelledError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link CancelledError}
 * @example
 * ```ts
 * import { CancelledError, isCancelledError } from '@hartonomous/pipelines';
 * isCancelledError(new CancelledError()); // true
 * ```
 */
export const isCancelledError: (e: unknown) => e is CancelledError =
  errorGuard<CancelledError>('CANCELLED');

/**
 * A bounded buffer was full and its policy is `'error'`.
 *
 * @example
 * ```ts
 * import { isBufferOverflowError } from '@hartonomous/pipelines';
 * pipeline$.subscribe({ error: (e) => isBufferOverflowError(e) && console.error(e.capacity) });
 * ```
 */
export class BufferOverflowError extends PipelineError {
  readonly code = 'BUFFER_OVERFLOW' as const;
  /**
   * @param capacity - the buffer's capacity
   * @param where - which buffer overflowed
   */
  constructor(
    readonly capacity: number,
    readonly where: string = 'buffer',
  ) {
    super(`${where} overflowed its capacity of ${capacity}`);
  }
}

/**
 * Guard for {@link BufferOverflowError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link BufferOverflowError}
 * @example
 * ```ts
 * import { BufferOverflowError, isBufferOverflowError } from '@hartonomous/pipelines';
 * isBufferOverflowError(new BufferOverflowError(8)); // true
 * ```
 */
export const isBufferOverflowError: (e: unknown) => e is BufferOverflowError =
  errorGuard<BufferOverflowError>('BUFFER_OVERFLOW');

/**
 * The message of any caught value, for logs and wrapped errors.
 * @internal
 */
export function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'string') return e;
  try {
    return JSON.stringify(e) ?? String(e);
  } catch {
    return String(e);
  }
}

/**
 * A JSON-safe description of any caught value (for logs, outcomes and dead letters).
 * @internal
 */
export function describeError(e: unknown): Record<string, unknown> {
  if (isPipelineError(e)) return e.toJSON();
  if (e instanceof Error) {
    const out: Record<string, unknown> = { name: e.name, message: e.message };
    if (e.cause !== undefined) out.cause = describeError(e.cause);
    return out;
  }
  return { name: 'NonError', message: messageOf(e) };
}
