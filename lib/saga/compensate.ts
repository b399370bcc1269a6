/**
 * The compensation phase of a saga, shared by a live execution and `resumeSaga`: the planned
 * compensations run latest first, each once, with its own signal, policy and time limit, and
 * the state is written as it goes.
 *
 * @internal
 * @module
 */

import { type Context, context as otelContext, type Tracer, trace } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { lastValueFrom, type MonoTypeOperatorFunction, type Observable } from 'rxjs';
import { linkedController } from '../core/abort.js';
import type { ContextBag } from '../core/context.js';
import { describeError } from '../core/errors.js';
import { fromWork } from '../core/from-work.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { timeout } from '../operators/timeout.js';
import type { FailedCompensation } from './errors.js';
import type { SagaEvent } from './events.js';
import { withHeartbeat } from './heartbeat.js';
import { endFailed, toValue } from './spans.js';
import type { SagaTracker } from './tracker.js';
import type { Compensation, CompensationContext } from './types.js';

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
  readonly heartbeatMs: number;
}

/** Why the saga compensates. @internal */
export interface CompensationCause {
  readonly cause: unknown;
  readonly failedStep: string | undefined;
  readonly resumed: boolean;
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
  why: CompensationCause,
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
  const failed = async (p: PlannedCompensation, name: string, error: unknown): Promise<void> => {
    failures.push({ step: name, error });
    notCompensated.push(name);
    tracker.setStep(p.index, { status: 'compensation-failed', error: describeError(error) });
    await tracker.record(false);
    env.emit({
      type: 'compensation-failed',
      saga: env.saga,
      sagaId: env.sagaId,
      step: name,
      index: p.index,
      error,
    });
  };
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
        await failed(p, spec.name, error);
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
      // a heartbeat that finds the saga taken over changes nothing here: compensations are
      // idempotent, and the other process undoes the same steps
      await withHeartbeat(
        tracker,
        env.heartbeatMs,
        () => undefined,
        () => runCompensation(spec, p, why, env),
      );
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
      logEvent(env.logger, LogEvents.sagaCompensationFailed, () => ({ step: spec.name, err: e }));
      await failed(p, spec.name, e);
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
  why: CompensationCause,
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
      idempotencyKey: `${env.saga}/${env.sagaId}/${spec.name}`,
      resumed: why.resumed,
      transaction: undefined,
      cause: why.cause,
      actionFailed: p.actionFailed,
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
