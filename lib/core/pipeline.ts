import { randomUUID } from 'node:crypto';
import {
  type Context,
  type Link,
  context as otelContext,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import type { Logger } from 'pino';
import {
  connect,
  filter,
  merge,
  mergeMap,
  Observable,
  type ObservableInput,
  type OperatorFunction,
} from 'rxjs';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { silentLogger } from '../observability/logger.js';
import { instruments, type TelemetryOptions, tracerOf } from '../observability/telemetry.js';
import { batch } from '../operators/batch.js';
import { linkedController } from './abort.js';
import { type ContextBag, contextBag } from './context.js';
import { CancelledError, isStepError } from './errors.js';
import {
  endStepSpan,
  type ItemState,
  type Runtime,
  runBatchFn,
  runSequence,
  runStep,
  startStepSpan,
  wrap,
} from './execute.js';
import { isPromiseLike } from './from-work.js';
import type { Failure, Outcome } from './outcome.js';
import {
  checkSource,
  type OverflowPolicy,
  pullSource,
  release,
  type Source,
  type Window,
} from './pull.js';
import { type AnyStep, checkName, isItemFailure, STEP, type Step, type StepDef } from './step.js';

/**
 * Where a pipeline logs and traces. Given once to {@link pipeline}; `run` and `stream` may
 * override the logger.
 *
 * @example
 * ```ts
 * import { pipeline, step } from '@hartonomous/pipelines';
 * import { pino } from 'pino';
 *
 * const p = pipeline({ name: 'greet', logger: pino() }, step('hi', (s: string) => `hi ${s}`));
 * ```
 */
export interface PipelineOptions extends TelemetryOptions {
  /** Pipeline name, used in spans (`pipeline <name>`), logs, metrics and errors. */
  name: string;
  /** A pino logger; the pipeline logs through children of it. @default a silent logger */
  logger?: Logger;
}

/**
 * Options of one `run`.
 *
 * @example
 * ```ts
 * import { pipeline, step } from '@hartonomous/pipelines';
 *
 * const p = pipeline('double', step('double', (n: number) => n * 2));
 * await p.run(21, { correlationId: 'req-42', signal: AbortSignal.timeout(1_000) });
 * ```
 */
export interface RunOptions {
  /** Cancels the run; the run rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Correlation id of the item. @default a random UUID */
  correlationId?: string;
  /** Parent OpenTelemetry context of the run span. @default the active context */
  otel?: Context;
  /** Logger for this run. @default the pipeline's logger */
  logger?: Logger;
  /** The item's bag of typed user data. @default an empty bag */
  bag?: ContextBag;
}

/**
 * Options of `stream` and `operator`.
 *
 * @typeParam I - input type
 *
 * @example
 * ```ts
 * import { pipeline, step } from '@hartonomous/pipelines';
 *
 * const p = pipeline('double', step('double', async (n: number) => n * 2));
 * p.stream([1, 2, 3], { concurrency: 2, ordered: true }).subscribe(console.log);
 * ```
 */
export interface StreamOptions<I> {
  /**
   * Most calls of any one step running at once (a step's own `concurrency` overrides it).
   * @default 8
   */
  concurrency?: number;
  /**
   * Items admitted beyond `concurrency`, so later steps and batches have work queued.
   * Items read from a pull source and not finished never exceed `concurrency + buffer`.
   * A push (Observable) source also gets a FIFO of `buffer` items in front of that window.
   * @default the larger of `concurrency` and twice the largest batch size of the steps
   */
  buffer?: number;
  /** Emit outcomes in input order (results wait for earlier items). @default false */
  ordered?: boolean;
  /** What a push source does when its buffer is full. @default 'error' */
  overflow?: OverflowPolicy;
  /** Called with each item a drop policy discarded. */
  onDrop?: (input: I) => void;
  /** Cancels the stream: in-flight items are aborted and the Observable completes. */
  signal?: AbortSignal;
  /**
   * Correlation id per item: a function of (input, index), or a prefix to which `:<index>` is
   * appended. @default a random UUID prefix per stream
   */
  correlationId?: string | ((input: I, index: number) => string);
  /** Parent OpenTelemetry context of every run span. @default the active context */
  otel?: Context;
  /** Logger for this stream. @default the pipeline's logger */
  logger?: Logger;
  /** Bag copied to every item. @default an empty bag */
  bag?: ContextBag;
}

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
 * @param steps - the steps, in order (at least one)
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
  const self: Pipeline<I, O> = {
    name: options.name,
    steps: frozen,
    [STEP]: def,
    run: (input, runOptions) => runOne(options, frozen, input, runOptions) as Promise<O>,
    stream: (source, streamOptions) => streamAll<I, O>(options, frozen, source, streamOptions),
    operator: (streamOptions) => (source$) =>
      streamAll<I, O>(options, frozen, source$, streamOptions),
    append: <R>(next: Step<O, R>) => build<I, R>(options, [...frozen, next]),
  };
  return Object.freeze(self);
}

function runtime(options: PipelineOptions, logger: Logger | undefined): Runtime {
  return {
    pipeline: options.name,
    tracer: tracerOf(options),
    instruments: instruments(options),
    logger: logger ?? options.logger ?? silentLogger(),
  };
}

function startItem(
  rt: Runtime,
  parent: Context,
  correlationId: string,
  index: number,
  signal: AbortSignal,
  bag: ContextBag,
): ItemState {
  const span = rt.tracer.startSpan(
    `pipeline ${rt.pipeline}`,
    { attributes: { 'pipeline.name': rt.pipeline, 'pipeline.correlation_id': correlationId } },
    parent,
  );
  return {
    correlationId,
    index,
    signal,
    bag,
    otel: trace.setSpan(parent, span),
    span,
    start: performance.now(),
    logger: rt.logger,
  };
}

function endItem(rt: Runtime, item: ItemState, error: unknown, failed: boolean): number {
  const durationMs = performance.now() - item.start;
  const attrs = { 'pipeline.name': rt.pipeline, 'pipeline.outcome': failed ? 'error' : 'ok' };
  item.span.setAttribute('pipeline.outcome', failed ? 'error' : 'ok');
  if (failed) {
    if (error instanceof Error) item.span.recordException(error);
    item.span.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message : String(error),
    });
    rt.instruments.itemsFailed.add(1, attrs);
  } else {
    rt.instruments.itemsProcessed.add(1, attrs);
  }
  item.span.end();
  rt.instruments.runDuration.record(durationMs, attrs);
  return durationMs;
}

async function runOne(
  options: PipelineOptions,
  steps: readonly AnyStep[],
  input: unknown,
  runOptions: RunOptions = {},
): Promise<unknown> {
  const rt = runtime(options, runOptions.logger);
  const { controller, dispose } = linkedController(runOptions.signal);
  const correlationId = runOptions.correlationId ?? randomUUID();
  const item = startItem(
    rt,
    runOptions.otel ?? otelContext.active(),
    correlationId,
    0,
    controller.signal,
    runOptions.bag ?? contextBag(),
  );
  logEvent(rt.logger, LogEvents.pipelineStarted, () => ({ pipeline: rt.pipeline, correlationId }));
  try {
    if (controller.signal.aborted) throw controller.signal.reason;
    const value = await runSequence(rt, steps, input, item);
    const durationMs = endItem(rt, item, undefined, false);
    logEvent(rt.logger, LogEvents.pipelineCompleted, () => ({
      pipeline: rt.pipeline,
      correlationId,
      durationMs,
    }));
    return value;
  } catch (e) {
    const error = controller.signal.aborted ? controller.signal.reason : e;
    const durationMs = endItem(rt, item, error, true);
    logEvent(
      rt.logger,
      controller.signal.aborted ? LogEvents.pipelineCancelled : LogEvents.pipelineFailed,
      () => ({
        pipeline: rt.pipeline,
        correlationId,
        durationMs,
        err: error,
      }),
    );
    throw error;
  } finally {
    dispose();
  }
}

/** One item travelling through the stages of a stream. */
interface Env {
  readonly item: ItemState;
  readonly input: unknown;
  value: unknown;
  failed: boolean;
  error: unknown;
  failedStep: string;
}

/** Consecutive item steps run as one stage; a batch step or a step with its own concurrency is a stage. */
type Stage =
  | {
      readonly kind: 'items';
      readonly steps: readonly AnyStep[];
      readonly concurrency: number | undefined;
    }
  | {
      readonly kind: 'batch';
      readonly step: AnyStep;
      readonly def: Extract<StepDef, { kind: 'batch' }>;
    };

function stagesOf(steps: readonly AnyStep[]): Stage[] {
  const stages: Stage[] = [];
  let run: AnyStep[] = [];
  const flush = (): void => {
    if (run.length > 0) stages.push({ kind: 'items', steps: run, concurrency: undefined });
    run = [];
  };
  for (const s of steps) {
    const def = s[STEP];
    if (def.kind === 'batch') {
      flush();
      stages.push({ kind: 'batch', step: s, def });
    } else if (def.options.concurrency !== undefined) {
      flush();
      stages.push({ kind: 'items', steps: [s], concurrency: def.options.concurrency });
    } else {
      run.push(s);
    }
  }
  flush();
  return stages;
}

function fail(env: Env, rt: Runtime, stepName: string, e: unknown): Env {
  env.failed = true;
  env.error = wrap(rt, stepName, env.item, e);
  env.failedStep = isStepError(env.error) ? env.error.step : stepName;
  return env;
}

function runItems(
  rt: Runtime,
  steps: readonly AnyStep[],
  env: Env,
  from: number,
): Env | Promise<Env> {
  for (let i = from; i < steps.length; i++) {
    const s = steps[i] as AnyStep;
    let out: unknown;
    try {
      out = runStep(rt, s, env.value, env.item);
    } catch (e) {
      return fail(env, rt, s.name, e);
    }
    if (isPromiseLike(out)) {
      return Promise.resolve(out).then(
        (value) => {
          env.value = value;
          return runItems(rt, steps, env, i + 1);
        },
        (e: unknown) => fail(env, rt, s.name, e),
      );
    }
    env.value = out;
  }
  return env;
}

function runBatch(
  rt: Runtime,
  stage: Extract<Stage, { kind: 'batch' }>,
  envs: Env[],
  parent: Context,
  signal: AbortSignal,
): Promise<Env[]> {
  const name = stage.step.name;
  const links: Link[] = envs.map((e) => ({ context: e.item.span.spanContext() }));
  const start = performance.now();
  const { span, ctx } = startStepSpan(
    rt,
    name,
    parent,
    { 'pipeline.batch_size': envs.length },
    links,
  );
  rt.instruments.batchSize.record(envs.length, {
    'pipeline.name': rt.pipeline,
    'pipeline.step': name,
  });
  let results: Promise<ReadonlyArray<unknown>>;
  try {
    results = runBatchFn(
      rt,
      stage.def,
      name,
      envs.map((e) => e.value),
      envs.map((e) => e.item),
      ctx,
      signal,
    );
  } catch (e) {
    results = Promise.reject(e);
  }
  return results.then(
    (values) => {
      endStepSpan(rt, name, span, start, undefined, false);
      envs.forEach((env, i) => {
        const v = values[i];
        if (isItemFailure(v)) fail(env, rt, name, v.error);
        else env.value = v;
      });
      return envs;
    },
    (e: unknown) => {
      endStepSpan(rt, name, span, start, e, true);
      for (const env of envs) fail(env, rt, name, e);
      return envs;
    },
  );
}

function reorder(): OperatorFunction<Env, Env> {
  return (source) =>
    new Observable<Env>((subscriber) => {
      const held = new Map<number, Env>();
      let next = 0;
      return source.subscribe({
        next: (env) => {
          if (env.item.index !== next) {
            held.set(env.item.index, env);
            return;
          }
          subscriber.next(env);
          next++;
          let h = held.get(next);
          while (h !== undefined) {
            held.delete(next);
            subscriber.next(h);
            next++;
            h = held.get(next);
          }
        },
        error: (e: unknown) => subscriber.error(e),
        complete: () => subscriber.complete(),
      });
    });
}

function streamAll<I, O>(
  options: PipelineOptions,
  steps: readonly AnyStep[],
  source: Source<I>,
  streamOptions: StreamOptions<I> = {},
): Observable<Outcome<I, O>> {
  const concurrency = streamOptions.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new TypeError(`stream(): concurrency must be a positive integer, got ${concurrency}`);
  }
  checkSource(source);
  const stages = stagesOf(steps);
  const largestBatch = Math.max(
    0,
    ...stages.map((s) => (s.kind === 'batch' ? s.def.options.size : 0)),
  );
  const buffer = streamOptions.buffer ?? Math.max(concurrency, 2 * largestBatch);
  if (!Number.isInteger(buffer) || buffer < 0) {
    throw new TypeError(`stream(): buffer must be an integer >= 0, got ${buffer}`);
  }
  const overflow = streamOptions.overflow ?? 'error';
  if (overflow !== 'error' && overflow !== 'dropOldest' && overflow !== 'dropNewest') {
    throw new TypeError(
      `stream(): overflow must be 'error', 'dropOldest' or 'dropNewest', got ${String(overflow)}`,
    );
  }

  return new Observable<Outcome<I, O>>((subscriber) => {
    const rt = runtime(options, streamOptions.logger);
    const { controller, dispose } = linkedController(streamOptions.signal);
    const signal = controller.signal;
    const parent = streamOptions.otel ?? otelContext.active();
    const prefix =
      typeof streamOptions.correlationId === 'string' ? streamOptions.correlationId : randomUUID();
    const idOf =
      typeof streamOptions.correlationId === 'function'
        ? streamOptions.correlationId
        : (_: I, index: number) => `${prefix}:${index}`;
    const baseBag = streamOptions.bag;
    const window: Window = { size: concurrency + buffer, inFlight: 0, onRelease: null };
    const live = new Set<ItemState>();
    const attrs = { 'pipeline.name': rt.pipeline };
    let index = 0;

    const admit = (input: unknown): Env => {
      const i = index++;
      const item = startItem(
        rt,
        parent,
        idOf(input as I, i),
        i,
        signal,
        baseBag ? baseBag.clone() : contextBag(),
      );
      live.add(item);
      rt.instruments.inFlight.add(1, attrs);
      return { item, input, value: input, failed: false, error: undefined, failedStep: '' };
    };

    let env$: Observable<Env> = new Observable<Env>((sub) =>
      pullSource(source, window, {
        buffer,
        overflow,
        onDrop: (item) => {
          streamOptions.onDrop?.(item);
        },
      }).subscribe({
        next: (input) => sub.next(admit(input)),
        error: (e: unknown) => sub.error(e),
        complete: () => sub.complete(),
      }),
    );

    for (const stage of stages) {
      if (stage.kind === 'items') {
        const stageSteps = stage.steps;
        env$ = env$.pipe(
          mergeMap((env): ObservableInput<Env> => {
            if (env.failed) return [env];
            const r = runItems(rt, stageSteps, env, 0);
            return isPromiseLike(r) ? r : [r];
          }, stage.concurrency ?? concurrency),
        );
      } else {
        const o = stage.def.options;
        const weigh = o.weight;
        env$ = env$.pipe(
          connect((shared) =>
            merge(
              shared.pipe(filter((env) => env.failed)),
              shared.pipe(
                filter((env) => !env.failed),
                batch<Env>({
                  size: o.size,
                  timeMs: o.timeMs,
                  ...(weigh ? { weight: (env: Env) => weigh(env.value) } : {}),
                  ...(o.maxWeight !== undefined ? { maxWeight: o.maxWeight } : {}),
                }),
                mergeMap(
                  (envs) => runBatch(rt, stage, envs, parent, signal),
                  o.concurrency ?? concurrency,
                ),
                mergeMap((envs) => envs),
              ),
            ),
          ),
        );
      }
    }
    if (streamOptions.ordered) env$ = env$.pipe(reorder());

    logEvent(rt.logger, LogEvents.streamStarted, () => ({
      pipeline: rt.pipeline,
      concurrency,
      buffer,
    }));
    const finish = (env: Env): Outcome<I, O> => {
      const item = env.item;
      live.delete(item);
      rt.instruments.inFlight.add(-1, attrs);
      const durationMs = endItem(rt, item, env.error, env.failed);
      if (env.failed) {
        logEvent(rt.logger, LogEvents.streamItemFailed, () => ({
          pipeline: rt.pipeline,
          correlationId: item.correlationId,
          step: env.failedStep,
          err: env.error,
        }));
        const failure: Failure<I> = {
          ok: false,
          error: env.error,
          failedStep: env.failedStep,
          input: env.input as I,
          index: item.index,
          correlationId: item.correlationId,
          durationMs,
        };
        return failure;
      }
      return {
        ok: true,
        value: env.value as O,
        input: env.input as I,
        index: item.index,
        correlationId: item.correlationId,
        durationMs,
      };
    };

    const subscription = env$.subscribe({
      next: (env) => {
        subscriber.next(finish(env));
        release(window);
      },
      error: (e: unknown) => {
        logEvent(rt.logger, LogEvents.streamFailed, () => ({ pipeline: rt.pipeline, err: e }));
        subscriber.error(e);
      },
      complete: () => {
        logEvent(rt.logger, LogEvents.streamCompleted, () => ({
          pipeline: rt.pipeline,
          items: index,
        }));
        subscriber.complete();
      },
    });
    const onAbort = (): void => subscriber.complete();
    signal.addEventListener('abort', onAbort, { once: true });
    return () => {
      signal.removeEventListener('abort', onAbort);
      subscription.unsubscribe();
      if (!signal.aborted)
        controller.abort(new CancelledError(`stream of pipeline '${rt.pipeline}'`));
      dispose();
      for (const item of live) {
        item.span.setAttribute('pipeline.outcome', 'cancelled');
        item.span.end();
        rt.instruments.inFlight.add(-1, attrs);
      }
      live.clear();
    };
  });
}
