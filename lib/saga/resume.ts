/**
 * Finishing a saga from its saved state after a restart: a forward saga continues from the
 * step that was running; any other open saga is compensated from where it was.
 *
 * @module
 */

import { context as otelContext } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { MonoTypeOperatorFunction } from 'rxjs';
import { contextBag } from '../core/context.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { silentLogger } from '../observability/logger.js';
import { type TelemetryOptions, tracerOf } from '../observability/telemetry.js';
import { type CompensationSpec, compensate, type PlannedCompensation } from './compensate.js';
import { decodeWith, definitionOf, type SagaDefinition } from './define.js';
import { executeSaga, StoppedUnlogged } from './engine.js';
import {
  CompensationFailedError,
  isCompensationFailedError,
  isSagaConflictError,
  isSagaFailedError,
  SagaFailedError,
  SagaInterruptedError,
} from './errors.js';
import type { SagaEvent } from './events.js';
import { checkSnapshot, type SagaLog, type SagaSnapshot } from './log.js';
import type { Saga } from './saga.js';
import { SagaTracker } from './tracker.js';
import type { AnySagaStep, Compensation } from './types.js';

/**
 * Where `resumeSaga`/`resumeSagas` find what to run after a restart, by saga name and step
 * name: either the app's {@link Saga} objects themselves (their actions, for forward sagas,
 * and their compensation policies, time limits and codecs are used too) or a plain record
 * `{ [sagaName]: { [stepName]: compensate } }` (compensation only: a forward saga needs its
 * Saga object). Build it at startup, before resuming.
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
  /**
   * The store the snapshot came from; progress is written there (the first write claims the
   * saga). @default the saga's own log for a forward saga (whether it is continued or
   * compensated), else none
   */
  log?: SagaLog;
  /**
   * Cancels a forward saga being continued: its running action is aborted and its completed
   * steps compensated, as for a live saga. @default none
   */
  signal?: AbortSignal;
  /** Aborts running compensations. @default none */
  compensationSignal?: AbortSignal;
  /** Policy of compensations from a plain-record registry. @default no policy */
  compensationPolicy?: ReadonlyArray<MonoTypeOperatorFunction<unknown>>;
  /** Time limit of compensations from a plain-record registry, in ms. @default none */
  compensationTimeoutMs?: number;
  /** As the `onCompensationFailure` option of a saga, for a plain-record registry. @default 'continue' */
  onCompensationFailure?: 'continue' | 'halt';
  /** Receives the events of the resumed saga. Must not throw. @default none */
  onEvent?: (event: SagaEvent) => void;
  /** Logger. @default a silent logger */
  logger?: Logger;
}

/**
 * What {@link resumeSaga} did with one saga:
 * - `'completed'`: a forward saga was continued and every step completed (`result` is its
 *   output);
 * - `'compensated'`: every remaining compensation ran (a backward saga, or a forward saga
 *   that failed after resuming, or was compensating when it stopped);
 * - `'failed'`: a compensation failed (`error` says which); the log now says `'failed'`;
 * - `'conflict'`: someone else changed the saga first (its version moved on); nothing more
 *   was run by this call;
 * - `'unknown-saga'`: the registry has no saga of that name (or only compensations for a
 *   forward saga); nothing was written or run;
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
  readonly status:
    | 'completed'
    | 'compensated'
    | 'failed'
    | 'conflict'
    | 'unknown-saga'
    | 'unchanged';
  /** For `'completed'`: the saga's output. */
  readonly result?: unknown;
  /** Steps undone now, in the order their compensations ran. */
  readonly compensated: readonly string[];
  /** Steps left in place because their compensation failed or was not attempted. */
  readonly notCompensated: readonly string[];
  /** For `'failed'`: the details. */
  readonly error?: CompensationFailedError;
}

/**
 * Finishes a saga from its saved state (restore-from-state). A saga saved as `'running'`
 * (its process died):
 * - forward (`recovery: 'forward'` on the Saga object in the registry): continues from the
 *   step that was running, which runs again, with the recorded outputs of the completed
 *   steps, which never run again; if a step then fails, the completed steps are compensated
 *   as usual;
 * - backward (the default): compensated from where it was: every step that completed, latest
 *   first, plus a `compensateFailed` step that was running (its outcome unknown; its
 *   compensation gets `undefined` and `actionFailed: true`).
 *
 * A saga saved as `'compensating'` (it died while undoing) has its compensation finished,
 * whatever its direction. A compensation that was running at the crash runs again, so
 * compensations must be idempotent. With a log, the first write claims the saga through the
 * log's version check: if another process got there first the outcome is `'conflict'` and
 * nothing runs.
 *
 * @param snapshot - the saved state (e.g. a saga log row)
 * @param registry - where to find the sagas or compensations
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
  const emit = (event: SagaEvent): void => {
    try {
      options.onEvent?.(event);
    } catch (e) {
      setTimeout(() => {
        throw e;
      });
    }
  };
  const logger = (options.logger ?? found.def?.logger ?? silentLogger()).child({
    saga: saved.name,
    sagaId: saved.id,
  });

  const def = found.def;
  if (def?.recovery === 'forward' && saved.status === 'running') {
    const plan = forwardPlan(def, saved);
    if (plan) return resumeForward(def, saved, plan, options, logger, emit);
  }
  return resumeBackward(saved, found, options, logger, emit);
}

interface ForwardPlan {
  readonly next: number;
  readonly value: unknown;
  readonly done: PlannedCompensation[];
}

/** Where a forward saga continues, or undefined when it cannot (no input recorded). */
function forwardPlan(def: SagaDefinition, saved: SagaSnapshot): ForwardPlan | undefined {
  let next = 0;
  while (next < saved.steps.length && saved.steps[next]?.status === 'completed') next++;
  const byName = new Map(def.steps.map((s) => [s.name, s]));
  const done: PlannedCompensation[] = [];
  let value: unknown;
  for (let i = 0; i < next; i++) {
    const st = saved.steps[i];
    const result = decodeWith(byName.get(st?.name ?? '')?.codec, st?.result);
    done.push({ index: i, result, actionFailed: false });
    value = result;
  }
  if (next === 0) {
    if (!('input' in saved) || saved.input === undefined) return undefined;
    value = decodeWith(def.inputCodec, saved.input);
  }
  // the definition must still have the recorded steps, in the same order
  if (
    saved.steps.length !== def.steps.length ||
    saved.steps.some((st, i) => st.name !== def.steps[i]?.name)
  ) {
    return undefined;
  }
  return { next, value, done };
}

async function resumeForward(
  def: SagaDefinition,
  saved: SagaSnapshot,
  plan: ForwardPlan,
  options: ResumeSagaOptions,
  logger: Logger,
  emit: (event: SagaEvent) => void,
): Promise<ResumeOutcome> {
  const base = { sagaId: saved.id, saga: saved.name, compensated: [], notCompensated: [] };
  const log = options.log ?? def.log;
  const tracker = new SagaTracker(
    { id: saved.id, name: saved.name, correlationId: saved.correlationId, log, logger },
    saved,
  );
  try {
    await tracker.record(true); // the claim
  } catch (e) {
    if (isSagaConflictError(e)) return { ...base, status: 'conflict' };
    throw e;
  }
  const running = saved.steps[plan.next]?.name;
  logEvent(logger, LogEvents.sagaResumed, { status: saved.status, recovery: 'forward', running });
  try {
    const result = await executeSaga(
      def,
      { kind: 'resume', tracker, ...plan },
      {
        sagaId: saved.id,
        correlationId: saved.correlationId,
        signal: options.signal ?? new AbortController().signal,
        compensationSignal: options.compensationSignal,
        logger: options.logger ?? def.logger,
        otel: otelContext.active(),
        bag: contextBag(),
        emit: emit as (event: SagaEvent<unknown>) => void,
      },
    );
    return { ...base, status: 'completed', result };
  } catch (e) {
    if (e instanceof StoppedUnlogged) {
      if (isSagaConflictError(e.error)) return { ...base, status: 'conflict' };
      throw e.error;
    }
    if (isCompensationFailedError(e)) {
      return {
        ...base,
        status: 'failed',
        compensated: e.compensated,
        notCompensated: e.notCompensated,
        error: e,
      };
    }
    return {
      ...base,
      status: 'compensated',
      compensated: isSagaFailedError(e) ? e.compensated : compensatedOf(tracker),
    };
  }
}

/** The steps a tracker shows compensated, in the order they ran (latest step first). */
function compensatedOf(tracker: SagaTracker): string[] {
  return tracker.steps
    .filter((s) => s.status === 'compensated')
    .map((s) => s.name)
    .reverse();
}

async function resumeBackward(
  saved: SagaSnapshot,
  found: Found,
  options: ResumeSagaOptions,
  logger: Logger,
  emit: (event: SagaEvent) => void,
): Promise<ResumeOutcome> {
  const base = { sagaId: saved.id, saga: saved.name, compensated: [], notCompensated: [] };
  // a forward saga writes to its own log by default, also when it is compensated
  const log = options.log ?? (found.def?.recovery === 'forward' ? found.def.log : undefined);
  const tracker = new SagaTracker(
    { id: saved.id, name: saved.name, correlationId: saved.correlationId, log, logger },
    saved,
  );
  const running = saved.steps.find((s) => s.status === 'running');
  let cause: unknown;
  let failedStep: string | undefined;
  if (saved.status === 'running' || saved.status === 'completed') {
    cause = new SagaInterruptedError(saved.name, saved.id, running?.name);
    failedStep = running?.name;
  } else {
    cause = saved.cause;
    failedStep = saved.failedStep ?? undefined;
  }

  // claim: the first write must succeed (version check), or someone else owns the saga
  tracker.status = 'compensating';
  tracker.cause = cause;
  tracker.failedStep = failedStep ?? null;
  try {
    await tracker.record(true);
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
      tracer: found.def?.tracer ?? tracerOf(options),
      compensationSignal: options.compensationSignal,
      emit: emit as (event: SagaEvent<unknown>) => void,
      halt: found.halt,
      heartbeatMs: found.def?.heartbeatMs ?? 0,
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
  /** The saga's definition, when the registry holds Saga objects. */
  readonly def: SagaDefinition | undefined;
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
    const def = definitionOf(s);
    const specs = saved.steps.map((st) => {
      const step = byName.get(st.name);
      return {
        name: st.name,
        compensate: step?.compensate as Compensation<unknown> | undefined,
        policy: step?.compensationPolicy ?? def?.compensationPolicy ?? [],
        timeoutMs: step?.compensationTimeoutMs ?? def?.compensationTimeoutMs,
      };
    });
    const decoders = saved.steps.map((st) => {
      const codec = byName.get(st.name)?.codec;
      return codec ? (json: unknown) => codec.decode(json) : undefined;
    });
    return {
      specs,
      decoders,
      halt: def?.onCompensationFailure === 'halt',
      def,
    };
  }
  const fns = (registry as Record<string, Record<string, Compensation<unknown>> | undefined>)[
    saved.name
  ];
  if (!fns || typeof fns !== 'object') return undefined;
  if (saved.recovery === 'forward' && saved.status === 'running') return undefined;
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
    def: undefined,
  };
}
