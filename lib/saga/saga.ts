import { randomUUID } from 'node:crypto';
import { type Context, context as otelContext } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { type MonoTypeOperatorFunction, mergeMap, Observable, type OperatorFunction } from 'rxjs';
import { linkedController } from '../core/abort.js';
import { type ContextBag, contextBag } from '../core/context.js';
import { CancelledError } from '../core/errors.js';
import { checkName, type Step, type StepOptions, step } from '../core/step.js';
import { silentLogger } from '../observability/logger.js';
import { type TelemetryOptions, tracerOf } from '../observability/telemetry.js';
import { executeSaga, registerDefinition, type SagaDefinition } from './engine.js';
import type { SagaLog } from './log.js';

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
  /** True when the compensation runs from `resumeSaga`/`resumeSagas` after a restart. */
  readonly resumed: boolean;
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
  /** How the result is stored in the saga log. @default JSON as is (`undefined` becomes `null`) */
  readonly codec?: SagaCodec<O>;
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
  /** The execution's id (the saga log's primary key). @default a random UUID */
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

/** Fields every saga event has. */
interface SagaEventBase {
  /** The saga's name. */
  readonly saga: string;
  /** The id of this execution. */
  readonly sagaId: string;
}

/**
 * A step's action completed.
 * @example
 * ```ts
 * import type { SagaStepCompletedEvent } from '@hartonomous/pipelines';
 * const log = (e: SagaStepCompletedEvent) => console.log(`${e.step} done`, e.result);
 * ```
 */
export interface SagaStepCompletedEvent extends SagaEventBase {
  /** Discriminant. */
  readonly type: 'step-completed';
  /** The step. */
  readonly step: string;
  /** Its position, from 0. */
  readonly index: number;
  /** The action's result. */
  readonly result: unknown;
}

/**
 * A step's compensation is starting.
 * @example
 * ```ts
 * import type { SagaCompensatingEvent } from '@hartonomous/pipelines';
 * const log = (e: SagaCompensatingEvent) => console.warn(`undoing ${e.step}`);
 * ```
 */
export interface SagaCompensatingEvent extends SagaEventBase {
  /** Discriminant. */
  readonly type: 'compensating';
  /** The step being undone. */
  readonly step: string;
  /** Its position, from 0. */
  readonly index: number;
  /** Why the saga compensates. */
  readonly cause: unknown;
  /** Whether the step's own action failed (a `compensateFailed` step). */
  readonly actionFailed: boolean;
}

/**
 * A step's compensation succeeded.
 * @example
 * ```ts
 * import type { SagaCompensatedEvent } from '@hartonomous/pipelines';
 * const log = (e: SagaCompensatedEvent) => console.info(`undid ${e.step}`);
 * ```
 */
export interface SagaCompensatedEvent extends SagaEventBase {
  /** Discriminant. */
  readonly type: 'compensated';
  /** The step undone. */
  readonly step: string;
  /** Its position, from 0. */
  readonly index: number;
}

/**
 * A step's compensation failed (after its policy gave up).
 * @example
 * ```ts
 * import type { SagaCompensationFailedEvent } from '@hartonomous/pipelines';
 * const log = (e: SagaCompensationFailedEvent) => console.error(`could not undo ${e.step}`, e.error);
 * ```
 */
export interface SagaCompensationFailedEvent extends SagaEventBase {
  /** Discriminant. */
  readonly type: 'compensation-failed';
  /** The step not undone. */
  readonly step: string;
  /** Its position, from 0. */
  readonly index: number;
  /** What the compensation failed with. */
  readonly error: unknown;
}

/**
 * Every step completed; the last event of a successful saga, before `complete`.
 * @typeParam O - the saga's output type
 * @example
 * ```ts
 * import type { SagaCompletedEvent } from '@hartonomous/pipelines';
 * const log = (e: SagaCompletedEvent<string>) => console.log('result', e.result);
 * ```
 */
export interface SagaCompletedEvent<O> extends SagaEventBase {
  /** Discriminant. */
  readonly type: 'saga-completed';
  /** The last step's output. */
  readonly result: O;
}

/**
 * The saga failed; the last event before the Observable errors with `error`.
 * @example
 * ```ts
 * import type { SagaFailedEvent } from '@hartonomous/pipelines';
 * const log = (e: SagaFailedEvent) => console.warn(`failed at ${e.failedStep}`, e.compensated, e.notCompensated);
 * ```
 */
export interface SagaFailedEvent extends SagaEventBase {
  /** Discriminant. */
  readonly type: 'saga-failed';
  /**
   * The error the Observable errors with next: a `SagaFailedError`, a
   * `CompensationFailedError` (a compensation failed), or the abort reason (cancelled and
   * fully compensated).
   */
  readonly error: unknown;
  /** The original error: the failed action's error, or the abort reason. */
  readonly cause: unknown;
  /** The step whose action failed or was running when cancelled, if any. */
  readonly failedStep: string | undefined;
  /** Whether the saga was cancelled. */
  readonly cancelled: boolean;
  /** Steps undone, in the order their compensations ran. */
  readonly compensated: readonly string[];
  /** Completed steps left in place (their compensation failed or was not attempted), latest first. */
  readonly notCompensated: readonly string[];
}

/**
 * Everything a saga reports, in order, as a discriminated union on `type`:
 * `'step-completed'`* then `'saga-completed'`; or, on failure, `'step-completed'`*, then per
 * step undone (latest first) `'compensating'` and `'compensated'` or `'compensation-failed'`,
 * then `'saga-failed'`.
 *
 * @typeParam O - the saga's output type
 *
 * @example
 * ```ts
 * import type { SagaEvent } from '@hartonomous/pipelines';
 *
 * function show(e: SagaEvent<string>): string {
 *   switch (e.type) {
 *     case 'step-completed': return `done ${e.step}`;
 *     case 'compensating': return `undoing ${e.step}`;
 *     case 'compensated': return `undid ${e.step}`;
 *     case 'compensation-failed': return `could not undo ${e.step}`;
 *     case 'saga-completed': return `result ${e.result}`;
 *     case 'saga-failed': return `failed at ${e.failedStep}`;
 *   }
 * }
 * ```
 */
export type SagaEvent<O = unknown> =
  | SagaStepCompletedEvent
  | SagaCompensatingEvent
  | SagaCompensatedEvent
  | SagaCompensationFailedEvent
  | SagaCompletedEvent<O>
  | SagaFailedEvent;

/**
 * A saga: steps with compensations, run for one input at a time. It is also a pipeline
 * {@link Step} (named after the saga) that resolves with the saga's result or rejects with its
 * error, so it drops into `pipeline(...)` as is.
 *
 * Outcome conventions (RxJS style: a failure is an error notification):
 * - `events(input)`: emits the {@link SagaEvent}s, then completes after `'saga-completed'`,
 *   or errors after `'saga-failed'` with a `SagaFailedError` (fully compensated), a
 *   `CompensationFailedError` (a compensation failed; never swallowed) or, for a saga
 *   cancelled through `signal` and fully compensated, the signal's reason.
 * - Unsubscribing cancels: the running action's signal aborts, and the completed steps are
 *   compensated in the background (events still reach `onEvent`, logs and the saga log).
 *
 * @typeParam I - input type
 * @typeParam O - output type (the last step's output)
 *
 * @example
 * ```ts
 * import { lastValueFrom, toArray } from 'rxjs';
 * import { saga } from '@hartonomous/pipelines';
 *
 * const s = saga('demo', { name: 'one', action: (n: number) => n + 1 });
 * const events = await lastValueFrom(s.events(1).pipe(toArray()));
 * ```
 */
export interface Saga<I, O> extends Step<I, O> {
  /** The steps, in order. */
  readonly steps: readonly AnySagaStep[];
  /**
   * Runs the saga once for `input` (cold: each subscription is a new execution).
   * @param input - the first step's input
   * @param options - cancellation, ids, event listener
   * @returns the saga's events; errors when the saga fails
   */
  events(input: I, options?: SagaRunOptions<O>): Observable<SagaEvent<O>>;
  /**
   * Runs the saga once and resolves with its result.
   * @param input - the first step's input
   * @param options - cancellation, ids, event listener
   * @returns the last step's output; rejects as `events` errors
   */
  run(input: I, options?: SagaRunOptions<O>): Promise<O>;
  /**
   * The saga as an RxJS operator: one saga per source value (`concurrency` at once), its
   * events emitted downstream. A failed saga errors the output (after its events), which
   * unsubscribes, and so cancels and compensates, the sagas still running; use the saga as a
   * pipeline step when each item needs its own outcome instead.
   * @param options - concurrency, id per input, cancellation, event listener
   * @returns an operator from inputs to saga events
   */
  operator(options?: SagaOperatorOptions<I, O>): OperatorFunction<I, SagaEvent<O>>;
  /**
   * The saga as a pipeline step with another name or step options (a saga already is a step
   * named after itself).
   * @param options - step name, concurrency, policy (a retry policy re-runs the whole saga)
   * @returns a step that resolves with the result or throws the saga's error
   */
  asStep(options?: StepOptions<O> & { name?: string }): Step<I, O>;
}

/* biome-ignore-start lint/suspicious/noExplicitAny: overload implementation */
/**
 * Defines a saga: steps run in order, each action receiving the previous step's output; if an
 * action fails (or the saga is cancelled), the compensations of the completed steps run in
 * exact reverse order, each with its own policy and signal, each receiving its action's
 * result. See {@link Saga} for how results and failures are reported, {@link SagaStep} for
 * steps, and {@link SagaOptions} for the saga log.
 *
 * @param nameOrOptions - the saga's name, or its options
 * @param s1 - the first step; up to eight steps follow, each taking the previous output
 * @returns a {@link Saga} from the first step's input to the last step's output
 * @throws TypeError when a step or option is invalid
 *
 * @example
 * ```ts
 * import { pipeline, retry, saga, step } from '@hartonomous/pipelines';
 *
 * const order = saga(
 *   { name: 'order', compensationPolicy: [retry(3)] },
 *   {
 *     name: 'reserve',
 *     action: async (o: { sku: string; cents: number }) => ({ ...o, reservation: await stock.reserve(o.sku) }),
 *     compensate: (r) => stock.release(r.reservation),
 *   },
 *   {
 *     name: 'charge',
 *     action: async (r) => ({ ...r, charge: await payments.charge(r.cents) }),
 *     compensate: (c) => payments.refund(c.charge),
 *   },
 *   { name: 'ship', action: async (c) => shipping.ship(c.sku) },
 * );
 * const receipt = await order.run({ sku: 'A-1', cents: 1299 }); // or rejects with SagaFailedError
 * const checkout = pipeline('checkout', step('validate', (o: { sku: string; cents: number }) => o), order);
 * ```
 * @see {@link resumeSaga} to finish a saga interrupted by a crash
 */
export function saga<A, B>(nameOrOptions: string | SagaOptions, s1: SagaStep<A, B>): Saga<A, B>;
export function saga<A, B, C>(
  nameOrOptions: string | SagaOptions,
  s1: SagaStep<A, B>,
  s2: SagaStep<B, C>,
): Saga<A, C>;
export function saga<A, B, C, D>(
  nameOrOptions: string | SagaOptions,
  s1: SagaStep<A, B>,
  s2: SagaStep<B, C>,
  s3: SagaStep<C, D>,
): Saga<A, D>;
export function saga<A, B, C, D, E>(
  nameOrOptions: string | SagaOptions,
  s1: SagaStep<A, B>,
  s2: SagaStep<B, C>,
  s3: SagaStep<C, D>,
  s4: SagaStep<D, E>,
): Saga<A, E>;
export function saga<A, B, C, D, E, F>(
  nameOrOptions: string | SagaOptions,
  s1: SagaStep<A, B>,
  s2: SagaStep<B, C>,
  s3: SagaStep<C, D>,
  s4: SagaStep<D, E>,
  s5: SagaStep<E, F>,
): Saga<A, F>;
export function saga<A, B, C, D, E, F, G>(
  nameOrOptions: string | SagaOptions,
  s1: SagaStep<A, B>,
  s2: SagaStep<B, C>,
  s3: SagaStep<C, D>,
  s4: SagaStep<D, E>,
  s5: SagaStep<E, F>,
  s6: SagaStep<F, G>,
): Saga<A, G>;
export function saga<A, B, C, D, E, F, G, H>(
  nameOrOptions: string | SagaOptions,
  s1: SagaStep<A, B>,
  s2: SagaStep<B, C>,
  s3: SagaStep<C, D>,
  s4: SagaStep<D, E>,
  s5: SagaStep<E, F>,
  s6: SagaStep<F, G>,
  s7: SagaStep<G, H>,
): Saga<A, H>;
export function saga<A, B, C, D, E, F, G, H, J>(
  nameOrOptions: string | SagaOptions,
  s1: SagaStep<A, B>,
  s2: SagaStep<B, C>,
  s3: SagaStep<C, D>,
  s4: SagaStep<D, E>,
  s5: SagaStep<E, F>,
  s6: SagaStep<F, G>,
  s7: SagaStep<G, H>,
  s8: SagaStep<H, J>,
): Saga<A, J>;
export function saga(nameOrOptions: string | SagaOptions, ...steps: AnySagaStep[]): Saga<any, any> {
  const options: SagaOptions =
    typeof nameOrOptions === 'string' ? { name: nameOrOptions } : { ...nameOrOptions };
  checkName('saga', options.name);
  const def = define(options, steps);
  return build(def);
}
/* biome-ignore-end lint/suspicious/noExplicitAny: overload implementation */

function define(options: SagaOptions, steps: AnySagaStep[]): SagaDefinition {
  const where = `saga('${options.name}')`;
  if (steps.length === 0) throw new TypeError(`${where}: give at least one step`);
  checkPolicy(where, 'compensationPolicy', options.compensationPolicy);
  checkTimeout(where, options.compensationTimeoutMs);
  const mode = options.onCompensationFailure ?? 'continue';
  if (mode !== 'continue' && mode !== 'halt') {
    throw new TypeError(`${where}: onCompensationFailure must be 'continue' or 'halt'`);
  }
  if (options.log !== undefined && typeof options.log?.write !== 'function') {
    throw new TypeError(`${where}: log must have a write(snapshot) method`);
  }
  const seen = new Set<string>();
  for (const [i, s] of steps.entries()) {
    if (typeof s !== 'object' || s === null) {
      throw new TypeError(`${where}: step ${i + 1} must be an object`);
    }
    if (typeof s.name !== 'string' || s.name.trim().length === 0) {
      throw new TypeError(`${where}: step ${i + 1} needs a non-empty name`);
    }
    if (seen.has(s.name)) throw new TypeError(`${where}: two steps are named '${s.name}'`);
    seen.add(s.name);
    const at = `${where}, step '${s.name}'`;
    if (typeof s.action !== 'function') throw new TypeError(`${at}: action must be a function`);
    if (s.compensate !== undefined && typeof s.compensate !== 'function') {
      throw new TypeError(`${at}: compensate must be a function`);
    }
    if (s.compensateFailed === true && typeof s.compensate !== 'function') {
      throw new TypeError(`${at}: compensateFailed needs a compensate function`);
    }
    checkPolicy(at, 'policy', s.policy);
    checkPolicy(at, 'compensationPolicy', s.compensationPolicy);
    checkTimeout(at, s.compensationTimeoutMs);
    if (
      s.codec !== undefined &&
      (typeof s.codec?.encode !== 'function' || typeof s.codec?.decode !== 'function')
    ) {
      throw new TypeError(`${at}: codec needs encode and decode functions`);
    }
  }
  return Object.freeze({
    name: options.name,
    steps: Object.freeze([...steps]),
    log: options.log,
    compensationPolicy: options.compensationPolicy ?? [],
    compensationTimeoutMs: options.compensationTimeoutMs,
    onCompensationFailure: mode,
    logger: options.logger ?? silentLogger(),
    tracer: tracerOf(options),
  });
}

function checkPolicy(where: string, key: string, policy: unknown): void {
  if (policy === undefined) return;
  if (!Array.isArray(policy) || policy.some((op) => typeof op !== 'function')) {
    throw new TypeError(`${where}: ${key} must be an array of operators`);
  }
}

function checkTimeout(where: string, ms: number | undefined): void {
  if (ms !== undefined && !(typeof ms === 'number' && ms > 0)) {
    throw new TypeError(`${where}: compensationTimeoutMs must be a number > 0, got ${String(ms)}`);
  }
}

function build<I, O>(def: SagaDefinition): Saga<I, O> {
  const events = (input: I, options: SagaRunOptions<O> = {}): Observable<SagaEvent<O>> =>
    new Observable<SagaEvent<O>>((subscriber) => {
      const { controller, dispose } = linkedController(options.signal);
      let live = true;
      let settled = false;
      const sagaId = options.sagaId ?? randomUUID();
      executeSaga(def, input, {
        sagaId,
        correlationId: options.correlationId ?? sagaId,
        signal: controller.signal,
        compensationSignal: options.compensationSignal,
        logger: options.logger ?? def.logger,
        otel: options.otel ?? otelContext.active(),
        bag: options.bag ?? contextBag(),
        emit: (event) => {
          try {
            options.onEvent?.(event as SagaEvent<O>);
          } catch (e) {
            // like RxJS with a throwing subscriber: report it, keep the saga going
            setTimeout(() => {
              throw e;
            });
          }
          if (live) subscriber.next(event as SagaEvent<O>);
        },
      }).then(
        () => {
          settled = true;
          dispose();
          if (live) subscriber.complete();
        },
        (e: unknown) => {
          settled = true;
          dispose();
          if (live) subscriber.error(e);
        },
      );
      return () => {
        live = false;
        if (settled) return;
        dispose();
        controller.abort(new CancelledError(`saga '${def.name}'`));
      };
    });

  const run = (input: I, options?: SagaRunOptions<O>): Promise<O> =>
    new Promise<O>((resolve, reject) => {
      let result: O | undefined;
      events(input, options).subscribe({
        next: (e) => {
          if (e.type === 'saga-completed') result = e.result;
        },
        error: reject,
        complete: () => resolve(result as O),
      });
    });

  const asStep = (options: StepOptions<O> & { name?: string } = {}): Step<I, O> => {
    const { name = def.name, ...stepOptions } = options;
    return step<I, O>(
      name,
      (input, ctx) =>
        run(input, {
          signal: ctx.signal,
          correlationId: ctx.correlationId,
          logger: ctx.logger,
          otel: ctx.otel,
          bag: ctx.bag,
        }),
      stepOptions,
    );
  };

  const operator = (options: SagaOperatorOptions<I, O> = {}): OperatorFunction<I, SagaEvent<O>> => {
    const { concurrency = 1, sagaId, ...runOptions } = options;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new TypeError(
        `saga('${def.name}').operator: concurrency must be a positive integer, got ${concurrency}`,
      );
    }
    return (source) =>
      source.pipe(
        mergeMap(
          (input, index) =>
            events(input, { ...runOptions, sagaId: sagaId ? sagaId(input, index) : undefined }),
          concurrency,
        ),
      );
  };

  const self: Saga<I, O> = {
    ...asStep(),
    steps: def.steps,
    events,
    run,
    operator,
    asStep,
  };
  registerDefinition(self, def);
  return Object.freeze(self);
}
