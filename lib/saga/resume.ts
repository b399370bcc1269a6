import { context as otelContext } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { MonoTypeOperatorFunction } from 'rxjs';
import { contextBag } from '../core/context.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { silentLogger } from '../observability/logger.js';
import { type TelemetryOptions, tracerOf } from '../observability/telemetry.js';
import {
  type CompensationSpec,
  compensate,
  definitionOf,
  type PlannedCompensation,
  SagaTracker,
} from './engine.js';
import {
  CompensationFailedError,
  isSagaConflictError,
  SagaFailedError,
  SagaInterruptedError,
} from './errors.js';
import { checkSnapshot, type SagaLog, type SagaSnapshot } from './log.js';
import type { AnySagaStep, Compensation, Saga, SagaEvent } from './saga.js';

/**
 * Where `resumeSaga`/`resumeSagas` find compensations after a restart, by saga name and step
 * name: either the app's {@link Saga} objects themselves (their compensation policies, time
 * limits and codecs are used too) or a plain record `{ [sagaName]: { [stepName]: compensate } }`.
 * Build it at startup, before resuming.
 *
 * @example
 * ```ts
 * import type { SagaRegistry } from '@hartonomous/pipelines';
 *
 * const fromSagas: SagaRegistry = [orderSaga, refundSaga];
 * const fromFunctions: SagaRegistry = {
 *   order: {
 *     reserve: (r: { reservationId: string }) => stock.release(r.reservationId),
 *     charge: (c: { chargeId: string }) => payments.refund(c.chargeId),
 *   },
 * };
 * ```
 */
export type SagaRegistry =
  // biome-ignore lint/suspicious/noExplicitAny: sagas of any types
  | ReadonlyArray<Saga<any, any>>
  // biome-ignore lint/suspicious/noExplicitAny: compensations of any result type
  | Readonly<Record<string, Readonly<Record<string, Compensation<any>>>>>;

/**
 * Options of {@link resumeSaga}.
 *
 * @example
 * ```ts
 * import { retry, type ResumeSagaOptions } from '@hartonomous/pipelines';
 * const options: ResumeSagaOptions = { compensationPolicy: [retry(3)], compensationTimeoutMs: 30_000 };
 * ```
 */
export interface ResumeSagaOptions extends TelemetryOptions {
  /** The store the snapshot came from; progress is written there (the first write claims the saga). @default none */
  log?: SagaLog;
  /** Aborts running compensations. @default none */
  compensationSignal?: AbortSignal;
  /** Policy of compensations from a plain-record registry. @default no policy */
  compensationPolicy?: ReadonlyArray<MonoTypeOperatorFunction<unknown>>;
  /** Time limit of compensations from a plain-record registry, in ms. @default none */
  compensationTimeoutMs?: number;
  /** As the `onCompensationFailure` option of a saga, for a plain-record registry. @default 'continue' */
  onCompensationFailure?: 'continue' | 'halt';
  /** Receives the events of the resumed compensation. Must not throw. @default none */
  onEvent?: (event: SagaEvent) => void;
  /** Logger. @default a silent logger */
  logger?: Logger;
}

/**
 * What {@link resumeSaga} did with one saga:
 * - `'compensated'`: every remaining compensation ran;
 * - `'failed'`: a compensation failed (`error` says which); the log now says `'failed'`;
 * - `'conflict'`: someone else changed the saga first (its version moved on); nothing was run;
 * - `'unknown-saga'`: the registry has no saga of that name; nothing was written or run;
 * - `'unchanged'`: the saga had already finished (`'completed'` or `'compensated'`).
 *
 * @example
 * ```ts
 * import type { ResumeOutcome } from '@hartonomous/pipelines';
 * const line = (o: ResumeOutcome) => `${o.saga} ${o.sagaId}: ${o.status} (undid ${o.compensated.join(', ')})`;
 * ```
 */
export interface ResumeOutcome {
  /** The saga's id. */
  readonly sagaId: string;
  /** The saga's name. */
  readonly saga: string;
  /** What happened. */
  readonly status: 'compensated' | 'failed' | 'conflict' | 'unknown-saga' | 'unchanged';
  /** Steps undone now, in the order their compensations ran. */
  readonly compensated: readonly string[];
  /** Steps left in place because their compensation failed or was not attempted. */
  readonly notCompensated: readonly string[];
  /** For `'failed'`: the details. */
  readonly error?: CompensationFailedError;
}

/**
 * Finishes a saga from its saved state (restore-from-state): a saga saved as `'running'`
 * (its process died) or `'compensating'` (it died while undoing) is compensated from where
 * it was: every step that completed and is not yet compensated, latest first, plus a
 * `compensateFailed` step that was running or failed (its outcome unknown; its compensation
 * gets `undefined` and `actionFailed: true`). A step whose compensation was running at the
 * crash runs again, so compensations must be idempotent. With `log`, the first write
 * (status `'compensating'`) claims the saga through the log's version check: if another
 * process got there first the outcome is `'conflict'` and nothing runs.
 *
 * @param snapshot - the saved state (e.g. a saga log row)
 * @param registry - where to find the compensations
 * @param options - the log to write progress to, policies, events
 * @returns what was done
 *
 * @example
 * ```ts
 * import { resumeSaga, type SagaSnapshot } from '@hartonomous/pipelines';
 *
 * declare const saved: SagaSnapshot; // read back from your own store
 * const outcome = await resumeSaga(saved, [orderSaga], { log: myLog });
 * if (outcome.status === 'failed') console.error(outcome.error?.notCompensated);
 * ```
 * @see {@link SagaLog}
 */
export async function resumeSaga(
  snapshot: SagaSnapshot,
  registry: SagaRegistry,
  options: ResumeSagaOptions = {},
): Promise<ResumeOutcome> {
  const saved = checkSnapshot(snapshot);
  const base = { sagaId: saved.id, saga: saved.name, compensated: [], notCompensated: [] };
  if (saved.status === 'completed' || saved.status === 'compensated') {
    return { ...base, status: 'unchanged' };
  }
  const found = lookup(registry, saved, options);
  if (!found) return { ...base, status: 'unknown-saga' };

  const logger = (options.logger ?? silentLogger()).child({ saga: saved.name, sagaId: saved.id });
  const tracker = new SagaTracker(
    saved.id,
    saved.name,
    saved.correlationId,
    options.log,
    logger,
    saved,
  );
  const running = saved.steps.find((s) => s.status === 'running');
  const cause =
    saved.status === 'running'
      ? new SagaInterruptedError(saved.name, saved.id, running?.name)
      : saved.cause;
  const failedStep = saved.status === 'running' ? running?.name : (saved.failedStep ?? undefined);

  // claim: the first write must succeed (version check), or someone else owns the saga
  tracker.status = 'compensating';
  tracker.cause = cause;
  tracker.failedStep = failedStep ?? null;
  try {
    if (options.log) {
      const claim = tracker.snapshot(tracker.version + 1);
      await options.log.write(claim);
      tracker.version = claim.version;
    }
  } catch (e) {
    if (isSagaConflictError(e)) return { ...base, status: 'conflict' };
    throw e;
  }
  logEvent(logger, LogEvents.sagaResumed, { status: saved.status, failedStep });

  const plan: PlannedCompensation[] = [];
  saved.steps.forEach((s, index) => {
    if (!s.compensable) return;
    const decode = found.decoders[index];
    switch (s.status) {
      case 'completed':
      case 'compensating':
      case 'compensation-failed': {
        const hasResult = 'result' in s && s.result !== undefined;
        const actionFailed = !hasResult && s.compensateFailed;
        if (!hasResult && !s.compensateFailed) return;
        plan.push({
          index,
          result: hasResult ? (decode ? decode(s.result) : s.result) : undefined,
          actionFailed,
        });
        return;
      }
      case 'running':
      case 'failed':
        if (s.compensateFailed) plan.push({ index, result: undefined, actionFailed: true });
        return;
      default:
        return;
    }
  });

  const emit = (event: SagaEvent): void => {
    try {
      options.onEvent?.(event);
    } catch (e) {
      setTimeout(() => {
        throw e;
      });
    }
  };
  const outcome = await compensate(
    tracker,
    found.specs,
    plan,
    { cause, failedStep, resumed: true },
    {
      saga: saved.name,
      sagaId: saved.id,
      correlationId: saved.correlationId,
      logger,
      otel: otelContext.active(),
      bag: contextBag(),
      tracer: tracerOf(options),
      compensationSignal: options.compensationSignal,
      emit,
      halt: found.halt,
    },
  );
  const error =
    outcome.failures.length > 0
      ? new CompensationFailedError(
          saved.name,
          saved.id,
          failedStep,
          outcome.compensated,
          outcome.notCompensated,
          outcome.failures,
          cause,
        )
      : undefined;
  emit({
    type: 'saga-failed',
    saga: saved.name,
    sagaId: saved.id,
    error:
      error ?? new SagaFailedError(saved.name, saved.id, failedStep, outcome.compensated, cause),
    cause,
    failedStep,
    cancelled: false,
    compensated: outcome.compensated,
    notCompensated: outcome.notCompensated,
  });
  return {
    ...base,
    status: error ? 'failed' : 'compensated',
    compensated: outcome.compensated,
    notCompensated: outcome.notCompensated,
    ...(error ? { error } : {}),
  };
}

interface Found {
  readonly specs: CompensationSpec[];
  readonly decoders: Array<((json: unknown) => unknown) | undefined>;
  readonly halt: boolean;
}

function lookup(
  registry: SagaRegistry,
  saved: SagaSnapshot,
  options: ResumeSagaOptions,
): Found | undefined {
  if (Array.isArray(registry)) {
    const s = (registry as ReadonlyArray<Saga<unknown, unknown>>).find(
      (x) => x.name === saved.name,
    );
    if (!s) return undefined;
    const byName = new Map<string, AnySagaStep>(s.steps.map((st) => [st.name, st]));
    const defaults = definitionOf(s);
    const specs = saved.steps.map((st) => {
      const step = byName.get(st.name);
      return {
        name: st.name,
        compensate: step?.compensate as Compensation<unknown> | undefined,
        policy: step?.compensationPolicy ?? defaults?.compensationPolicy ?? [],
        timeoutMs: step?.compensationTimeoutMs ?? defaults?.compensationTimeoutMs,
      };
    });
    const decoders = saved.steps.map((st) => {
      const codec = byName.get(st.name)?.codec;
      return codec ? (json: unknown) => codec.decode(json) : undefined;
    });
    return { specs, decoders, halt: defaults?.onCompensationFailure === 'halt' };
  }
  const fns = (registry as Record<string, Record<string, Compensation<unknown>> | undefined>)[
    saved.name
  ];
  if (!fns || typeof fns !== 'object') return undefined;
  const specs = saved.steps.map((st) => ({
    name: st.name,
    compensate: Object.hasOwn(fns, st.name) ? fns[st.name] : undefined,
    policy: options.compensationPolicy ?? [],
    timeoutMs: options.compensationTimeoutMs,
  }));
  return {
    specs,
    decoders: saved.steps.map(() => undefined),
    halt: options.onCompensationFailure === 'halt',
  };
}
