import type { Logger } from 'pino';

/** A pino level name used by the catalog. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/**
 * One entry of the log catalog: a stable numeric id, a stable event name, a level and a fixed
 * message. Fields vary per call; the message never does, so logs can be grouped and alerted on
 * by `eventId`.
 */
export interface LogEvent {
  /** Stable numeric id; never reused for another meaning. */
  readonly id: number;
  /** Stable dotted name, e.g. `pipeline.completed`. */
  readonly name: string;
  /** Level the event is logged at. */
  readonly level: LogLevel;
  /** Fixed message text. */
  readonly message: string;
}

function event(id: number, name: string, level: LogLevel, message: string): LogEvent {
  return Object.freeze({ id, name, level, message });
}

/**
 * The catalog of every log event the library emits, by stable id. Ranges: 1000s pipeline
 * lifecycle, 1100s steps, 1200s resilience, 1300s flow and queues, 1400s atom ingestion,
 * 1500s outbox and Service Bus, 1600s worker, 1700s saga and inference, 1800s database.
 *
 * @example
 * ```ts
 * import { LogEvents } from '@hartonomous/pipelines';
 * console.log(LogEvents.pipelineCompleted.id); // 1002
 * ```
 */
export const LogEvents = {
  pipelineStarted: event(1001, 'pipeline.started', 'debug', 'pipeline started'),
  pipelineCompleted: event(1002, 'pipeline.completed', 'debug', 'pipeline completed'),
  pipelineFailed: event(1003, 'pipeline.failed', 'warn', 'pipeline failed'),
  pipelineCancelled: event(1004, 'pipeline.cancelled', 'info', 'pipeline cancelled'),
  streamStarted: event(1010, 'stream.started', 'info', 'stream started'),
  streamCompleted: event(1011, 'stream.completed', 'info', 'stream completed'),
  streamFailed: event(1012, 'stream.failed', 'error', 'stream failed'),
  streamItemFailed: event(1013, 'stream.item_failed', 'warn', 'stream item failed'),

  stepStarted: event(1101, 'step.started', 'trace', 'step started'),
  stepCompleted: event(1102, 'step.completed', 'trace', 'step completed'),
  stepFailed: event(1103, 'step.failed', 'warn', 'step failed'),

  retryScheduled: event(1201, 'retry.scheduled', 'info', 'retry scheduled'),
  retryGaveUp: event(1202, 'retry.gave_up', 'warn', 'retry gave up'),
  timeoutElapsed: event(1203, 'timeout.elapsed', 'warn', 'timeout elapsed'),
  breakerOpened: event(1204, 'breaker.opened', 'warn', 'circuit breaker opened'),
  breakerHalfOpened: event(1205, 'breaker.half_opened', 'info', 'circuit breaker half-open'),
  breakerClosed: event(1206, 'breaker.closed', 'info', 'circuit breaker closed'),
  bulkheadRejected: event(1207, 'bulkhead.rejected', 'warn', 'bulkhead rejected a call'),
  rateLimited: event(1208, 'rate_limit.rejected', 'warn', 'rate limit rejected a call'),
  fallbackUsed: event(1209, 'fallback.used', 'info', 'fallback used'),
  hedgeStarted: event(1210, 'hedge.started', 'debug', 'hedged attempt started'),

  queueFull: event(1301, 'queue.full', 'debug', 'queue full, writer waiting'),
  queueDropped: event(1302, 'queue.dropped', 'warn', 'queue dropped an item'),
  queueCompleted: event(1303, 'queue.completed', 'debug', 'queue completed'),
  batchFlushed: event(1304, 'batch.flushed', 'trace', 'batch flushed'),

  ingestStarted: event(1401, 'ingest.started', 'info', 'ingestion started'),
  ingestCompleted: event(1402, 'ingest.completed', 'info', 'ingestion completed'),
  ingestItemRejected: event(1403, 'ingest.item_rejected', 'warn', 'atom rejected'),
  ingestBatchDeduped: event(1404, 'ingest.batch_deduped', 'debug', 'batch deduplicated'),
  ingestBatchEmbedded: event(1405, 'ingest.batch_embedded', 'debug', 'batch embedded'),
  ingestBatchPersisted: event(1406, 'ingest.batch_persisted', 'debug', 'batch persisted'),
  embedRequestFailed: event(1407, 'embed.request_failed', 'warn', 'embedding request failed'),

  outboxPublished: event(1501, 'outbox.published', 'debug', 'outbox rows published'),
  outboxPublishFailed: event(1502, 'outbox.publish_failed', 'warn', 'outbox publish failed'),
  outboxDead: event(1503, 'outbox.dead', 'error', 'outbox row moved to dead state'),
  serviceBusSent: event(1504, 'servicebus.sent', 'debug', 'service bus batch sent'),
  serviceBusReceived: event(1505, 'servicebus.received', 'debug', 'service bus message received'),
  serviceBusDeadLettered: event(1506, 'servicebus.dead_lettered', 'warn', 'message dead-lettered'),
  serviceBusAbandoned: event(1507, 'servicebus.abandoned', 'info', 'message abandoned'),

  workerStarted: event(1601, 'worker.started', 'info', 'worker started'),
  workerStopping: event(1602, 'worker.stopping', 'info', 'worker stopping'),
  workerStopped: event(1603, 'worker.stopped', 'info', 'worker stopped'),
  workerDrainTimedOut: event(1604, 'worker.drain_timed_out', 'warn', 'worker drain timed out'),
  workerItemFailed: event(1605, 'worker.item_failed', 'warn', 'worker item failed'),

  sagaStarted: event(1701, 'saga.started', 'debug', 'saga started'),
  sagaCompleted: event(1702, 'saga.completed', 'debug', 'saga completed'),
  sagaCompensating: event(1703, 'saga.compensating', 'warn', 'saga compensating'),
  sagaCompensated: event(1704, 'saga.compensated', 'info', 'saga compensated'),
  sagaCompensationFailed: event(1705, 'saga.compensation_failed', 'error', 'compensation failed'),
  sagaResumed: event(1706, 'saga.resumed', 'info', 'saga resumed after restart'),
  modelInvoked: event(1710, 'inference.model_invoked', 'debug', 'model invoked'),
  modelFailed: event(1711, 'inference.model_failed', 'warn', 'model invocation failed'),
  ensembleAggregated: event(1712, 'inference.aggregated', 'debug', 'ensemble aggregated'),

  databaseOpened: event(1801, 'db.opened', 'info', 'database opened'),
  databaseMigrated: event(1802, 'db.migrated', 'info', 'database migrated'),
  databaseClosed: event(1803, 'db.closed', 'info', 'database closed'),
} as const satisfies Record<string, LogEvent>;

/** The name of an event in {@link LogEvents}. */
export type LogEventName = keyof typeof LogEvents;

/**
 * Logs one catalog event with its id, name and fixed message. Cheap when the level is off:
 * the fields object is built only if `fields` is a function and the level is enabled.
 *
 * @param logger - a pino logger (usually the context's child logger)
 * @param entry - the catalog entry
 * @param fields - structured fields, or a function returning them (evaluated lazily)
 *
 * @example
 * ```ts
 * import { logEvent, LogEvents } from '@hartonomous/pipelines';
 * import pino from 'pino';
 *
 * logEvent(pino(), LogEvents.retryScheduled, { attempt: 2, delayMs: 150 });
 * ```
 */
export function logEvent(
  logger: Logger,
  entry: LogEvent,
  fields?: Record<string, unknown> | (() => Record<string, unknown>),
): void {
  if (!logger.isLevelEnabled(entry.level)) return;
  const resolved = typeof fields === 'function' ? fields() : fields;
  logger[entry.level]({ eventId: entry.id, event: entry.name, ...resolved }, entry.message);
}
