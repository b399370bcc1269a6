/**
 * The saga engine shared by `saga()` (a live execution) and `resumeSaga()` (finishing the
 * compensation of a saved saga): forward execution with the state written to the saga log
 * before and after each action, and compensation in reverse order.
 *
 * @internal
 * @module
 */

import {
  type Context,
  context as otelContext,
  type Span,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { Logger } from 'pino';
import { isObservable, lastValueFrom, type MonoTypeOperatorFunction, type Observable } from 'rxjs';
import { linkedController } from '../core/abort.js';
import type { ContextBag } from '../core/context.js';
import { describeError } from '../core/errors.js';
import { fromWork } from '../core/from-work.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { timeout } from '../operators/timeout.js';
import { CompensationFailedError, type FailedCompensation, SagaFailedError } from './errors.js';
import type { SagaLog, SagaSnapshot, SagaStatus, SagaStepSnapshot } from './log.js';
import type {
  AnySagaStep,
  Compensation,
  CompensationContext,
  SagaContext,
  SagaEvent,
} from './saga.js';

/** A validated saga definition. @internal */
export interface SagaDefinition {
  readonly name: string;
  readonly steps: readonly AnySagaStep[];
  readonly log: SagaLog | undefined;
  readonly compensationPolicy: ReadonlyArray<MonoTypeOperatorFunction<unknown>>;
  readonly compensationTimeoutMs: number | undefined;
  readonly onCompensationFailure: 'continue' | 'halt';
  readonly logger: Logger;
  readonly tracer: Tracer;
}

const definitions = new WeakMap<object, SagaDefinition>();

/** Remembers the definition behind a saga object. @internal */
export function registerDefinition(saga: object, def: SagaDefinition): void {
  definitions.set(saga, def);
}

/** The definition behind a saga object built by `saga()`, if it is one. @internal */
export function definitionOf(saga: object): SagaDefinition | undefined {
  return definitions.get(saga);
}

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
}

/** How to undo one step (from its definition, or from a registry on resume). @internal */
export interface CompensationSpec {
  readonly name: string;
  readonly compensate: Compensation<unknown> | undefined;
  readonly policy: ReadonlyArray<MonoTypeOperatorFunction<unknown>>;
  readonly timeoutMs: number | undefined;
}

/** One compensation to run: which step, with which result. @internal */
export interface PlannedCompensation {
  readonly index: number;
  readonly result: unknown;
  readonly actionFailed: boolean;
}

/** The outcome of the compensation phase. @internal */
export interface CompensationOutcome {
  readonly compensated: readonly string[];
  readonly notCompensated: readonly string[];
  readonly failures: readonly FailedCompensation[];
}

type MutableStep = { -readonly [K in keyof SagaStepSnapshot]: SagaStepSnapshot[K] };

/**
 * The mutable state of one execution and its writes to the saga log.
 * @internal
 */
export class SagaTracker {
  status: SagaStatus;
  cause: unknown;
  failedStep: string | null = null;
  readonly steps: MutableStep[];
  version: number;

  constructor(
    readonly id: string,
    readonly name: string,
    readonly correlationId: string,
    readonly log: SagaLog | undefined,
    readonly logger: Logger,
    from: SagaSnapshot | readonly AnySagaStep[],
  ) {
    if ('status' in from) {
      this.status = from.status;
      this.steps = from.steps.map((s) => ({ ...s }));
      this.version = from.version;
      if (from.status !== 'running' && from.status !== 'completed') {
        this.cause = from.cause;
        this.failedStep = from.failedStep;
      }
    } else {
      this.status = 'running';
      this.steps = from.map((s) => ({
        name: s.name,
        status: 'pending',
        compensable: typeof s.compensate === 'function',
        compensateFailed: s.compensateFailed === true,
      }));
      this.version = 0;
    }
  }

  /** The state as a snapshot with the next version. */
  snapshot(version: number): SagaSnapshot {
    const base = {
      id: this.id,
      name: this.name,
      correlationId: this.correlationId,
      steps: this.steps.map((s) => ({ ...s })),
      version,
    };
    if (this.status === 'running' || this.status === 'completed') {
      return { ...base, status: this.status };
    }
    return {
      ...base,
      status: this.status,
      cause: serialize(this.cause),
      failedStep: this.failedStep,
    };
  }

  setStep(index: number, patch: Partial<MutableStep>): void {
    const s = this.steps[index];
    if (s) Object.assign(s, patch);
  }

  /**
   * Writes the state to the log, if any. `strict` writes rethrow a failure (forward phase);
   * others log it and go on (compensation must proceed whatever the log does).
   */
  async record(strict: boolean): Promise<void> {
    if (!this.log) return;
    const snapshot = this.snapshot(this.version + 1);
    try {
      await this.log.write(snapshot);
      this.version = snapshot.version;
    } catch (e) {
      logEvent(this.logger, LogEvents.sagaLogWriteFailed, () => ({
        saga: this.name,
        sagaId: this.id,
        version: snapshot.version,
        status: snapshot.status,
        err: e,
      }));
      if (strict) throw e;
    }
  }
}

function serialize(e: unknown): Record<string, unknown> {
  if (typeof e === 'object' && e !== null && !(e instanceof Error) && 'message' in e) {
    return e as Record<string, unknown>; // already serialized (restored from a snapshot)
  }
  return describeError(e);
}

/** The JSON form of a result for the log. @internal */
export function encodeResult(step: AnySagaStep, result: unknown): unknown {
  if (step.codec) return step.codec.encode(result);
  if (result === undefined) return null;
  return JSON.parse(JSON.stringify(result)) as unknown;
}

/**
 * Runs a saga forward, then compensates on failure. Resolves with the last output or rejects
 * with the saga's error, after emitting the events.
 * @internal
 */
export async function executeSaga(
  def: SagaDefinition,
  input: unknown,
  env: ExecutionEnv,
): Promise<unknown> {
  const logger = env.logger.child({ saga: def.name, sagaId: env.sagaId });
  const tracker = new SagaTracker(
    env.sagaId,
    def.name,
    env.correlationId,
    def.log,
    logger,
    def.steps,
  );
  const span = def.tracer.startSpan(
    `saga ${def.name}`,
    { attributes: { 'saga.name': def.name, 'saga.id': env.sagaId } },
    env.otel,
  );
  const sagaCtx = trace.setSpan(env.otel, span);
  logEvent(logger, LogEvents.sagaStarted, { correlationId: env.correlationId });

  const done: PlannedCompensation[] = [];
  let failure: { error: unknown; step: string | undefined; cancelled: boolean } | undefined;
  let value = input;
  try {
    await tracker.record(true);
  } catch (e) {
    failure = { error: e, step: undefined, cancelled: false };
  }
  for (let i = 0; i < def.steps.length && !failure; i++) {
    const s = def.steps[i] as AnySagaStep;
    if (env.signal.aborted) {
      failure = { error: env.signal.reason, step: undefined, cancelled: true };
      break;
    }
    tracker.setStep(i, { status: 'running' });
    try {
      await tracker.record(true); // the compensation is registered before the action runs
    } catch (e) {
      tracker.setStep(i, { status: 'pending' });
      failure = { error: e, step: s.name, cancelled: false };
      break;
    }
    let result: unknown;
    try {
      result = await runAction(def, s, i, value, env, sagaCtx, logger);
    } catch (e) {
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
    try {
      tracker.setStep(i, {
        status: 'completed',
        result: def.log ? encodeResult(s, result) : undefined,
      });
      await tracker.record(true);
    } catch (e) {
      tracker.setStep(i, { status: 'completed' });
      failure = { error: e, step: s.name, cancelled: false };
      break;
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
      failure = { error: e, step: undefined, cancelled: false };
    }
  }

  const specs = def.steps.map((s) => specOf(def, s));
  const outcome = await compensate(
    tracker,
    specs,
    done,
    { cause: failure.error, failedStep: failure.step, resumed: false },
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

function specOf(def: SagaDefinition, s: AnySagaStep): CompensationSpec {
  return {
    name: s.name,
    compensate: s.compensate as Compensation<unknown> | undefined,
    policy: s.compensationPolicy ?? def.compensationPolicy,
    timeoutMs: s.compensationTimeoutMs ?? def.compensationTimeoutMs,
  };
}

function endFailed(span: Span, error: unknown): void {
  if (error instanceof Error) span.recordException(error);
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: error instanceof Error ? error.message : String(error),
  });
  span.end();
}

function toValue(out: unknown, allowEmpty: boolean): unknown {
  if (!isObservable(out)) return out;
  return allowEmpty ? lastValueFrom(out, { defaultValue: undefined }) : lastValueFrom(out);
}

async function runAction(
  def: SagaDefinition,
  s: AnySagaStep,
  index: number,
  input: unknown,
  env: ExecutionEnv,
  parent: Context,
  logger: Logger,
): Promise<unknown> {
  const span = def.tracer.startSpan(
    `saga.step ${s.name}`,
    { attributes: { 'saga.name': def.name, 'saga.id': env.sagaId, 'saga.step': s.name } },
    parent,
  );
  const otel = trace.setSpan(parent, span);
  const stepLogger = logger.child({ step: s.name });
  const call = (signal: AbortSignal): unknown => {
    const ctx: SagaContext = {
      saga: def.name,
      sagaId: env.sagaId,
      step: s.name,
      index,
      correlationId: env.correlationId,
      signal,
      logger: stepLogger,
      otel,
      bag: env.bag,
    };
    return toValue(otelContext.with(otel, s.action, undefined, input, ctx), false);
  };
  let work$: Observable<unknown> = fromWork(call, env.signal);
  for (const op of s.policy ?? []) work$ = op(work$);
  try {
    const result = await lastValueFrom(work$);
    span.end();
    return result;
  } catch (e) {
    endFailed(span, e);
    throw e;
  }
}

/** What the compensation phase needs besides the plan. @internal */
export interface CompensationEnv {
  readonly saga: string;
  readonly sagaId: string;
  readonly correlationId: string;
  readonly logger: Logger;
  readonly otel: Context;
  readonly bag: ContextBag;
  readonly tracer: Tracer;
  readonly compensationSignal: AbortSignal | undefined;
  readonly emit: (event: SagaEvent<unknown>) => void;
  readonly halt: boolean;
}

/**
 * Runs the planned compensations latest first (each once, with its own signal, policy and
 * timeout), writing the state as it goes, and ends the saga as 'compensated' or 'failed'.
 * @internal
 */
export async function compensate(
  tracker: SagaTracker,
  specs: readonly CompensationSpec[],
  plan: readonly PlannedCompensation[],
  why: { cause: unknown; failedStep: string | undefined; resumed: boolean },
  env: CompensationEnv,
): Promise<CompensationOutcome> {
  tracker.status = 'compensating';
  tracker.cause = why.cause;
  tracker.failedStep = why.failedStep ?? null;
  logEvent(env.logger, LogEvents.sagaCompensating, () => ({
    failedStep: why.failedStep,
    steps: plan.map((p) => specs[p.index]?.name),
    err: why.cause,
  }));
  await tracker.record(false);

  const compensated: string[] = [];
  const notCompensated: string[] = [];
  const failures: FailedCompensation[] = [];
  const ordered = [...plan].sort((a, b) => b.index - a.index);
  for (const p of ordered) {
    const spec = specs[p.index];
    if (!spec) continue;
    if (!spec.compensate) {
      if (tracker.steps[p.index]?.compensable) {
        // the saga log says this step has a compensation, but none is registered
        const error = new TypeError(
          `no compensation registered for step '${spec.name}' of saga '${env.saga}'`,
        );
        failures.push({ step: spec.name, error });
        notCompensated.push(spec.name);
        tracker.setStep(p.index, { status: 'compensation-failed', error: describeError(error) });
        env.emit({
          type: 'compensation-failed',
          saga: env.saga,
          sagaId: env.sagaId,
          step: spec.name,
          index: p.index,
          error,
        });
        await tracker.record(false);
      }
      continue;
    }
    if (env.halt && failures.length > 0) {
      notCompensated.push(spec.name);
      continue;
    }
    tracker.setStep(p.index, { status: 'compensating' });
    await tracker.record(false);
    env.emit({
      type: 'compensating',
      saga: env.saga,
      sagaId: env.sagaId,
      step: spec.name,
      index: p.index,
      cause: why.cause,
      actionFailed: p.actionFailed,
    });
    try {
      await runCompensation(spec, p, why, env);
      compensated.push(spec.name);
      tracker.setStep(p.index, { status: 'compensated', error: undefined });
      await tracker.record(false);
      env.emit({
        type: 'compensated',
        saga: env.saga,
        sagaId: env.sagaId,
        step: spec.name,
        index: p.index,
      });
    } catch (e) {
      failures.push({ step: spec.name, error: e });
      notCompensated.push(spec.name);
      tracker.setStep(p.index, { status: 'compensation-failed', error: describeError(e) });
      logEvent(env.logger, LogEvents.sagaCompensationFailed, () => ({ step: spec.name, err: e }));
      await tracker.record(false);
      env.emit({
        type: 'compensation-failed',
        saga: env.saga,
        sagaId: env.sagaId,
        step: spec.name,
        index: p.index,
        error: e,
      });
    }
  }
  tracker.status = failures.length > 0 ? 'failed' : 'compensated';
  await tracker.record(false);
  if (failures.length === 0) {
    logEvent(env.logger, LogEvents.sagaCompensated, () => ({ compensated }));
  }
  return { compensated, notCompensated, failures };
}

async function runCompensation(
  spec: CompensationSpec,
  p: PlannedCompensation,
  why: { cause: unknown; resumed: boolean },
  env: CompensationEnv,
): Promise<void> {
  const fn = spec.compensate as Compensation<unknown>;
  const span = env.tracer.startSpan(
    `saga.compensate ${spec.name}`,
    { attributes: { 'saga.name': env.saga, 'saga.id': env.sagaId, 'saga.step': spec.name } },
    env.otel,
  );
  const otel = trace.setSpan(env.otel, span);
  const logger = env.logger.child({ step: spec.name, compensating: true });
  // the compensation's own signal: never linked to the saga's cancellation
  const { controller, dispose } = linkedController(env.compensationSignal);
  const call = (signal: AbortSignal): unknown => {
    const ctx: CompensationContext = {
      saga: env.saga,
      sagaId: env.sagaId,
      step: spec.name,
      index: p.index,
      correlationId: env.correlationId,
      signal,
      logger,
      otel,
      bag: env.bag,
      cause: why.cause,
      actionFailed: p.actionFailed,
      resumed: why.resumed,
    };
    return toValue(otelContext.with(otel, fn, undefined, p.result, ctx), true);
  };
  let work$: Observable<unknown> = fromWork(call, controller.signal);
  for (const op of spec.policy) work$ = op(work$);
  if (spec.timeoutMs !== undefined) {
    work$ = work$.pipe(timeout({ ms: spec.timeoutMs, label: `compensation '${spec.name}'` }));
  }
  try {
    await lastValueFrom(work$, { defaultValue: undefined });
    span.end();
  } catch (e) {
    endFailed(span, e);
    throw e;
  } finally {
    dispose();
  }
}
