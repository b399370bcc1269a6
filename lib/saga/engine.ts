/**
 * The saga engine shared by `saga()` (a live execution) and `resumeSaga()` (a forward saga
 * continued after a crash): forward execution with the state written to the saga log before
 * and after each action (or, for a transactional step, in the action's own transaction), then
 * compensation in reverse order when a step fails.
 *
 * @internal
 * @module
 */

import { type Context, context as otelContext, trace } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { lastValueFrom, type Observable } from 'rxjs';
import { linkedController } from '../core/abort.js';
import type { ContextBag } from '../core/context.js';
import { describeError } from '../core/errors.js';
import { fromWork } from '../core/from-work.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { type CompensationSpec, compensate, type PlannedCompensation } from './compensate.js';
import type { SagaDefinition } from './define.js';
import { encodeWith } from './define.js';
import { CompensationFailedError, isSagaConflictError, SagaFailedError } from './errors.js';
import type { SagaEvent } from './events.js';
import { withHeartbeat } from './heartbeat.js';
import type { SagaLogTransaction } from './log.js';
import { endFailed, toValue } from './spans.js';
import { SagaTracker } from './tracker.js';
import type { AnySagaStep, Compensation, SagaContext } from './types.js';

/** Per-execution inputs. @internal */
export interface ExecutionEnv {
  readonly sagaId: string;
  readonly correlationId: string;
  readonly signal: AbortSignal;
  readonly compensationSignal: AbortSignal | undefined;
  readonly logger: Logger;
  readonly otel: Context;
  readonly bag: ContextBag;
  readonly emit: (event: SagaEvent<unknown>) => void;
  /**
   * A new execution's first write conflicting means its id is taken: reject with
   * {@link IdTaken} at once, run and write nothing (used by `start`).
   */
  readonly claim?: boolean;
}

/** Where an execution starts: a new one from its input, or a resumed one from its log. @internal */
export type StartPoint =
  | { readonly kind: 'new'; readonly input: unknown }
  | {
      readonly kind: 'resume';
      /** The tracker, after the claim write. */
      readonly tracker: SagaTracker;
      /** The first step to run. */
      readonly next: number;
      /** Its input: the last completed step's output, or the saga's input. */
      readonly value: unknown;
      /** The completed steps, with their (decoded) results, for compensation. */
      readonly done: readonly PlannedCompensation[];
    };

/**
 * What a `claim` execution rejects with when its id already exists in the log.
 * @internal
 */
export class IdTaken {
  /** @param conflict - the log's conflict */
  constructor(readonly conflict: unknown) {}
}

/**
 * What an execution rejects with when a forward saga stopped because its log could not be
 * written (another process took it over, or the store failed): nothing was compensated;
 * recovery finishes it from what the log holds.
 * @internal
 */
export class StoppedUnlogged {
  /** @param error - the write's error (a `SagaConflictError` for a takeover) */
  constructor(readonly error: unknown) {}
}

interface Failure {
  readonly error: unknown;
  readonly step: string | undefined;
  readonly cancelled: boolean;
  /** The saga log refused or failed a write (not a conflict). */
  readonly write?: boolean;
}

/**
 * Runs a saga forward, then compensates on failure. Resolves with the last output or rejects
 * with the saga's error, after emitting the events.
 * @internal
 */
export async function executeSaga(
  def: SagaDefinition,
  start: StartPoint,
  env: ExecutionEnv,
): Promise<unknown> {
  const resumed = start.kind === 'resume';
  const logger = env.logger.child({ saga: def.name, sagaId: env.sagaId });
  const span = def.tracer.startSpan(
    `saga ${def.name}`,
    {
      attributes: {
        'saga.name': def.name,
        'saga.id': env.sagaId,
        ...(resumed ? { 'saga.resumed': true } : {}),
      },
    },
    env.otel,
  );
  const sagaCtx = trace.setSpan(env.otel, span);
  const forward = def.recovery === 'forward';
  let tracker: SagaTracker;
  const done: PlannedCompensation[] = [];
  let failure: Failure | undefined;
  let value: unknown;
  let first: number;
  /**
   * A forward saga stops (no compensation) when another process took it over, or when its
   * log cannot be written at all: recovery finishes it from what the log holds.
   */
  const stop = (e: unknown): never => {
    logEvent(logger, LogEvents.sagaOwnershipLost, () => ({ err: e }));
    span.setAttribute('saga.outcome', 'stopped');
    endFailed(span, e);
    throw new StoppedUnlogged(e);
  };

  if (start.kind === 'resume') {
    tracker = start.tracker;
    value = start.value;
    first = start.next;
    done.push(...start.done);
  } else {
    logEvent(logger, LogEvents.sagaStarted, { correlationId: env.correlationId });
    value = start.input;
    first = 0;
    const who = {
      id: env.sagaId,
      name: def.name,
      correlationId: env.correlationId,
      log: def.log,
      logger,
    };
    let input: unknown;
    let encodeError: unknown;
    try {
      input = forward && def.log ? encodeWith(def.inputCodec, start.input) : undefined;
    } catch (e) {
      encodeError = e;
    }
    tracker = new SagaTracker(who, { steps: def.steps, fresh: { recovery: def.recovery, input } });
    try {
      if (encodeError !== undefined) throw encodeError;
      await tracker.record(true);
    } catch (e) {
      if (env.claim && isSagaConflictError(e)) {
        span.setAttribute('saga.outcome', 'duplicate');
        span.end();
        throw new IdTaken(e);
      }
      failure = { error: e, step: undefined, cancelled: false };
    }
  }

  for (let i = first; i < def.steps.length && !failure; i++) {
    const s = def.steps[i] as AnySagaStep;
    if (env.signal.aborted) {
      failure = { error: env.signal.reason, step: undefined, cancelled: true };
      break;
    }
    const before = tracker.steps[i]?.status;
    tracker.setStep(i, { status: 'running' });
    try {
      await tracker.record(true); // the compensation is registered before the action runs
    } catch (e) {
      tracker.setStep(i, { status: before ?? 'pending' });
      if (forward && isSagaConflictError(e)) stop(e);
      failure = { error: e, step: s.name, cancelled: false, write: true };
      break;
    }
    const run: ActionRun = {
      def,
      step: s,
      index: i,
      input: value,
      env,
      parent: sagaCtx,
      logger,
      resumed,
    };
    let result: unknown;
    let lost: unknown;
    try {
      result =
        s.transactional === true && def.log?.transaction
          ? await runTransactional(run, tracker)
          : await withHeartbeat(
              tracker,
              def.heartbeatMs,
              (e) => {
                lost = e;
                run.abort?.(e);
              },
              () => runAction(run),
            );
    } catch (e) {
      if (forward && (lost !== undefined || isSagaConflictError(e))) stop(lost ?? e);
      const cancelled = env.signal.aborted;
      tracker.setStep(i, { status: 'failed', error: describeError(e) });
      if (s.compensateFailed === true)
        done.push({ index: i, result: undefined, actionFailed: true });
      failure = { error: cancelled ? env.signal.reason : e, step: s.name, cancelled };
      break;
    }
    done.push({ index: i, result, actionFailed: false });
    env.emit({
      type: 'step-completed',
      saga: def.name,
      sagaId: env.sagaId,
      step: s.name,
      index: i,
      result,
    });
    if (tracker.steps[i]?.status !== 'completed') {
      let encoded: unknown;
      try {
        encoded = def.log ? encodeWith(s.codec, result) : undefined;
      } catch (e) {
        // the step completed, but its result cannot be recorded: undo it with the others
        failure = { error: e, step: s.name, cancelled: false };
        break;
      }
      try {
        tracker.setStep(i, { status: 'completed', result: encoded });
        await tracker.record(true);
      } catch (e) {
        tracker.setStep(i, { status: 'completed' });
        if (forward && isSagaConflictError(e)) stop(e);
        failure = { error: e, step: s.name, cancelled: false, write: true };
        break;
      }
    }
    value = result;
  }
  if (!failure) {
    tracker.status = 'completed';
    try {
      await tracker.record(true);
      env.emit({ type: 'saga-completed', saga: def.name, sagaId: env.sagaId, result: value });
      logEvent(logger, LogEvents.sagaCompleted, { correlationId: env.correlationId });
      span.setAttribute('saga.outcome', 'completed');
      span.end();
      return value;
    } catch (e) {
      // the log still says 'running': a resumer would compensate it, so undo it now
      tracker.status = 'running';
      if (forward && isSagaConflictError(e)) stop(e);
      failure = { error: e, step: undefined, cancelled: false, write: true };
    }
  }
  if (forward && failure.write) {
    // a forward saga compensates after a failed write only if its log can record that it
    // does; else (the store is down) it stops, and recovery goes on from what the log holds
    const { status, cause, failedStep } = tracker;
    tracker.status = 'compensating';
    tracker.cause = failure.error;
    tracker.failedStep = failure.step ?? null;
    try {
      await tracker.record(true);
    } catch (e) {
      tracker.status = status;
      tracker.cause = cause;
      tracker.failedStep = failedStep;
      stop(e);
    }
  }

  const specs = def.steps.map((s) => specOf(def, s));
  const outcome = await compensate(
    tracker,
    specs,
    done,
    { cause: failure.error, failedStep: failure.step, resumed },
    {
      saga: def.name,
      sagaId: env.sagaId,
      correlationId: env.correlationId,
      logger,
      otel: sagaCtx,
      bag: env.bag,
      tracer: def.tracer,
      compensationSignal: env.compensationSignal,
      emit: env.emit,
      halt: def.onCompensationFailure === 'halt',
      heartbeatMs: def.heartbeatMs,
    },
  );
  const error =
    outcome.failures.length > 0
      ? new CompensationFailedError(
          def.name,
          env.sagaId,
          failure.cancelled ? undefined : failure.step,
          outcome.compensated,
          outcome.notCompensated,
          outcome.failures,
          failure.error,
        )
      : failure.cancelled
        ? failure.error
        : new SagaFailedError(
            def.name,
            env.sagaId,
            failure.step,
            outcome.compensated,
            failure.error,
          );
  env.emit({
    type: 'saga-failed',
    saga: def.name,
    sagaId: env.sagaId,
    error,
    cause: failure.error,
    failedStep: failure.step,
    cancelled: failure.cancelled,
    compensated: outcome.compensated,
    notCompensated: outcome.notCompensated,
  });
  span.setAttribute('saga.outcome', failure.cancelled ? 'cancelled' : 'failed');
  endFailed(span, error);
  throw error;
}

/** How a step's compensation runs, from its definition. @internal */
export function specOf(def: SagaDefinition, s: AnySagaStep): CompensationSpec {
  return {
    name: s.name,
    compensate: s.compensate as Compensation<unknown> | undefined,
    policy: s.compensationPolicy ?? def.compensationPolicy,
    timeoutMs: s.compensationTimeoutMs ?? def.compensationTimeoutMs,
  };
}

/** One run of a step's action. */
interface ActionRun {
  readonly def: SagaDefinition;
  readonly step: AnySagaStep;
  readonly index: number;
  readonly input: unknown;
  readonly env: ExecutionEnv;
  readonly parent: Context;
  readonly logger: Logger;
  /** Whether the saga was resumed after a restart. */
  readonly resumed: boolean;
  /** Set while the action runs: aborts it (e.g. the saga was taken over). */
  abort?: (reason: unknown) => void;
}

/** Calls the action once with its context. */
function callAction(
  run: ActionRun,
  otel: Context,
  logger: Logger,
  signal: AbortSignal,
  transaction: SagaLogTransaction | undefined,
): unknown {
  const { def, step: s, env } = run;
  const ctx: SagaContext = {
    saga: def.name,
    sagaId: env.sagaId,
    step: s.name,
    index: run.index,
    correlationId: env.correlationId,
    signal,
    logger,
    otel,
    bag: env.bag,
    idempotencyKey: `${def.name}/${env.sagaId}/${s.name}`,
    resumed: run.resumed,
    transaction,
  };
  return toValue(otelContext.with(otel, s.action, undefined, run.input, ctx), false);
}

/** Runs the action's work through its policy, in a span; `work` is one attempt. */
async function inSpan(
  run: ActionRun,
  work: (signal: AbortSignal, otel: Context, logger: Logger) => unknown,
): Promise<unknown> {
  const { def, step: s, env } = run;
  const span = def.tracer.startSpan(
    `saga.step ${s.name}`,
    { attributes: { 'saga.name': def.name, 'saga.id': env.sagaId, 'saga.step': s.name } },
    run.parent,
  );
  const otel = trace.setSpan(run.parent, span);
  const stepLogger = run.logger.child({ step: s.name });
  const { controller, dispose } = linkedController(env.signal);
  run.abort = (reason) => controller.abort(reason);
  let work$: Observable<unknown> = fromWork(
    (signal) => work(signal, otel, stepLogger),
    controller.signal,
  );
  for (const op of s.policy ?? []) work$ = op(work$);
  try {
    const result = await lastValueFrom(work$);
    span.end();
    return result;
  } catch (e) {
    endFailed(span, e);
    throw e;
  } finally {
    run.abort = undefined;
    dispose();
  }
}

function runAction(run: ActionRun): Promise<unknown> {
  return inSpan(run, (signal, otel, logger) => callAction(run, otel, logger, signal, undefined));
}

/**
 * A transactional step: each attempt runs the action and writes the step's completion in one
 * transaction of the log. If the policy gives up (e.g. a timeout) after an attempt committed,
 * the step did complete: its committed result is used.
 */
async function runTransactional(run: ActionRun, tracker: SagaTracker): Promise<unknown> {
  const log = run.def.log;
  const transaction = log?.transaction?.bind(log);
  if (!transaction) throw new TypeError('transactional step without a transactional log');
  let committed: { result: unknown } | undefined;
  try {
    return await inSpan(run, async (signal, otel, logger) => {
      let patch: { index: number; step: { status: 'completed'; result: unknown } } | undefined;
      const { result, snapshot } = await transaction(async (tx) => {
        const r = await callAction(run, otel, logger, signal, tx);
        signal.throwIfAborted();
        patch = {
          index: run.index,
          step: { status: 'completed', result: encodeWith(run.step.codec, r) },
        };
        return { result: r, snapshot: await tracker.recordIn(tx, patch) };
      });
      if (patch) tracker.commit(snapshot, patch);
      committed = { result };
      return result;
    });
  } catch (e) {
    if (committed) return committed.result;
    throw e;
  }
}
