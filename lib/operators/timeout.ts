import type { Logger } from 'pino';
import {
  asyncScheduler,
  identity,
  type MonoTypeOperatorFunction,
  Observable,
  type SchedulerLike,
  type Subscription,
} from 'rxjs';
import { errorGuard, PipelineError } from '../core/errors.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { instruments, type TelemetryOptions } from '../observability/telemetry.js';

/**
 * Which limit of {@link timeout} expired: `'total'` (the whole upstream took longer than
 * `ms`) or `'each'` (no value arrived within `each` ms of the subscription or of the previous
 * value).
 *
 * @example
 * ```ts
 * import type { TimeoutKind } from '@hartonomous/pipelines';
 * const kind: TimeoutKind = 'total';
 * ```
 */
export type TimeoutKind = 'total' | 'each';

/**
 * The {@link timeout} operator gave up waiting. Carries what timed out (`label`), after how
 * long (`ms`) and which limit expired (`kind`). The timed-out work has been unsubscribed, so a
 * `fromWork` signal has aborted.
 *
 * @example
 * ```ts
 * import { isTimeoutError } from '@hartonomous/pipelines';
 *
 * result$.subscribe({ error: (e) => isTimeoutError(e) && console.warn(`${e.label} took over ${e.ms} ms`) });
 * ```
 */
export class TimeoutError extends PipelineError {
  readonly code = 'TIMEOUT' as const;
  /**
   * @param label - what timed out, e.g. `'embed'`
   * @param ms - the limit that expired, in ms
   * @param kind - which limit expired
   */
  constructor(
    readonly label: string,
    readonly ms: number,
    readonly kind: TimeoutKind = 'total',
  ) {
    super(
      kind === 'each'
        ? `${label} produced no value within ${ms} ms`
        : `${label} timed out after ${ms} ms`,
    );
  }
}

/**
 * Guard for {@link TimeoutError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link TimeoutError}
 * @example
 * ```ts
 * import { isTimeoutError, TimeoutError } from '@hartonomous/pipelines';
 * isTimeoutError(new TimeoutError('embed', 1_000)); // true
 * ```
 */
export const isTimeoutError: (e: unknown) => e is TimeoutError =
  errorGuard<TimeoutError>('TIMEOUT');

/**
 * Typed event of {@link timeout}, delivered to {@link TimeoutOptions.onEvent}.
 *
 * @example
 * ```ts
 * import type { TimeoutEvent } from '@hartonomous/pipelines';
 * const onEvent = (e: TimeoutEvent) => console.warn(`${e.label}: ${e.kind} limit of ${e.ms} ms`);
 * ```
 */
export interface TimeoutEvent {
  /** Always `'timeout'`. */
  readonly type: 'timeout';
  /** What timed out. */
  readonly label: string;
  /** The limit that expired, in ms. */
  readonly ms: number;
  /** Which limit expired. */
  readonly kind: TimeoutKind;
}

/**
 * Options of {@link timeout}. Give `ms`, `each` or both.
 *
 * @example
 * ```ts
 * import type { TimeoutOptions } from '@hartonomous/pipelines';
 * const options: TimeoutOptions = { ms: 30_000, each: 5_000, label: 'export' };
 * ```
 */
export interface TimeoutOptions extends TelemetryOptions {
  /** Limit for the whole upstream, from subscription to completion, in ms. @default Infinity (none) */
  ms?: number;
  /** Limit between subscription and the first value, and between consecutive values, in ms. @default Infinity (none) */
  each?: number;
  /** What is timing out, carried by {@link TimeoutError} and logs. @default 'work' */
  label?: string;
  /** Scheduler of the timers; pass a `TestScheduler` for virtual time. @default asyncScheduler */
  scheduler?: SchedulerLike;
  /** Receives a {@link TimeoutEvent} when a limit expires; must not throw. @default none */
  onEvent?: (event: TimeoutEvent) => void;
  /** Logs `timeout.elapsed` when given. @default no logging */
  logger?: Logger;
}

/**
 * Errors with a {@link TimeoutError} when the upstream does not complete within `ms` (or,
 * with `each`, goes quiet for longer than `each`), after unsubscribing it, so a
 * `fromWork(...)` upstream aborts its AbortSignal and the work stops (cooperative
 * cancellation; the error is delivered at once, without waiting for the work to notice).
 *
 * Where you place it decides what it bounds: inside `retry` it limits each attempt, outside
 * `retry` it limits the whole call, retries and backoff sleeps included. Use both:
 * `work$.pipe(timeout(1_000), retry(3), timeout(10_000))`.
 *
 * Its timers are cancelled when the upstream completes or errors and when the output is
 * unsubscribed; none survives. Each expiry is counted on `hartonomous.timeouts` (attributes `timeout.label`
 * and `timeout.kind`). `ms` of `Infinity` and no `each` returns `identity`.
 *
 * @param options - the limit in ms, or {@link TimeoutOptions}
 * @returns an operator that bounds the time of its source
 * @throws TypeError when a limit is not a positive number
 *
 * @example
 * ```ts
 * import { fromWork, retry, timeout } from '@hartonomous/pipelines';
 *
 * const body$ = fromWork((signal) => fetch('http://127.0.0.1:8080/slow', { signal }).then((r) => r.text()))
 *   .pipe(timeout({ ms: 1_000, label: 'GET /slow' }), retry(2), timeout(5_000));
 * ```
 * @see {@link policy} for the order of combined policies
 */
export function timeout<T>(options: number | TimeoutOptions): MonoTypeOperatorFunction<T> {
  const o: TimeoutOptions = typeof options === 'number' ? { ms: options } : options;
  if (typeof o !== 'object' || o === null)
    throw new TypeError('timeout: options must be an object');
  const total = o.ms ?? Infinity;
  const each = o.each ?? Infinity;
  for (const [key, v] of [
    ['ms', total],
    ['each', each],
  ] as const) {
    if (!(typeof v === 'number' && v > 0)) {
      throw new TypeError(`timeout: ${key} must be a number > 0, got ${String(v)}`);
    }
  }
  if (total === Infinity && each === Infinity) return identity;
  const label = o.label ?? 'work';
  const scheduler = o.scheduler ?? asyncScheduler;
  const { logger } = o;

  return (source) =>
    new Observable<T>((subscriber) => {
      let totalTimer: Subscription | undefined;
      let eachTimer: Subscription | undefined;
      let upstream: Subscription | undefined;
      let expired = false;
      const clear = (): void => {
        totalTimer?.unsubscribe();
        eachTimer?.unsubscribe();
        totalTimer = eachTimer = undefined;
      };
      const expire = (kind: TimeoutKind, ms: number): void => {
        expired = true;
        clear();
        upstream?.unsubscribe();
        instruments(o).timeouts.add(1, { 'timeout.label': label, 'timeout.kind': kind });
        if (logger) logEvent(logger, LogEvents.timeoutElapsed, { label, ms, kind });
        try {
          o.onEvent?.({ type: 'timeout', label, ms, kind });
        } finally {
          subscriber.error(new TimeoutError(label, ms, kind));
        }
      };
      const armEach = (): void => {
        if (each === Infinity) return;
        eachTimer?.unsubscribe();
        eachTimer = scheduler.schedule(() => expire('each', each), each);
      };
      if (total !== Infinity) totalTimer = scheduler.schedule(() => expire('total', total), total);
      armEach();
      const sub = source.subscribe({
        next: (value) => {
          armEach();
          subscriber.next(value);
        },
        error: (e: unknown) => {
          clear();
          subscriber.error(e);
        },
        complete: () => {
          clear();
          subscriber.complete();
        },
      });
      // The source may have finished synchronously; then there is nothing left to bound.
      if (expired || sub.closed) clear();
      upstream = sub;
      return () => {
        clear();
        sub.unsubscribe();
      };
    });
}
