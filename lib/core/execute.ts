import {
  type Attributes,
  type Context,
  INVALID_SPAN_CONTEXT,
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
import { type BatchContext, type ContextBag, contextBag, type StepContext } from './context.js';
import { isStepError, StepError } from './errors.js';
import { fromWork, isPromiseLike } from './from-work.js';
import type { PipelineOptions } from './pipeline.js';
import { type AnyStep, isItemFailure, STEP, type StepDef } from './step.js';

/** Cached metric attributes for one outcome pair. */
interface OutcomeAttributes {
  readonly ok: Attributes;
  readonly error: Attributes;
}

/**
 * Everything a pipeline needs to execute steps for items.
 * @internal
 */
export interface Runtime {
  readonly pipeline: string;
  readonly tracer: Tracer;
  readonly instruments: Instruments;
  readonly logger: Logger;
  /** metric attributes of the pipeline, per outcome (allocated once) */
  readonly attrs: OutcomeAttributes & { readonly base: Attributes };
  /** metric attributes of each step, per outcome (allocated once per step name) */
  readonly stepAttrs: Map<string, OutcomeAttributes>;
}

/** Holds an item's bag, created on first use (most steps never touch it). */
interface BagHolder {
  bag: ContextBag | undefined;
  readonly seed: ContextBag | undefined;
  readonly copy: boolean;
}

/**
 * One item's identity while it goes through the steps.
 * @internal
 */
export class ItemState {
  constructor(
    readonly correlationId: string,
    readonly index: number,
    readonly signal: AbortSignal,
    private readonly holder: BagHolder,
    /** the item's run span context (parent of its step spans) */
    readonly otel: Context,
    readonly span: Span,
    /** whether spans are recorded for this item (step spans are made only then) */
    readonly recording: boolean,
    readonly start: number,
    readonly logger: Logger,
  ) {
    this.mark = start;
  }

  /** when the item's previous step ended (the next step's start time) */
  mark: number;

  get bag(): ContextBag {
    let bag = this.holder.bag;
    if (bag === undefined) {
      const seed = this.holder.seed;
      bag = seed === undefined ? contextBag() : this.holder.copy ? seed.clone() : seed;
      this.holder.bag = bag;
    }
    return bag;
  }

  /** The same item seen from a nested pipeline (its spans parented at `otel`). */
  under(otel: Context): ItemState {
    return new ItemState(
      this.correlationId,
      this.index,
      this.signal,
      this.holder,
      otel,
      this.span,
      this.recording,
      this.start,
      this.logger,
    );
  }
}

class StepContextImpl implements StepContext {
  #logger: Logger | undefined;
  constructor(
    readonly pipeline: string,
    readonly step: string,
    private readonly item: ItemState,
    readonly signal: AbortSignal,
    readonly otel: Context,
    private readonly parentLogger: Logger,
  ) {}
  get correlationId(): string {
    return this.item.correlationId;
  }
  get index(): number {
    return this.item.index;
  }
  get bag(): ContextBag {
    return this.item.bag;
  }
  get logger(): Logger {
    this.#logger ??= this.parentLogger.child({
      pipeline: this.pipeline,
      step: this.step,
      correlationId: this.item.correlationId,
      traceId: trace.getSpanContext(this.otel)?.traceId,
    });
    return this.#logger;
  }
}

function stepAttributes(rt: Runtime, name: string): OutcomeAttributes {
  let a = rt.stepAttrs.get(name);
  if (a === undefined) {
    a = {
      ok: { 'pipeline.name': rt.pipeline, 'pipeline.step': name, 'pipeline.outcome': 'ok' },
      error: { 'pipeline.name': rt.pipeline, 'pipeline.step': name, 'pipeline.outcome': 'error' },
    };
    rt.stepAttrs.set(name, a);
  }
  return a;
}

/**
 * Starts the span of one step (or one batch) under `parent`.
 * @internal
 */
export function startStepSpan(
  rt: Runtime,
  name: string,
  parent: Context,
  attributes: Attributes,
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
 * Ends a step span (if any) with its outcome and records the step duration.
 * @internal
 */
export function endStepSpan(
  rt: Runtime,
  name: string,
  span: Span | undefined,
  start: number,
  error: unknown,
  failed: boolean,
): number {
  if (span !== undefined) {
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
  }
  const attrs = stepAttributes(rt, name);
  const end = performance.now();
  rt.instruments.stepDuration.record(end - start, failed ? attrs.error : attrs.ok);
  return end;
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
 * Step spans are made only for items whose run span is recording.
 * @internal
 */
export function runStep(rt: Runtime, s: AnyStep, input: unknown, item: ItemState): unknown {
  return runStepThen(rt, s, input, item, identityValue, rethrow);
}

const identityValue = <T>(v: T): T => v;
const rethrow = (e: unknown): never => {
  throw e;
};

/**
 * Runs one step for one item and continues with `next(value)` or `onError(error)`, in the same
 * tick for a synchronous step and in one `then` for an asynchronous one (no extra promise per
 * step). `onError` receives the error already wrapped (see {@link runStep}).
 * @internal
 */
export function runStepThen<R>(
  rt: Runtime,
  s: AnyStep,
  input: unknown,
  item: ItemState,
  next: (value: unknown) => R | PromiseLike<R>,
  onError: (error: unknown) => R,
): R | PromiseLike<R> {
  const def: StepDef = s[STEP];
  const start = item.mark;
  let span: Span | undefined;
  let spanCtx = item.otel;
  if (item.recording) {
    const started = startStepSpan(rt, s.name, item.otel, {
      'pipeline.correlation_id': item.correlationId,
    });
    span = started.span;
    spanCtx = started.ctx;
  }
  let result: unknown;
  try {
    result = invoke(rt, def, s.name, input, item, spanCtx, span !== undefined);
  } catch (e) {
    return onError(failStep(rt, s.name, item, span, start, e));
  }
  if (isPromiseLike(result)) {
    return result.then(
      (value) => {
        item.mark = endStepSpan(rt, s.name, span, start, undefined, false);
        return next(value);
      },
      (e: unknown) => onError(failStep(rt, s.name, item, span, start, e)),
    );
  }
  item.mark = endStepSpan(rt, s.name, span, start, undefined, false);
  return next(result);
}

/** Ends a failed step: wraps the error, ends the span, logs; returns the wrapped error. */
function failStep(
  rt: Runtime,
  name: string,
  item: ItemState,
  span: Span | undefined,
  start: number,
  e: unknown,
): unknown {
  const error = wrap(rt, name, item, e);
  item.mark = endStepSpan(rt, name, span, start, error, true);
  logEvent(item.logger, LogEvents.stepFailed, () => ({
    pipeline: rt.pipeline,
    step: name,
    correlationId: item.correlationId,
    err: error,
  }));
  return error;
}

function invoke(
  rt: Runtime,
  def: StepDef,
  name: string,
  input: unknown,
  item: ItemState,
  spanCtx: Context,
  activate: boolean,
): unknown {
  switch (def.kind) {
    case 'item': {
      const policy = def.options.policy;
      if (policy && policy.length > 0) {
        const call = (signal: AbortSignal): unknown =>
          otelContext.with(
            spanCtx,
            def.fn,
            undefined,
            input,
            new StepContextImpl(rt.pipeline, name, item, signal, spanCtx, rt.logger),
          );
        return applyPolicy(call, policy, item.signal);
      }
      const ctx = new StepContextImpl(rt.pipeline, name, item, item.signal, spanCtx, rt.logger);
      const out = activate
        ? otelContext.with(spanCtx, def.fn, undefined, input, ctx)
        : def.fn(input, ctx);
      return isObservable(out) ? lastValueFrom(out) : out;
    }
    case 'batch': {
      const one = runBatchFn(rt, def, name, [input], [item], spanCtx, item.signal);
      return one.then((results) => {
        const r = results[0];
        if (isItemFailure(r)) throw r.error;
        return r;
      });
    }
    case 'pipeline':
      return runSequence(
        { ...rt, pipeline: name, stepAttrs: new Map() },
        def.steps,
        input,
        item.under(spanCtx),
      );
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
        (it) => new StepContextImpl(rt.pipeline, name, it, sig, batchCtx, rt.logger),
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
  const base = { 'pipeline.name': options.name };
  return {
    pipeline: options.name,
    tracer: tracerOf(options),
    instruments: instruments(options),
    logger: logger ?? options.logger ?? silentLogger(),
    attrs: {
      base,
      ok: { ...base, 'pipeline.outcome': 'ok' },
      error: { ...base, 'pipeline.outcome': 'error' },
    },
    stepAttrs: new Map(),
  };
}

/**
 * Starts an item: its run span (attributes only when recording) and its state. With a no-op
 * tracer no context is allocated: the parent context already carries the same span context.
 * @internal
 */
export function startItem(
  rt: Runtime,
  parent: Context,
  correlationId: string,
  index: number,
  signal: AbortSignal,
  bag: ContextBag | undefined,
  copyBag: boolean,
): ItemState {
  const span = rt.tracer.startSpan(`pipeline ${rt.pipeline}`, undefined, parent);
  const recording = span.isRecording();
  let otel = parent;
  if (recording) {
    span.setAttributes({ 'pipeline.name': rt.pipeline, 'pipeline.correlation_id': correlationId });
    otel = trace.setSpan(parent, span);
  } else if (
    span.spanContext() !== INVALID_SPAN_CONTEXT &&
    trace.isSpanContextValid(span.spanContext()) &&
    span.spanContext().spanId !== trace.getSpanContext(parent)?.spanId
  ) {
    // a sampler dropped the span but gave it an id: propagate it (sampled flag off)
    otel = trace.setSpan(parent, span);
  }
  return new ItemState(
    correlationId,
    index,
    signal,
    { bag: undefined, seed: bag, copy: copyBag },
    otel,
    span,
    recording,
    performance.now(),
    rt.logger,
  );
}

/** @internal */
export function endItem(rt: Runtime, item: ItemState, error: unknown, failed: boolean): number {
  const durationMs = performance.now() - item.start;
  const span = item.span;
  if (item.recording) {
    span.setAttribute('pipeline.outcome', failed ? 'error' : 'ok');
    if (failed) {
      if (error instanceof Error) span.recordException(error);
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: error instanceof Error ? error.message : String(error),
      });
    }
  }
  span.end();
  if (failed) rt.instruments.itemsFailed.add(1, rt.attrs.error);
  else rt.instruments.itemsProcessed.add(1, rt.attrs.ok);
  rt.instruments.runDuration.record(durationMs, failed ? rt.attrs.error : rt.attrs.ok);
  return durationMs;
}
