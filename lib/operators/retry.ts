import { type Attributes, trace } from '@opentelemetry/api';
import type { Logger } from 'pino';
import {
  asyncScheduler,
  identity,
  type MonoTypeOperatorFunction,
  Observable,
  type SchedulerLike,
  type Subscriber,
  type Subscription,
} from 'rxjs';
import { describeError, errorGuard, messageOf, PipelineError } from '../core/errors.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { instruments, type TelemetryOptions } from '../observability/telemetry.js';
import { type BackoffOptions, type BackoffStrategy, backoffFunction } from './backoff.js';
import { checkErrorFilter, type ErrorFilter, errorMatches } from './policy.js';

/**
 * Wraps an error so that {@link retry} never retries it (a 400 Bad Request, a validation
 * failure). `retry` rethrows the `PermanentError` itself, so outer policies can tell it apart
 * too (e.g. a circuit breaker with `handle: (e) => !isPermanentError(e)`); the original error
 * is its `cause`.
 *
 * @example
 * ```ts
 * import { fromWork, PermanentError, retry } from '@hartonomous/pipelines';
 *
 * const user$ = fromWork(async (signal) => {
 *   const res = await fetch('http://127.0.0.1:8080/users/1', { signal });
 *   if (res.status === 404) throw new PermanentError(new Error('no such user'));
 *   return res.json();
 * }).pipe(retry(3));
 * ```
 */
export class PermanentError extends PipelineError {
  readonly code = 'PERMANENT' as const;
  /** @param cause - the error that must not be retried */
  constructor(cause: unknown) {
    super(`permanent failure: ${messageOf(cause)}`, { cause });
  }
}

/**
 * Guard for {@link PermanentError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link PermanentError}
 * @example
 * ```ts
 * import { isPermanentError, PermanentError } from '@hartonomous/pipelines';
 * isPermanentError(new PermanentError(new Error('bad request'))); // true
 * ```
 */
export const isPermanentError: (e: unknown) => e is PermanentError =
  errorGuard<PermanentError>('PERMANENT');

/**
 * What the {@link RetryOptions.delay} hook receives.
 *
 * @example
 * ```ts
 * import { retryAfterMs, type RetryDelayContext } from '@hartonomous/pipelines';
 *
 * const delay = (ctx: RetryDelayContext) => retryAfterMs(ctx.error) ?? ctx.suggestedDelayMs;
 * ```
 */
export interface RetryDelayContext {
  /** 1-based number of the attempt that just failed. */
  readonly attempt: number;
  /** What the attempt failed with. */
  readonly error: unknown;
  /** The delay the backoff strategy chose, in ms. */
  readonly suggestedDelayMs: number;
}

/**
 * Why {@link retry} stopped retrying: the last attempt's error was not retryable
 * (`'not-handled'`), was a {@link PermanentError} (`'permanent'`), the attempts ran out
 * (`'max-attempts'`) or the shared {@link RetryBudget} had no retry left (`'budget'`).
 *
 * @example
 * ```ts
 * import type { RetryGiveUpReason } from '@hartonomous/pipelines';
 * const exhausted = (r: RetryGiveUpReason) => r === 'max-attempts' || r === 'budget';
 * ```
 */
export type RetryGiveUpReason = 'not-handled' | 'permanent' | 'max-attempts' | 'budget';

/**
 * Typed events of {@link retry}, delivered to {@link RetryOptions.onEvent}:
 * `'scheduled'` when a retry is scheduled, `'gave-up'` when the error is passed on.
 *
 * @example
 * ```ts
 * import type { RetryEvent } from '@hartonomous/pipelines';
 *
 * const onEvent = (e: RetryEvent) => {
 *   if (e.type === 'scheduled') console.log(`attempt ${e.attempt} failed, retrying in ${e.delayMs} ms`);
 *   else console.log(`gave up after ${e.attempts} attempts (${e.reason})`);
 * };
 * ```
 */
export type RetryEvent =
  | {
      /** A retry was scheduled after a failed attempt. */
      readonly type: 'scheduled';
      /** The policy's {@link RetryOptions.name}. */
      readonly name: string;
      /** 1-based number of the attempt that failed; the next attempt is `attempt + 1`. */
      readonly attempt: number;
      /** Delay before the next attempt, in ms. */
      readonly delayMs: number;
      /** The error of the failed attempt. */
      readonly error: unknown;
    }
  | {
      /** No further attempt is made; the error is passed on downstream. */
      readonly type: 'gave-up';
      /** The policy's {@link RetryOptions.name}. */
      readonly name: string;
      /** Attempts made, the failed last one included. */
      readonly attempts: number;
      /** Why no further attempt is made. */
      readonly reason: RetryGiveUpReason;
      /** The error passed on downstream. */
      readonly error: unknown;
    };

/**
 * Options of {@link retry}.
 *
 * @example
 * ```ts
 * import { retryAfterMs, type RetryOptions } from '@hartonomous/pipelines';
 *
 * const options: RetryOptions = {
 *   maxAttempts: 5,
 *   backoff: 'exponential',
 *   baseDelayMs: 100,
 *   maxDelayMs: 5_000,
 *   handle: [TypeError],
 *   delay: (ctx) => retryAfterMs(ctx.error),
 * };
 * ```
 */
export interface RetryOptions extends TelemetryOptions {
  /** Attempts in total, the first included (`Infinity` retries for ever). `1` makes `retry` a no-op. @default 3 */
  maxAttempts?: number;
  /** How delays grow between attempts; see {@link BackoffStrategy}. @default 'decorrelated-jitter' */
  backoff?: BackoffStrategy;
  /** The first (median first, when jittered) delay, in ms. @default 200 */
  baseDelayMs?: number;
  /** Upper bound of a backoff delay, in ms (the `delay` hook may exceed it). @default 30_000 */
  maxDelayMs?: number;
  /** Growth factor of the exponential strategies. @default 2 */
  factor?: number;
  /** Which errors are retryable: a predicate or error classes. @default every error except {@link PermanentError} */
  handle?: ErrorFilter;
  /** A further predicate on the error and the 1-based failed attempt; both it and `handle` must accept. @default always true */
  retryIf?: (error: unknown, attempt: number) => boolean;
  /**
   * Chooses the delay before the next attempt; return `undefined` to keep the backoff's
   * `suggestedDelayMs` (a negative or non-finite number also keeps it). Use it to honour a
   * server's Retry-After with {@link retryAfterMs}.
   * @default the backoff delay
   */
  delay?: (ctx: RetryDelayContext) => number | undefined;
  /** A budget shared by many calls that caps retries at a ratio of calls. @default no budget */
  budget?: RetryBudget;
  /** Start counting attempts (and the backoff) again after each value the source emits; for long-lived streams. @default false */
  resetOnSuccess?: boolean;
  /** Receives {@link RetryEvent}s; must not throw. @default none */
  onEvent?: (event: RetryEvent) => void;
  /** Scheduler of the backoff sleeps; pass a `TestScheduler` for virtual time. @default asyncScheduler */
  scheduler?: SchedulerLike;
  /** Random source in `[0, 1)` for the jittered strategies. @default Math.random */
  random?: () => number;
  /** Aborting it stops retrying at once: the current attempt is unsubscribed and the output errors with `signal.reason`. @default none */
  signal?: AbortSignal;
  /** Logs `retry.scheduled` and `retry.gave_up` (on exhaustion) when given. @default no logging */
  logger?: Logger;
  /** Name used in events, logs, span events and the metric attribute `retry.name`. @default 'retry' */
  name?: string;
}

/**
 * Re-subscribes to the source when it errors, after a backoff delay, up to `maxAttempts`
 * attempts in total. Applied to a cold `fromWork(...)` observable, each re-subscription runs
 * the work again with a fresh AbortSignal; unsubscribing during an attempt aborts it, and
 * unsubscribing during a sleep cancels the sleep.
 *
 * - `retry(n)` retries up to `n` times (`n + 1` attempts), like RxJS's `retry(n)` but with the
 *   default backoff (decorrelated jitter from 200 ms); `retry(0)` and `maxAttempts: 1` return
 *   `identity`.
 * - When it gives up it rethrows the last error unchanged (as RxJS does) rather than wrapping
 *   it, so `handle` filters and `isXError` guards of outer policies and callers still see the
 *   real error; the attempt count is in the `'gave-up'` event.
 * - Every scheduled retry is reported to `onEvent`, counted on `hartonomous.retry.attempts`, added as
 *   a `retry` event to the span active when the output was subscribed, and logged if a
 *   `logger` is given.
 * - To retry on a result (say an HTTP 503 response) rather than an error, throw in a `map`
 *   before `retry`.
 *
 * @param options - retries as a number, or {@link RetryOptions}
 * @returns an operator that retries its source
 * @throws TypeError when an option is out of range
 *
 * @example
 * ```ts
 * import { fromWork, retry, retryAfterMs, timeout } from '@hartonomous/pipelines';
 *
 * const body$ = fromWork((signal) => fetch('http://127.0.0.1:8080/', { signal }).then((r) => r.text()))
 *   .pipe(
 *     timeout(1_000), // per attempt
 *     retry({ maxAttempts: 4, backoff: 'exponential', baseDelayMs: 100, delay: (c) => retryAfterMs(c.error) }),
 *   );
 * ```
 * @see {@link backoff}
 * @see {@link createRetryBudget}
 * @see {@link policy} for the order of combined policies
 */
export function retry<T>(options: number | RetryOptions = {}): MonoTypeOperatorFunction<T> {
  const o: RetryOptions =
    typeof options === 'number' ? { maxAttempts: retriesToAttempts(options) } : options;
  if (typeof o !== 'object' || o === null) throw new TypeError('retry: options must be an object');
  const maxAttempts = o.maxAttempts ?? 3;
  if (!(maxAttempts === Infinity || (Number.isInteger(maxAttempts) && maxAttempts >= 1))) {
    throw new TypeError(
      `retry: maxAttempts must be an integer >= 1 or Infinity, got ${maxAttempts}`,
    );
  }
  const backoffOptions: BackoffOptions = {
    strategy: o.backoff ?? 'decorrelated-jitter',
    baseMs: o.baseDelayMs ?? 200,
    maxMs: o.maxDelayMs ?? Math.max(30_000, o.baseDelayMs ?? 0),
    factor: o.factor ?? 2,
    random: o.random ?? Math.random,
  };
  try {
    backoffFunction(backoffOptions);
  } catch (e) {
    throw new TypeError(`retry: ${messageOf(e).replace(/^backoff: /, '')}`);
  }
  checkErrorFilter('retry', o.handle);
  for (const key of ['retryIf', 'delay', 'onEvent'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'function') {
      throw new TypeError(`retry: ${key} must be a function`);
    }
  }
  if (maxAttempts === 1) return identity;

  const cfg: RetryConfig = {
    o,
    maxAttempts,
    backoffOptions,
    name: o.name ?? 'retry',
    scheduler: o.scheduler ?? asyncScheduler,
    attrs: { 'retry.name': o.name ?? 'retry' },
  };
  const signal = o.signal;
  return (source) =>
    new Observable<T>((subscriber) => {
      if (signal?.aborted) {
        subscriber.error(signal.reason);
        return;
      }
      const run = new RetryRun(cfg, source, subscriber);
      run.attempt();
      return run;
    });
}

/** What every subscription of one `retry(...)` shares. */
interface RetryConfig {
  readonly o: RetryOptions;
  readonly maxAttempts: number;
  readonly backoffOptions: BackoffOptions;
  readonly name: string;
  readonly scheduler: SchedulerLike;
  readonly attrs: Attributes;
}

/**
 * One subscription of `retry`: observes its attempts (one object for all of them: nothing is
 * allocated per call beyond what RxJS needs) and is its own teardown. The backoff is made at
 * the first failure, so a call that succeeds at once pays for none of it.
 */
class RetryRun<T> {
  private readonly span = trace.getActiveSpan();
  private delayAt: ((n: number) => number) | undefined;
  private failures = 0;
  private attempts = 0;
  private timer: Subscription | undefined;
  private current: Subscription | undefined;
  private readonly onAbort: (() => void) | undefined;
  private retry$: (() => void) | undefined;

  constructor(
    private readonly cfg: RetryConfig,
    private readonly source: Observable<T>,
    private readonly subscriber: Subscriber<T>,
  ) {
    const signal = cfg.o.signal;
    if (signal !== undefined) {
      this.onAbort = () => subscriber.error(signal.reason);
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  /** Subscribes one attempt. */
  attempt(): void {
    this.timer?.unsubscribe();
    this.timer = undefined;
    const n = ++this.attempts;
    if (n === 1) this.cfg.o.budget?.recordCall();
    const sub = this.source.subscribe(this);
    // a synchronous scheduler may have started the next attempt already: keep the newest
    if (this.attempts === n) this.current = sub;
  }

  next(value: T): void {
    if (this.cfg.o.resetOnSuccess && this.failures > 0) {
      this.failures = 0;
      this.delayAt = undefined;
    }
    this.subscriber.next(value);
  }

  complete(): void {
    this.subscriber.complete();
  }

  error(error: unknown): void {
    const { o, name, scheduler } = this.cfg;
    this.failures++;
    const attempt = this.failures;
    let delayMs: number;
    try {
      const reason = this.stopReason(error, attempt);
      if (reason !== undefined) {
        this.giveUp(error, reason);
        return;
      }
      this.delayAt ??= backoffFunction(this.cfg.backoffOptions);
      const suggestedDelayMs = this.delayAt(attempt - 1);
      const chosen = o.delay?.({ attempt, error, suggestedDelayMs });
      delayMs =
        chosen !== undefined && Number.isFinite(chosen) && chosen >= 0 ? chosen : suggestedDelayMs;
      o.onEvent?.({ type: 'scheduled', name, attempt, delayMs, error });
    } catch (callbackError) {
      this.subscriber.error(callbackError);
      return;
    }
    instruments(o).retryAttempts.add(1, this.cfg.attrs);
    (this.span ?? trace.getActiveSpan())?.addEvent('retry', {
      'retry.name': name,
      'retry.attempt': attempt,
      'retry.delay_ms': delayMs,
      'error.type': errorType(error),
    });
    if (o.logger) {
      logEvent(o.logger, LogEvents.retryScheduled, () => ({
        name,
        attempt,
        delayMs,
        error: describeError(error),
      }));
    }
    this.retry$ ??= () => this.attempt();
    this.timer = scheduler.schedule(this.retry$, delayMs);
  }

  /** Teardown: cancels a pending retry or the running attempt; stops listening to the signal. */
  unsubscribe(): void {
    this.timer?.unsubscribe();
    this.timer = undefined;
    this.current?.unsubscribe();
    if (this.onAbort !== undefined) this.cfg.o.signal?.removeEventListener('abort', this.onAbort);
  }

  private stopReason(error: unknown, attempt: number): RetryGiveUpReason | undefined {
    const { o, maxAttempts } = this.cfg;
    if (isPermanentError(error)) return 'permanent';
    if (!errorMatches(o.handle, error) || (o.retryIf && !o.retryIf(error, attempt))) {
      return 'not-handled';
    }
    if (attempt >= maxAttempts) return 'max-attempts';
    if (o.budget && !o.budget.tryRetry()) return 'budget';
    return undefined;
  }

  private giveUp(error: unknown, reason: RetryGiveUpReason): void {
    const { o, name } = this.cfg;
    const failures = this.failures;
    o.onEvent?.({ type: 'gave-up', name, attempts: failures, reason, error });
    if (reason === 'max-attempts' || reason === 'budget') {
      (this.span ?? trace.getActiveSpan())?.addEvent('retry.gave_up', {
        'retry.name': name,
        'retry.attempts': failures,
        'retry.reason': reason,
      });
      if (o.logger) {
        logEvent(o.logger, LogEvents.retryGaveUp, () => ({
          name,
          attempts: failures,
          reason,
          error: describeError(error),
        }));
      }
    }
    this.subscriber.error(error);
  }
}

function retriesToAttempts(retries: number): number {
  if (!(retries === Infinity || (Number.isInteger(retries) && retries >= 0))) {
    throw new TypeError(`retry: the number of retries must be an integer >= 0, got ${retries}`);
  }
  return retries + 1;
}

function errorType(e: unknown): string {
  if (e instanceof Error) return e.name;
  return typeof e;
}

/**
 * The delay a failed call asks for, in ms, or `undefined` when it names none: the error's own
 * numeric `retryAfterMs` (as on `BrokenCircuitError` and `RateLimitedError`), else the
 * `retry-after` header of an HTTP response the error carries as `response.headers` (got's
 * `HTTPError`, a fetch `Response`): delta-seconds or an HTTP date.
 *
 * @param error - any caught value
 * @param now - the current time in epoch ms, for HTTP dates @defaultValue `Date.now()`
 * @returns the delay in whole ms (never negative), or `undefined`
 *
 * @example
 * ```ts
 * import { retry, retryAfterMs } from '@hartonomous/pipelines';
 *
 * const policy = retry({ maxAttempts: 5, delay: ({ error }) => retryAfterMs(error) });
 * retryAfterMs({ response: { headers: { 'retry-after': '2' } } }); // 2000
 * ```
 * @see {@link RetryOptions.delay}
 */
export function retryAfterMs(error: unknown, now: number = Date.now()): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const own = (error as { retryAfterMs?: unknown }).retryAfterMs;
  if (typeof own === 'number' && Number.isFinite(own)) return Math.max(0, Math.ceil(own));
  const headers = (error as { response?: { headers?: unknown } }).response?.headers;
  const value = headerValue(headers, 'retry-after');
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.ceil(Number(text) * 1000);
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

function headerValue(headers: unknown, name: string): string | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined;
  const get = (headers as { get?: unknown }).get;
  let v: unknown;
  if (typeof get === 'function') {
    v = (get as (n: string) => unknown).call(headers, name);
  } else {
    const record = headers as Record<string, unknown>;
    v = record[name];
    if (v === undefined) {
      const key = Object.keys(record).find((k) => k.toLowerCase() === name);
      v = key === undefined ? undefined : record[key];
    }
  }
  if (Array.isArray(v)) v = v[0];
  return typeof v === 'string' ? v : undefined;
}

/**
 * Options of {@link createRetryBudget}.
 *
 * @example
 * ```ts
 * import type { RetryBudgetOptions } from '@hartonomous/pipelines';
 * const options: RetryBudgetOptions = { ratio: 0.2, minPerSecond: 1, windowMs: 10_000 };
 * ```
 */
export interface RetryBudgetOptions {
  /** Retries allowed per call in the window, `0..1` (0.2 = at most 20% extra load). */
  ratio: number;
  /** A reserve of retries per second allowed whatever the traffic, so a quiet service can still retry. @default 1 */
  minPerSecond?: number;
  /** The sliding window calls and retries are counted over, in ms. @default 10_000 */
  windowMs?: number;
  /** Clock in epoch ms. @default `asyncScheduler.now()` (Date.now, or virtual time inside `TestScheduler.run`) */
  now?: () => number;
}

/**
 * A budget shared by many `retry` policies (say every item of a pipeline, or every call to
 * one service) that keeps retries below a fraction of calls, so retries cannot multiply the
 * load on a struggling dependency (the "retry storm"). A retry is granted only if, counting
 * it, the retries of the last `windowMs` stay within `ratio * calls + minPerSecond * windowMs
 * / 1000`, where calls are the logical calls (first attempts) of the same window; it is
 * granted whenever a whole retry fits.
 *
 * @example
 * ```ts
 * import { createRetryBudget, retry } from '@hartonomous/pipelines';
 *
 * const budget = createRetryBudget({ ratio: 0.1 });
 * const policy = retry({ maxAttempts: 3, budget });
 * console.log(budget.available);
 * ```
 */
export interface RetryBudget {
  /** The configured ratio. */
  readonly ratio: number;
  /** The configured reserve per second. */
  readonly minPerSecond: number;
  /** The configured window, in ms. */
  readonly windowMs: number;
  /** Logical calls in the current window. */
  readonly calls: number;
  /** Retries granted in the current window. */
  readonly retries: number;
  /** Retries that would be granted now (whole number, never negative). */
  readonly available: number;
  /** Records one logical call (a first attempt); `retry` calls this. */
  recordCall(): void;
  /**
   * Takes one retry from the budget if there is one; `retry` calls this before each retry.
   * @returns whether the retry may go ahead
   */
  tryRetry(): boolean;
}

/**
 * Creates a {@link RetryBudget} to share between `retry` policies.
 *
 * @param options - the ratio, reserve and window
 * @returns a budget to pass as `retry({ budget })`
 * @throws TypeError when an option is out of range
 *
 * @example
 * ```ts
 * import { createRetryBudget, fromWork, retry } from '@hartonomous/pipelines';
 *
 * const budget = createRetryBudget({ ratio: 0.2, minPerSecond: 5, windowMs: 10_000 });
 * const fetchOne = (id: number) =>
 *   fromWork((signal) => fetch(`http://127.0.0.1:8080/items/${id}`, { signal })).pipe(
 *     retry({ maxAttempts: 4, budget }),
 *   );
 * ```
 */
export function createRetryBudget(options: RetryBudgetOptions): RetryBudget {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('createRetryBudget: options must be an object');
  }
  const { ratio } = options;
  const minPerSecond = options.minPerSecond ?? 1;
  const windowMs = options.windowMs ?? 10_000;
  const now = options.now ?? (() => asyncScheduler.now());
  if (!(typeof ratio === 'number' && ratio >= 0 && ratio <= 1)) {
    throw new TypeError(`createRetryBudget: ratio must be a number in [0, 1], got ${ratio}`);
  }
  if (!(Number.isFinite(minPerSecond) && minPerSecond >= 0)) {
    throw new TypeError(`createRetryBudget: minPerSecond must be >= 0, got ${minPerSecond}`);
  }
  if (!(Number.isFinite(windowMs) && windowMs > 0)) {
    throw new TypeError(`createRetryBudget: windowMs must be > 0, got ${windowMs}`);
  }
  const reserve = (minPerSecond * windowMs) / 1000;
  const calls = timestampWindow(windowMs);
  const retries = timestampWindow(windowMs);
  const allowance = (t: number): number => ratio * calls.count(t) + reserve - retries.count(t);
  return {
    ratio,
    minPerSecond,
    windowMs,
    get calls() {
      return calls.count(now());
    },
    get retries() {
      return retries.count(now());
    },
    get available() {
      return Math.max(0, Math.floor(allowance(now()) + 1e-9));
    },
    recordCall() {
      calls.push(now());
    },
    tryRetry() {
      const t = now();
      if (allowance(t) < 1 - 1e-9) return false;
      retries.push(t);
      return true;
    },
  };
}

/** Timestamps within a sliding window; an entry at `t` counts while `now - t < windowMs`. */
function timestampWindow(windowMs: number): {
  push(t: number): void;
  count(now: number): number;
} {
  let times: number[] = [];
  let head = 0;
  const prune = (now: number): void => {
    while (head < times.length && now - times[head]! >= windowMs) head++;
    if (head > 1024 && head * 2 > times.length) {
      times = times.slice(head);
      head = 0;
    }
  };
  return {
    push(t) {
      prune(t);
      times.push(t);
    },
    count(now) {
      prune(now);
      return times.length - head;
    },
  };
}
