/**
 * Delay schedules shared by {@link retry} and the circuit breaker's break duration.
 *
 * @module
 */

/**
 * How the delay grows from one attempt to the next (`n` is the 0-based index of the delay,
 * `base` is {@link BackoffOptions.baseMs}, `factor` is {@link BackoffOptions.factor}):
 *
 * | strategy | delay `n` |
 * |---|---|
 * | `'constant'` | `base` |
 * | `'linear'` | `base * (n + 1)` |
 * | `'exponential'` | `base * factor ** n` |
 * | `'full-jitter'` | `random() * base * factor ** n` |
 * | `'half-jitter'` | `e / 2 + random() * e / 2` where `e = base * factor ** n` |
 * | `'decorrelated-jitter'` | Polly's "decorrelated jitter v2": `t = n + random()`, `f(t) = 2 ** t * tanh(sqrt(4 * t))`, delay `= (f(t) - f(t_prev)) / 1.4 * base` (`f(t_prev)` is `0` for the first delay) |
 *
 * Every delay is capped at {@link BackoffOptions.maxMs} (for the jittered exponential
 * strategies the cap applies before the jitter, as in AWS's "Exponential Backoff And
 * Jitter") and rounded to whole milliseconds. Decorrelated jitter spreads retries of many
 * clients evenly while its median still roughly doubles (about `base`, `2 * base`,
 * `4 * base`, ...); it is the default.
 *
 * @example
 * ```ts
 * import { retry, type BackoffStrategy } from '@hartonomous/pipelines';
 *
 * const strategy: BackoffStrategy = 'exponential';
 * const policy = retry({ maxAttempts: 4, backoff: strategy, baseDelayMs: 100 });
 * ```
 */
export type BackoffStrategy =
  | 'constant'
  | 'linear'
  | 'exponential'
  | 'full-jitter'
  | 'half-jitter'
  | 'decorrelated-jitter';

/**
 * Options of a {@link backoff} schedule.
 *
 * @example
 * ```ts
 * import type { BackoffOptions } from '@hartonomous/pipelines';
 *
 * const slow: BackoffOptions = { strategy: 'exponential', baseMs: 1_000, maxMs: 60_000 };
 * ```
 */
export interface BackoffOptions {
  /** How delays grow. @default 'decorrelated-jitter' */
  strategy?: BackoffStrategy;
  /** The first (or median first, for jittered strategies) delay in ms. @default 200 */
  baseMs?: number;
  /** Upper bound of any delay in ms. @default 30_000 */
  maxMs?: number;
  /** Growth factor of `'exponential'`, `'full-jitter'` and `'half-jitter'`. @default 2 */
  factor?: number;
  /** Uniform random source in `[0, 1)`; inject a fixed one for exact tests. @default Math.random */
  random?: () => number;
}

/** Scales Polly's decorrelated-jitter formula so its median delays are near `base * 2 ** n`. */
const RP_SCALING = 1 / 1.4;
/** Smooths the first decorrelated-jitter delay. */
const P_FACTOR = 4;

/**
 * An endless schedule of delays in milliseconds: each `next()` gives the next delay.
 * Start a fresh schedule for every retry loop (decorrelated jitter remembers the previous
 * delay).
 *
 * @param options - the strategy and its bounds
 * @returns an endless iterator of whole-millisecond delays
 * @throws TypeError when an option is out of range
 *
 * @example
 * ```ts
 * import { backoff } from '@hartonomous/pipelines';
 *
 * const delays = backoff({ strategy: 'exponential', baseMs: 100, maxMs: 1_000 });
 * delays.next().value; // 100
 * delays.next().value; // 200
 * delays.next().value; // 400
 * ```
 * @see {@link retry}
 * @see {@link circuitBreaker}
 */
export function backoff(options: BackoffOptions = {}): Iterator<number, never, undefined> {
  const delayAt = backoffFunction(options);
  let n = 0;
  return {
    next: () => ({ done: false, value: delayAt(n++) }),
  };
}

/**
 * Validates backoff options and returns the delay function of a fresh schedule
 * (`delayAt(n)` must be called with n = 0, 1, 2, ... in order).
 * @internal
 */
export function backoffFunction(options: BackoffOptions): (n: number) => number {
  const strategy = options.strategy ?? 'decorrelated-jitter';
  const base = options.baseMs ?? 200;
  const max = options.maxMs ?? 30_000;
  const factor = options.factor ?? 2;
  const random = options.random ?? Math.random;
  if (!STRATEGIES.has(strategy)) {
    throw new TypeError(`backoff: unknown strategy '${String(strategy)}'`);
  }
  if (!(Number.isFinite(base) && base >= 0)) {
    throw new TypeError(`backoff: baseMs must be a finite number >= 0, got ${base}`);
  }
  if (!(max >= base)) {
    throw new TypeError(`backoff: maxMs must be >= baseMs (${base}), got ${max}`);
  }
  if (!(Number.isFinite(factor) && factor >= 1)) {
    throw new TypeError(`backoff: factor must be a finite number >= 1, got ${factor}`);
  }
  if (typeof random !== 'function') throw new TypeError('backoff: random must be a function');
  const cap = (ms: number): number => Math.round(Math.min(max, Math.max(0, ms)));
  const exp = (n: number): number => Math.min(max, base * factor ** n);
  switch (strategy) {
    case 'constant':
      return () => cap(base);
    case 'linear':
      return (n) => cap(base * (n + 1));
    case 'exponential':
      return (n) => cap(exp(n));
    case 'full-jitter':
      return (n) => cap(random() * exp(n));
    case 'half-jitter':
      return (n) => {
        const e = exp(n);
        return cap(e / 2 + (random() * e) / 2);
      };
    default: {
      let prev = 0;
      return (n) => {
        const t = n + random();
        const next = 2 ** t * Math.tanh(Math.sqrt(P_FACTOR * t));
        if (!Number.isFinite(next)) return cap(max);
        const delay = (next - prev) * RP_SCALING * base;
        prev = next;
        return cap(delay);
      };
    }
  }
}

const STRATEGIES: ReadonlySet<string> = new Set<BackoffStrategy>([
  'constant',
  'linear',
  'exponential',
  'full-jitter',
  'half-jitter',
  'decorrelated-jitter',
]);
