/**
 * The types a saga is defined with: its steps, their actions and compensations, what they
 * receive, and the options of the saga and of one execution.
 *
 * @module
 */

import type { Context } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { MonoTypeOperatorFunction, Observable } from 'rxjs';
import type { ContextBag } from '../core/context.js';
import type { TelemetryOptions } from '../observability/telemetry.js';
import type { SagaEvent } from './events.js';
import type { SagaLog, SagaLogTransaction, SagaRecoveryDirection } from './log.js';

/**
 * What a saga step's action receives beside its input.
 *
 * @example
 * ```ts
 * import type { SagaContext } from '@hartonomous/pipelines';
 *
 * async function reserve(sku: string, ctx: SagaContext) {
 *   ctx.logger.info({ sku, sagaId: ctx.sagaId }, 'reserving');
 *   const res = await fetch(`http://127.0.0.1:8080/reserve/${sku}`, { method: 'POST', signal: ctx.signal });
 *   return (await res.json()) as { reservationId: string };
 * }
 * ```
 */
export interface SagaContext {
  /** The saga's name. */
  readonly saga: string;
  /** The id of this execution of the saga. */
  readonly sagaId: string;
  /** The step's name. */
  readonly step: string;
  /** The step's position in the saga, from 0. */
  readonly index: number;
  /** Correlation id of the item (defaults to the saga id). */
  readonly correlationId: string;
  /**
   * For an action: aborts when the saga is cancelled (unsubscribed or its signal fired) or a
   * timeout policy expired. For a compensation: its OWN signal, which the saga's cancellation
   * never aborts; only the compensation timeout, its policy, or `compensationSignal` do.
   */
  readonly signal: AbortSignal;
  /** A pino logger bound to saga, saga id and step. */
  readonly logger: Logger;
  /** The OpenTelemetry context whose active span is this action's (or compensation's) span. */
  readonly otel: Context;
  /** The item's bag (an empty one when the saga runs outside a pipeline, or is resumed). */
  readonly bag: ContextBag;
  /**
   * A key unique to this step of this saga execution and the same every time the step runs
   * (a retry, or a run again after a crash): `<saga>/<saga id>/<step>`. Pass it to the system
   * the step calls (an `Idempotency-Key` header, a unique column) so a step that runs again
   * does its work once.
   */
  readonly idempotencyKey: string;
  /**
   * True when this runs from `resumeSaga`/`resumeSagas`/`sagaRecovery` after a restart
   * (a forward saga continued, or a compensation finished).
   */
  readonly resumed: boolean;
  /**
   * For a transactional step's action: the saga log's open transaction, whose commit also
   * records the step's completion (for `postgresSagaLog`, `sagaEntityManager(ctx)` gives its
   * MikroORM `EntityManager`). Undefined for other steps and for compensations.
   */
  readonly transaction: SagaLogTransaction | undefined;
}

/**
 * What a compensation receives beside the action's result.
 *
 * @example
 * ```ts
 * import type { CompensationContext } from '@hartonomous/pipelines';
 *
 * async function release(r: { reservationId: string } | undefined, ctx: CompensationContext) {
 *   if (ctx.actionFailed && r === undefined) return; // the action failed before returning
 *   await fetch(`http://127.0.0.1:8080/release/${r?.reservationId}`, { method: 'POST', signal: ctx.signal });
 * }
 * ```
 */
export interface CompensationContext extends SagaContext {
  /** Why the saga is compensating: the failed action's error, or the abort reason. */
  readonly cause: unknown;
  /**
   * True when this step's own action failed, or its outcome is unknown (a resumed saga
   * crashed while the action ran); the result is then `undefined`. Only with
   * `compensateFailed: true`.
   */
  readonly actionFailed: boolean;
}

/**
 * The forward work of a saga step: the previous step's output (the saga's input for the first
 * step) in, this step's output out (a value, a promise, or an Observable whose last value is
 * the output).
 *
 * @typeParam I - input type
 * @typeParam O - output type
 *
 * @example
 * ```ts
 * import type { SagaAction } from '@hartonomous/pipelines';
 * const reserve: SagaAction<string, { reservationId: string }> = async (sku, { signal }) =>
 *   (await fetch(`http://127.0.0.1:8080/reserve/${sku}`, { method: 'POST', signal })).json();
 * ```
 */
export type SagaAction<I, O> = (input: I, ctx: SagaContext) => O | PromiseLike<O> | Observable<O>;

/**
 * Undoes a step: receives the action's result (`undefined` when the action failed and the
 * step has `compensateFailed: true`). May return a promise or an Observable, which is awaited.
 * Compensations may run more than once (a retry policy, or a resume after a crash while it
 * ran): make them idempotent.
 *
 * @typeParam R - the action's result type
 *
 * @example
 * ```ts
 * import type { Compensation } from '@hartonomous/pipelines';
 * const release: Compensation<{ reservationId: string }> = (r, { signal }) =>
 *   fetch(`http://127.0.0.1:8080/release/${r.reservationId}`, { method: 'POST', signal });
 * ```
 */
export type Compensation<R> = (result: R, ctx: CompensationContext) => unknown;

/**
 * Encodes a step's result for the saga log (JSON) and decodes it for a resumed compensation.
 *
 * @typeParam O - the action's result type
 *
 * @example
 * ```ts
 * import type { SagaCodec } from '@hartonomous/pipelines';
 * const dates: SagaCodec<Date> = { encode: (d) => d.toISOString(), decode: (j) => new Date(String(j)) };
 * ```
 */
export interface SagaCodec<O> {
  /**
   * @param result - the action's result
   * @returns a JSON-safe value
   */
  encode(result: O): unknown;
  /**
   * @param json - what `encode` returned, read back from the log
   * @returns the result as the compensation expects it
   */
  decode(json: unknown): O;
}

/**
 * Fields of every {@link SagaStep}, whether or not it has `compensateFailed`.
 *
 * @typeParam I - the action's input
 * @typeParam O - the action's output
 *
 * @example
 * ```ts
 * import type { SagaStepBase } from '@hartonomous/pipelines';
 * const named = (s: SagaStepBase<unknown, unknown>) => s.name;
 * ```
 */
export interface SagaStepBase<I, O> {
  /** Step name, unique within the saga; used in events, errors, spans and the saga log. */
  readonly name: string;
  /** The forward work. */
  readonly action: SagaAction<I, O>;
  /**
   * Resilience policy of the action: operators applied, in order, to each call's `fromWork`
   * Observable (e.g. `[timeout(1_000), retry(3)]`). @default no policy
   */
  readonly policy?: ReadonlyArray<MonoTypeOperatorFunction<O>>;
  /**
   * Policy of the compensation, applied the same way to its `fromWork` Observable
   * (e.g. `[timeout(2_000), retry({ maxAttempts: 5 })]`). @default the saga's `compensationPolicy`
   */
  readonly compensationPolicy?: ReadonlyArray<MonoTypeOperatorFunction<unknown>>;
  /**
   * Limit of the whole compensation, retries included, in ms: its signal aborts and it fails
   * with a `TimeoutError`. @default the saga's `compensationTimeoutMs`
   */
  readonly compensationTimeoutMs?: number;
  /**
   * How the result is stored in the saga log, and read back for a resumed saga (the next
   * step's input in forward recovery, the compensation's argument, the result `start` hands a
   * later caller). @default JSON as is (`undefined` becomes `null`)
   */
  readonly codec?: SagaCodec<O>;
  /**
   * Runs the action inside a transaction of the saga log, committed together with the record
   * of the step's completion: a crash leaves both or neither, so the step's database work
   * happens exactly once. The action gets the transaction in `ctx.transaction` and must do
   * its database work through it. Needs a log with `transaction` (`postgresSagaLog`). A
   * policy retries the whole transaction. No heartbeat runs during the transaction: keep such
   * steps shorter than the recovery's `staleAfterMs` (a longer one taken over by recovery
   * rolls back at its commit, and recovery runs it again).
   * @default false
   */
  readonly transactional?: boolean;
}

/**
 * One step of a saga: an action and (usually) its compensation. Before the action runs, the
 * step is recorded as running (its compensation is registered); if a later step fails, the
 * compensations of the completed steps run in exact reverse order with the actions' results.
 * `compensateFailed: true` also compensates the step whose own action failed (for actions
 * that may have partly applied); its compensation then receives `undefined`.
 *
 * @typeParam I - the action's input
 * @typeParam O - the action's output
 *
 * @example
 * ```ts
 * import { retry, type SagaStep, timeout } from '@hartonomous/pipelines';
 *
 * const charge: SagaStep<{ orderId: string; cents: number }, { chargeId: string }> = {
 *   name: 'charge',
 *   action: async (o, { signal }) => ({ chargeId: await payments.charge(o.orderId, o.cents, signal) }),
 *   compensate: (c, { signal }) => payments.refund(c.chargeId, signal),
 *   policy: [timeout(2_000), retry(2)],
 *   compensationPolicy: [retry({ maxAttempts: 5 })],
 * };
 * ```
 */
export type SagaStep<I, O> = SagaStepBase<I, O> &
  (
    | {
        /** Compensate only when the action completed. @default false */
        readonly compensateFailed?: false;
        /** Undoes the completed action; omit for a step with nothing to undo. */
        readonly compensate?: Compensation<O>;
      }
    | {
        /** Also compensate when the action itself failed (the result is then `undefined`). */
        readonly compensateFailed: true;
        /** Undoes the action, completed or not. */
        readonly compensate: Compensation<O | undefined>;
      }
  );

/**
 * A saga step of any types, for collections.
 *
 * @example
 * ```ts
 * import type { AnySagaStep } from '@hartonomous/pipelines';
 * const names = (steps: readonly AnySagaStep[]) => steps.map((s) => s.name);
 * ```
 */
// biome-ignore lint/suspicious/noExplicitAny: a heterogeneous list of steps needs an escape hatch
export type AnySagaStep = SagaStep<any, any>;

/**
 * Options of a saga, given once to {@link saga}.
 *
 * @example
 * ```ts
 * import { retry, saga, type SagaOptions } from '@hartonomous/pipelines';
 *
 * const options: SagaOptions = {
 *   name: 'order',
 *   compensationPolicy: [retry({ maxAttempts: 5, baseDelayMs: 100 })],
 *   compensationTimeoutMs: 30_000,
 * };
 * ```
 */
export interface SagaOptions extends TelemetryOptions {
  /** The saga's name: in events, errors, spans, logs and the saga log (with step names it finds compensations on resume). */
  name: string;
  /** Where each state change is written, for crash recovery. @default none (state is in memory only) */
  log?: SagaLog;
  /** Compensation policy of steps that give none. @default no policy (one attempt) */
  compensationPolicy?: ReadonlyArray<MonoTypeOperatorFunction<unknown>>;
  /** Compensation time limit of steps that give none, in ms. @default none */
  compensationTimeoutMs?: number;
  /**
   * After a compensation fails: `'continue'` undoes the remaining earlier steps anyway (as
   * much as possible is undone), `'halt'` stops there (for compensations that depend on later
   * ones having succeeded). Either way the saga ends with a `CompensationFailedError`.
   * @default 'continue'
   */
  onCompensationFailure?: 'continue' | 'halt';
  /** A pino logger for saga events. @default a silent logger */
  logger?: Logger;
  /**
   * How the saga is finished after a crash (by `resumeSagas` or `sagaRecovery`):
   * `'backward'` compensates the completed steps; `'forward'` continues from the step that was
   * running (it runs again: make it idempotent, e.g. with `ctx.idempotencyKey`, or
   * transactional) with the recorded outputs of the completed steps, which never run again.
   * A forward saga that fails after resuming compensates as usual. A forward saga taken
   * over by another process, or whose log cannot record even that it compensates (the store
   * is down), stops where it is, without compensating, and errors with the log's error:
   * recovery finishes it from what the log holds. Forward needs a `log`.
   * @default 'backward'
   */
  recovery?: SagaRecoveryDirection;
  /**
   * How a forward saga's input is stored in the saga log and read back when it resumes.
   * @default JSON as is
   */
  // biome-ignore lint/suspicious/noExplicitAny: the options are not generic in the input type
  inputCodec?: SagaCodec<any>;
  /**
   * While an action or a compensation runs, tell the log every `heartbeatMs` that the saga is
   * alive (with a log that has `heartbeat`), so recovery does not take it over; a heartbeat
   * that finds the saga taken over aborts the running action. 0 turns heartbeats off.
   * Keep it well below the recovery's `staleAfterMs`.
   * @default 10_000
   */
  heartbeatMs?: number;
}

/**
 * Options of one execution of a saga.
 *
 * @typeParam O - the saga's output type
 *
 * @example
 * ```ts
 * import type { SagaRunOptions } from '@hartonomous/pipelines';
 *
 * const options: SagaRunOptions<string> = {
 *   signal: AbortSignal.timeout(10_000),
 *   onEvent: (e) => console.log(e.type),
 * };
 * ```
 */
export interface SagaRunOptions<O = unknown> {
  /** Cancels the saga: the running action is aborted and the completed steps are compensated. @default none */
  signal?: AbortSignal;
  /**
   * Aborts running compensations (e.g. a hard shutdown). The saga's own cancellation never
   * does. @default none
   */
  compensationSignal?: AbortSignal;
  /**
   * The execution's id (with the saga's name, its key in the saga log; an id already there
   * fails the saga: use `start` to run an id once). @default a random UUID
   */
  sagaId?: string;
  /** Correlation id for logs. @default the saga id */
  correlationId?: string;
  /**
   * Receives every event, including those of a compensation that runs after the subscriber
   * unsubscribed (which the Observable no longer delivers). Must not throw. @default none
   */
  onEvent?: (event: SagaEvent<O>) => void;
  /** Logger for this execution. @default the saga's logger */
  logger?: Logger;
  /** Parent OpenTelemetry context of the saga span. @default the active context */
  otel?: Context;
  /** Bag passed to actions and compensations. @default an empty bag */
  bag?: ContextBag;
}

/**
 * Options of {@link Saga.operator}.
 *
 * @typeParam I - input type
 * @typeParam O - output type
 *
 * @example
 * ```ts
 * import type { SagaOperatorOptions } from '@hartonomous/pipelines';
 * const options: SagaOperatorOptions<number, string> = { concurrency: 4, sagaId: (n) => `order-${n}` };
 * ```
 */
export interface SagaOperatorOptions<I, O>
  extends Omit<SagaRunOptions<O>, 'sagaId' | 'correlationId'> {
  /** Sagas running at once (one per source value). @default 1 */
  concurrency?: number;
  /** The id of the saga run for each source value. @default a random UUID */
  sagaId?: (input: I, index: number) => string;
}

/**
 * Options of {@link Saga.start}: an execution with an id that runs once.
 *
 * @typeParam O - the saga's output type
 *
 * @example
 * ```ts
 * import type { SagaStartOptions } from '@hartonomous/pipelines';
 * const options: SagaStartOptions<string> = { id: 'order-1001', pollMs: 100 };
 * ```
 */
export interface SagaStartOptions<O = unknown> extends Omit<SagaRunOptions<O>, 'sagaId'> {
  /** The execution's id, unique per saga name: a second start with it runs nothing. */
  id: string;
  /**
   * How often a caller whose id is running in another process reads the log for its outcome,
   * in ms. @default 200
   */
  pollMs?: number;
}
