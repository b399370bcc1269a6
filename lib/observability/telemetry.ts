import {
  type Counter,
  type Histogram,
  type Meter,
  metrics,
  type ObservableGauge,
  type Tracer,
  trace,
  type UpDownCounter,
} from '@opentelemetry/api';

/**
 * Instrumentation scope name used for the library's tracer and meter.
 *
 * @example
 * ```ts
 * import { INSTRUMENTATION_NAME } from '@hartonomous/pipelines';
 * // e.g. keep the library's spans in a view of their own
 * const isOurs = (scope: { name: string }) => scope.name === INSTRUMENTATION_NAME;
 * ```
 */
export const INSTRUMENTATION_NAME = '@hartonomous/pipelines';
/**
 * Instrumentation scope version (the package version).
 *
 * @example
 * ```ts
 * import { INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION } from '@hartonomous/pipelines';
 * console.log(`${INSTRUMENTATION_NAME}@${INSTRUMENTATION_VERSION}`);
 * ```
 */
export const INSTRUMENTATION_VERSION = '0.1.0';

/**
 * Where a component sends its spans and metrics. Both default to the global
 * OpenTelemetry API (a no-op until the application registers providers); the library itself
 * never registers anything.
 *
 * @example
 * ```ts
 * import { trace } from '@opentelemetry/api';
 * import type { TelemetryOptions } from '@hartonomous/pipelines';
 *
 * const telemetry: TelemetryOptions = { tracer: trace.getTracer('my-app') };
 * ```
 */
export interface TelemetryOptions {
  /** Tracer for spans. @default the global API's tracer named `@hartonomous/pipelines` */
  tracer?: Tracer;
  /** Meter for metrics. @default the global API's meter named `@hartonomous/pipelines` */
  meter?: Meter;
}

/**
 * The tracer to use: the one given, else the global API's (resolved at call time, so a
 * provider registered after import is honoured).
 * @internal
 */
export function tracerOf(options?: TelemetryOptions): Tracer {
  return options?.tracer ?? trace.getTracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
}

/**
 * The meter to use: the one given, else the global API's.
 * @internal
 */
export function meterOf(options?: TelemetryOptions): Meter {
  return options?.meter ?? metrics.getMeter(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
}

/**
 * The library's instruments for one meter, created once per meter and cached.
 * Names follow OpenTelemetry semantic-convention style (`pipeline.*`, `rx.*`).
 * @internal
 */
export interface Instruments {
  readonly itemsProcessed: Counter;
  readonly itemsFailed: Counter;
  readonly stepDuration: Histogram;
  readonly runDuration: Histogram;
  readonly inFlight: UpDownCounter;
  readonly retryAttempts: Counter;
  readonly breakerTransitions: Counter;
  readonly bulkheadQueueDepth: UpDownCounter;
  readonly bulkheadRejections: Counter;
  readonly rateLimitWaits: Counter;
  readonly queueSize: UpDownCounter;
  readonly queueDropped: Counter;
  readonly batchSize: Histogram;
  readonly timeouts: Counter;
  readonly rateLimitRejections: Counter;
  readonly hedgeAttempts: Counter;
  readonly fallbacks: Counter;
  readonly modelDuration: Histogram;
  readonly outboxPublished: Counter;
  readonly outboxPublishFailures: Counter;
  readonly outboxRowsDead: Counter;
  readonly outboxLag: ObservableGauge;
  readonly outboxPending: ObservableGauge;
  readonly outboxDead: ObservableGauge;
  readonly serviceBusSettled: Counter;
  readonly workerInFlight: ObservableGauge;
  readonly workerQueueDepth: ObservableGauge;
}

const cache = new WeakMap<Meter, Instruments>();

/**
 * Instruments on the given meter (or the global one), created on first use.
 * @internal
 */
export function instruments(options?: TelemetryOptions): Instruments {
  const meter = meterOf(options);
  let found = cache.get(meter);
  if (!found) {
    found = {
      itemsProcessed: meter.createCounter('pipeline.items.processed', {
        description: 'Items a pipeline finished successfully',
      }),
      itemsFailed: meter.createCounter('pipeline.items.failed', {
        description: 'Items a pipeline finished with an error',
      }),
      stepDuration: meter.createHistogram('pipeline.step.duration', {
        description: 'Duration of one step for one item (or one batch)',
        unit: 'ms',
      }),
      runDuration: meter.createHistogram('pipeline.run.duration', {
        description: 'Duration of one item through a whole pipeline',
        unit: 'ms',
      }),
      inFlight: meter.createUpDownCounter('pipeline.items.in_flight', {
        description: 'Items read from a source and not yet finished',
      }),
      retryAttempts: meter.createCounter('rx.retry.attempts', {
        description: 'Retries scheduled by the retry operator',
      }),
      breakerTransitions: meter.createCounter('rx.circuit_breaker.transitions', {
        description: 'Circuit breaker state changes',
      }),
      bulkheadQueueDepth: meter.createUpDownCounter('rx.bulkhead.queue_depth', {
        description: 'Calls waiting for a bulkhead slot',
      }),
      bulkheadRejections: meter.createCounter('rx.bulkhead.rejections', {
        description: 'Calls rejected by a full bulkhead',
      }),
      rateLimitWaits: meter.createCounter('rx.rate_limit.waits', {
        description: 'Calls that waited for a rate-limit token',
      }),
      queueSize: meter.createUpDownCounter('rx.queue.size', {
        description: 'Items held in a bounded queue',
      }),
      queueDropped: meter.createCounter('rx.queue.dropped', {
        description: 'Items a bounded queue dropped by its full mode',
      }),
      batchSize: meter.createHistogram('rx.batch.size', {
        description: 'Items per emitted batch',
      }),
      timeouts: meter.createCounter('rx.timeouts', {
        description: 'Work cancelled by the timeout operator',
      }),
      rateLimitRejections: meter.createCounter('rx.rate_limit.rejections', {
        description: 'Calls rejected by a rate limiter',
      }),
      hedgeAttempts: meter.createCounter('rx.hedge.attempts', {
        description: 'Extra (hedged) attempts started by the hedge operator',
      }),
      fallbacks: meter.createCounter('rx.fallbacks', {
        description: 'Errors replaced by the fallback operator',
      }),
      outboxPublished: meter.createCounter('outbox.published', {
        description: 'Outbox rows an outbox relay published and marked',
      }),
      outboxPublishFailures: meter.createCounter('outbox.publish.failures', {
        description: 'Failed publishing attempts charged to outbox rows',
      }),
      outboxRowsDead: meter.createCounter('outbox.rows.dead', {
        description: 'Outbox rows an outbox relay moved to the dead state',
      }),
      outboxLag: meter.createObservableGauge('outbox.lag', {
        description: 'Age of the oldest unpublished (pending) outbox row; 0 when none',
        unit: 'ms',
      }),
      outboxPending: meter.createObservableGauge('outbox.pending', {
        description: 'Outbox rows not yet published and not dead',
      }),
      outboxDead: meter.createObservableGauge('outbox.dead', {
        description: 'Outbox rows in the dead state (listDeadOutbox, replayDeadOutbox)',
      }),
      serviceBusSettled: meter.createCounter('servicebus.messages.settled', {
        description: 'Service Bus messages settled by a worker, by action',
      }),
      workerInFlight: meter.createObservableGauge('worker.in_flight', {
        description: 'Items a worker read and has not finished',
      }),
      workerQueueDepth: meter.createObservableGauge('worker.queue_depth', {
        description: 'Items received by a worker source and waiting to be processed',
      }),
      modelDuration: meter.createHistogram('inference.model.duration', {
        description: 'Duration of one model invocation of an ensemble (retries included)',
        unit: 'ms',
      }),
    };
    cache.set(meter, found);
  }
  return found;
}
