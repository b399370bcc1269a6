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
 * 1500s outbox and Service Bus, 1600s worker, 1700s saga and inference, 1800s database, 1900s rollout, 2000s documents.
 *
 * @example
 * ```ts
 * import { LogEvents } from '@hartonomous/pipelines';
 * console.log(LogEvents.pipelineCompleted.id); // 1002
 * ```
 */
export const LogEvents = {
  /** `1001` `pipeline.started` (debug): pipeline started. */
  pipelineStarted: event(1001, 'pipeline.started', 'debug', 'pipeline started'),
  /** `1002` `pipeline.completed` (debug): pipeline completed. */
  pipelineCompleted: event(1002, 'pipeline.completed', 'debug', 'pipeline completed'),
  /** `1003` `pipeline.failed` (warn): pipeline failed. */
  pipelineFailed: event(1003, 'pipeline.failed', 'warn', 'pipeline failed'),
  /** `1004` `pipeline.cancelled` (info): pipeline cancelled. */
  pipelineCancelled: event(1004, 'pipeline.cancelled', 'info', 'pipeline cancelled'),
  /** `1010` `stream.started` (info): stream started. */
  streamStarted: event(1010, 'stream.started', 'info', 'stream started'),
  /** `1011` `stream.completed` (info): stream completed. */
  streamCompleted: event(1011, 'stream.completed', 'info', 'stream completed'),
  /** `1012` `stream.failed` (error): stream failed. */
  streamFailed: event(1012, 'stream.failed', 'error', 'stream failed'),
  /** `1013` `stream.item_failed` (warn): stream item failed. */
  streamItemFailed: event(1013, 'stream.item_failed', 'warn', 'stream item failed'),

  /** `1101` `step.started` (trace): step started. */
  stepStarted: event(1101, 'step.started', 'trace', 'step started'),
  /** `1102` `step.completed` (trace): step completed. */
  stepCompleted: event(1102, 'step.completed', 'trace', 'step completed'),
  /** `1103` `step.failed` (warn): step failed. */
  stepFailed: event(1103, 'step.failed', 'warn', 'step failed'),

  /** `1201` `retry.scheduled` (info): retry scheduled. */
  retryScheduled: event(1201, 'retry.scheduled', 'info', 'retry scheduled'),
  /** `1202` `retry.gave_up` (warn): retry gave up. */
  retryGaveUp: event(1202, 'retry.gave_up', 'warn', 'retry gave up'),
  /** `1203` `timeout.elapsed` (warn): timeout elapsed. */
  timeoutElapsed: event(1203, 'timeout.elapsed', 'warn', 'timeout elapsed'),
  /** `1204` `breaker.opened` (warn): circuit breaker opened. */
  breakerOpened: event(1204, 'breaker.opened', 'warn', 'circuit breaker opened'),
  /** `1205` `breaker.half_opened` (info): circuit breaker half-open. */
  breakerHalfOpened: event(1205, 'breaker.half_opened', 'info', 'circuit breaker half-open'),
  /** `1206` `breaker.closed` (info): circuit breaker closed. */
  breakerClosed: event(1206, 'breaker.closed', 'info', 'circuit breaker closed'),
  /** `1207` `bulkhead.rejected` (warn): bulkhead rejected a call. */
  bulkheadRejected: event(1207, 'bulkhead.rejected', 'warn', 'bulkhead rejected a call'),
  /** `1208` `rate_limit.rejected` (warn): rate limit rejected a call. */
  rateLimited: event(1208, 'rate_limit.rejected', 'warn', 'rate limit rejected a call'),
  /** `1209` `fallback.used` (info): fallback used. */
  fallbackUsed: event(1209, 'fallback.used', 'info', 'fallback used'),
  /** `1210` `hedge.started` (debug): hedged attempt started. */
  hedgeStarted: event(1210, 'hedge.started', 'debug', 'hedged attempt started'),

  /** `1301` `queue.full` (debug): queue full, writer waiting. */
  queueFull: event(1301, 'queue.full', 'debug', 'queue full, writer waiting'),
  /** `1302` `queue.dropped` (warn): queue dropped an item. */
  queueDropped: event(1302, 'queue.dropped', 'warn', 'queue dropped an item'),
  /** `1303` `queue.completed` (debug): queue completed. */
  queueCompleted: event(1303, 'queue.completed', 'debug', 'queue completed'),
  /** `1304` `batch.flushed` (trace): batch flushed. */
  batchFlushed: event(1304, 'batch.flushed', 'trace', 'batch flushed'),

  /** `1401` `ingest.started` (info): ingestion started. */
  ingestStarted: event(1401, 'ingest.started', 'info', 'ingestion started'),
  /** `1402` `ingest.completed` (info): ingestion completed. */
  ingestCompleted: event(1402, 'ingest.completed', 'info', 'ingestion completed'),
  /** `1403` `ingest.item_rejected` (warn): atom rejected. */
  ingestItemRejected: event(1403, 'ingest.item_rejected', 'warn', 'atom rejected'),
  /** `1404` `ingest.batch_deduped` (debug): batch deduplicated. */
  ingestBatchDeduped: event(1404, 'ingest.batch_deduped', 'debug', 'batch deduplicated'),
  /** `1405` `ingest.batch_embedded` (debug): batch embedded. */
  ingestBatchEmbedded: event(1405, 'ingest.batch_embedded', 'debug', 'batch embedded'),
  /** `1406` `ingest.batch_persisted` (debug): batch persisted. */
  ingestBatchPersisted: event(1406, 'ingest.batch_persisted', 'debug', 'batch persisted'),
  /** `1407` `embed.request_failed` (warn): embedding request failed. */
  embedRequestFailed: event(1407, 'embed.request_failed', 'warn', 'embedding request failed'),
  /** `1420` `embed.vectors_rejected` (warn): some inputs got an unusable vector (only they fail). */
  embedVectorsRejected: event(1420, 'embed.vectors_rejected', 'warn', 'embedding vectors rejected'),
  /** `1430` `embed.encoding_fallback` (info): the embeddings server rejected `encoding_format`; floats from now on. */
  embedEncodingFallback: event(
    1430,
    'embed.encoding_fallback',
    'info',
    'embeddings server rejected encoding_format; asking for floats',
  ),

  /** `1501` `outbox.published` (debug): outbox rows published. */
  outboxPublished: event(1501, 'outbox.published', 'debug', 'outbox rows published'),
  /** `1502` `outbox.publish_failed` (warn): outbox publish failed. */
  outboxPublishFailed: event(1502, 'outbox.publish_failed', 'warn', 'outbox publish failed'),
  /** `1503` `outbox.dead` (error): outbox row moved to dead state. */
  outboxDead: event(1503, 'outbox.dead', 'error', 'outbox row moved to dead state'),
  /** `1504` `servicebus.sent` (debug): service bus batch sent. */
  serviceBusSent: event(1504, 'servicebus.sent', 'debug', 'service bus batch sent'),
  /** `1505` `servicebus.received` (debug): service bus message received. */
  serviceBusReceived: event(1505, 'servicebus.received', 'debug', 'service bus message received'),
  /** `1506` `servicebus.dead_lettered` (warn): message dead-lettered. */
  serviceBusDeadLettered: event(1506, 'servicebus.dead_lettered', 'warn', 'message dead-lettered'),
  /** `1507` `servicebus.abandoned` (info): message abandoned. */
  serviceBusAbandoned: event(1507, 'servicebus.abandoned', 'info', 'message abandoned'),

  /** `1601` `worker.started` (info): worker started. */
  workerStarted: event(1601, 'worker.started', 'info', 'worker started'),
  /** `1602` `worker.stopping` (info): worker stopping. */
  workerStopping: event(1602, 'worker.stopping', 'info', 'worker stopping'),
  /** `1603` `worker.stopped` (info): worker stopped. */
  workerStopped: event(1603, 'worker.stopped', 'info', 'worker stopped'),
  /** `1604` `worker.drain_timed_out` (warn): worker drain timed out. */
  workerDrainTimedOut: event(1604, 'worker.drain_timed_out', 'warn', 'worker drain timed out'),
  /** `1605` `worker.item_failed` (warn): worker item failed. */
  workerItemFailed: event(1605, 'worker.item_failed', 'warn', 'worker item failed'),

  /** `1701` `saga.started` (debug): saga started. */
  sagaStarted: event(1701, 'saga.started', 'debug', 'saga started'),
  /** `1702` `saga.completed` (debug): saga completed. */
  sagaCompleted: event(1702, 'saga.completed', 'debug', 'saga completed'),
  /** `1703` `saga.compensating` (warn): saga compensating. */
  sagaCompensating: event(1703, 'saga.compensating', 'warn', 'saga compensating'),
  /** `1704` `saga.compensated` (info): saga compensated. */
  sagaCompensated: event(1704, 'saga.compensated', 'info', 'saga compensated'),
  /** `1705` `saga.compensation_failed` (error): compensation failed. */
  sagaCompensationFailed: event(1705, 'saga.compensation_failed', 'error', 'compensation failed'),
  /** `1706` `saga.resumed` (info): saga resumed after restart. */
  sagaResumed: event(1706, 'saga.resumed', 'info', 'saga resumed after restart'),
  /** `1707` `saga.log_write_failed` (error): saga log write failed. */
  sagaLogWriteFailed: event(1707, 'saga.log_write_failed', 'error', 'saga log write failed'),
  /** `1708` `saga.ownership_lost` (warn): another process took the saga over. */
  sagaOwnershipLost: event(
    1708,
    'saga.ownership_lost',
    'warn',
    'saga taken over by another process',
  ),
  /** `1709` `saga.heartbeat_failed` (warn): saga heartbeat failed. */
  sagaHeartbeatFailed: event(1709, 'saga.heartbeat_failed', 'warn', 'saga heartbeat failed'),
  /** `1720` `saga.recovery_started` (info): saga recovery service started. */
  sagaRecoveryStarted: event(1720, 'saga.recovery_started', 'info', 'saga recovery started'),
  /** `1721` `saga.recovered` (info): an abandoned saga was finished by recovery. */
  sagaRecovered: event(1721, 'saga.recovered', 'info', 'abandoned saga recovered'),
  /** `1722` `saga.recovery_failed` (error): a recovery pass, or the recovery of one saga (`saga`, `sagaId`), failed. */
  sagaRecoveryFailed: event(1722, 'saga.recovery_failed', 'error', 'saga recovery failed'),
  /** `1723` `saga.recovery_stopped` (info): saga recovery service stopped. */
  sagaRecoveryStopped: event(1723, 'saga.recovery_stopped', 'info', 'saga recovery stopped'),
  /** `1724` `saga.purged` (info): finished sagas purged from the saga log. */
  sagaPurged: event(1724, 'saga.purged', 'info', 'finished sagas purged'),
  /** `1710` `inference.model_invoked` (debug): model invoked. */
  modelInvoked: event(1710, 'inference.model_invoked', 'debug', 'model invoked'),
  /** `1711` `inference.model_failed` (warn): model invocation failed. */
  modelFailed: event(1711, 'inference.model_failed', 'warn', 'model invocation failed'),
  /** `1712` `inference.aggregated` (debug): ensemble aggregated. */
  ensembleAggregated: event(1712, 'inference.aggregated', 'debug', 'ensemble aggregated'),

  /** `1801` `db.opened` (info): database opened. */
  databaseOpened: event(1801, 'db.opened', 'info', 'database opened'),
  /** `1802` `db.migrated` (info): database migrated. */
  databaseMigrated: event(1802, 'db.migrated', 'info', 'database migrated'),
  /** `1803` `db.closed` (info): database closed. */
  databaseClosed: event(1803, 'db.closed', 'info', 'database closed'),
  /** `1901` `rollout.shadow_mismatch` (warn): shadow candidate result differs from stable. */
  rolloutShadowMismatch: event(
    1901,
    'rollout.shadow_mismatch',
    'warn',
    'shadow candidate result differs from stable',
  ),
  /** `1902` `rollout.shadow_failed` (warn): shadow candidate failed. */
  rolloutShadowFailed: event(1902, 'rollout.shadow_failed', 'warn', 'shadow candidate failed'),
  /** `1903` `rollout.fell_back` (info): candidate breaker open, item routed to stable. */
  rolloutFellBack: event(
    1903,
    'rollout.fell_back',
    'info',
    'candidate breaker open, item routed to stable',
  ),
  /** `1904` `rollout.flag_invalid` (warn): rollout flag value is not a percentage. */
  rolloutFlagInvalid: event(
    1904,
    'rollout.flag_invalid',
    'warn',
    'rollout flag value is not a percentage',
  ),

  /** `2001` `documents.sync_started` (info): document sync started. */
  documentsSyncStarted: event(2001, 'documents.sync_started', 'info', 'document sync started'),
  /** `2002` `documents.sync_completed` (info): document sync completed. */
  documentsSyncCompleted: event(
    2002,
    'documents.sync_completed',
    'info',
    'document sync completed',
  ),
  /** `2003` `documents.document_rejected` (warn): document rejected. */
  documentRejected: event(2003, 'documents.document_rejected', 'warn', 'document rejected'),
  /** `2004` `documents.write_retried` (debug): document batch written again after a race. */
  documentWriteRetried: event(
    2004,
    'documents.write_retried',
    'debug',
    'document batch written again after a race',
  ),
  /** `2005` `documents.deleted` (info): documents deleted. */
  documentsDeleted: event(2005, 'documents.deleted', 'info', 'documents deleted'),
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
