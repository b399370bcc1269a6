/**
 * The resilience operators: retry, timeout, circuit breaker, bulkhead, rate limit,
 * fallback, hedge, and `policy` to compose them. Each is a `MonoTypeOperatorFunction<T>`
 * (fallback may widen the type) meant for a cold per-attempt work Observable from
 * `fromWork(...)`, so re-subscribing re-runs the work and unsubscribing cancels it.
 *
 * @module
 */

export { type BackoffOptions, type BackoffStrategy, backoff } from './backoff.js';
export {
  type Bulkhead,
  type BulkheadEvent,
  type BulkheadOptions,
  BulkheadRejectedError,
  type BulkheadTicket,
  bulkhead,
  createBulkhead,
  isBulkheadRejectedError,
} from './bulkhead.js';
export {
  type BreakDurationContext,
  type BreakerStrategy,
  type BreakerWindowSnapshot,
  BrokenCircuitError,
  type CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitBreakerSnapshot,
  type CircuitBreakerTransition,
  type CircuitIsolation,
  type CircuitPermit,
  type CircuitState,
  circuitBreaker,
  createCircuitBreaker,
  IsolatedCircuitError,
  isBrokenCircuitError,
  isIsolatedCircuitError,
} from './circuit-breaker.js';
export {
  type FallbackEvent,
  type FallbackOptions,
  type FallbackValue,
  fallback,
} from './fallback.js';
export { type HedgeEvent, type HedgeOptions, hedge } from './hedge.js';
export { type ErrorClass, type ErrorFilter, policy } from './policy.js';
export {
  createRateLimiter,
  isRateLimitedError,
  type RateLimitEvent,
  RateLimitedError,
  type RateLimiter,
  type RateLimiterOptions,
  type RateLimitReservation,
  rateLimit,
} from './rate-limit.js';
export {
  createRetryBudget,
  isPermanentError,
  PermanentError,
  type RetryBudget,
  type RetryBudgetOptions,
  type RetryDelayContext,
  type RetryEvent,
  type RetryGiveUpReason,
  type RetryOptions,
  retry,
  retryAfterMs,
} from './retry.js';
export {
  isTimeoutError,
  TimeoutError,
  type TimeoutEvent,
  type TimeoutKind,
  type TimeoutOptions,
  timeout,
} from './timeout.js';
