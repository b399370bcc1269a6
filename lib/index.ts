/**
 * `@hartonomous/pipelines`: typed, back-pressured stream pipelines on RxJS.
 *
 * The core entry point loads neither MikroORM nor Azure: the database, atom ingestion,
 * inference and Service Bus parts live behind subpath exports
 * (`@hartonomous/pipelines/postgres`, `/atoms`, `/inference`, `/service-bus`).
 *
 * @packageDocumentation
 */

// Publishing (broker-neutral; the Azure implementation is in '@hartonomous/pipelines/service-bus')
export {
  isMessageTooLargeError,
  isPublisherClosedError,
  isPublishFailedError,
  MessageTooLargeError,
  type OutgoingMessage,
  type Publisher,
  PublisherClosedError,
  PublishFailedError,
} from './broker/publisher.js';
// Core: steps, pipelines, context, outcomes
export {
  type BatchContext,
  type ContextBag,
  type ContextKey,
  contextBag,
  contextKey,
  type StepContext,
} from './core/context.js';
export {
  BufferOverflowError,
  CancelledError,
  isBufferOverflowError,
  isCancelledError,
  isPipelineError,
  isStepError,
  PipelineError,
  StepError,
} from './core/errors.js';
export { fromWork, type Work } from './core/from-work.js';
export type { PipelineOptions, RunOptions, StreamOptions } from './core/options.js';
export type { Failure, Outcome, Success } from './core/outcome.js';
export { type Pipeline, pipeline } from './core/pipeline.js';
export type { OverflowPolicy, Source } from './core/source.js';
export {
  type AnyStep,
  type BatchFn,
  type BatchStepOptions,
  batchStep,
  type ItemFailure,
  isItemFailure,
  itemFailure,
  type Step,
  type StepFn,
  type StepInput,
  type StepOptions,
  type StepOutput,
  step,
} from './core/step.js';
export {
  type BoundedQueue,
  type BoundedQueueOptions,
  type BoundedQueueSnapshot,
  boundedQueue,
  isQueueClosedError,
  QueueClosedError,
  type TryReadResult,
} from './flow/bounded-queue.js';
export { injectTraceContext } from './http/trace-context.js';
// Observability
export {
  type LogEvent,
  type LogEventName,
  LogEvents,
  type LogLevel,
  logEvent,
} from './observability/log-events.js';
export {
  METRIC_PREFIX,
  METRICS,
  type MetricKey,
  type MetricKind,
  type MetricSpec,
  prometheusNames,
} from './observability/metric-catalog.js';
export {
  INSTRUMENTATION_NAME,
  INSTRUMENTATION_VERSION,
  type TelemetryOptions,
} from './observability/telemetry.js';
// Resilience operators
export { type BackoffOptions, type BackoffStrategy, backoff } from './operators/backoff.js';
// Flow control
export { type BatchOptions, batch } from './operators/batch.js';
export {
  type Bulkhead,
  type BulkheadEvent,
  type BulkheadOptions,
  BulkheadRejectedError,
  type BulkheadTicket,
  bulkhead,
  createBulkhead,
  isBulkheadRejectedError,
} from './operators/bulkhead.js';
export {
  type BreakDurationContext,
  type BreakerStrategy,
  type BreakerWindowSnapshot,
  BrokenCircuitError,
  type CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitBreakerSnapshot,
  type CircuitBreakerTransition,
  type CircuitIsolation,
  type CircuitPermit,
  type CircuitState,
  circuitBreaker,
  createCircuitBreaker,
  IsolatedCircuitError,
  isBrokenCircuitError,
  isIsolatedCircuitError,
} from './operators/circuit-breaker.js';
export {
  type FallbackEvent,
  type FallbackOptions,
  type FallbackValue,
  fallback,
} from './operators/fallback.js';
export { type HedgeEvent, type HedgeOptions, hedge } from './operators/hedge.js';
export {
  type ConcurrentProject,
  type MapConcurrentOptions,
  mapConcurrent,
} from './operators/map-concurrent.js';
export { type ErrorClass, type ErrorFilter, policy } from './operators/policy.js';
export {
  createRateLimiter,
  isRateLimitedError,
  type RateLimitEvent,
  RateLimitedError,
  type RateLimiter,
  type RateLimiterOptions,
  type RateLimitReservation,
  rateLimit,
} from './operators/rate-limit.js';
export {
  createRetryBudget,
  isPermanentError,
  PermanentError,
  type RetryBudget,
  type RetryBudgetOptions,
  type RetryDelayContext,
  type RetryEvent,
  type RetryGiveUpReason,
  type RetryOptions,
  retry,
  retryAfterMs,
} from './operators/retry.js';
export {
  isTimeoutError,
  TimeoutError,
  type TimeoutEvent,
  type TimeoutKind,
  type TimeoutOptions,
  timeout,
} from './operators/timeout.js';
// Sagas
export {
  CompensationFailedError,
  type FailedCompensation,
  isCompensationFailedError,
  isSagaConflictError,
  isSagaFailedError,
  isSagaInterruptedError,
  SagaConflictError,
  SagaFailedError,
  SagaInterruptedError,
} from './saga/errors.js';
export type {
  SagaCompensatedEvent,
  SagaCompensatingEvent,
  SagaCompensationFailedEvent,
  SagaCompletedEvent,
  SagaEvent,
  SagaFailedEvent,
  SagaStepCompletedEvent,
} from './saga/events.js';
export type {
  SagaLog,
  SagaLogTransaction,
  SagaRecoveryDirection,
  SagaRef,
  SagaSnapshot,
  SagaSnapshotBase,
  SagaStatus,
  SagaStepSnapshot,
  SagaStepStatus,
  SerializedError,
} from './saga/log.js';
export { type MemorySagaLog, memorySagaLog } from './saga/memory-log.js';
export {
  type ResumeOutcome,
  type ResumeSagaOptions,
  resumeSaga,
  type SagaRegistry,
} from './saga/resume.js';
export { type Saga, saga } from './saga/saga.js';
export type {
  AnySagaStep,
  Compensation,
  CompensationContext,
  SagaAction,
  SagaCodec,
  SagaContext,
  SagaOperatorOptions,
  SagaOptions,
  SagaRunOptions,
  SagaStartOptions,
  SagaStep,
  SagaStepBase,
} from './saga/types.js';

// Background worker
export {
  type ReadableSource,
  type StopOptions,
  type StopReport,
  type Worker,
  type WorkerHealth,
  type WorkerOptions,
  type WorkerState,
  worker,
} from './worker/worker.js';
