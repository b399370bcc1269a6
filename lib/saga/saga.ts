/**
 * `saga()`: defining a saga, and running it as an Observable of events, a promise, a
 * start-once execution, an RxJS operator or a pipeline step.
 *
 * @module
 */

import { randomUUID } from 'node:crypto';
import { context as otelContext } from '@opentelemetry/api';
import { mergeMap, Observable, type OperatorFunction } from 'rxjs';
import { linkedController } from '../core/abort.js';
import { contextBag } from '../core/context.js';
import { CancelledError } from '../core/errors.js';
import { type Step, type StepOptions, step } from '../core/step.js';
import { define, registerDefinition, type SagaDefinition } from './define.js';
import { executeSaga, StoppedUnlogged } from './engine.js';
import type { SagaEvent } from './events.js';
import { type LoadingLog, startOnce } from './start.js';
import type {
  AnySagaStep,
  SagaOperatorOptions,
  SagaOptions,
  SagaRunOptions,
  SagaStartOptions,
  SagaStep,
} from './types.js';

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
   * Runs the saga once per id: the first `start` of an id runs it; a later one, in this
   * process or another sharing the log, runs nothing and resolves with the stored result (or
   * rejects with the stored failure) of the first, waiting while it runs. Ids are unique per
   * saga name; a second caller's input is ignored. Needs a log with `load`
   * (`postgresSagaLog`, `memorySagaLog`). The result a later caller gets is the last step's
   * result as its codec decodes it; a failure is a `SagaFailedError` or
   * `CompensationFailedError` whose cause carries the recorded error's name and message.
   * A saga whose process died stays open until `sagaRecovery` (or `resumeSagas`) finishes
   * it; callers waiting for it wait until then, or until their `signal` aborts. A `start` of
   * an id this saga object is already starting shares that call's promise.
   * @param input - the first step's input
   * @param options - the id, and cancellation, event listener as for `run`
   * @returns the last step's output; rejects as `run` does, or with the stored failure
   */
  start(input: I, options: SagaStartOptions<O>): Promise<O>;
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
  if (typeof options.name !== 'string' || options.name.trim().length === 0) {
    throw new TypeError('saga(name, ...): name must be a non-empty string');
  }
  return build(define(options, steps));
}
/* biome-ignore-end lint/suspicious/noExplicitAny: overload implementation */

function build<I, O>(def: SagaDefinition): Saga<I, O> {
  /** One execution; rejects with the engine's own values (see `start`). */
  const execute = (
    input: I,
    options: SagaRunOptions<O>,
    signal: AbortSignal,
    emitTo: (event: SagaEvent<O>) => void,
    claim: boolean,
  ): Promise<unknown> => {
    const sagaId = options.sagaId ?? randomUUID();
    return executeSaga(
      def,
      { kind: 'new', input },
      {
        sagaId,
        correlationId: options.correlationId ?? sagaId,
        signal,
        compensationSignal: options.compensationSignal,
        logger: options.logger ?? def.logger,
        otel: options.otel ?? otelContext.active(),
        bag: options.bag ?? contextBag(),
        claim,
        emit: (event) => {
          try {
            options.onEvent?.(event as SagaEvent<O>);
          } catch (e) {
            // like RxJS with a throwing subscriber: report it, keep the saga going
            setTimeout(() => {
              throw e;
            });
          }
          emitTo(event as SagaEvent<O>);
        },
      },
    );
  };

  const events = (input: I, options: SagaRunOptions<O> = {}): Observable<SagaEvent<O>> =>
    new Observable<SagaEvent<O>>((subscriber) => {
      const { controller, dispose } = linkedController(options.signal);
      let live = true;
      let settled = false;
      execute(
        input,
        options,
        controller.signal,
        (event) => {
          if (live) subscriber.next(event);
        },
        false,
      ).then(
        () => {
          settled = true;
          dispose();
          if (live) subscriber.complete();
        },
        (e: unknown) => {
          settled = true;
          dispose();
          if (live) subscriber.error(e instanceof StoppedUnlogged ? e.error : e);
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

  const starting = new Map<string, Promise<O>>();
  const start = (input: I, options: SagaStartOptions<O>): Promise<O> => {
    const where = `saga('${def.name}').start`;
    const { id, pollMs = 200, ...runOptions } = options ?? ({} as SagaStartOptions<O>);
    if (typeof id !== 'string' || id.length === 0) {
      return Promise.reject(new TypeError(`${where}: options.id must be a non-empty string`));
    }
    if (!(Number.isFinite(pollMs) && pollMs > 0)) {
      return Promise.reject(new TypeError(`${where}: pollMs must be a number > 0, got ${pollMs}`));
    }
    const log = def.log;
    if (typeof log?.load !== 'function') {
      return Promise.reject(
        new TypeError(`${where}: needs a saga log with load() (postgresSagaLog, memorySagaLog)`),
      );
    }
    const already = starting.get(id);
    if (already) return already;
    const owned = async (): Promise<unknown> => {
      const { controller, dispose } = linkedController(runOptions.signal);
      try {
        return await execute(
          input,
          { ...runOptions, sagaId: id },
          controller.signal,
          () => undefined,
          true,
        );
      } finally {
        dispose();
      }
    };
    const promise = startOnce(def, log as LoadingLog, { name: def.name, id }, owned, {
      signal: runOptions.signal,
      pollMs,
    }).finally(() => starting.delete(id)) as Promise<O>;
    starting.set(id, promise);
    return promise;
  };

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
    start,
    operator,
    asStep,
  };
  registerDefinition(self, def);
  return Object.freeze(self);
}
