import { type Attributes, type BatchObservableResult, trace } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { sleep } from '../core/abort.js';
import { isStepError } from '../core/errors.js';
import type { Outcome } from '../core/outcome.js';
import { type Pipeline, pipeline } from '../core/pipeline.js';
import { type Step, step } from '../core/step.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { silentLogger } from '../observability/logger.js';
import { instruments, meterOf, type TelemetryOptions } from '../observability/telemetry.js';
import { type BackoffOptions, backoffFunction } from '../operators/backoff.js';
import {
  type ReadableSource,
  type StopOptions,
  type StopReport,
  type WorkerHealth,
  type WorkerState,
  worker,
} from '../worker/worker.js';
import type { SettleAction, SettleOutcome } from './settle-by.js';
import type { ReceivedItem, ServiceBusSource } from './source.js';

/**
 * Name of the first step of a {@link serviceBusWorker}'s pipeline (it unwraps the message).
 *
 * @example
 * ```ts
 * import { RECEIVE_STEP } from '@hartonomous/pipelines/service-bus';
 * const failedOnReceive = (failedStep: string) => failedStep === RECEIVE_STEP;
 * ```
 */
export const RECEIVE_STEP = 'servicebus.receive';

/**
 * Options of {@link serviceBusWorker}.
 *
 * @typeParam T - message body type (the pipeline's input)
 * @typeParam O - pipeline output type
 *
 * @example
 * ```ts
 * import type { ServiceBusWorkerOptions } from '@hartonomous/pipelines/service-bus';
 *
 * const options: ServiceBusWorkerOptions<{ url: string }, number> = {
 *   source,
 *   pipeline: fetchAndIndex,
 *   concurrency: 16,
 *   drainTimeoutMs: 20_000,
 * };
 * ```
 */
export interface ServiceBusWorkerOptions<T, O> extends TelemetryOptions {
  /** The peekLock source to consume (closed by the worker's `stop()`). */
  source: ServiceBusSource<T>;
  /** The pipeline each message body goes through. */
  pipeline: Pipeline<T, O>;
  /** Name for logs, metrics and health. @default the pipeline's name */
  name?: string;
  /**
   * Most items in any one step at once (keep the source's `maxConcurrent` at least as large,
   * plus room for batching). @default 8
   */
  concurrency?: number;
  /** Items admitted beyond `concurrency` (see the worker's `buffer`). @default the stream default */
  buffer?: number;
  /**
   * Called after each message is settled, with the pipeline outcome (its `input` is the
   * message body), what was done with the message, and the message.
   * @default none
   */
  onSettled?: (
    outcome: Outcome<T, O>,
    action: SettleAction,
    item: ReceivedItem<T>,
  ) => void | PromiseLike<void>;
  /** Default drain timeout of `stop()`. @default 30_000 */
  drainTimeoutMs?: number;
  /**
   * Wait between attempts when receiving fails (the broker is unreachable); the worker keeps
   * trying until stopped. @default { strategy: 'exponential', baseMs: 500, maxMs: 30_000 }
   */
  receiveBackoff?: BackoffOptions;
  /** Logger for the worker's and the pipeline's events. @default a silent logger */
  logger?: Logger;
}

/** A health snapshot of a {@link ServiceBusWorker}. */
export interface ServiceBusWorkerHealth extends WorkerHealth {
  /** The queue consumed. */
  readonly queue: string;
  /** Messages locked and handed to the pipeline, not yet settled. */
  readonly locked: number;
  /** Messages completed (their work committed). */
  readonly completed: number;
  /** Messages abandoned (to be redelivered). */
  readonly abandoned: number;
  /**
   * Messages dead-lettered: on a permanent failure or the last allowed delivery, and by the
   * source before a message reached the pipeline (`DecodeFailed`, `MaxDeliveryCountExceeded`).
   */
  readonly deadLettered: number;
  /** Settle calls that failed (the lock was lost: the broker redelivers the message). */
  readonly settleFailures: number;
  /** Receive calls that failed (retried with `receiveBackoff`). */
  readonly receiveFailures: number;
  /** False while receiving fails (the broker is unreachable); true again after a receive succeeds. */
  readonly receiving: boolean;
}

/** What a {@link ServiceBusWorker.stop} did: the worker's report and the settle counts. */
export interface ServiceBusWorkerReport extends StopReport {
  /** Messages completed over the worker's life. */
  readonly completed: number;
  /** Messages abandoned over the worker's life (drain timeouts included). */
  readonly abandoned: number;
  /** Messages dead-lettered over the worker's life (also those that never reached the pipeline). */
  readonly deadLettered: number;
}

/**
 * A worker consuming a Service Bus queue through a pipeline. Create it with
 * {@link serviceBusWorker}.
 */
export interface ServiceBusWorker {
  /** Lifecycle state. */
  readonly state: WorkerState;
  /** Settles when the worker has stopped (by `stop`, or because the source was closed). */
  readonly done: Promise<StopReport>;
  /** Starts consuming. Idempotent while running; throws once stopped. */
  start(): void;
  /**
   * Stops receiving, lets in-flight messages finish and settle for up to `drainTimeoutMs`,
   * abandons the rest (they are redelivered), then closes the source. Idempotent.
   * @param options - drain timeout
   * @returns the report
   */
  stop(options?: StopOptions): Promise<ServiceBusWorkerReport>;
  /**
   * A health snapshot for probes: state, in flight, queue depth, processed and failed counts,
   * settle counts.
   * @returns the snapshot
   */
  health(): ServiceBusWorkerHealth;
}

/**
 * Runs a pipeline over a Service Bus queue with the source's settle policy wired in (its
 * `isPermanent` and `maxDeliveryCount`; `isPermanent` gets the error the failing step threw,
 * unwrapped from the `StepError`): a message is
 * completed only after its pipeline outcome is ok (so after its work committed), abandoned on
 * a transient failure (the broker redelivers it; `deliveryCount` + 1), dead-lettered with a
 * reason on a permanent failure or on its last allowed delivery (a poison message never
 * blocks the queue), and abandoned when `stop()`'s drain times out. Locks are renewed by the
 * SDK while the work runs (the source's `maxAutoLockRenewalDurationInMs`). Stopping never loses
 * a message: reading stops without taking one, in-flight messages are completed or abandoned,
 * and messages the source still buffers are abandoned when it closes.
 *
 * Delivery is at least once, so the pipeline must be idempotent: the atom ingestion pipeline
 * is, because atoms are unique by content hash (a redelivered message finds its atom stored
 * and writes nothing). Several workers (processes, machines) on one queue are competing
 * consumers; run as many as you like.
 *
 * The pipeline runs as `pipeline(name, receive, ...yourSteps)`: a first step
 * (`servicebus.receive`) hands the message body on and links its span to the producer's span
 * (the message's `Diagnostic-Id`), then your pipeline's steps run unchanged (batch steps
 * batch across messages). Metrics: the pipeline's own (`hartonomous.pipeline.*`), the
 * OpenTelemetry messaging ones (`messaging.client.consumed.messages`,
 * `messaging.process.duration`, and `messaging.client.operation.duration` for each settlement,
 * by `messaging.operation.name`: `complete`, `abandon`, `dead_letter`), and the
 * `hartonomous.worker.in_flight` and `hartonomous.worker.queue.depth` gauges.
 *
 * @param options - source, pipeline, concurrency, settle policy, telemetry
 * @returns a worker, not yet started
 *
 * @example
 * ```ts
 * import { pipeline, step } from '@hartonomous/pipelines';
 * import { serviceBusSource, serviceBusWorker } from '@hartonomous/pipelines/service-bus';
 *
 * const source = serviceBusSource<{ text: string }>({
 *   connectionString: process.env.SERVICEBUS_CONNECTION_STRING,
 *   queue: 'documents',
 *   maxConcurrent: 32,
 * });
 * const index = pipeline('index', step('length', (doc: { text: string }) => doc.text.length));
 * const w = serviceBusWorker({ source, pipeline: index, concurrency: 16 });
 * w.start();
 * process.once('SIGTERM', () => void w.stop({ drainTimeoutMs: 10_000 }));
 * ```
 * @see {@link serviceBusSource}
 * @see {@link settleBy}
 */
export function serviceBusWorker<T, O>(options: ServiceBusWorkerOptions<T, O>): ServiceBusWorker {
  const who = 'serviceBusWorker';
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`${who}: options are required`);
  }
  const { source, pipeline: inner } = options;
  if (typeof source?.read !== 'function' || typeof source.close !== 'function') {
    throw new TypeError(`${who}: source must be a serviceBusSource`);
  }
  if (typeof inner?.run !== 'function' || !Array.isArray(inner.steps)) {
    throw new TypeError(`${who}: pipeline must be a pipeline`);
  }
  if (options.onSettled !== undefined && typeof options.onSettled !== 'function') {
    throw new TypeError(`${who}: onSettled must be a function`);
  }
  const drainTimeoutMs = options.drainTimeoutMs ?? 30_000;
  if (!(typeof drainTimeoutMs === 'number' && drainTimeoutMs >= 0)) {
    throw new TypeError(`${who}: drainTimeoutMs must be >= 0, got ${String(drainTimeoutMs)}`);
  }
  const receiveBackoff = options.receiveBackoff ?? {
    strategy: 'exponential',
    baseMs: 500,
    maxMs: 30_000,
  };
  backoffFunction(receiveBackoff); // validates
  const name = options.name ?? inner.name;
  const logger = options.logger ?? silentLogger();
  const queue = source.queue;
  const attrs: Attributes = { 'worker.name': name, 'messaging.destination.name': queue };
  const inst = instruments(options);
  const processAttrs = {
    'messaging.system': 'servicebus',
    'messaging.destination.name': queue,
    'messaging.operation.name': 'process',
  };

  // Settle counts are the source's: it counts every settlement the broker accepted, also the
  // dead-letters it makes before handing a message out (undecodable, too many deliveries) and
  // the abandons of messages it still buffered at close, so they equal the broker's counts.
  let receiveFailures = 0;
  /** Aborted when `stop()` begins: messages waiting out a redelivery backoff are abandoned now. */
  const stopping = new AbortController();
  let receiving = true;

  // The message goes in, the body comes out; the step span links to the producer's span.
  const receive: Step<ReceivedItem<T>, T> = step(RECEIVE_STEP, (item: ReceivedItem<T>, ctx) => {
    const span = trace.getSpan(ctx.otel);
    if (span?.isRecording()) {
      span.setAttributes({
        'messaging.system': 'servicebus',
        'messaging.operation.name': 'process',
        'messaging.destination.name': queue,
        'messaging.message.id': item.messageId,
        'messaging.servicebus.message.delivery_count': item.deliveryCount + 1,
      });
      const producer = trace.getSpanContext(item.traceContext);
      if (producer && trace.isSpanContextValid(producer)) span.addLink({ context: producer });
    }
    return item.body;
  });
  const flow: Pipeline<ReceivedItem<T>, O> = pipeline(
    {
      name,
      logger,
      ...(options.tracer ? { tracer: options.tracer } : {}),
      ...(options.meter ? { meter: options.meter } : {}),
    },
    receive,
    inner,
  );

  const settle = (item: ReceivedItem<T>, outcome: SettleOutcome): Promise<SettleAction> =>
    item.settleBy(outcome, { signal: stopping.signal });

  // Receiving keeps trying while the broker is unreachable; an abort ends the read cleanly.
  const readable: ReadableSource<ReceivedItem<T>> = {
    async read(signal?: AbortSignal) {
      let failures = 0;
      const delays = backoffFunction(receiveBackoff);
      for (;;) {
        try {
          const next = await source.read(signal);
          receiving = true;
          return next;
        } catch (e) {
          if (signal?.aborted) throw signal.reason;
          receiveFailures++;
          receiving = false;
          logEvent(logger, LogEvents.workerItemFailed, () => ({
            worker: name,
            phase: 'receive',
            queue,
            err: e,
          }));
          await sleep(delays(failures++), signal);
        }
      }
    },
    get size() {
      return source.buffered;
    },
  };

  const w = worker<ReceivedItem<T>, O>({
    name,
    source: readable,
    pipeline: flow,
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
    ...(options.buffer !== undefined ? { buffer: options.buffer } : {}),
    logger,
    onOutcome: async (outcome) => {
      const item = outcome.input;
      inst.messagingProcessDuration.record(
        outcome.durationMs,
        outcome.ok ? processAttrs : { ...processAttrs, 'error.type': errorTypeOf(outcome.error) },
      );
      // a failed settle is logged by the worker (and counted by the source); the broker
      // redelivers the message when its lock ends
      const action: SettleAction = await settle(
        item,
        outcome.ok ? { ok: true } : { ok: false, error: rootCause(outcome.error) },
      );
      await options.onSettled?.({ ...outcome, input: item.body } as Outcome<T, O>, action, item);
    },
    onAbandon: async (item) => {
      if (item.settled !== undefined) return;
      await item.abandon('worker drain timed out');
    },
  });

  const meter = meterOf(options);
  const gauges = [inst.workerInFlight, inst.workerQueueDepth];
  const observe = (result: BatchObservableResult): void => {
    result.observe(inst.workerInFlight, w.health().inFlight, attrs);
    result.observe(inst.workerQueueDepth, source.buffered, attrs);
  };
  meter.addBatchObservableCallback(observe, gauges);

  let stopped: Promise<ServiceBusWorkerReport> | undefined;
  const health = (): ServiceBusWorkerHealth => ({
    ...w.health(),
    queue,
    locked: source.inFlight,
    ...source.counts,
    receiveFailures,
    receiving,
  });

  return {
    get state() {
      return w.state;
    },
    done: w.done,
    start() {
      w.start();
    },
    stop(stopOptions = {}) {
      stopped ??= (async () => {
        stopping.abort();
        try {
          const report = await w.stop({
            drainTimeoutMs: stopOptions.drainTimeoutMs ?? drainTimeoutMs,
          });
          await source.close();
          const { completed, abandoned, deadLettered } = source.counts;
          return { ...report, completed, abandoned, deadLettered };
        } finally {
          meter.removeBatchObservableCallback(observe, gauges);
        }
      })();
      return stopped;
    },
    health,
  };
}

/** `error.type` of a failed outcome: the class name of the error the step threw. */
function errorTypeOf(error: unknown): string {
  const cause = rootCause(error);
  return cause instanceof Error ? cause.name : '_OTHER';
}

/** The error a step threw (a `StepError` names the step; its cause says what went wrong). */
function rootCause(error: unknown): unknown {
  return isStepError(error) && error.cause !== undefined ? error.cause : error;
}
