import { identity, type MonoTypeOperatorFunction } from 'rxjs';

/**
 * Composes resilience operators into one, applied in the order given (like `pipe`): the
 * first operator wraps the work most closely.
 *
 * The recommended order, innermost first, is
 * `timeout` (per attempt) -> `retry` -> `circuitBreaker` -> `bulkhead` -> `timeout` (overall):
 *
 * - `timeout` inside `retry` bounds each attempt. When it fires it unsubscribes the attempt,
 *   so the attempt's `fromWork` signal aborts and the work really stops; `retry` then
 *   re-subscribes, which starts a fresh attempt with a fresh AbortSignal.
 * - `retry` inside `circuitBreaker` means the breaker sees one outcome per logical call
 *   (success after retries, or the final failure) instead of counting every attempt, and an
 *   open breaker rejects a call at once with `BrokenCircuitError` instead of letting `retry`
 *   burn attempts and backoff delays against a dependency known to be down. (Put the breaker
 *   inside `retry` instead only if you want retries to wait out a short break:
 *   `BrokenCircuitError.retryAfterMs` works with the `delay` hook.)
 * - `bulkhead` outside the breaker and retry holds one slot for the whole logical call,
 *   including its backoff sleeps, so the concurrency limit is what the dependency sees;
 *   rejected-by-breaker calls release their slot immediately.
 * - the outer `timeout` bounds the caller's total wait, queueing in the bulkhead included.
 * - `rateLimit` goes where `bulkhead` goes (or just inside it, so waiting for a token does
 *   not hold a slot); `hedge` replaces `retry` for latency-sensitive idempotent reads;
 *   `fallback` goes last (outermost) so it also covers rejections by the breaker, bulkhead
 *   and timeouts.
 *
 * No operators gives `identity`.
 *
 * @param operators - the operators, innermost first
 * @returns one operator applying them all in order
 *
 * @example
 * ```ts
 * import {
 *   bulkhead, circuitBreaker, createBulkhead, createCircuitBreaker, fromWork, policy, retry, timeout,
 * } from '@hartonomous/pipelines';
 *
 * const breaker = createCircuitBreaker({ name: 'embeddings' });
 * const slots = createBulkhead({ limit: 8, queue: 64 });
 * const resilient = policy<string>(timeout(1_000), retry(3), circuitBreaker(breaker), bulkhead(slots), timeout(10_000));
 *
 * const body$ = fromWork((signal) => fetch('http://127.0.0.1:8080/', { signal }).then((r) => r.text()))
 *   .pipe(resilient);
 * ```
 * @see {@link timeout}
 * @see {@link retry}
 * @see {@link circuitBreaker}
 * @see {@link bulkhead}
 */
export function policy<T>(
  ...operators: MonoTypeOperatorFunction<T>[]
): MonoTypeOperatorFunction<T> {
  for (const [i, op] of operators.entries()) {
    if (typeof op !== 'function') throw new TypeError(`policy: operator ${i} is not a function`);
  }
  if (operators.length === 0) return identity;
  if (operators.length === 1) return operators[0]!;
  return (source) => operators.reduce((acc, op) => op(acc), source);
}

/**
 * A class of errors, for `handle: [TypeError, HttpError]` style filters.
 *
 * @example
 * ```ts
 * import type { ErrorClass } from '@hartonomous/pipelines';
 *
 * const transient: ErrorClass[] = [TypeError, RangeError];
 * ```
 */
export type ErrorClass = abstract new (...args: never[]) => unknown;

/**
 * Which errors a policy handles: a predicate, or a list of error classes (matched with
 * `instanceof`). Errors it does not handle pass through the policy untouched.
 *
 * @example
 * ```ts
 * import { retry, type ErrorFilter } from '@hartonomous/pipelines';
 *
 * const transient: ErrorFilter = (e) => e instanceof Error && 'status' in e && e.status === 503;
 * const policy = retry({ maxAttempts: 3, handle: transient });
 * ```
 */
export type ErrorFilter = ((error: unknown) => boolean) | readonly ErrorClass[];

/**
 * Validates an {@link ErrorFilter} option.
 * @internal
 */
export function checkErrorFilter(where: string, filter: ErrorFilter | undefined): void {
  if (filter === undefined || typeof filter === 'function') return;
  if (!Array.isArray(filter) || filter.some((c) => typeof c !== 'function')) {
    throw new TypeError(`${where}: handle must be a predicate or an array of error classes`);
  }
}

/**
 * Whether `error` matches `filter` (no filter matches everything).
 * @internal
 */
export function errorMatches(filter: ErrorFilter | undefined, error: unknown): boolean {
  if (filter === undefined) return true;
  if (typeof filter === 'function') return filter(error);
  return filter.some((c) => error instanceof c);
}
