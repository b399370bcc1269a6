import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { type Context, type Link, context as otelContext } from '@opentelemetry/api';
import { connect, filter, merge, mergeMap, Observable, type OperatorFunction } from 'rxjs';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { batch } from '../operators/batch.js';
import { linkedController } from './abort.js';
import { concurrently } from './concurrently.js';
import { CancelledError, isStepError } from './errors.js';
import {
  endItem,
  endStepSpan,
  type ItemState,
  type Runtime,
  runBatchFn,
  runStepThen,
  runtime,
  startItem,
  startStepSpan,
  wrap,
} from './execute.js';
import type { Failure, Outcome } from './outcome.js';
import type { PipelineOptions, StreamOptions } from './pipeline.js';
import { checkSource, pullSource, release, type Source, type Window } from './pull.js';
import { type AnyStep, isItemFailure, STEP, type StepDef } from './step.js';

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

/** Starts a stage of item steps; a later stage restarts the step clock (time queued is not a step's). */
function startItems(
  rt: Runtime,
  steps: readonly AnyStep[],
  env: Env,
  later: boolean,
): Env | PromiseLike<Env> {
  if (later) env.item.mark = performance.now();
  return runItems(rt, steps, env, 0);
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
): Env | PromiseLike<Env> {
  const s = steps[from];
  if (s === undefined) return env;
  return runStepThen(
    rt,
    s,
    env.value,
    env.item,
    (value) => {
      env.value = value;
      return runItems(rt, steps, env, from + 1);
    },
    (error) => fail(env, rt, s.name, error),
  );
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

/**
 * Streams `source` through `steps`: the engine behind `Pipeline.stream`.
 * @internal
 */
export function streamAll<I, O>(
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
    // every in-flight call of a step with a policy listens on this signal: no listener cap
    setMaxListeners(0, controller.signal);
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
    const attrs = rt.attrs.base;
    let liveCount = 0;
    let index = 0;

    const admit = (input: unknown): Env => {
      const i = index++;
      const item = startItem(rt, parent, idOf(input as I, i), i, signal, baseBag, true);
      liveCount++;
      if (item.recording) live.add(item);
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

    for (const [stageIndex, stage] of stages.entries()) {
      if (stage.kind === 'items') {
        const later = stageIndex > 0;
        const stageSteps = stage.steps;
        env$ = env$.pipe(
          concurrently(
            (env: Env): Env | PromiseLike<Env> =>
              env.failed ? env : startItems(rt, stageSteps, env, later),
            stage.concurrency ?? concurrency,
          ),
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
      liveCount--;
      if (item.recording) live.delete(item);
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
      }
      live.clear();
      if (liveCount > 0) rt.instruments.inFlight.add(-liveCount, attrs);
      liveCount = 0;
    };
  });
}
