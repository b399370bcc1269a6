import {
  type Attributes,
  type Counter,
  type Histogram,
  type Meter,
  metrics,
  type ObservableGauge,
  type ObservableUpDownCounter,
  type Tracer,
  trace,
  type UpDownCounter,
} from '@opentelemetry/api';
import { CATALOG, type MetricKind, type MetricSpec } from './metric-catalog.js';

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

type InstrumentOf<K extends MetricKind> = K extends 'counter'
  ? Counter
  : K extends 'updowncounter'
    ? UpDownCounter
    : K extends 'histogram'
      ? Histogram
      : K extends 'gauge'
        ? ObservableGauge
        : ObservableUpDownCounter;

/**
 * The library's instruments for one meter, created once per meter from the `METRICS`
 * catalog and cached. Histograms whose unit is seconds take **milliseconds** in `record`
 * (what `performance.now()` differences give) and export seconds.
 * @internal
 */
export type Instruments = {
  readonly [K in keyof typeof CATALOG]: InstrumentOf<(typeof CATALOG)[K]['kind']>;
};

const cache = new WeakMap<Meter, Instruments>();

/** A seconds histogram that is fed milliseconds. */
function millisecondsIn(histogram: Histogram): Histogram {
  return {
    record(value: number, attributes?: Attributes, ctx?: Parameters<Histogram['record']>[2]) {
      histogram.record(value / 1000, attributes, ctx);
    },
  };
}

function create(meter: Meter, spec: MetricSpec): unknown {
  const options = { description: spec.description, unit: spec.unit };
  switch (spec.kind) {
    case 'counter':
      return meter.createCounter(spec.name, options);
    case 'updowncounter':
      return meter.createUpDownCounter(spec.name, options);
    case 'histogram': {
      const h = meter.createHistogram(spec.name, {
        ...options,
        ...(spec.buckets ? { advice: { explicitBucketBoundaries: [...spec.buckets] } } : {}),
      });
      return spec.unit === 's' ? millisecondsIn(h) : h;
    }
    case 'gauge':
      return meter.createObservableGauge(spec.name, options);
    case 'observable-updowncounter':
      return meter.createObservableUpDownCounter(spec.name, options);
  }
}

/**
 * Instruments on the given meter (or the global one), created on first use.
 * @internal
 */
export function instruments(options?: TelemetryOptions): Instruments {
  const meter = meterOf(options);
  let found = cache.get(meter);
  if (!found) {
    const made: Record<string, unknown> = {};
    for (const [key, spec] of Object.entries(CATALOG)) made[key] = create(meter, spec);
    found = made as Instruments;
    cache.set(meter, found);
  }
  return found;
}
