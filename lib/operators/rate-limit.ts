import type { Attributes } from '@opentelemetry/api';
import type { Logger } from 'pino';
import {
  asyncScheduler,
  type MonoTypeOperatorFunction,
  Observable,
  type SchedulerLike,
  type Subscription,
} from 'rxjs';
import { errorGuard, PipelineError } from '../core/errors.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { instruments, type TelemetryOptions } from '../observability/telemetry.js';

/**
 * A rate limiter refused a call: in `'reject'` mode no token was free, in `'wait'` mode the
 * wait would have exceeded `maxWaitMs`. `retryAfterMs` is when a token will be free. The
 * work was not started.
 *
 * @example
 * ```ts
 * import { isRateLimitedError } from '@hartonomous/pipelines';
 * result$.subscribe({ error: (e) => isRateLimitedError(e) && console.warn(`try again in ${e.retryAfterMs} ms`) });
 * ```
 */
export class RateLimitedError extends PipelineError {
  readonly code = 'RATE_LIMITED' as const;
  /**
   * @param limiter - the limiter's name
   * @param retryAfterMs - ms until a token is free
   * @param key - the key whose bucket was empty, for a keyed limiter
   */
  constructor(
    readonly limiter: string,
    readonly retryAfterMs: number,
    readonly key?: string,
  ) {
    super(
      `rate limiter '${limiter}'${key === undefined ? '' : ` (key '${key}')`} has no token ` +
        `for ${retryAfterMs} ms`,
    );
  }
}

/**
 * Guard for {@link RateLimitedError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link RateLimitedError}
 * @example
 * ```ts
 * import { isRateLimitedError, RateLimitedError } from '@hartonomous/pipelines';
 * isRateLimitedError(new RateLimitedError('api', 100)); // true
 * ```
 */
export const isRateLimitedError: (e: unknown) => e is RateLimitedError =
  errorGuard<RateLimitedError>('RATE_LIMITED');

/**
 * Typed events of a rate limiter, delivered to {@link RateLimiterOptions.onEvent}:
 * `'waiting'` when a call must wait for its token, `'rejected'` when it is refused.
 *
 * @example
 * ```ts
 * import type { RateLimitEvent } from '@hartonomous/pipelines';
 * const onEvent = (e: RateLimitEvent) => e.type === 'rejected' && console.warn(`${e.name} refused a call`);
 * ```
 */
export interface RateLimitEvent {
  /** What happened. */
  readonly type: 'waiting' | 'rejected';
  /** The limiter's name. */
  readonly name: string;
  /** How long the call waits (`'waiting'`) or would have to wait (`'rejected'`), in ms. */
  readonly waitMs: number;
  /** The key, for a keyed limiter. */
  readonly key?: string;
}

/**
 * Options of {@link createRateLimiter}.
 *
 * @example
 * ```ts
 * import type { RateLimiterOptions } from '@hartonomous/pipelines';
 * const options: RateLimiterOptions = { rate: 50, burst: 10, mode: 'wait', maxWaitMs: 2_000 };
 * ```
 */
export interface RateLimiterOptions extends TelemetryOptions {
  /** Tokens added per second: the sustained rate of calls. */
  rate: number;
  /** Bucket capacity: calls that may start at once after a quiet period. The bucket starts full. @default 1 */
  burst?: number;
  /** `'wait'` delays a call until its token is due; `'reject'` fails it at once with {@link RateLimitedError}. @default 'wait' */
  mode?: 'wait' | 'reject';
  /** In `'wait'` mode, calls that would wait longer are rejected instead. @default Infinity */
  maxWaitMs?: number;
  /** One bucket per key (the operator must then be given a key); full, idle buckets are forgotten. @default false */
  keyed?: boolean;
  /** Name in errors, logs and the metric attribute `rate_limiter.name`. @default 'rate-limiter' */
  name?: string;
  /** Scheduler of the waits; pass a `TestScheduler` for virtual time. It is also the default clock. @default asyncScheduler */
  scheduler?: SchedulerLike;
  /** Clock in epoch ms. @default `scheduler.now()` */
  now?: () => number;
  /** Receives {@link RateLimitEvent}s; must not throw. @default none */
  onEvent?: (event: RateLimitEvent) => void;
  /** Logs `rate_limit.rejected` when given. @default no logging */
  logger?: Logger;
}

/**
 * A token held for one call. Low level; the {@link rateLimit} operator uses it.
 *
 * @example
 * ```ts
 * import { createRateLimiter } from '@hartonomous/pipelines';
 *
 * const limiter = createRateLimiter({ rate: 10 });
 * const r = limiter.reserve();
 * setTimeout(() => void fetch('http://127.0.0.1:8080/'), r.waitMs);
 * ```
 */
export interface RateLimitReservation {
  /** How long to wait before starting the call, in ms (0: start now). */
  readonly waitMs: number;
  /** Gives the token back (the call will not run). Call it only before the wait is over. */
  cancel(): void;
}

/**
 * A shared token bucket (or one per key); create it with {@link createRateLimiter} and apply
 * it with the {@link rateLimit} operator.
 *
 * @example
 * ```ts
 * import { createRateLimiter } from '@hartonomous/pipelines';
 * const limiter = createRateLimiter({ rate: 5, burst: 5 });
 * console.log(limiter.tokens()); // 5
 * ```
 */
export interface RateLimiter {
  /** The limiter's name. */
  readonly name: string;
  /** Tokens per second. */
  readonly rate: number;
  /** Bucket capacity. */
  readonly burst: number;
  /** What happens to a call without a token. */
  readonly mode: 'wait' | 'reject';
  /** Longest wait in `'wait'` mode. */
  readonly maxWaitMs: number;
  /** Whether it keeps one bucket per key. */
  readonly keyed: boolean;
  /** The scheduler waits run on. */
  readonly scheduler: SchedulerLike;
  /** Buckets currently remembered (idle full buckets are dropped). */
  readonly keys: number;
  /**
   * Tokens in a bucket now; negative while calls wait for tokens already promised.
   * @param key - the bucket, for a keyed limiter
   * @returns the token count
   */
  tokens(key?: string): number;
  /**
   * Takes a token now or promises one later, or throws {@link RateLimitedError}.
   * Low level: the {@link rateLimit} operator calls this.
   * @param key - the bucket, required exactly when the limiter is keyed
   * @returns the reservation
   */
  reserve(key?: string): RateLimitReservation;
}

interface Bucket {
  tokens: number;
  last: number;
}

/**
 * Creates a token-bucket {@link RateLimiter}: `rate` tokens per second refill a bucket of
 * `burst` tokens, each call takes one. Waiting calls are served in arrival order: each is
 * promised the next token, so in `'wait'` mode calls start exactly `1000 / rate` ms apart
 * once the burst is spent. With `keyed: true` each key gets its own bucket, dropped once it
 * is full again. A number is the `rate`.
 *
 * Waits are counted on `hartonomous.rate_limit.waits`, rejections on `hartonomous.rate_limit.rejections`
 * (attribute `rate_limiter.name`).
 *
 * @param options - tokens per second, or {@link RateLimiterOptions}
 * @returns the limiter (pass it to {@link rateLimit})
 * @throws TypeError when an option is out of range
 *
 * @example
 * ```ts
 * import { createRateLimiter, fromWork, rateLimit } from '@hartonomous/pipelines';
 *
 * const limiter = createRateLimiter({ rate: 20, burst: 5, maxWaitMs: 5_000 });
 * const get = (path: string) =>
 *   fromWork((signal) => fetch(`http://127.0.0.1:8080${path}`, { signal })).pipe(rateLimit(limiter));
 * ```
 * @see {@link rateLimit}
 */
export function createRateLimiter(options: number | RateLimiterOptions): RateLimiter {
  const o: RateLimiterOptions = typeof options === 'number' ? { rate: options } : options;
  if (typeof o !== 'object' || o === null) {
    throw new TypeError('createRateLimiter: options must be a number or an object');
  }
  const { rate, logger } = o;
  const burst = o.burst ?? 1;
  const mode = o.mode ?? 'wait';
  const maxWaitMs = o.maxWaitMs ?? Infinity;
  const keyed = o.keyed ?? false;
  const name = o.name ?? 'rate-limiter';
  const scheduler = o.scheduler ?? asyncScheduler;
  const now = o.now ?? (() => scheduler.now());
  const fail = (msg: string): never => {
    throw new TypeError(`createRateLimiter: ${msg}`);
  };
  if (!(typeof rate === 'number' && Number.isFinite(rate) && rate > 0)) {
    fail(`rate must be a finite number > 0, got ${rate}`);
  }
  if (!(Number.isInteger(burst) && burst >= 1)) fail(`burst must be an integer >= 1, got ${burst}`);
  if (mode !== 'wait' && mode !== 'reject') fail(`mode must be 'wait' or 'reject', got ${mode}`);
  if (!(maxWaitMs >= 0)) fail(`maxWaitMs must be >= 0, got ${maxWaitMs}`);
  if (typeof now !== 'function') fail('now must be a function');
  const metrics = instruments(o);
  const attrs: Attributes = { 'rate_limiter.name': name };
  const msPerToken = 1000 / rate;
  const fullRefillMs = burst * msPerToken;
  const buckets = new Map<string, Bucket>();
  let lastSweep = now();

  const keyOf = (key: string | undefined): string => {
    if (keyed) {
      if (typeof key !== 'string') fail(`'${name}' is keyed: pass a string key`);
      return key as string;
    }
    if (key !== undefined) fail(`'${name}' is not keyed: create it with keyed: true to use keys`);
    return '';
  };
  const refill = (b: Bucket, at: number): void => {
    if (at > b.last) {
      b.tokens = Math.min(burst, b.tokens + (at - b.last) / msPerToken);
      b.last = at;
    }
  };
  const sweep = (at: number): void => {
    if (!keyed || at - lastSweep < Math.max(1000, fullRefillMs)) return;
    lastSweep = at;
    for (const [k, b] of buckets) {
      refill(b, at);
      if (b.tokens >= burst) buckets.delete(k);
    }
  };
  const bucketOf = (k: string, at: number): Bucket => {
    let b = buckets.get(k);
    if (!b) {
      b = { tokens: burst, last: at };
      buckets.set(k, b);
    }
    refill(b, at);
    return b;
  };
  const reject = (k: string, waitMs: number): never => {
    metrics.rateLimitRejections.add(1, attrs);
    const key = keyed ? k : undefined;
    if (logger) logEvent(logger, LogEvents.rateLimited, { name, retryAfterMs: waitMs, key });
    o.onEvent?.(
      keyed ? { type: 'rejected', name, waitMs, key: k } : { type: 'rejected', name, waitMs },
    );
    throw new RateLimitedError(name, waitMs, key);
  };
  // Rounding guard: a bucket that should hold exactly 1 token may hold 0.999999999.
  const EPS = 1e-9;

  return {
    name,
    rate,
    burst,
    mode,
    maxWaitMs,
    keyed,
    scheduler,
    get keys() {
      sweep(now());
      return buckets.size;
    },
    tokens(key) {
      const k = keyOf(key);
      const b = buckets.get(k);
      if (!b) return burst;
      refill(b, now());
      return b.tokens;
    },
    reserve(key) {
      const k = keyOf(key);
      const at = now();
      sweep(at);
      const b = bucketOf(k, at);
      const shortfall = 1 - b.tokens;
      const waitMs = shortfall <= EPS ? 0 : Math.ceil(shortfall * msPerToken - EPS);
      if (waitMs > 0 && (mode === 'reject' || waitMs > maxWaitMs)) reject(k, waitMs);
      b.tokens -= 1;
      if (waitMs > 0) {
        metrics.rateLimitWaits.add(1, attrs);
        o.onEvent?.(
          keyed ? { type: 'waiting', name, waitMs, key: k } : { type: 'waiting', name, waitMs },
        );
      }
      let cancelled = false;
      return {
        waitMs,
        cancel() {
          if (cancelled) return;
          cancelled = true;
          const current = buckets.get(k);
          if (current !== b) return;
          refill(b, now());
          b.tokens = Math.min(burst, b.tokens + 1);
        },
      };
    },
  };
}

/**
 * Starts each subscription of the source only with a token from a shared
 * {@link RateLimiter}: at once if one is free, else (in `'wait'` mode) after a cancellable
 * wait on the limiter's scheduler, else it errors with {@link RateLimitedError} without
 * subscribing the source. Unsubscribing while waiting gives the token back.
 *
 * @param limiter - the shared limiter from {@link createRateLimiter}
 * @param keyOf - for a keyed limiter: the key, or a function evaluated at each subscription
 * @returns an operator that paces subscriptions of its source
 * @throws TypeError when a key is given to an unkeyed limiter or missing for a keyed one
 *
 * @example
 * ```ts
 * import { createRateLimiter, fromWork, rateLimit } from '@hartonomous/pipelines';
 * import { from, mergeMap } from 'rxjs';
 *
 * const perTenant = createRateLimiter({ rate: 2, burst: 4, keyed: true });
 * const jobs$ = from([{ tenant: 'a', id: 1 }, { tenant: 'b', id: 2 }]).pipe(
 *   mergeMap((job) =>
 *     fromWork((signal) => fetch(`http://127.0.0.1:8080/jobs/${job.id}`, { signal })).pipe(rateLimit(perTenant, job.tenant)),
 *   ),
 * );
 * ```
 * @see {@link createRateLimiter}
 */
export function rateLimit<T>(
  limiter: RateLimiter,
  keyOf?: string | (() => string),
): MonoTypeOperatorFunction<T> {
  if (typeof limiter?.reserve !== 'function') {
    throw new TypeError('rateLimit: pass a limiter made by createRateLimiter()');
  }
  if (limiter.keyed && keyOf === undefined) {
    throw new TypeError(`rateLimit: '${limiter.name}' is keyed; pass keyOf`);
  }
  if (!limiter.keyed && keyOf !== undefined) {
    throw new TypeError(`rateLimit: '${limiter.name}' is not keyed; create it with keyed: true`);
  }
  return (source) =>
    new Observable<T>((subscriber) => {
      let reservation: RateLimitReservation;
      try {
        reservation = limiter.reserve(typeof keyOf === 'function' ? keyOf() : keyOf);
      } catch (e) {
        subscriber.error(e);
        return;
      }
      const start = (): Subscription =>
        source.subscribe({
          next: (value) => subscriber.next(value),
          error: (e: unknown) => subscriber.error(e),
          complete: () => subscriber.complete(),
        });
      if (reservation.waitMs === 0) return start();
      let inner: Subscription | undefined;
      let timer: Subscription | undefined = limiter.scheduler.schedule(() => {
        timer = undefined;
        inner = start();
      }, reservation.waitMs);
      return () => {
        if (timer) {
          timer.unsubscribe();
          timer = undefined;
          reservation.cancel();
        }
        inner?.unsubscribe();
      };
    });
}
