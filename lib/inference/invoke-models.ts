import { type Context, context as otelContext } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { identity, type MonoTypeOperatorFunction, type Subscription } from 'rxjs';
import { CancelledError, isCancelledError } from '../core/errors.js';
import { fromWork } from '../core/from-work.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { silentLogger } from '../observability/logger.js';
import { instruments, type TelemetryOptions } from '../observability/telemetry.js';
import {
  type CircuitBreaker,
  circuitBreaker,
  isBrokenCircuitError,
  isIsolatedCircuitError,
} from '../operators/circuit-breaker.js';
import { isPermanentError, type RetryOptions, retry } from '../operators/retry.js';
import { isTimeoutError, timeout } from '../operators/timeout.js';
import type { ModelResponse } from './aggregation.js';
import { InvalidAnswerError, isInvalidAnswerError } from './errors.js';
import type { ModelCall, ModelClient } from './model-client.js';
import type {
  Answer,
  EnsembleRequest,
  InvocationOutcome,
  ModelAnswer,
  ModelInvocation,
  ResolvedModel,
} from './types.js';

/**
 * Options of {@link invokeModels}.
 *
 * @example
 * ```ts
 * import { type InvokeModelsOptions, modelClient } from '@hartonomous/pipelines/inference';
 * const options: InvokeModelsOptions = { client: modelClient(), retry: { maxAttempts: 2 } };
 * ```
 */
export interface InvokeModelsOptions extends TelemetryOptions {
  /** The HTTP client. */
  client: ModelClient;
  /** The breaker of a model (share one per model across requests). @default no breaker */
  breakerOf?: (model: ResolvedModel) => CircuitBreaker | undefined;
  /** Retry policy of each model call (inside its breaker, around its per-attempt timeout). @default no retry */
  retry?: RetryOptions;
  /** Whether an answer is usable; an unusable one makes the invocation `'invalid'`. @default every answer */
  accepts?: (answer: Answer) => boolean;
  /**
   * Called after each invocation ends with the usable answers so far and the number of
   * invocations not ended; true cancels those (recorded as `'cancelled'`). @default wait for all
   */
  enough?: (responses: readonly ModelResponse[], pending: number) => boolean;
  /** Most models called at once for this request (1 = one after another). @default all at once */
  concurrency?: number;
  /** Cancels every invocation; the promise rejects with its reason. @default none */
  signal?: AbortSignal;
  /** Parent context of the CLIENT spans. @default the active context */
  otel?: Context;
  /** The request's correlation id. @default the request id */
  correlationId?: string;
  /** Logs `inference.model_invoked` and `inference.model_failed`. @default a silent logger */
  logger?: Logger;
  /** Receives each invocation as it ends; must not throw. @default none */
  onInvocation?: (invocation: ModelInvocation, requestId: string) => void;
}

/**
 * Calls every model for one request in parallel (up to `concurrency`), each through its own
 * policy: `timeout(model.timeoutMs)` per attempt, then `retry`, then the model's circuit
 * breaker, so a slow or broken model never holds the others: a slow one times out on its
 * own, a broken one is rejected at once by its open breaker. Records each model's outcome,
 * answer, latency and attempts, in the order they end. Never rejects because a model failed
 * (that is recorded); rejects only with the signal's reason.
 *
 * @param models - the models to call
 * @param request - the request
 * @param requestId - its id
 * @param options - client, policies, early stop, cancellation
 * @returns one invocation per model, in the order they ended
 *
 * @example
 * ```ts
 * import { invokeModels, modelClient, resolveModel } from '@hartonomous/pipelines/inference';
 *
 * const models = [resolveModel({ name: 'a', endpoint: 'http://127.0.0.1:8001/predict' })];
 * const invocations = await invokeModels(models, { input: 'hi' }, 'req-1', { client: modelClient() });
 * for (const i of invocations) console.log(i.model, i.outcome, i.latencyMs);
 * ```
 */
export function invokeModels(
  models: readonly ResolvedModel[],
  request: EnsembleRequest,
  requestId: string,
  options: InvokeModelsOptions,
): Promise<ModelInvocation[]> {
  const concurrency = options.concurrency ?? Number.POSITIVE_INFINITY;
  if (!(concurrency >= 1)) {
    return Promise.reject(
      new TypeError(`invokeModels: concurrency must be >= 1, got ${String(options.concurrency)}`),
    );
  }
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  const logger = options.logger ?? silentLogger();
  const otel = options.otel ?? otelContext.active();
  const meter = instruments(options);
  const accepts = options.accepts ?? (() => true);
  const correlationId = options.correlationId ?? requestId;

  return new Promise<ModelInvocation[]>((resolve, reject) => {
    const done: ModelInvocation[] = [];
    const responses: ModelResponse[] = [];
    const running = new Map<number, { sub: Subscription; start: number; attempts: () => number }>();
    let next = 0;
    let finished = false;

    const record = (
      model: ResolvedModel,
      inv: Omit<ModelInvocation, 'arrival' | 'model' | 'weight'>,
    ) => {
      const invocation: ModelInvocation = {
        model: model.name,
        weight: model.weight,
        ...inv,
        arrival: done.length,
      };
      done.push(invocation);
      options.onInvocation?.(invocation, requestId);
      if (inv.outcome !== 'cancelled') {
        meter.modelDuration.record(inv.latencyMs, {
          'inference.model': model.name,
          'inference.outcome': inv.outcome,
        });
      }
      logEvent(
        logger,
        inv.outcome === 'ok' || inv.outcome === 'cancelled'
          ? LogEvents.modelInvoked
          : LogEvents.modelFailed,
        () => ({
          model: model.name,
          requestId,
          outcome: inv.outcome,
          latencyMs: inv.latencyMs,
          attempts: inv.attempts,
          err: inv.error,
        }),
      );
      return invocation;
    };

    const stopRest = (reason: unknown) => {
      for (const [i, r] of running) {
        running.delete(i);
        r.sub?.unsubscribe();
        const model = models[i] as ResolvedModel;
        record(model, {
          outcome: 'cancelled',
          error: reason,
          latencyMs: performance.now() - r.start,
          attempts: r.attempts(),
        });
      }
      while (next < models.length) {
        record(models[next++] as ResolvedModel, {
          outcome: 'cancelled',
          error: reason,
          latencyMs: 0,
          attempts: 0,
        });
      }
    };

    const finish = () => {
      if (finished) return;
      finished = true;
      signal?.removeEventListener('abort', onAbort);
      resolve(done);
    };

    const onAbort = () => {
      if (finished) return;
      finished = true;
      signal?.removeEventListener('abort', onAbort);
      for (const r of running.values()) r.sub?.unsubscribe();
      running.clear();
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    const ended = () => {
      if (finished) return;
      const pending = running.size + (models.length - next);
      if (pending > 0 && options.enough?.(responses, pending)) {
        stopRest(new CancelledError('model invocation no longer needed'));
      }
      if (running.size === 0 && next >= models.length) finish();
      else startMore();
    };

    const start = (i: number) => {
      const model = models[i] as ResolvedModel;
      const call: ModelCall = { model, request, requestId, correlationId };
      let attempts = 0;
      const begin = performance.now();
      const breaker = options.breakerOf?.(model);
      const policy: MonoTypeOperatorFunction<ModelAnswer>[] = [
        timeout<ModelAnswer>({ ms: model.timeoutMs, label: `model '${model.name}'` }),
        options.retry
          ? retry<ModelAnswer>({ name: `model ${model.name}`, ...options.retry })
          : identity,
        breaker ? circuitBreaker<ModelAnswer>(breaker) : identity,
      ];
      const work$ = policy.reduce(
        (acc, op) => op(acc),
        fromWork((s) => {
          attempts++;
          return options.client.invoke(call, s, otel);
        }),
      );
      const settle = (inv: Omit<ModelInvocation, 'arrival' | 'model' | 'weight'>) => {
        if (!running.delete(i)) return;
        const invocation = record(model, inv);
        if (invocation.outcome === 'ok' && invocation.answer !== undefined) {
          responses.push({
            model: model.name,
            weight: model.weight,
            answer: invocation.answer,
            ...(invocation.confidence === undefined ? {} : { confidence: invocation.confidence }),
            arrival: invocation.arrival,
          });
        }
        ended();
      };
      // registered before subscribing: a breaker that is open errors synchronously
      running.set(i, {
        sub: undefined as unknown as Subscription,
        start: begin,
        attempts: () => attempts,
      });
      const sub = work$.subscribe({
        next: (a) => {
          const latencyMs = performance.now() - begin;
          const base = {
            answer: a.answer,
            ...(a.confidence === undefined ? {} : { confidence: a.confidence }),
            latencyMs,
            attempts,
          };
          if (accepts(a.answer)) settle({ outcome: 'ok', ...base });
          else
            settle({
              outcome: 'invalid',
              ...base,
              error: new InvalidAnswerError(
                model.name,
                `${JSON.stringify(a.answer)} is not usable here`,
              ),
            });
        },
        error: (e: unknown) => {
          const error = isPermanentError(e) ? e.cause : e;
          settle({
            outcome: outcomeOf(error),
            error,
            latencyMs: performance.now() - begin,
            attempts,
          });
        },
      });
      const entry = running.get(i);
      if (entry) entry.sub = sub;
    };

    const startMore = () => {
      while (!finished && running.size < concurrency && next < models.length) start(next++);
    };

    if (models.length === 0) finish();
    else startMore();
  });
}

function outcomeOf(error: unknown): InvocationOutcome {
  if (isTimeoutError(error)) return 'timeout';
  if (isBrokenCircuitError(error) || isIsolatedCircuitError(error)) return 'rejected';
  if (isInvalidAnswerError(error)) return 'invalid';
  if (isCancelledError(error)) return 'cancelled';
  return 'error';
}
