import {
  type Context,
  type Link,
  context as otelContext,
  type Span,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { Logger } from 'pino';
import { isObservable, lastValueFrom, type MonoTypeOperatorFunction, type Observable } from 'rxjs';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { silentLogger } from '../observability/logger.js';
import { type Instruments, instruments, tracerOf } from '../observability/telemetry.js';
import type { BatchContext, ContextBag, StepContext } from './context.js';
import { isStepError, StepError } from './errors.js';
import { fromWork, isPromiseLike } from './from-work.js';
import type { PipelineOptions } from './pipeline.js';
import { type AnyStep, isItemFailure, STEP, type StepDef } from './step.js';

/**
 * Everything a pipeline needs to execute steps for items.
 * @internal
 */
export interface Runtime {
  readonly pipeline: string;
  readonly tracer: Tracer;
  readonly instruments: Instruments;
  readonly logger: Logger;
}

/**
 * One item's identity while it goes through the steps.
 * @internal
 */
export interface ItemState {
  readonly correlationId: string;
  readonly index: number;
  readonly signal: AbortSignal;
  readonly bag: ContextBag;
  /** the item's run span context (parent of its step spans) */
  readonly otel: Context;
  readonly span: Span;
  readonly start: number;
  readonly logger: Logger;
}

class StepContextImpl implements StepContext {
  #logger: Logger | undefined;
  constructor(
    readonly pipeline: string,
    readonly step: string,
    readonly correlationId: string,
    readonly index: number,
    readonly signal: AbortSignal,
    readonly otel: Context,
    readonly bag: ContextBag,
    private readonly parentLogger: Logger,
  ) {}
  get logger(): Logger {
    this.#logger ??= this.parentLogger.child({
      pipeline: this.pipeline,
      step: this.step,
      correlationId: this.correlationId,
      traceId: trace.getSpanContext(this.otel)?.traceId,
    });
    return this.#logger;
  }
}

/**
 * Starts the span of one step (or one batch) under `parent`.
 * @internal
 */
export function startStepSpan(
  rt: Runtime,
  name: string,
  parent: Context,
  attributes: Record<string, string | number>,
  links?: Link[],
): { span: Span; ctx: Context } {
  const span = rt.tracer.startSpan(
    `step ${name}`,
    { attributes: { 'pipeline.name': rt.pipeline, 'pipeline.step': name, ...attributes }, links },
    parent,
  );
  return { span, ctx: trace.setSpan(parent, span) };
}

/**
 * Ends a step span with its outcome and records the step duration.
 * @internal
 */
export function endStepSpan(
  rt: Runtime,
  name: string,
  span: Span,
  start: number,
  error: unknown,
  failed: boolean,
): void {
  if (failed) {
    span.setAttribute('pipeline.outcome', 'error');
    if (error instanceof Error) span.recordException(error);
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message : String(error),
    });
  } else {
    span.setAttribute('pipeline.outcome', 'ok');
  }
  span.end();
  rt.instruments.stepDuration.record(performance.now() - start, {
    'pipeline.name': rt.pipeline,
    'pipeline.step': name,
    'pipeline.outcome': failed ? 'error' : 'ok',
  });
}

function applyPolicy<T>(
  work: (signal: AbortSignal) => unknown,
  policy: ReadonlyArray<MonoTypeOperatorFunction<T>>,
  signal: AbortSignal,
): Promise<T> {
  let work$ = fromWork((s) => toPromiseOrValue(work(s)), signal) as Observable<T>;
  for (const op of policy) work$ = op(work$);
  return lastValueFrom(work$);
}

function toPromiseOrValue(result: unknown): unknown {
  return isObservable(result) ? lastValueFrom(result) : result;
}

/**
 * Runs one step for one item. Returns the value synchronously when the step is synchronous
 * and has no policy (the fast path), else a promise. Errors are wrapped in `StepError` unless
 * they already are one (from a nested pipeline) or the item was cancelled (its abort reason).
 * @internal
 */
export function runStep(rt: Runtime, s: AnyStep, input: unknown, item: ItemState): unknown {
  const def: StepDef = s[STEP];
  const start = performance.now();
  const { span, ctx: spanCtx } = startStepSpan(rt, s.name, item.otel, {
    'pipeline.correlation_id': item.correlationId,
  });
  const fail = (e: unknown): never => {
    const error = wrap(rt, s.name, item, e);
    endStepSpan(rt, s.name, span, start, error, true);
    logEvent(item.logger, LogEvents.stepFailed, () => ({ step: s.name, err: error }));
    throw error;
  };
  let result: unknown;
  try {
    result = invoke(rt, def, s.name, input, item, spanCtx);
  } catch (e) {
    return fail(e);
  }
  if (isPromiseLike(result)) {
    return Promise.resolve(result).then((value) => {
      endStepSpan(rt, s.name, span, start, undefined, false);
      return value;
    }, fail);
  }
  endStepSpan(rt, s.name, span, start, undefined, false);
  return result;
}

function invoke(
  rt: Runtime,
  def: StepDef,
  name: string,
  input: unknown,
  item: ItemState,
  spanCtx: Context,
): unknown {
  switch (def.kind) {
    case 'item': {
      const call = (signal: AbortSignal): unknown => {
        const ctx = new StepContextImpl(
          rt.pipeline,
          name,
          item.correlationId,
          item.index,
          signal,
          spanCtx,
          item.bag,
          rt.logger,
        );
        return otelContext.with(spanCtx, def.fn, undefined, input, ctx);
      };
      const policy = def.options.policy;
      if (policy && policy.length > 0) return applyPolicy(call, policy, item.signal);
      const out = call(item.signal);
      return isObservable(out) ? lastValueFrom(out) : out;
    }
    case 'batch': {
      const one = runBatchFn(rt, def, name, [input], [item], spanCtx, item.signal);
      return Promise.resolve(one).then((results) => {
        const r = results[0];
        if (isItemFailure(r)) throw r.error;
        return r;
      });
    }
    case 'pipeline': {
      const nested: ItemState = { ...item, otel: spanCtx };
      return runSequence({ ...rt, pipeline: name }, def.steps, input, nested);
    }
  }
}

/**
 * Runs a batch function once (through its policy) and checks the shape of its results.
 * @internal
 */
export function runBatchFn(
  rt: Runtime,
  def: Extract<StepDef, { kind: 'batch' }>,
  name: string,
  inputs: unknown[],
  items: readonly ItemState[],
  batchCtx: Context,
  signal: AbortSignal,
): Promise<ReadonlyArray<unknown>> {
  const call = (sig: AbortSignal): unknown => {
    const ctx: BatchContext = {
      items: items.map(
        (it) =>
          new StepContextImpl(
            rt.pipeline,
            name,
            it.correlationId,
            it.index,
            sig,
            batchCtx,
            it.bag,
            rt.logger,
          ),
      ),
      signal: sig,
      otel: batchCtx,
      pipeline: rt.pipeline,
      step: name,
      get logger() {
        return rt.logger.child({ pipeline: rt.pipeline, step: name, batchSize: inputs.length });
      },
    };
    return otelContext.with(batchCtx, def.fn, undefined, inputs, ctx);
  };
  const policy = def.options.policy ?? [];
  const results =
    policy.length > 0
      ? applyPolicy(call, policy as ReadonlyArray<MonoTypeOperatorFunction<unknown>>, signal)
      : Promise.resolve(toPromiseOrValue(call(signal)));
  return results.then((r) => {
    if (!Array.isArray(r) || r.length !== inputs.length) {
      throw new TypeError(
        `batch step '${name}' returned ${Array.isArray(r) ? r.length : typeof r} results for ${inputs.length} inputs; it must return one result per input`,
      );
    }
    return r;
  });
}

/**
 * Runs steps one after another for one item.
 * @internal
 */
export async function runSequence(
  rt: Runtime,
  steps: readonly AnyStep[],
  input: unknown,
  item: ItemState,
): Promise<unknown> {
  let value = input;
  for (const s of steps) {
    const out = runStep(rt, s, value, item);
    value = isPromiseLike(out) ? await out : out;
  }
  return value;
}

/**
 * The error recorded for an item that failed at `step`.
 * @internal
 */
export function wrap(rt: Runtime, step: string, item: ItemState, e: unknown): unknown {
  if (item.signal.aborted) return item.signal.reason;
  if (isStepError(e)) return e;
  return new StepError(rt.pipeline, step, item.correlationId, e);
}

/** @internal */
export function runtime(options: PipelineOptions, logger: Logger | undefined): Runtime {
  return {
    pipeline: options.name,
    tracer: tracerOf(options),
    instruments: instruments(options),
    logger: logger ?? options.logger ?? silentLogger(),
  };
}

/** @internal */
export function startItem(
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

/** @internal */
export function endItem(rt: Runtime, item: ItemState, error: unknown, failed: boolean): number {
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
