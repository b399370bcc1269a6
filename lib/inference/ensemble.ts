import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { type Pipeline, pipeline } from '../core/pipeline.js';
import { step } from '../core/step.js';
import type { TelemetryOptions } from '../observability/telemetry.js';
import {
  type CircuitBreaker,
  type CircuitBreakerOptions,
  createCircuitBreaker,
} from '../operators/circuit-breaker.js';
import { type RetryOptions, retryAfterMs } from '../operators/retry.js';
import type { Database } from '../postgres/database.js';
import type { Saga, SagaContext } from '../saga/saga.js';
import type { AggregationStrategy, ModelResponse } from './aggregation.js';
import { EnsembleFailedError, isModelHttpError } from './errors.js';
import { invokeModels } from './invoke-models.js';
import { majorityVote } from './majority-vote.js';
import { type ModelAdapter, type ModelClient, modelClient } from './model-client.js';
import { type ModelRegistry, modelRegistry } from './model-registry.js';
import { type PersistInput, persistAnswerSaga } from './persist-answer.js';
import type {
  EnsembleAnswer,
  EnsembleRequest,
  ModelDefinition,
  ModelInvocation,
  ResolvedModel,
} from './types.js';

/**
 * Where and how an ensemble stores its answers (see {@link persistAnswerSaga}).
 *
 * @example
 * ```ts
 * import type { EnsemblePersistOptions } from '@hartonomous/pipelines/inference';
 * const persist: EnsemblePersistOptions = { db, afterPersist: (answer) => publish(answer) };
 * ```
 */
export interface EnsemblePersistOptions {
  /** The database. */
  db: Database;
  /** Record the persist saga in `saga_log` (for `resumeSagas`). @default true */
  sagaLog?: boolean;
  /** A step after the answer is stored; if it throws, the stored rows are compensated. @default none */
  afterPersist?: (answer: EnsembleAnswer, ctx: SagaContext) => unknown;
}

/**
 * Options of {@link ensemble}.
 *
 * @example
 * ```ts
 * import { ensemble, type EnsembleOptions, quorum } from '@hartonomous/pipelines/inference';
 *
 * const options: EnsembleOptions = {
 *   models: db,
 *   strategy: quorum({ k: 2 }),
 *   retry: { maxAttempts: 3 },
 *   breaker: { strategy: { type: 'consecutive', failures: 3 }, breakDuration: 30_000 },
 *   persist: { db },
 * };
 * const sentiment = ensemble(options);
 * ```
 */
export interface EnsembleOptions extends TelemetryOptions {
  /** The pipeline's name (spans, logs, metrics). @default 'ensemble' */
  name?: string;
  /**
   * The models: a database (its `inference_models` registry, cached `modelCacheMs`), a
   * {@link ModelRegistry}, or a fixed list.
   */
  models: Database | ModelRegistry | readonly ModelDefinition[];
  /** Cache duration of a database registry, in ms. @default 5_000 */
  modelCacheMs?: number;
  /** How answers are combined. @default majorityVote() */
  strategy?: AggregationStrategy;
  /**
   * Retries of each model call (transient failures: network, timeout, 408/425/429/5xx, with
   * Retry-After honoured): a number of retries, options, or `false`.
   * @default `{ maxAttempts: 2, baseDelayMs: 50, maxDelayMs: 1_000 }`
   */
  retry?: number | RetryOptions | false;
  /**
   * Each model's circuit breaker: options for one breaker per model (named `model <name>`),
   * a function giving the breaker of a model, or `false`.
   * @default 5 consecutive failures open it for 30 s
   */
  breaker?: CircuitBreakerOptions | ((model: ResolvedModel) => CircuitBreaker | undefined) | false;
  /** Protocol adapters by model `kind`, added to `{ json: jsonProtocol }`. @default {} */
  adapters?: Readonly<Record<string, ModelAdapter>>;
  /** The HTTP client (its adapters are used, `adapters` is ignored). @default a new `modelClient` */
  client?: ModelClient;
  /** Most models called at once per request (1 calls them one after another). @default all at once */
  modelConcurrency?: number;
  /** Store requests, invocations and answers in one saga. @default not stored */
  persist?: Database | EnsemblePersistOptions;
  /** Pipeline logger (also logs model invocations). @default a silent logger */
  logger?: Logger;
  /** Receives each model invocation as it ends (for metrics or live dashboards); must not throw. @default none */
  onInvocation?: (invocation: ModelInvocation, requestId: string) => void;
}

/**
 * An ensemble: a core {@link Pipeline} from {@link EnsembleRequest} to {@link EnsembleAnswer}
 * (steps `load-models` -> `invoke-models` -> `aggregate` -> `persist` or `answer`), with its
 * registry, breakers and persist saga. `run` answers one request; `stream` answers many
 * with bounded concurrency and one outcome per request.
 *
 * @example
 * ```ts
 * import { ensemble } from '@hartonomous/pipelines/inference';
 *
 * const e = ensemble({ models: db });
 * e.stream(requests, { concurrency: 8 }).subscribe((o) => console.log(o.ok ? o.value.answer : o.error));
 * console.log(e.breaker('large')?.state);
 * ```
 */
export interface Ensemble extends Pipeline<EnsembleRequest, EnsembleAnswer> {
  /** Where the models come from. */
  readonly registry: ModelRegistry;
  /** The aggregation strategy. */
  readonly strategy: AggregationStrategy;
  /** The persist saga, when persisting: register it with `resumeSagas` at startup. */
  readonly persistSaga: Saga<PersistInput, EnsembleAnswer> | undefined;
  /**
   * The circuit breaker of a model (created on its first invocation).
   * @param model - the model's name
   * @returns its breaker, if it has one yet
   */
  breaker(model: string): CircuitBreaker | undefined;
  /** Releases the HTTP client's keep-alive sockets (when the ensemble created the client). */
  close(): void;
}

interface Loaded {
  readonly request: EnsembleRequest;
  readonly requestId: string;
  readonly models: readonly ResolvedModel[];
}
interface Invoked extends Loaded {
  readonly invocations: readonly ModelInvocation[];
}

/**
 * Builds an ensemble: each request is sent to every enabled model in parallel, each call
 * through its own timeout (the model's `timeoutMs`), retry and circuit breaker, and the
 * answers are combined by the strategy (a majority vote by default). Per model, the outcome,
 * latency and attempts are recorded in `EnsembleAnswer.invocations` (and in the database
 * when persisting). First-k and quorum strategies answer early and cancel the calls still
 * running.
 *
 * Failures: `EnsembleFailedError` (no enabled model, every model failed, fewer answers than
 * `minSuccesses`, no quorum, each with the per-model errors), `TieError` (a vote tie with
 * `tie: 'error'`), `SagaFailedError`/`CompensationFailedError` (persisting failed and was
 * undone, or could not be). `run` rejects with a `StepError` naming the step whose `cause` is
 * one of these; `stream` reports them per request.
 *
 * @param options - models, strategy, resilience, adapters, persistence
 * @returns the ensemble pipeline
 * @throws TypeError when an option is invalid
 *
 * @example
 * ```ts
 * import { openDatabase } from '@hartonomous/pipelines/postgres';
 * import { ensemble, registerModels, weightedVote } from '@hartonomous/pipelines/inference';
 *
 * const db = await openDatabase();
 * await registerModels(db, [
 *   { name: 'a', endpoint: 'http://127.0.0.1:8001/predict' },
 *   { name: 'b', endpoint: 'http://127.0.0.1:8002/predict', weight: 2 },
 *   { name: 'c', endpoint: 'http://127.0.0.1:8003/predict', timeoutMs: 500 },
 * ]);
 * const sentiment = ensemble({ models: db, strategy: weightedVote(), persist: db });
 * const answer = await sentiment.run({ input: 'The food was great' });
 * console.log(answer.answer, answer.invocations.map((i) => `${i.model} ${i.outcome} ${i.latencyMs} ms`));
 * ```
 * @see {@link invokeModels}, {@link persistAnswerSaga}
 */
export function ensemble(options: EnsembleOptions): Ensemble {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('ensemble: options are required ({ models, ... })');
  }
  const name = options.name ?? 'ensemble';
  const strategy = options.strategy ?? majorityVote();
  if (typeof strategy?.aggregate !== 'function' || !(strategy.minSuccesses >= 1)) {
    throw new TypeError('ensemble: strategy must be an aggregation strategy');
  }
  const registry = registryOf(options);
  const ownsClient = options.client === undefined;
  const client =
    options.client ??
    modelClient({
      ...(options.adapters ? { adapters: options.adapters } : {}),
      ...(options.tracer ? { tracer: options.tracer } : {}),
    });
  const retryOptions = retryOf(options.retry);
  const modelConcurrency = options.modelConcurrency ?? Number.POSITIVE_INFINITY;
  if (!(modelConcurrency >= 1)) {
    throw new TypeError(`ensemble: modelConcurrency must be >= 1, got ${options.modelConcurrency}`);
  }
  const breakers = new Map<string, CircuitBreaker | undefined>();
  const breakerOption = options.breaker;
  if (
    breakerOption !== undefined &&
    breakerOption !== false &&
    typeof breakerOption !== 'function' &&
    typeof breakerOption !== 'object'
  ) {
    throw new TypeError('ensemble: breaker must be options, a function or false');
  }
  const breakerOf = (model: ResolvedModel): CircuitBreaker | undefined => {
    if (breakerOption === false) return undefined;
    if (!breakers.has(model.name)) {
      breakers.set(
        model.name,
        typeof breakerOption === 'function'
          ? breakerOption(model)
          : createCircuitBreaker({
              name: `model ${model.name}`,
              strategy: { type: 'consecutive', failures: 5 },
              breakDuration: 30_000,
              ...(options.meter ? { meter: options.meter } : {}),
              ...breakerOption,
            }),
      );
    }
    return breakers.get(model.name);
  };
  const persist =
    options.persist === undefined
      ? undefined
      : 'db' in options.persist && !('orm' in options.persist)
        ? options.persist
        : { db: options.persist as Database };
  const persistSaga = persist
    ? persistAnswerSaga(persist.db, {
        name: `${name}.persist`,
        ...(persist.sagaLog === undefined ? {} : { sagaLog: persist.sagaLog }),
        ...(persist.afterPersist ? { afterPersist: persist.afterPersist } : {}),
        ...(options.logger ? { logger: options.logger } : {}),
      })
    : undefined;

  const loadModels = step('load-models', async (request: EnsembleRequest, ctx): Promise<Loaded> => {
    if (typeof request !== 'object' || request === null || !('input' in request)) {
      throw new TypeError('an ensemble request is an object with an `input`');
    }
    if (request.id !== undefined && (typeof request.id !== 'string' || request.id === '')) {
      throw new TypeError('a request id must be a non-empty string');
    }
    const requestId = request.id ?? randomUUID();
    const models = (await registry.load(ctx.signal)).filter((m) => m.enabled);
    if (models.length === 0) {
      throw new EnsembleFailedError('no-models', requestId, 0, strategy.minSuccesses, []);
    }
    return { request, requestId, models };
  });

  const invoke = step(
    'invoke-models',
    async (loaded: Loaded, ctx): Promise<Invoked> => ({
      ...loaded,
      invocations: await invokeModels(loaded.models, loaded.request, loaded.requestId, {
        client,
        breakerOf,
        ...(retryOptions ? { retry: retryOptions } : {}),
        ...(strategy.accepts ? { accepts: (a) => strategy.accepts?.(a) ?? true } : {}),
        ...(strategy.enough
          ? {
              enough: (r: readonly ModelResponse[], pending: number) =>
                strategy.enough?.(r, pending) ?? false,
            }
          : {}),
        concurrency: modelConcurrency,
        ...(options.onInvocation ? { onInvocation: options.onInvocation } : {}),
        signal: ctx.signal,
        otel: ctx.otel,
        correlationId: ctx.correlationId,
        logger: ctx.logger,
        ...(options.meter ? { meter: options.meter } : {}),
      }),
    }),
  );

  const aggregate = step('aggregate', (x: Invoked): PersistInput => {
    const responses: ModelResponse[] = [];
    for (const i of x.invocations) {
      if (i.outcome === 'ok' && i.answer !== undefined) {
        responses.push({
          model: i.model,
          weight: i.weight,
          answer: i.answer,
          ...(i.confidence === undefined ? {} : { confidence: i.confidence }),
          arrival: i.arrival,
        });
      }
    }
    if (responses.length < strategy.minSuccesses) {
      throw new EnsembleFailedError(
        responses.length === 0 ? 'all-failed' : 'min-successes',
        x.requestId,
        responses.length,
        strategy.minSuccesses,
        x.invocations
          .filter((i) => i.outcome !== 'ok')
          .map((i) => ({
            model: i.model,
            outcome: i.outcome,
            error: i.error,
            attempts: i.attempts,
          })),
      );
    }
    const decision = strategy.aggregate(responses, x.requestId);
    return {
      request: x.request,
      answer: {
        requestId: x.requestId,
        answer: decision.answer,
        strategy: strategy.name,
        support: decision.support,
        agreeing: decision.agreeing,
        responded: responses.length,
        invocations: x.invocations,
        persisted: false,
      },
    };
  });

  const last = persistSaga
    ? persistSaga.asStep({ name: 'persist' })
    : step('answer', (x: PersistInput) => x.answer);
  const p = pipeline(
    options.logger || options.tracer || options.meter
      ? {
          name,
          ...(options.logger ? { logger: options.logger } : {}),
          ...(options.tracer ? { tracer: options.tracer } : {}),
          ...(options.meter ? { meter: options.meter } : {}),
        }
      : name,
    loadModels,
    invoke,
    aggregate,
    last,
  );
  const self: Ensemble = {
    ...p,
    registry,
    strategy,
    persistSaga,
    breaker: (model) => breakers.get(model),
    close: () => {
      if (ownsClient) client.close();
    },
  };
  return Object.freeze(self);
}

function registryOf(options: EnsembleOptions): ModelRegistry {
  const m = options.models;
  if (Array.isArray(m)) return modelRegistry(m as readonly ModelDefinition[]);
  if (typeof m === 'object' && m !== null && typeof (m as ModelRegistry).load === 'function') {
    return m as ModelRegistry;
  }
  if (typeof m === 'object' && m !== null && 'orm' in m) {
    return modelRegistry(m as Database, {
      ...(options.modelCacheMs === undefined ? {} : { cacheMs: options.modelCacheMs }),
    });
  }
  throw new TypeError('ensemble: models must be a Database, a ModelRegistry or an array of models');
}

function retryOf(option: number | RetryOptions | false | undefined): RetryOptions | undefined {
  if (option === false || option === 0) return undefined;
  const defaults: RetryOptions = {
    maxAttempts: 2,
    baseDelayMs: 50,
    maxDelayMs: 1_000,
    handle: (e) => !isModelHttpError(e) || e.retryable,
    delay: ({ error }) => {
      const after = retryAfterMs(error);
      return after === undefined ? undefined : Math.min(after, 10_000);
    },
  };
  if (option === undefined) return defaults;
  if (typeof option === 'number') {
    if (!Number.isInteger(option) || option < 0) {
      throw new TypeError('ensemble: retry must be a non-negative integer, options or false');
    }
    return { ...defaults, maxAttempts: option + 1 };
  }
  return { ...defaults, ...option };
}
