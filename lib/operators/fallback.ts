import type { Attributes } from '@opentelemetry/api';
import type { Logger } from 'pino';
import {
  catchError,
  from,
  isObservable,
  type MonoTypeOperatorFunction,
  type Observable,
  type OperatorFunction,
  of,
  throwError,
} from 'rxjs';
import { describeError } from '../core/errors.js';
import { isPromiseLike } from '../core/from-work.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { instruments, type TelemetryOptions } from '../observability/telemetry.js';
import { checkErrorFilter, type ErrorFilter, errorMatches } from './policy.js';

/**
 * What {@link fallback} replaces a handled error with: a value, or a function of the error
 * returning a value, a promise or an Observable to switch to. A function is always called
 * as a factory; to fall back to a function value, return it from a factory.
 *
 * @example
 * ```ts
 * import type { FallbackValue } from '@hartonomous/pipelines';
 * const empty: FallbackValue<string[]> = () => Promise.resolve([]);
 * ```
 */
export type FallbackValue<R> = R | ((error: unknown) => R | PromiseLike<R> | Observable<R>);

/**
 * Typed event of {@link fallback}, delivered to {@link FallbackOptions.onEvent}.
 *
 * @example
 * ```ts
 * import type { FallbackEvent } from '@hartonomous/pipelines';
 * const onEvent = (e: FallbackEvent) => console.warn(`${e.name} used its fallback`, e.error);
 * ```
 */
export interface FallbackEvent {
  /** Always `'fallback'`. */
  readonly type: 'fallback';
  /** The policy's name. */
  readonly name: string;
  /** The error that was replaced. */
  readonly error: unknown;
}

/**
 * Options of {@link fallback}.
 *
 * @example
 * ```ts
 * import { isBrokenCircuitError, type FallbackOptions } from '@hartonomous/pipelines';
 * const options: FallbackOptions = { handle: isBrokenCircuitError, name: 'cached-price' };
 * ```
 */
export interface FallbackOptions extends TelemetryOptions {
  /** Which errors to replace; others pass through. @default every error */
  handle?: ErrorFilter;
  /** Name in events, logs and the metric attribute `fallback.name`. @default 'fallback' */
  name?: string;
  /** Receives a {@link FallbackEvent} each time the fallback is used; must not throw. @default none */
  onEvent?: (event: FallbackEvent) => void;
  /** Logs `fallback.used` when given. @default no logging */
  logger?: Logger;
}

/**
 * On a handled error, emits a fallback value and completes, or switches to the Observable
 * or promise a factory returns for the error. Values the source emitted before failing are
 * kept. Put it outermost in a policy so it also covers rejections by a breaker, a bulkhead or
 * a timeout. Each use is counted on `hartonomous.fallbacks` (attribute `fallback.name`).
 *
 * Inside `pipe` both types are inferred: a fallback of the source's type keeps it
 * (`OperatorFunction<T, T>` is `MonoTypeOperatorFunction<T>`), another type widens the output
 * to `T | R`. Outside `pipe` (say in a `policy` list), `fallback<T>(value)` gives a
 * `MonoTypeOperatorFunction<T>`.
 *
 * @param value - the fallback value, or a factory of the error
 * @param options - which errors to handle, telemetry
 * @returns an operator replacing handled errors
 * @throws TypeError when `handle` is invalid
 *
 * @example
 * ```ts
 * import { circuitBreaker, createCircuitBreaker, fallback, fromWork, isBrokenCircuitError } from '@hartonomous/pipelines';
 *
 * const breaker = createCircuitBreaker(5);
 * const price$ = fromWork(async (signal) => {
 *   const res = await fetch('http://127.0.0.1:8080/price', { signal });
 *   return Number(await res.text());
 * }).pipe(circuitBreaker(breaker), fallback(() => Promise.resolve(42), { handle: isBrokenCircuitError }));
 * ```
 * @see {@link policy} for the order of combined policies
 */
export function fallback<T, R>(
  value: FallbackValue<R>,
  options?: FallbackOptions,
): OperatorFunction<T, T | R>;
/**
 * Same-type form, for an explicit `fallback<T>(...)` (the form above infers it inside `pipe`).
 * @param value - the fallback value, or a factory of the error
 * @param options - which errors to handle, telemetry
 * @returns an operator replacing handled errors
 * @example
 * ```ts
 * import { fallback, policy, retry } from '@hartonomous/pipelines';
 *
 * const steps = policy<number>(retry(2), fallback<number>(0));
 * ```
 */
export function fallback<T>(
  value: FallbackValue<T>,
  options?: FallbackOptions,
): MonoTypeOperatorFunction<T>;
export function fallback<T, R>(
  value: FallbackValue<R>,
  options: FallbackOptions = {},
): OperatorFunction<T, T | R> {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('fallback: options must be an object');
  }
  checkErrorFilter('fallback', options.handle);
  const name = options.name ?? 'fallback';
  const attrs: Attributes = { 'fallback.name': name };
  const { logger } = options;
  return catchError((error: unknown): Observable<R> => {
    if (!errorMatches(options.handle, error)) return throwError(() => error);
    instruments(options).fallbacks.add(1, attrs);
    if (logger)
      logEvent(logger, LogEvents.fallbackUsed, () => ({ name, error: describeError(error) }));
    options.onEvent?.({ type: 'fallback', name, error });
    if (typeof value !== 'function') return of(value);
    const made = (value as (error: unknown) => R | PromiseLike<R> | Observable<R>)(error);
    if (isObservable(made)) return made;
    if (isPromiseLike<R>(made)) return from(made);
    return of(made);
  });
}
