import type { Observable, OperatorFunction } from 'rxjs';
import { runPlan, streamPlan } from './engine.js';
import type { PipelineOptions, RunOptions, StreamOptions } from './options.js';
import type { Outcome } from './outcome.js';
import { compile } from './plan.js';
import type { Source } from './source.js';
import { type AnyStep, checkName, STEP, type Step, type StepDef } from './step.js';

/**
 * A typed chain of steps from `I` to `O`. Run one input, stream many with per-item outcomes, or
 * drop it into any RxJS `pipe`. A pipeline is itself a {@link Step}, so pipelines nest.
 *
 * @typeParam I - input type
 * @typeParam O - output type
 *
 * @example
 * ```ts
 * import { pipeline, step } from '@hartonomous/pipelines';
 *
 * const p = pipeline('len', step('trim', (s: string) => s.trim()), step('len', (s: string) => s.length));
 * await p.run('  four '); // 4
 * ```
 */
export interface Pipeline<I, O> extends Step<I, O> {
  /** The steps, in order. */
  readonly steps: readonly AnyStep[];
  /**
   * Runs one input through every step.
   * @param input - the input
   * @param options - signal, correlation id, parent context, logger, bag
   * @returns the output; rejects with a `StepError` naming the failed step, or with the
   * signal's reason when cancelled
   */
  run(input: I, options?: RunOptions): Promise<O>;
  /**
   * Streams a source through the pipeline with bounded concurrency and real backpressure.
   * Emits one {@link Outcome} per item; a failed item never ends the stream. Unsubscribing
   * aborts every in-flight item's signal.
   * @param source - an Observable, Iterable or AsyncIterable of inputs
   * @param options - concurrency, ordering, buffering, cancellation
   * @returns an Observable of outcomes
   */
  stream(source: Source<I>, options?: StreamOptions<I>): Observable<Outcome<I, O>>;
  /**
   * The pipeline as an RxJS operator: `source$.pipe(p.operator())`.
   * @param options - as for `stream`
   * @returns an operator from inputs to outcomes
   */
  operator(options?: StreamOptions<I>): OperatorFunction<I, Outcome<I, O>>;
  /**
   * A new pipeline with one more step at the end.
   * @param next - a step taking this pipeline's output
   * @returns `Pipeline<I, R>`
   */
  append<R>(next: Step<O, R>): Pipeline<I, R>;
}

/* biome-ignore-start lint/suspicious/noExplicitAny: overload implementation */
/**
 * Composes steps into a typed pipeline. Each step's input type must accept the previous
 * step's output type, or the call does not compile.
 *
 * @param nameOrOptions - the pipeline's name, or its options
 * @param s1 - the first step; up to eight steps follow, each taking the previous output
 * @returns a `Pipeline` from the first step's input to the last step's output
 *
 * @example
 * ```ts
 * import { pipeline, step } from '@hartonomous/pipelines';
 *
 * const parse = step('parse', (s: string) => Number(s));
 * const square = step('square', (n: number) => n * n);
 * const p = pipeline('squares', parse, square); // Pipeline<string, number>
 * // pipeline('bad', square, parse); // does not compile: number is not string
 * ```
 */
export function pipeline<A, B>(
  nameOrOptions: string | PipelineOptions,
  s1: Step<A, B>,
): Pipeline<A, B>;
export function pipeline<A, B, C>(
  nameOrOptions: string | PipelineOptions,
  s1: Step<A, B>,
  s2: Step<B, C>,
): Pipeline<A, C>;
export function pipeline<A, B, C, D>(
  nameOrOptions: string | PipelineOptions,
  s1: Step<A, B>,
  s2: Step<B, C>,
  s3: Step<C, D>,
): Pipeline<A, D>;
export function pipeline<A, B, C, D, E>(
  nameOrOptions: string | PipelineOptions,
  s1: Step<A, B>,
  s2: Step<B, C>,
  s3: Step<C, D>,
  s4: Step<D, E>,
): Pipeline<A, E>;
export function pipeline<A, B, C, D, E, F>(
  nameOrOptions: string | PipelineOptions,
  s1: Step<A, B>,
  s2: Step<B, C>,
  s3: Step<C, D>,
  s4: Step<D, E>,
  s5: Step<E, F>,
): Pipeline<A, F>;
export function pipeline<A, B, C, D, E, F, G>(
  nameOrOptions: string | PipelineOptions,
  s1: Step<A, B>,
  s2: Step<B, C>,
  s3: Step<C, D>,
  s4: Step<D, E>,
  s5: Step<E, F>,
  s6: Step<F, G>,
): Pipeline<A, G>;
export function pipeline<A, B, C, D, E, F, G, H>(
  nameOrOptions: string | PipelineOptions,
  s1: Step<A, B>,
  s2: Step<B, C>,
  s3: Step<C, D>,
  s4: Step<D, E>,
  s5: Step<E, F>,
  s6: Step<F, G>,
  s7: Step<G, H>,
): Pipeline<A, H>;
export function pipeline<A, B, C, D, E, F, G, H, J>(
  nameOrOptions: string | PipelineOptions,
  s1: Step<A, B>,
  s2: Step<B, C>,
  s3: Step<C, D>,
  s4: Step<D, E>,
  s5: Step<E, F>,
  s6: Step<F, G>,
  s7: Step<G, H>,
  s8: Step<H, J>,
): Pipeline<A, J>;
export function pipeline(
  nameOrOptions: string | PipelineOptions,
  ...steps: AnyStep[]
): Pipeline<any, any> {
  const options: PipelineOptions =
    typeof nameOrOptions === 'string' ? { name: nameOrOptions } : { ...nameOrOptions };
  checkName('pipeline', options.name);
  return build(options, steps);
}
/* biome-ignore-end lint/suspicious/noExplicitAny: overload implementation */

function build<I, O>(options: PipelineOptions, steps: AnyStep[]): Pipeline<I, O> {
  if (steps.length === 0)
    throw new TypeError(`pipeline('${options.name}'): give at least one step`);
  const seen = new Set<string>();
  for (const [i, s] of steps.entries()) {
    if (typeof s !== 'object' || s === null || !(STEP in s)) {
      throw new TypeError(`pipeline('${options.name}'): argument ${i + 1} is not a step`);
    }
    if (seen.has(s.name)) {
      throw new TypeError(`pipeline('${options.name}'): two steps are named '${s.name}'`);
    }
    seen.add(s.name);
  }
  const frozen = Object.freeze([...steps]);
  const def: StepDef = Object.freeze({ kind: 'pipeline' as const, steps: frozen, options: {} });
  const plan = compile(options.name, frozen);
  const self: Pipeline<I, O> = {
    name: options.name,
    steps: frozen,
    [STEP]: def,
    run: (input, runOptions) => runPlan(plan, options, input, runOptions) as Promise<O>,
    stream: (source, streamOptions) => streamPlan<I, O>(plan, options, source, streamOptions),
    operator: (streamOptions) => (source$) =>
      streamPlan<I, O>(plan, options, source$, streamOptions),
    append: <R>(next: Step<O, R>) => build<I, R>(options, [...frozen, next]),
  };
  return Object.freeze(self);
}
