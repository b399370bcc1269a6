import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Meter, metrics, type Tracer, trace } from '@opentelemetry/api';
import { INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION } from './telemetry.js';

/**
 * Where metrics go: scraped from `/metrics` (`'prometheus'`), pushed to an OTLP endpoint
 * (`'otlp'`), or nowhere (`'none'`).
 *
 * @example
 * ```ts
 * import type { MetricsExporterKind } from '@hartonomous/pipelines/ops';
 * const kind: MetricsExporterKind = process.env.OTEL_EXPORTER_OTLP_ENDPOINT ? 'otlp' : 'prometheus';
 * ```
 */
export type MetricsExporterKind = 'prometheus' | 'otlp' | 'none';

/**
 * Options of {@link startTelemetry}. Every field defaults from the standard OpenTelemetry
 * environment variables of `env`.
 *
 * @example
 * ```ts
 * import type { StartTelemetryOptions } from '@hartonomous/pipelines/ops';
 *
 * const options: StartTelemetryOptions = { serviceName: 'atom-worker', metrics: 'prometheus' };
 * ```
 */
export interface StartTelemetryOptions {
  /** `service.name` of the resource. @default `OTEL_SERVICE_NAME`, else 'hartonomous' */
  serviceName?: string;
  /**
   * Where metrics go.
   * @default `OTEL_METRICS_EXPORTER` when it is `prometheus`, `otlp` or `none`; else `'otlp'`
   * when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; else `'prometheus'`
   */
  metrics?: MetricsExporterKind;
  /**
   * Whether spans are pushed over OTLP. @default true when `OTEL_TRACES_EXPORTER` is `otlp`,
   * or when it is unset and `OTEL_EXPORTER_OTLP_ENDPOINT` is set
   */
  traces?: boolean;
  /**
   * OTLP/HTTP base URL; `/v1/metrics` and `/v1/traces` are appended.
   * @default `OTEL_EXPORTER_OTLP_ENDPOINT`, else 'http://localhost:4318'
   */
  otlpEndpoint?: string;
  /** Headers of OTLP requests (e.g. an API key). @default parsed from `OTEL_EXPORTER_OTLP_HEADERS` */
  otlpHeaders?: Record<string, string>;
  /** Interval between OTLP metric pushes, in ms. @default `OTEL_METRIC_EXPORT_INTERVAL`, else 60_000 */
  exportIntervalMs?: number;
  /** More resource attributes. @default parsed from `OTEL_RESOURCE_ATTRIBUTES` */
  resourceAttributes?: Record<string, string>;
  /**
   * Register the providers as the global OpenTelemetry providers, so every component that
   * is given no `meter`/`tracer` reports to them. Register before creating components: the
   * global API hands out no-op meters until a provider is registered. @default true
   */
  global?: boolean;
  /** Environment read for defaults. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * The running OpenTelemetry SDK that {@link startTelemetry} set up.
 *
 * @example
 * ```ts
 * import { startTelemetry, type Telemetry } from '@hartonomous/pipelines/ops';
 * const telemetry: Telemetry = await startTelemetry({ global: false });
 * console.log(telemetry.metricsExporter);
 * await telemetry.shutdown();
 * ```
 */
export interface Telemetry {
  /** Where metrics go. */
  readonly metricsExporter: MetricsExporterKind;
  /** Whether spans are exported. */
  readonly tracesExported: boolean;
  /** The library's meter on this SDK: pass it as `meter` to components (or rely on `global`). */
  readonly meter: Meter;
  /** The library's tracer on this SDK (a no-op tracer when spans are not exported). */
  readonly tracer: Tracer;
  /**
   * Answers one Prometheus scrape (text exposition format); only with the `'prometheus'`
   * exporter. {@link serveOperations} mounts it on `/metrics`.
   */
  readonly handleMetrics?: (request: IncomingMessage, response: ServerResponse) => void;
  /**
   * Pushes what is buffered (OTLP) now.
   * @returns when done
   */
  forceFlush(): Promise<void>;
  /**
   * Flushes and stops the providers (and unregisters the global ones it registered).
   * Idempotent.
   * @returns when done
   */
  shutdown(): Promise<void>;
}

/** A `k=v,k2=v2` list (`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`). @internal */
export function parseKeyValueList(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!text) return out;
  for (const part of text.split(',')) {
    const at = part.indexOf('=');
    if (at <= 0) continue;
    out[decodeURIComponent(part.slice(0, at).trim())] = decodeURIComponent(
      part.slice(at + 1).trim(),
    );
  }
  return out;
}

/**
 * Starts the OpenTelemetry SDK for a process that runs the library: a meter provider whose
 * metrics are served for Prometheus to scrape (the default) or pushed over OTLP/HTTP when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and, with OTLP, a tracer provider whose spans are
 * pushed too. Durations are histograms in seconds with OpenTelemetry's recommended buckets.
 * The exporter packages are optional peer dependencies, loaded only for the exporter chosen:
 * `@opentelemetry/sdk-metrics`, `@opentelemetry/resources`, and
 * `@opentelemetry/exporter-prometheus` or `@opentelemetry/exporter-metrics-otlp-http` (plus
 * `@opentelemetry/sdk-trace-node` and `@opentelemetry/exporter-trace-otlp-http` for spans).
 *
 * Nothing is registered until you call it; the library itself never calls it.
 *
 * @param options - exporters, resource, globals; defaults from the `OTEL_*` environment
 * @returns the running SDK; call `shutdown()` before the process exits
 *
 * @example
 * ```ts
 * import { serveOperations, startTelemetry } from '@hartonomous/pipelines/ops';
 *
 * const telemetry = await startTelemetry({ serviceName: 'atom-worker' });
 * const ops = await serveOperations({ port: 9464, telemetry });
 * // ... create the workers, run ...
 * await ops.close();
 * await telemetry.shutdown();
 * ```
 * @see {@link serveOperations}
 */
export async function startTelemetry(options: StartTelemetryOptions = {}): Promise<Telemetry> {
  const env = options.env ?? process.env;
  const endpoint = options.otlpEndpoint ?? nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  const metricsKind: MetricsExporterKind =
    options.metrics ??
    exporterFromEnv(env.OTEL_METRICS_EXPORTER) ??
    (endpoint ? 'otlp' : 'prometheus');
  const tracesEnv = nonEmpty(env.OTEL_TRACES_EXPORTER);
  const traces = options.traces ?? (tracesEnv ? tracesEnv === 'otlp' : endpoint !== undefined);
  const base = (endpoint ?? 'http://localhost:4318').replace(/\/+$/, '');
  const headers = options.otlpHeaders ?? parseKeyValueList(env.OTEL_EXPORTER_OTLP_HEADERS);
  const intervalEnv = Number(env.OTEL_METRIC_EXPORT_INTERVAL);
  const exportIntervalMs =
    options.exportIntervalMs ??
    (Number.isInteger(intervalEnv) && intervalEnv > 0 ? intervalEnv : 60_000);
  if (!(Number.isInteger(exportIntervalMs) && exportIntervalMs > 0)) {
    throw new TypeError(
      `startTelemetry: exportIntervalMs must be a positive integer, got ${exportIntervalMs}`,
    );
  }
  const global = options.global ?? true;

  const { resourceFromAttributes, defaultResource } = await import('@opentelemetry/resources');
  const resource = defaultResource().merge(
    resourceFromAttributes({
      ...parseKeyValueList(env.OTEL_RESOURCE_ATTRIBUTES),
      ...options.resourceAttributes,
      'service.name':
        options.serviceName ?? nonEmpty(env.OTEL_SERVICE_NAME) ?? INSTRUMENTATION_NAME_SHORT,
    }),
  );

  const sdk = await import('@opentelemetry/sdk-metrics');
  let handleMetrics: Telemetry['handleMetrics'];
  const readers: InstanceType<typeof sdk.MetricReader>[] = [];
  if (metricsKind === 'prometheus') {
    const { PrometheusExporter } = await import('@opentelemetry/exporter-prometheus');
    const exporter = new PrometheusExporter({ preventServerStart: true });
    handleMetrics = (request, response) => exporter.getMetricsRequestHandler(request, response);
    readers.push(exporter);
  } else if (metricsKind === 'otlp') {
    const { OTLPMetricExporter } = await import('@opentelemetry/exporter-metrics-otlp-http');
    const exporter = new OTLPMetricExporter({ url: `${base}/v1/metrics`, headers });
    readers.push(
      new sdk.PeriodicExportingMetricReader({
        exporter,
        exportIntervalMillis: exportIntervalMs,
        exportTimeoutMillis: Math.min(30_000, exportIntervalMs),
      }),
    );
  }
  const meterProvider = new sdk.MeterProvider({ resource, readers });

  let tracerProvider:
    | {
        getTracer(name: string, version?: string): Tracer;
        forceFlush(): Promise<void>;
        shutdown(): Promise<void>;
      }
    | undefined;
  if (traces) {
    const { NodeTracerProvider, BatchSpanProcessor } = await import(
      '@opentelemetry/sdk-trace-node'
    );
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
    const provider = new NodeTracerProvider({
      resource,
      spanProcessors: [
        new BatchSpanProcessor(new OTLPTraceExporter({ url: `${base}/v1/traces`, headers })),
      ],
    });
    if (global) provider.register();
    tracerProvider = provider;
  }
  let registeredMeter = false;
  if (global) registeredMeter = metrics.setGlobalMeterProvider(meterProvider);

  let stopped: Promise<void> | undefined;
  return {
    metricsExporter: metricsKind,
    tracesExported: traces,
    meter: meterProvider.getMeter(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION),
    tracer: (tracerProvider ?? trace.getTracerProvider()).getTracer(
      INSTRUMENTATION_NAME,
      INSTRUMENTATION_VERSION,
    ),
    ...(handleMetrics ? { handleMetrics } : {}),
    async forceFlush() {
      await meterProvider.forceFlush();
      await tracerProvider?.forceFlush();
    },
    shutdown() {
      stopped ??= (async () => {
        try {
          await Promise.all([meterProvider.shutdown(), tracerProvider?.shutdown()]);
        } finally {
          if (registeredMeter) metrics.disable();
          if (tracerProvider && global) trace.disable();
        }
      })();
      return stopped;
    },
  };
}

/** `service.name` when none is configured. */
const INSTRUMENTATION_NAME_SHORT = 'hartonomous';

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function exporterFromEnv(value: string | undefined): MetricsExporterKind | undefined {
  const v = nonEmpty(value);
  return v === 'prometheus' || v === 'otlp' || v === 'none' ? v : undefined;
}
