/**
 * The catalog of every metric instrument the library creates: one place for names, units,
 * descriptions and attributes, read by the code that creates the instruments, by the README's
 * table, and by the tests that check the dashboard and the alert rules.
 *
 * @module
 */

/**
 * The kind of an instrument: `counter` (monotonic sum), `updowncounter` (a sum that goes up
 * and down), `histogram`, `gauge` (an observable gauge read when the meter collects), and
 * `observable-updowncounter` (a sum read when the meter collects).
 *
 * @example
 * ```ts
 * import { METRICS, type MetricKind } from '@hartonomous/pipelines';
 * const kind: MetricKind = METRICS.stepDuration.kind; // 'histogram'
 * ```
 */
export type MetricKind =
  | 'counter'
  | 'updowncounter'
  | 'histogram'
  | 'gauge'
  | 'observable-updowncounter';

/**
 * One instrument of the catalog.
 *
 * @example
 * ```ts
 * import { METRICS, type MetricSpec } from '@hartonomous/pipelines';
 * const spec: MetricSpec = METRICS.outboxLag;
 * console.log(spec.name, spec.unit); // hartonomous.outbox.lag s
 * ```
 */
export interface MetricSpec {
  /** The OpenTelemetry instrument name. */
  readonly name: string;
  /** The instrument kind. */
  readonly kind: MetricKind;
  /** The UCUM unit (`s`, `{item}`, ...). */
  readonly unit: string;
  /** What it measures. */
  readonly description: string;
  /** The attributes its data points carry (some only on some points, e.g. `error.type`). */
  readonly attributes: readonly string[];
  /** Explicit histogram bucket boundaries, for histograms. */
  readonly buckets?: readonly number[];
}

/**
 * The prefix of every metric the library names itself. Metrics that an OpenTelemetry
 * semantic convention defines keep the convention's name (`messaging.*`, `db.client.*`,
 * `gen_ai.*`).
 *
 * @example
 * ```ts
 * import { METRIC_PREFIX } from '@hartonomous/pipelines';
 * console.log(`${METRIC_PREFIX}pipeline.step.duration`);
 * ```
 */
export const METRIC_PREFIX = 'hartonomous.';

/** Duration buckets in seconds: OpenTelemetry's recommended boundaries for durations. */
const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
/** Batch-size buckets. */
const SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

const PIPELINE = ['pipeline.name', 'pipeline.outcome'] as const;
const MESSAGING = ['messaging.system', 'messaging.destination.name'] as const;

const spec = <S extends MetricSpec>(s: S): S => s;

/**
 * The catalog itself, with literal kinds (the instruments are typed from it).
 * @internal
 */
export const CATALOG = {
  // ---- pipelines (core) -----------------------------------------------------------------
  itemsProcessed: spec({
    name: 'hartonomous.pipeline.items.processed',
    kind: 'counter',
    unit: '{item}',
    description: 'Items a pipeline finished successfully',
    attributes: PIPELINE,
  }),
  itemsFailed: spec({
    name: 'hartonomous.pipeline.items.failed',
    kind: 'counter',
    unit: '{item}',
    description: 'Items a pipeline finished with an error',
    attributes: PIPELINE,
  }),
  stepDuration: spec({
    name: 'hartonomous.pipeline.step.duration',
    kind: 'histogram',
    unit: 's',
    description: 'Duration of one step for one item (or one batch)',
    attributes: ['pipeline.name', 'pipeline.step', 'pipeline.outcome'],
    buckets: SECONDS,
  }),
  runDuration: spec({
    name: 'hartonomous.pipeline.run.duration',
    kind: 'histogram',
    unit: 's',
    description: 'Duration of one item through a whole pipeline',
    attributes: PIPELINE,
    buckets: SECONDS,
  }),
  inFlight: spec({
    name: 'hartonomous.pipeline.items.in_flight',
    kind: 'updowncounter',
    unit: '{item}',
    description: 'Items read from a source and not yet finished',
    attributes: ['pipeline.name'],
  }),
  batchSize: spec({
    name: 'hartonomous.batch.size',
    kind: 'histogram',
    unit: '{item}',
    description: 'Items per batch (a batch step, or the batch operator)',
    attributes: ['pipeline.name', 'pipeline.step', 'batch.name'],
    buckets: SIZES,
  }),
  // ---- operators and flow ---------------------------------------------------------------
  retryAttempts: spec({
    name: 'hartonomous.retry.attempts',
    kind: 'counter',
    unit: '{attempt}',
    description: 'Retries scheduled by the retry operator',
    attributes: ['retry.name'],
  }),
  timeouts: spec({
    name: 'hartonomous.timeouts',
    kind: 'counter',
    unit: '{timeout}',
    description: 'Work cancelled by the timeout operator',
    attributes: ['timeout.label', 'timeout.kind'],
  }),
  breakerTransitions: spec({
    name: 'hartonomous.circuit_breaker.transitions',
    kind: 'counter',
    unit: '{transition}',
    description: 'Circuit breaker state changes',
    attributes: ['circuit_breaker.name', 'circuit_breaker.from', 'circuit_breaker.to'],
  }),
  breakerState: spec({
    name: 'hartonomous.circuit_breaker.state',
    kind: 'updowncounter',
    unit: '{breaker}',
    description:
      'Breakers in each state: 1 on the current state of a breaker, 0 on the others (sum by name)',
    attributes: ['circuit_breaker.name', 'circuit_breaker.state'],
  }),
  bulkheadQueueDepth: spec({
    name: 'hartonomous.bulkhead.queued',
    kind: 'updowncounter',
    unit: '{call}',
    description: 'Calls waiting for a bulkhead slot',
    attributes: ['bulkhead.name'],
  }),
  bulkheadRejections: spec({
    name: 'hartonomous.bulkhead.rejections',
    kind: 'counter',
    unit: '{call}',
    description: 'Calls rejected by a full bulkhead',
    attributes: ['bulkhead.name'],
  }),
  rateLimitWaits: spec({
    name: 'hartonomous.rate_limit.waits',
    kind: 'counter',
    unit: '{call}',
    description: 'Calls that waited for a rate-limit token',
    attributes: ['rate_limiter.name'],
  }),
  rateLimitRejections: spec({
    name: 'hartonomous.rate_limit.rejections',
    kind: 'counter',
    unit: '{call}',
    description: 'Calls rejected by a rate limiter',
    attributes: ['rate_limiter.name'],
  }),
  hedgeAttempts: spec({
    name: 'hartonomous.hedge.attempts',
    kind: 'counter',
    unit: '{attempt}',
    description: 'Extra (hedged) attempts started by the hedge operator',
    attributes: ['hedge.name'],
  }),
  fallbacks: spec({
    name: 'hartonomous.fallbacks',
    kind: 'counter',
    unit: '{call}',
    description: 'Errors replaced by the fallback operator',
    attributes: ['fallback.name'],
  }),
  queueSize: spec({
    name: 'hartonomous.queue.size',
    kind: 'updowncounter',
    unit: '{item}',
    description: 'Items held in a bounded queue',
    attributes: ['queue.name'],
  }),
  queueDropped: spec({
    name: 'hartonomous.queue.dropped',
    kind: 'counter',
    unit: '{item}',
    description: 'Items a bounded queue dropped by its full mode',
    attributes: ['queue.name'],
  }),
  // ---- workers and Service Bus (OpenTelemetry messaging conventions) --------------------
  workerInFlight: spec({
    name: 'hartonomous.worker.in_flight',
    kind: 'gauge',
    unit: '{item}',
    description: 'Items a worker read and has not finished',
    attributes: ['worker.name', 'messaging.destination.name'],
  }),
  workerQueueDepth: spec({
    name: 'hartonomous.worker.queue.depth',
    kind: 'gauge',
    unit: '{message}',
    description: 'Messages received by a worker source and waiting to be processed',
    attributes: ['worker.name', 'messaging.destination.name'],
  }),
  messagingConsumed: spec({
    name: 'messaging.client.consumed.messages',
    kind: 'counter',
    unit: '{message}',
    description: 'Messages a Service Bus worker received',
    attributes: [...MESSAGING, 'messaging.operation.name'],
  }),
  messagingProcessDuration: spec({
    name: 'messaging.process.duration',
    kind: 'histogram',
    unit: 's',
    description: 'Duration of processing one received message (its pipeline run)',
    attributes: [...MESSAGING, 'messaging.operation.name', 'error.type'],
    buckets: SECONDS,
  }),
  messagingOperationDuration: spec({
    name: 'messaging.client.operation.duration',
    kind: 'histogram',
    unit: 's',
    description:
      'Duration of a Service Bus client operation: settling a message (complete, abandon, dead_letter) or sending a batch (send); its count counts the operations',
    attributes: [
      ...MESSAGING,
      'messaging.operation.type',
      'messaging.operation.name',
      'messaging.servicebus.disposition_status',
      'error.type',
    ],
    buckets: SECONDS,
  }),
  messagingSent: spec({
    name: 'messaging.client.sent.messages',
    kind: 'counter',
    unit: '{message}',
    description: 'Messages a Service Bus publisher sent (or failed to send, with error.type)',
    attributes: [
      ...MESSAGING,
      'messaging.operation.type',
      'messaging.operation.name',
      'error.type',
    ],
  }),
  // ---- outbox ---------------------------------------------------------------------------
  outboxPublished: spec({
    name: 'hartonomous.outbox.published',
    kind: 'counter',
    unit: '{row}',
    description: 'Outbox rows an outbox relay published and marked',
    attributes: ['outbox.relay'],
  }),
  outboxPublishFailures: spec({
    name: 'hartonomous.outbox.publish.failures',
    kind: 'counter',
    unit: '{row}',
    description: 'Failed publishing attempts charged to outbox rows',
    attributes: ['outbox.relay'],
  }),
  outboxRowsDead: spec({
    name: 'hartonomous.outbox.dead_lettered',
    kind: 'counter',
    unit: '{row}',
    description: 'Outbox rows an outbox relay moved to the dead state',
    attributes: ['outbox.relay'],
  }),
  outboxLag: spec({
    name: 'hartonomous.outbox.lag',
    kind: 'gauge',
    unit: 's',
    description: 'Age of the oldest unpublished (pending) outbox row; 0 when none',
    attributes: ['outbox.relay'],
  }),
  outboxPending: spec({
    name: 'hartonomous.outbox.pending',
    kind: 'gauge',
    unit: '{row}',
    description: 'Outbox rows not yet published and not dead',
    attributes: ['outbox.relay'],
  }),
  outboxDead: spec({
    name: 'hartonomous.outbox.dead',
    kind: 'gauge',
    unit: '{row}',
    description: 'Outbox rows in the dead state (listDeadOutbox, replayDeadOutbox)',
    attributes: ['outbox.relay'],
  }),
  // ---- atoms, embeddings, inference -----------------------------------------------------
  atomsAdded: spec({
    name: 'hartonomous.atoms.added',
    kind: 'counter',
    unit: '{atom}',
    description: 'Atoms stored by the ingestion pipeline (new rows, each with its outbox row)',
    attributes: [],
  }),
  reembedAtoms: spec({
    name: 'hartonomous.reembed.atoms',
    kind: 'counter',
    unit: '{atom}',
    description:
      'Atoms a reembed run has read (state scanned), and of those the ones whose vector it wrote (embedded), found already written by another run (skipped) or failed (failed)',
    attributes: ['gen_ai.request.model', 'state'],
  }),
  embeddingDuration: spec({
    name: 'gen_ai.client.operation.duration',
    kind: 'histogram',
    unit: 's',
    description:
      'Duration of one request to an OpenAI-compatible embeddings server; failed requests carry error.type',
    attributes: [
      'gen_ai.operation.name',
      'gen_ai.provider.name',
      'gen_ai.request.model',
      'server.address',
      'server.port',
      'error.type',
    ],
    buckets: SECONDS,
  }),
  modelDuration: spec({
    name: 'hartonomous.inference.model.duration',
    kind: 'histogram',
    unit: 's',
    description: 'Duration of one model invocation of an ensemble (retries included)',
    attributes: ['inference.model', 'inference.outcome'],
    buckets: SECONDS,
  }),
  // ---- database pool (OpenTelemetry database conventions) -------------------------------
  dbConnectionCount: spec({
    name: 'db.client.connection.count',
    kind: 'observable-updowncounter',
    unit: '{connection}',
    description: 'Connections of the database pool, by state (idle, used)',
    attributes: ['db.client.connection.pool.name', 'db.client.connection.state'],
  }),
  dbConnectionMax: spec({
    name: 'db.client.connection.max',
    kind: 'observable-updowncounter',
    unit: '{connection}',
    description: 'Most connections the database pool opens',
    attributes: ['db.client.connection.pool.name'],
  }),
  dbConnectionPending: spec({
    name: 'db.client.connection.pending_requests',
    kind: 'observable-updowncounter',
    unit: '{request}',
    description: 'Callers waiting for a connection from the database pool',
    attributes: ['db.client.connection.pool.name'],
  }),
  // ---- rollout --------------------------------------------------------------------------
  rolloutItems: spec({
    name: 'hartonomous.rollout.items',
    kind: 'counter',
    unit: '{item}',
    description:
      'Items a rollout ran, by variant (stable, candidate) and outcome; shadow runs carry rollout.mode=shadow',
    attributes: ['rollout.name', 'rollout.variant', 'pipeline.outcome', 'rollout.mode'],
  }),
  rolloutDuration: spec({
    name: 'hartonomous.rollout.duration',
    kind: 'histogram',
    unit: 's',
    description: 'Duration of one item through the variant a rollout chose',
    attributes: ['rollout.name', 'rollout.variant', 'pipeline.outcome'],
    buckets: SECONDS,
  }),
  rolloutShadowMismatches: spec({
    name: 'hartonomous.rollout.shadow.mismatches',
    kind: 'counter',
    unit: '{item}',
    description: 'Shadow mode: items whose candidate result differed from the stable result',
    attributes: ['rollout.name'],
  }),
  rolloutShadowErrors: spec({
    name: 'hartonomous.rollout.shadow.errors',
    kind: 'counter',
    unit: '{item}',
    description: 'Shadow mode: items the candidate failed (never returned)',
    attributes: ['rollout.name'],
  }),
  rolloutFallbacks: spec({
    name: 'hartonomous.rollout.fallbacks',
    kind: 'counter',
    unit: '{item}',
    description: "Items routed to stable because the candidate's breaker was open",
    attributes: ['rollout.name'],
  }),
} as const satisfies Record<string, MetricSpec>;

/**
 * The key of an instrument in {@link METRICS}.
 *
 * @example
 * ```ts
 * import { METRICS, type MetricKey } from '@hartonomous/pipelines';
 * const key: MetricKey = 'outboxLag';
 * console.log(METRICS[key].name); // hartonomous.outbox.lag
 * ```
 */
export type MetricKey =
  | 'itemsProcessed'
  | 'itemsFailed'
  | 'stepDuration'
  | 'runDuration'
  | 'inFlight'
  | 'batchSize'
  | 'retryAttempts'
  | 'timeouts'
  | 'breakerTransitions'
  | 'breakerState'
  | 'bulkheadQueueDepth'
  | 'bulkheadRejections'
  | 'rateLimitWaits'
  | 'rateLimitRejections'
  | 'hedgeAttempts'
  | 'fallbacks'
  | 'queueSize'
  | 'queueDropped'
  | 'workerInFlight'
  | 'workerQueueDepth'
  | 'messagingConsumed'
  | 'messagingProcessDuration'
  | 'messagingOperationDuration'
  | 'messagingSent'
  | 'outboxPublished'
  | 'outboxPublishFailures'
  | 'outboxRowsDead'
  | 'outboxLag'
  | 'outboxPending'
  | 'outboxDead'
  | 'atomsAdded'
  | 'reembedAtoms'
  | 'embeddingDuration'
  | 'modelDuration'
  | 'dbConnectionCount'
  | 'dbConnectionMax'
  | 'dbConnectionPending'
  | 'rolloutItems'
  | 'rolloutDuration'
  | 'rolloutShadowMismatches'
  | 'rolloutShadowErrors'
  | 'rolloutFallbacks';

/** Compile-time check that {@link MetricKey} lists exactly the catalog's keys. */
type SameKeys<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const keysMatch: SameKeys<MetricKey, keyof typeof CATALOG> = true;
void keysMatch;

/**
 * Every metric instrument the library creates, keyed by the name the code uses for it.
 * Durations are in seconds (`s`), as the OpenTelemetry semantic conventions ask; the
 * Prometheus exporter turns `.` into `_` and adds `_total` to counters (see
 * {@link prometheusNames}).
 *
 * @example
 * ```ts
 * import { METRICS } from '@hartonomous/pipelines';
 *
 * for (const m of Object.values(METRICS)) console.log(m.name, m.kind, m.unit, m.attributes.join(', '));
 * ```
 */
export const METRICS: Readonly<Record<MetricKey, MetricSpec>> = CATALOG;

/**
 * The names a Prometheus scrape shows for an instrument: `.` becomes `_`, counters get
 * `_total`, histograms are `_bucket`, `_sum` and `_count` series (the exporter adds no unit
 * suffix).
 *
 * @param metric - an entry of {@link METRICS}
 * @returns the series names, e.g. `['hartonomous_outbox_published_total']`
 *
 * @example
 * ```ts
 * import { METRICS, prometheusNames } from '@hartonomous/pipelines';
 * prometheusNames(METRICS.stepDuration);
 * // ['hartonomous_pipeline_step_duration_bucket', '..._sum', '..._count']
 * ```
 */
export function prometheusNames(metric: MetricSpec): string[] {
  const base = metric.name.replace(/[^a-zA-Z0-9_:]/g, '_');
  if (metric.kind === 'counter') return [`${base}_total`];
  if (metric.kind === 'histogram') return [`${base}_bucket`, `${base}_sum`, `${base}_count`];
  return [base];
}
