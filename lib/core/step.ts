import type { MonoTypeOperatorFunction, Observable } from 'rxjs';
import type { BatchContext, StepContext } from './context.js';

/**
 * The function of a step: one input and its context in, one output out (sync, a promise, or an
 * Observable whose last value is the output).
 *
 * @typeParam I - input type
 * @typeParam O - output type
 */
export type StepFn<I, O> = (input: I, ctx: StepContext) => O | PromiseLike<O> | Observable<O>;

/**
 * The function of a batch step: the inputs of a batch in, one result per input out, aligned by
 * position. A result may be {@link itemFailure} to fail that one item and keep the others.
 *
 * @typeParam I - input type
 * @typeParam O - output type
 */
export type BatchFn<I, O> = (
  inputs: I[],
  ctx: BatchContext,
) => PromiseLike<ReadonlyArray<O | ItemFailure>> | ReadonlyArray<O | ItemFailure>;

/**
 * Options shared by every kind of step.
 *
 * @typeParam O - the step's output type (policies are operators on it)
 */
export interface StepOptions<O> {
  /**
   * Most calls of this step running at once in `stream` mode. Overrides the stream's
   * `concurrency` for this step.
   * @default the stream's `concurrency`
   */
  concurrency?: number;
  /**
   * Resilience policy: operators applied, in order, to each call's work Observable
   * (a fresh AbortSignal per subscription, so `retry` re-runs the work and `timeout` cancels it).
   * Innermost first, e.g. `[timeout(1_000), retry(3), circuitBreaker(breaker)]`.
   * @default no policy
   */
  policy?: ReadonlyArray<MonoTypeOperatorFunction<O>>;
}

/**
 * Options of a batch step.
 *
 * @typeParam I - input type
 * @typeParam O - output type
 */
export interface BatchStepOptions<I, O> extends StepOptions<ReadonlyArray<O | ItemFailure>> {
  /** Most items per batch. @default 64 */
  size?: number;
  /**
   * Longest time a batch waits for more items after its first item arrived (`stream` mode).
   * @default 50
   */
  timeMs?: number;
  /** Weight of one item (e.g. bytes or tokens), for `maxWeight`. @default every item weighs 1 */
  weight?: (input: I) => number;
  /** Most total weight per batch. @default no limit */
  maxWeight?: number;
}

/** @internal */
export const STEP = Symbol.for('@hartonomous/pipelines.step');

/** @internal the runtime description the pipeline executes */
export type StepDef =
  | {
      readonly kind: 'item';
      readonly fn: StepFn<unknown, unknown>;
      readonly options: StepOptions<unknown>;
    }
  | {
      readonly kind: 'batch';
      readonly fn: BatchFn<unknown, unknown>;
      readonly options: BatchStepOptions<unknown, unknown> & { size: number; timeMs: number };
    }
  | {
      readonly kind: 'pipeline';
      readonly steps: readonly AnyStep[];
      readonly options: StepOptions<unknown>;
    };

/**
 * A named, typed unit of work from `I` to `O`. Build one with {@link step} or
 * {@link batchStep}; a {@link Pipeline} is a step too, so pipelines nest.
 *
 * @typeParam I - input type (contravariant: a step taking `unknown` fits anywhere)
 * @typeParam O - output type
 *
 * @example
 * ```ts
 * import { type Step, step } from '@hartonomous/pipelines';
 *
 * const parse: Step<string, number> = step('parse', (s: string) => Number.parseInt(s, 10));
 * ```
 */
export interface Step<I, O> {
  /** Name, unique within its pipeline; used in spans, logs, metrics and errors. */
  readonly name: string;
  /** @internal */
  readonly [STEP]: StepDef;
  /** @internal phantom carrier of the step's types; never set */
  readonly __io?: (input: I) => O;
}

/**
 * A step of any types, for collections of steps.
 */
// biome-ignore lint/suspicious/noExplicitAny: a heterogeneous list of steps needs an escape hatch
export type AnyStep = Step<any, any>;

/** Input type of a step. */
export type StepInput<S> = S extends Step<infer I, unknown> ? I : never;
/** Output type of a step. */
export type StepOutput<S> = S extends Step<never, infer O> ? O : never;

/**
 * Creates a step from a function of (input, context).
 *
 * @param name - step name (non-empty)
 * @param fn - the work; may return a value, a promise or an Observable (its last value is used)
 * @param options - concurrency and resilience policy
 * @returns a typed step
 *
 * @example
 * ```ts
 * import { pipeline, retry, step, timeout } from '@hartonomous/pipelines';
 *
 * const download = step(
 *   'download',
 *   async (url: string, { signal }) => (await fetch(url, { signal })).text(),
 *   { concurrency: 4, policy: [timeout(5_000), retry(3)] },
 * );
 * const size = step('size', (body: string) => body.length);
 * const p = pipeline('sizes', download, size); // Pipeline<string, number>
 * ```
 */
export function step<I, O>(
  name: string,
  fn: StepFn<I, O>,
  options: StepOptions<O> = {},
): Step<I, O> {
  checkName('step', name);
  if (typeof fn !== 'function') throw new TypeError(`step('${name}'): fn must be a function`);
  checkOptions(name, options);
  return Object.freeze({
    name,
    [STEP]: Object.freeze({
      kind: 'item' as const,
      fn: fn as StepFn<unknown, unknown>,
      options: options as StepOptions<unknown>,
    }),
  });
}

/**
 * Creates a step that processes items in batches: in `stream` mode items are grouped by size,
 * time since the batch's first item, and optional weight, then `fn` runs once per batch; in
 * `run` mode it runs with a batch of one. Each item still gets its own outcome.
 *
 * @param name - step name (non-empty)
 * @param fn - receives the inputs of a batch and returns one result per input, in order
 * @param options - batching, concurrency (batches at once) and policy
 * @returns a typed step
 *
 * @example
 * ```ts
 * import { batchStep, itemFailure, pipeline } from '@hartonomous/pipelines';
 *
 * const lookup = batchStep('lookup', async (ids: number[]) => {
 *   const rows = new Map(ids.filter((id) => id % 2 === 0).map((id) => [id, `row ${id}`]));
 *   return ids.map((id) => rows.get(id) ?? itemFailure(new Error(`no row ${id}`)));
 * }, { size: 100, timeMs: 20 });
 * const p = pipeline('lookup', lookup); // Pipeline<number, string>
 * ```
 */
export function batchStep<I, O>(
  name: string,
  fn: BatchFn<I, O>,
  options: BatchStepOptions<I, O> = {},
): Step<I, O> {
  checkName('batchStep', name);
  if (typeof fn !== 'function') throw new TypeError(`batchStep('${name}'): fn must be a function`);
  checkOptions(name, options);
  const size = options.size ?? 64;
  const timeMs = options.timeMs ?? 50;
  if (!Number.isInteger(size) || size < 1) {
    throw new TypeError(`batchStep('${name}'): size must be a positive integer, got ${size}`);
  }
  if (!(timeMs >= 0) || !Number.isFinite(timeMs)) {
    throw new TypeError(`batchStep('${name}'): timeMs must be a finite number >= 0, got ${timeMs}`);
  }
  if (options.maxWeight !== undefined && !(options.maxWeight > 0)) {
    throw new TypeError(`batchStep('${name}'): maxWeight must be > 0, got ${options.maxWeight}`);
  }
  return Object.freeze({
    name,
    [STEP]: Object.freeze({
      kind: 'batch' as const,
      fn: fn as BatchFn<unknown, unknown>,
      options: { ...(options as BatchStepOptions<unknown, unknown>), size, timeMs },
    }),
  });
}

const FAILURE = Symbol.for('@hartonomous/pipelines.itemFailure');

/**
 * Marks one item of a batch as failed, without failing the others.
 */
export interface ItemFailure {
  /** @internal */
  readonly [FAILURE]: true;
  /** Why the item failed. */
  readonly error: unknown;
}

/**
 * Fails one item of a batch step; the other items of the batch go on.
 *
 * @param error - the item's error
 * @returns a marker to return in that item's position
 *
 * @example
 * ```ts
 * import { batchStep, itemFailure } from '@hartonomous/pipelines';
 *
 * const parse = batchStep('parse', (lines: string[]) =>
 *   lines.map((l) => {
 *     try { return JSON.parse(l) as unknown; } catch (e) { return itemFailure(e); }
 *   }),
 * );
 * ```
 */
export function itemFailure(error: unknown): ItemFailure {
  return { [FAILURE]: true, error };
}

/**
 * Whether a batch result is an {@link itemFailure} marker.
 * @param value - a batch result
 * @returns true for a failure marker
 *
 * @example
 * ```ts
 * import { isItemFailure, itemFailure } from '@hartonomous/pipelines';
 * isItemFailure(itemFailure(new Error('x'))); // true
 * ```
 */
export function isItemFailure(value: unknown): value is ItemFailure {
  return typeof value === 'object' && value !== null && (value as ItemFailure)[FAILURE] === true;
}

/** @internal */
export function checkName(what: string, name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.trim().length === 0) {
    throw new TypeError(`${what}(name, ...): name must be a non-empty string`);
  }
}

function checkOptions(name: string, options: { concurrency?: number; policy?: unknown }): void {
  const c = options.concurrency;
  if (c !== undefined && (!Number.isInteger(c) || c < 1)) {
    throw new TypeError(`step('${name}'): concurrency must be a positive integer, got ${c}`);
  }
  if (options.policy !== undefined && !Array.isArray(options.policy)) {
    throw new TypeError(`step('${name}'): policy must be an array of operators`);
  }
}
