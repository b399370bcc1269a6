/**
 * The engine's one instrumentation layer: spans, metrics and catalog logs are made here, around
 * the execution of items, steps and batches, never inside it. When there is no tracer provider,
 * no meter provider and a silent logger, every step runs unwrapped and an item costs two clock
 * reads.
 * @module
 */

import {
  type Attributes,
  type Context,
  createNoopMeter,
  INVALID_SPAN_CONTEXT,
  type Link,
  ProxyTracer,
  ProxyTracerProvider,
  type Span,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { Logger } from 'pino';
import { type LogEvent, LogEvents, logEvent } from '../observability/log-events.js';
import {
  INSTRUMENTATION_NAME,
  type Instruments,
  instruments,
  type TelemetryOptions,
  tracerOf,
} from '../observability/telemetry.js';
import { failItem, type Item, type ScopeState } from './item.js';
import type { BatchNode, ItemNode, Scope } from './plan.js';
import { isItemFailure } from './step.js';

/**
 * Runs one item step for an item: its value in, the step's output (or a promise of it) out.
 * `otel`, when given, is the step span's context, made active around the call.
 * @internal
 */
export type ItemExec = (item: Item, otel?: Context) => unknown;

/**
 * Runs one batch step for a batch of items: one result per item (or a promise of them).
 * `otel` is the batch's context; `activate` says whether to make it active around the call.
 * @internal
 */
export type BatchExec = (
  items: readonly Item[],
  otel: Context,
  activate: boolean,
) => ReadonlyArray<unknown> | PromiseLike<ReadonlyArray<unknown>>;

/**
 * Whether a session runs one item (`run`) or a stream of them: it decides which catalog events
 * describe the session.
 * @internal
 */
export type SessionMode = 'run' | 'stream';

/**
 * What {@link sessionTelemetry} needs.
 * @internal
 */
export interface SessionTelemetryOptions {
  /** The root pipeline's name. */
  readonly pipeline: string;
  /** Where spans and metrics go. */
  readonly telemetry: TelemetryOptions;
  /** The session's logger. */
  readonly logger: Logger;
  /** The parent context of every item's run span. */
  readonly parent: Context;
  /** `run` or `stream`. */
  readonly mode: SessionMode;
}

/** Metric attributes of one step (or nested pipeline) per outcome, allocated once. */
interface OutcomeAttributes {
  readonly ok: Attributes;
  readonly error: Attributes;
}

/**
 * The telemetry of one session (one `run`, or one subscription of a stream).
 * @internal
 */
export class SessionTelemetry {
  /** Whether spans are made (false without a tracer provider). */
  readonly tracing: boolean;
  /** Whether metrics are recorded (false without a meter provider). */
  readonly metering: boolean;
  private readonly tracer: Tracer;
  private readonly inst: Instruments;
  private readonly pipeline: string;
  private readonly logger: Logger;
  private readonly parent: Context;
  private readonly parentSpanId: string | undefined;
  private readonly mode: SessionMode;
  private readonly attrs: { base: Attributes; ok: Attributes; error: Attributes };
  private readonly stepAttrs = new Map<string, OutcomeAttributes>();
  /** Items whose run span is recording (ended as cancelled if the session is torn down). */
  private readonly live = new Set<Item>();
  private inFlight = 0;
  private drops = 0;

  constructor(o: SessionTelemetryOptions) {
    this.pipeline = o.pipeline;
    this.logger = o.logger;
    this.parent = o.parent;
    this.mode = o.mode;
    this.tracer = tracerOf(o.telemetry);
    this.inst = instruments(o.telemetry);
    this.tracing = !isNoopTracer(o.telemetry);
    this.metering = !isNoopInstrument(this.inst.itemsProcessed);
    this.parentSpanId = trace.getSpanContext(o.parent)?.spanId;
    const base = { 'pipeline.name': o.pipeline };
    this.attrs = {
      base,
      ok: { ...base, 'pipeline.outcome': 'ok' },
      error: { ...base, 'pipeline.outcome': 'error' },
    };
  }

  /** Whether steps need wrapping: something is recorded per step. */
  get perStep(): boolean {
    return this.tracing || this.metering || this.logger.isLevelEnabled(LogEvents.stepFailed.level);
  }

  /**
   * An item was admitted: starts its run span and counts it in flight.
   * @param item - the item
   */
  admitted(item: Item): void {
    this.inFlight++;
    if (this.metering) this.inst.inFlight.add(1, this.attrs.base);
    if (!this.tracing) return;
    const parent = this.parent;
    const span = this.tracer.startSpan(`pipeline ${this.pipeline}`, undefined, parent);
    item.span = span;
    if (span.isRecording()) {
      span.setAttributes({
        'pipeline.name': this.pipeline,
        'pipeline.correlation_id': item.correlationId,
      });
      item.otel = trace.setSpan(parent, span);
      item.traced = true;
      this.live.add(item);
      return;
    }
    const sc = span.spanContext();
    if (
      sc !== INVALID_SPAN_CONTEXT &&
      trace.isSpanContextValid(sc) &&
      sc.spanId !== this.parentSpanId
    ) {
      // a sampler dropped the span but gave it an id: propagate it (sampled flag off)
      item.otel = trace.setSpan(parent, span);
    }
  }

  /**
   * An item finished (or was failed by a cancelled `run`): ends its spans, records its
   * outcome, logs a failure of a streamed item.
   * @param item - the item
   * @param end - `performance.now()` at its end
   * @returns the item's duration in ms
   */
  finished(item: Item, end: number): number {
    const durationMs = end - item.start;
    this.inFlight--;
    if (item.scopes !== undefined) this.closeScopes(item, item.scopes.length, item.failed);
    const span = item.span;
    if (span !== undefined) {
      if (item.traced) {
        this.live.delete(item);
        span.setAttribute('pipeline.outcome', item.failed ? 'error' : 'ok');
        if (item.failed) fail(span, item.error);
      }
      span.end();
    }
    if (this.metering) {
      const a = item.failed ? this.attrs.error : this.attrs.ok;
      if (item.failed) this.inst.itemsFailed.add(1, a);
      else this.inst.itemsProcessed.add(1, a);
      this.inst.runDuration.record(durationMs, a);
      this.inst.inFlight.add(-1, this.attrs.base);
    }
    if (item.failed && this.mode === 'stream' && this.enabled(LogEvents.streamItemFailed)) {
      logEvent(this.logger, LogEvents.streamItemFailed, {
        pipeline: this.pipeline,
        correlationId: item.correlationId,
        step: item.failedStep,
        err: item.error,
      });
    }
    return durationMs;
  }

  /** A push source's item was dropped by a drop mode (counted, nothing allocated). */
  dropped(): void {
    this.drops++;
    if (this.metering) this.inst.queueDropped.add(1, this.attrs.base);
  }

  /**
   * Wraps an item step's executor with its span, duration and failure log, and the spans of
   * the nested pipelines it starts or ends. Returns `exec` itself when nothing is recorded per
   * step.
   * @param node - the step
   * @param exec - its executor
   * @returns the executor to run
   */
  item(node: ItemNode, exec: ItemExec): ItemExec {
    if (!this.perStep) return exec;
    const attrs = this.stepAttributes(node.pipeline, node.name);
    const spanName = `step ${node.name}`;
    const timed = this.tracing || this.metering;
    return (item) => {
      if (node.enter.length > 0) this.openScopes(item, node.enter);
      const start = timed ? performance.now() : 0;
      let span: Span | undefined;
      let ctx: Context | undefined;
      if (item.traced) {
        const parent = item.otel;
        span = this.tracer.startSpan(
          spanName,
          {
            attributes: {
              'pipeline.name': node.pipeline,
              'pipeline.step': node.name,
              'pipeline.correlation_id': item.correlationId,
            },
          },
          parent,
        );
        ctx = trace.setSpan(parent, span);
      }
      const ok = (): void => {
        this.endStep(span, start, attrs, undefined, false);
        if (node.exit.length > 0) this.closeScopes(item, node.exit.length, false);
      };
      const failed = (e: unknown): void => {
        failItem(item, node, e); // wrapped once, here: the engine's own failItem is then a no-op
        this.endStep(span, start, attrs, item.error, true);
        if (this.enabled(LogEvents.stepFailed)) {
          logEvent(item.logger, LogEvents.stepFailed, {
            pipeline: node.pipeline,
            step: node.name,
            correlationId: item.correlationId,
            err: item.error,
          });
        }
      };
      let out: unknown;
      try {
        out = exec(item, ctx);
      } catch (e) {
        failed(e);
        throw e;
      }
      if (isThenable(out)) {
        return out.then(
          (value) => {
            ok();
            return value;
          },
          (e: unknown) => {
            failed(e);
            throw e;
          },
        );
      }
      ok();
      return out;
    };
  }

  /**
   * Wraps a batch step's executor with the batch span (linked to each item's run span), the
   * batch size and duration, and the nested pipelines' spans of its items.
   * @param node - the batch step
   * @param exec - its executor
   * @returns the executor to run, taking the items
   */
  batch(node: BatchNode, exec: BatchExec): (items: readonly Item[]) => ReturnType<BatchExec> {
    const parent = this.parent;
    if (!this.perStep) return (items) => exec(items, parent, false);
    const attrs = this.stepAttributes(node.pipeline, node.name);
    const sizeAttrs = { 'pipeline.name': node.pipeline, 'pipeline.step': node.name };
    const spanName = `step ${node.name}`;
    return (items) => {
      if (node.enter.length > 0) for (const item of items) this.openScopes(item, node.enter);
      const start = performance.now();
      let span: Span | undefined;
      let ctx = parent;
      if (this.tracing) {
        const links: Link[] = [];
        for (const item of items) {
          if (item.span !== undefined) links.push({ context: item.span.spanContext() });
        }
        span = this.tracer.startSpan(
          spanName,
          {
            attributes: {
              'pipeline.name': node.pipeline,
              'pipeline.step': node.name,
              'pipeline.batch_size': items.length,
            },
            links,
          },
          parent,
        );
        ctx = trace.setSpan(parent, span);
      }
      if (this.metering) this.inst.batchSize.record(items.length, sizeAttrs);
      const ok = (values: ReadonlyArray<unknown>): void => {
        this.endStep(span, start, attrs, undefined, false);
        if (node.exit.length > 0) {
          items.forEach((item, i) => {
            if (!isItemFailure(values[i])) this.closeScopes(item, node.exit.length, false);
          });
        }
      };
      const failed = (e: unknown): void => this.endStep(span, start, attrs, e, true);
      let out: ReturnType<BatchExec>;
      try {
        out = exec(items, ctx, span !== undefined);
      } catch (e) {
        failed(e);
        throw e;
      }
      if (isThenable(out)) {
        return out.then(
          (values) => {
            ok(values);
            return values;
          },
          (e: unknown) => {
            failed(e);
            throw e;
          },
        );
      }
      ok(out);
      return out;
    };
  }

  /**
   * Logs that the session started.
   * @param fields - what to log
   */
  started(fields: Record<string, unknown>): void {
    const event = this.mode === 'run' ? LogEvents.pipelineStarted : LogEvents.streamStarted;
    if (this.enabled(event)) logEvent(this.logger, event, { pipeline: this.pipeline, ...fields });
  }

  /**
   * Logs how a `run` ended.
   * @param item - its item
   * @param durationMs - its duration
   * @param cancelled - whether it ended by cancellation
   */
  runEnded(item: Item, durationMs: number, cancelled: boolean): void {
    const event = cancelled
      ? LogEvents.pipelineCancelled
      : item.failed
        ? LogEvents.pipelineFailed
        : LogEvents.pipelineCompleted;
    if (!this.enabled(event)) return;
    logEvent(this.logger, event, {
      pipeline: this.pipeline,
      correlationId: item.correlationId,
      durationMs,
      ...(item.failed ? { err: item.error } : {}),
    });
  }

  /**
   * Logs that a stream completed.
   * @param items - items admitted
   */
  completed(items: number): void {
    if (!this.enabled(LogEvents.streamCompleted)) return;
    logEvent(this.logger, LogEvents.streamCompleted, {
      pipeline: this.pipeline,
      items,
      ...(this.drops > 0 ? { dropped: this.drops } : {}),
    });
  }

  /**
   * Logs that a stream failed.
   * @param error - why
   */
  failed(error: unknown): void {
    if (this.enabled(LogEvents.streamFailed)) {
      logEvent(this.logger, LogEvents.streamFailed, { pipeline: this.pipeline, err: error });
    }
  }

  /**
   * The session was torn down with items still in flight: their run spans end as cancelled
   * and they leave the in-flight count.
   */
  abandoned(): void {
    for (const item of this.live) {
      if (item.scopes !== undefined) {
        for (const scope of item.scopes) scope.span?.end();
        item.scopes = undefined;
      }
      item.span?.setAttribute('pipeline.outcome', 'cancelled');
      item.span?.end();
    }
    this.live.clear();
    if (this.metering && this.inFlight > 0) this.inst.inFlight.add(-this.inFlight, this.attrs.base);
    this.inFlight = 0;
  }

  private enabled(event: LogEvent): boolean {
    return this.logger.isLevelEnabled(event.level);
  }

  private stepAttributes(pipeline: string, step: string): OutcomeAttributes {
    const key = `${pipeline}\u0000${step}`;
    let a = this.stepAttrs.get(key);
    if (a === undefined) {
      const base = { 'pipeline.name': pipeline, 'pipeline.step': step };
      a = {
        ok: { ...base, 'pipeline.outcome': 'ok' },
        error: { ...base, 'pipeline.outcome': 'error' },
      };
      this.stepAttrs.set(key, a);
    }
    return a;
  }

  private endStep(
    span: Span | undefined,
    start: number,
    attrs: OutcomeAttributes,
    error: unknown,
    failed: boolean,
  ): void {
    if (span !== undefined) {
      span.setAttribute('pipeline.outcome', failed ? 'error' : 'ok');
      if (failed) fail(span, error);
      span.end();
    }
    if (this.metering) {
      this.inst.stepDuration.record(performance.now() - start, failed ? attrs.error : attrs.ok);
    }
  }

  /** Opens the spans of nested pipelines an item enters (children of its current context). */
  private openScopes(item: Item, scopes: readonly Scope[]): void {
    if (item.scopes === undefined) item.scopes = [];
    const open = item.scopes;
    for (const scope of scopes) {
      const outer = item.otel;
      let span: Span | undefined;
      if (item.traced) {
        span = this.tracer.startSpan(
          `step ${scope.name}`,
          {
            attributes: {
              'pipeline.name': scope.parent,
              'pipeline.step': scope.name,
              'pipeline.correlation_id': item.correlationId,
            },
          },
          outer,
        );
        item.otel = trace.setSpan(outer, span);
      }
      open.push(scopeState(scope, span, outer));
    }
  }

  /** Closes the innermost `n` nested pipelines of an item. */
  private closeScopes(item: Item, n: number, failed: boolean): void {
    const open = item.scopes;
    if (open === undefined) return;
    for (let i = 0; i < n && open.length > 0; i++) {
      const s = open.pop() as ScopeState;
      item.otel = s.outer;
      this.endStep(
        s.span,
        s.start,
        this.stepAttributes(s.scope.parent, s.scope.name),
        item.error,
        failed,
      );
    }
  }
}

function scopeState(scope: Scope, span: Span | undefined, outer: Context): ScopeState {
  return { scope, span, start: performance.now(), outer };
}

function fail(span: Span, error: unknown): void {
  if (error instanceof Error) span.recordException(error);
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: error instanceof Error ? error.message : String(error),
  });
}

/**
 * Whether spans would go nowhere: the default tracer with no global provider registered.
 * (A tracer the caller passes in is assumed to record.)
 */
function isNoopTracer(options: TelemetryOptions): boolean {
  if (options.tracer !== undefined && !(options.tracer instanceof ProxyTracer)) return false;
  const provider = trace.getTracerProvider();
  return (
    provider instanceof ProxyTracerProvider &&
    provider.getDelegateTracer(INSTRUMENTATION_NAME) === undefined
  );
}

let noopCounter: unknown;

/** Whether an instrument is the API's no-op (no meter provider registered). */
function isNoopInstrument(instrument: object): boolean {
  noopCounter ??= createNoopMeter().createCounter('noop');
  return instrument.constructor === (noopCounter as object).constructor;
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    (typeof v === 'object' || typeof v === 'function') &&
    v !== null &&
    typeof (v as { then?: unknown }).then === 'function'
  );
}
