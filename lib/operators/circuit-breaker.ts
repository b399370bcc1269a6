import type { Logger } from 'pino';
import {
  asyncScheduler,
  type MonoTypeOperatorFunction,
  Observable,
  type SchedulerLike,
  Subject,
  type Subscriber,
  type Subscription,
} from 'rxjs';
import { describeError, errorGuard, messageOf, PipelineError } from '../core/errors.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { instruments, type TelemetryOptions } from '../observability/telemetry.js';
import { type BackoffOptions, backoffFunction } from './backoff.js';
import { checkErrorFilter, type ErrorFilter, errorMatches } from './policy.js';

/**
 * The state of a circuit breaker: `'closed'` lets calls through and counts failures,
 * `'open'` rejects every call until the break duration is over, `'half-open'` lets a few trial
 * calls through to decide between closing and re-opening, `'isolated'` is held open by hand.
 *
 * @example
 * ```ts
 * import { createCircuitBreaker, type CircuitState } from '@hartonomous/pipelines';
 * const state: CircuitState = createCircuitBreaker(5).state; // 'closed'
 * ```
 */
export type CircuitState = 'closed' | 'open' | 'half-open' | 'isolated';

/**
 * When a closed breaker opens:
 *
 * - `{ type: 'consecutive', failures }`: after `failures` handled failures in a row (a
 *   success resets the count).
 * - `{ type: 'count', ratio, size, minimumCalls }`: samples the last `size` calls; opens on a
 *   failure when at least `minimumCalls` (default `size`) are sampled and the failure ratio is
 *   `>= ratio`.
 * - `{ type: 'time', ratio, windowMs, minimumThroughput, buckets }`: samples the calls of the
 *   last `windowMs`, in `buckets` slices (default 10) of `windowMs / buckets`, each dropped
 *   once `windowMs` has passed since it started (so a call counts for between
 *   `windowMs - windowMs / buckets` and `windowMs`); opens on a failure when at least
 *   `minimumThroughput` (default 10) calls are sampled and the failure ratio is `>= ratio`.
 *
 * @example
 * ```ts
 * import { createCircuitBreaker, type BreakerStrategy } from '@hartonomous/pipelines';
 *
 * const strategy: BreakerStrategy = { type: 'time', ratio: 0.5, windowMs: 30_000, minimumThroughput: 20 };
 * const breaker = createCircuitBreaker({ strategy });
 * ```
 */
export type BreakerStrategy =
  | {
      /** Opens after a run of consecutive failures. */
      readonly type: 'consecutive';
      /** Handled failures in a row that open the breaker (an integer `>= 1`; a success resets the count). */
      readonly failures: number;
    }
  | {
      /** Opens on the failure ratio of the last `size` calls. */
      readonly type: 'count';
      /** Failure ratio, in `(0, 1]`, at or above which the breaker opens. */
      readonly ratio: number;
      /** How many of the most recent calls are sampled (an integer `>= 1`). */
      readonly size: number;
      /** Sampled calls needed before the ratio can open the breaker (an integer in `[1, size]`). @default size */
      readonly minimumCalls?: number;
    }
  | {
      /** Opens on the failure ratio of the calls of a sliding time window. */
      readonly type: 'time';
      /** Failure ratio, in `(0, 1]`, at or above which the breaker opens. */
      readonly ratio: number;
      /** Length of the sliding window, in ms (`> 0`). */
      readonly windowMs: number;
      /** Sampled calls needed in the window before the ratio can open the breaker (an integer `>= 1`). @default 10 */
      readonly minimumThroughput?: number;
      /** Slices the window is sampled in, each `windowMs / buckets` wide (an integer `>= 1`). @default 10 */
      readonly buckets?: number;
    };

/**
 * What a `breakDuration` function receives.
 *
 * @example
 * ```ts
 * import { createCircuitBreaker, type BreakDurationContext } from '@hartonomous/pipelines';
 * const breakDuration = (ctx: BreakDurationContext) => Math.min(60_000, 5_000 * ctx.opens);
 * const breaker = createCircuitBreaker({ breakDuration });
 * ```
 */
export interface BreakDurationContext {
  /** Consecutive openings without a close in between, 1 for the first. */
  readonly opens: number;
  /** The failure that opened the breaker. */
  readonly error: unknown;
}

/**
 * The sampled outcomes of a closed breaker, as saved by `toJSON()` (failure = `true`).
 *
 * @example
 * ```ts
 * import type { BreakerWindowSnapshot } from '@hartonomous/pipelines';
 * const window: BreakerWindowSnapshot = { type: 'consecutive', failures: 2 };
 * ```
 */
export type BreakerWindowSnapshot =
  | {
      /** Saved by a `'consecutive'` strategy. */
      readonly type: 'consecutive';
      /** Handled failures in a row so far. */
      readonly failures: number;
    }
  | {
      /** Saved by a `'count'` strategy. */
      readonly type: 'count';
      /** Outcomes of the sampled calls, oldest first (`true` = failure); at most `size` are restored. */
      readonly outcomes: readonly boolean[];
    }
  | {
      /** Saved by a `'time'` strategy. */
      readonly type: 'time';
      /** The window's slices still in the window, oldest first. */
      readonly buckets: readonly {
        /** When the slice started, in epoch ms of the breaker's clock. */
        readonly start: number;
        /** Calls recorded in the slice, failures included. */
        readonly calls: number;
        /** Failures recorded in the slice (at most `calls`). */
        readonly failures: number;
      }[];
    };

/**
 * The saved state of a circuit breaker (`breaker.toJSON()`), to restore with the
 * `initialState` option, e.g. across restarts of a serverless function. Times are epoch ms
 * of the breaker's clock. `opens` counts consecutive openings (it drives a backoff break
 * duration). A restored `'isolated'` breaker is released with `reset()`.
 *
 * @example
 * ```ts
 * import { createCircuitBreaker, type CircuitBreakerSnapshot } from '@hartonomous/pipelines';
 *
 * const saved: CircuitBreakerSnapshot = createCircuitBreaker(5).toJSON();
 * const restored = createCircuitBreaker({ initialState: saved });
 * ```
 */
export type CircuitBreakerSnapshot =
  | {
      /** The breaker was closed. */
      readonly state: 'closed';
      /** The sampled outcomes; restored only when its `type` matches the strategy. @default nothing sampled */
      readonly window?: BreakerWindowSnapshot;
    }
  | {
      /** The breaker was open. */
      readonly state: 'open';
      /** When it opened, in epoch ms of the breaker's clock. */
      readonly openedAt: number;
      /** When it half-opens, in epoch ms of the breaker's clock. */
      readonly until: number;
      /** Consecutive openings, this one included (an integer `>= 1`). */
      readonly opens: number;
    }
  | {
      /** The breaker was half-open (its trial calls are not saved). */
      readonly state: 'half-open';
      /** Consecutive openings so far, without a close in between (an integer `>= 0`). */
      readonly opens: number;
    }
  | {
      /** The breaker was held open by `isolate()`; restored as one isolation, released with `reset()`. */
      readonly state: 'isolated';
    };

/**
 * One change of a breaker's state, emitted on `breaker.state$`.
 *
 * @example
 * ```ts
 * import { createCircuitBreaker } from '@hartonomous/pipelines';
 * const breaker = createCircuitBreaker(5);
 * breaker.state$.subscribe((t) => console.log(`${t.name}: ${t.from} -> ${t.to} at ${t.at}`));
 * ```
 */
export interface CircuitBreakerTransition {
  /** The breaker's name. */
  readonly name: string;
  /** State before. */
  readonly from: CircuitState;
  /** State after. */
  readonly to: CircuitState;
  /** When, in epoch ms of the breaker's clock. */
  readonly at: number;
  /** For `to: 'open'`: the failure that opened it. */
  readonly error?: unknown;
}

/**
 * Options of {@link createCircuitBreaker}.
 *
 * @example
 * ```ts
 * import type { CircuitBreakerOptions } from '@hartonomous/pipelines';
 *
 * const options: CircuitBreakerOptions = {
 *   name: 'embeddings',
 *   strategy: { type: 'count', ratio: 0.5, size: 20 },
 *   breakDuration: { strategy: 'exponential', baseMs: 5_000, maxMs: 120_000 },
 *   halfOpenCalls: 3,
 *   handle: (e) => !(e instanceof TypeError),
 * };
 * ```
 */
export interface CircuitBreakerOptions extends TelemetryOptions {
  /** Name in errors, transitions, logs and the metric attribute `name`. @default 'circuit-breaker' */
  name?: string;
  /** When the closed breaker opens; see {@link BreakerStrategy}. @default `{ type: 'consecutive', failures: 5 }` */
  strategy?: BreakerStrategy;
  /**
   * How long it stays open before half-opening, in ms: a constant, a backoff over consecutive
   * openings (object defaults: `strategy: 'exponential'`, `baseMs: 10_000`, `maxMs: 300_000`),
   * or a function of {@link BreakDurationContext}.
   * @default 10_000
   */
  breakDuration?: number | BackoffOptions | ((ctx: BreakDurationContext) => number);
  /** Trial calls let through while half-open (more are rejected until they finish). @default 1 */
  halfOpenCalls?: number;
  /**
   * Highest failure ratio of the `halfOpenCalls` trials that still closes the breaker; it
   * re-opens as soon as more fail. @default 0 (any failed trial re-opens it)
   */
  halfOpenMaxFailureRatio?: number;
  /** Which errors count as failures; other errors count as successes (the dependency did answer). @default every error */
  handle?: ErrorFilter;
  /** Clock in epoch ms. @default `scheduler.now()` (Date.now for asyncScheduler, virtual time under a TestScheduler) */
  now?: () => number;
  /**
   * When given, the breaker schedules the open -> half-open transition on it so `state$`
   * reports it on time; otherwise (the default, so no timer keeps a process alive) the
   * transition happens when the breaker is next used or read. It is also the default clock.
   * @default none (clock: asyncScheduler)
   */
  scheduler?: SchedulerLike;
  /** A state saved by `toJSON()` to start from. @default `{ state: 'closed' }` */
  initialState?: CircuitBreakerSnapshot;
  /** Logs `breaker.opened`, `breaker.half_opened` and `breaker.closed` when given. @default no logging */
  logger?: Logger;
}

/**
 * A handle on a manual isolation; see {@link CircuitBreaker.isolate}.
 *
 * @example
 * ```ts
 * import { createCircuitBreaker } from '@hartonomous/pipelines';
 * const isolation = createCircuitBreaker(5).isolate();
 * isolation.release();
 * ```
 */
export interface CircuitIsolation {
  /** Ends this isolation; the breaker closes when no isolation is left. Idempotent. */
  release(): void;
}

/**
 * Admission of one call through a breaker; report its outcome exactly once. The
 * `circuitBreaker` operator does this for you.
 *
 * @example
 * ```ts
 * import { createCircuitBreaker } from '@hartonomous/pipelines';
 *
 * const breaker = createCircuitBreaker(5);
 * const permit = breaker.admit(); // throws when open
 * try {
 *   await fetch('http://127.0.0.1:8080/');
 *   permit.success();
 * } catch (e) {
 *   permit.failure(e);
 *   throw e;
 * }
 * ```
 */
export interface CircuitPermit {
  /** The call succeeded. */
  success(): void;
  /** The call failed with `error` (counted as a failure only if the breaker handles it). */
  failure(error: unknown): void;
  /** The call was cancelled before an outcome; frees a half-open trial slot. */
  release(): void;
}

/**
 * A circuit breaker shared by every call to one dependency; create it with
 * {@link createCircuitBreaker} and apply it with the {@link circuitBreaker} operator.
 *
 * @example
 * ```ts
 * import { createCircuitBreaker } from '@hartonomous/pipelines';
 *
 * const breaker = createCircuitBreaker({ name: 'db' });
 * const isolation = breaker.isolate(); // maintenance: reject everything
 * isolation.release();
 * console.log(breaker.state, JSON.stringify(breaker));
 * ```
 */
export interface CircuitBreaker {
  /** The breaker's name. */
  readonly name: string;
  /** The current state (an open breaker whose break is over reads as `'half-open'`). */
  readonly state: CircuitState;
  /** The last failure counted, if any. */
  readonly lastFailure: unknown;
  /** Every state change, as it happens (not replayed on subscribe; read `state` first). */
  readonly state$: Observable<CircuitBreakerTransition>;
  /**
   * Admits one call or throws {@link BrokenCircuitError} / {@link IsolatedCircuitError}.
   * Low level: the {@link circuitBreaker} operator calls this.
   * @returns a permit to report the call's outcome on
   */
  admit(): CircuitPermit;
  /**
   * Holds the breaker open by hand (rejecting with {@link IsolatedCircuitError}) until every
   * isolation is released or `reset()` is called.
   * @returns a handle to release this isolation
   */
  isolate(): CircuitIsolation;
  /** Closes the breaker from any state, drops every isolation and forgets sampled failures. */
  reset(): void;
  /**
   * The current state, to save and later pass as `initialState`.
   * @returns a JSON-safe snapshot
   */
  toJSON(): CircuitBreakerSnapshot;
}

/**
 * A call was rejected because the circuit is open (or half-open with all trial slots taken);
 * the work was not started. `retryAfterMs` is how long until it half-opens (`0` when
 * half-open); `cause` is the last failure counted.
 *
 * @example
 * ```ts
 * import { isBrokenCircuitError } from '@hartonomous/pipelines';
 * result$.subscribe({ error: (e) => isBrokenCircuitError(e) && console.warn(`retry in ${e.retryAfterMs} ms`) });
 * ```
 */
export class BrokenCircuitError extends PipelineError {
  readonly code = 'BROKEN_CIRCUIT' as const;
  /**
   * @param breaker - the breaker's name
   * @param state - the state that rejected the call
   * @param retryAfterMs - ms until the breaker half-opens
   * @param cause - the last failure counted
   */
  constructor(
    readonly breaker: string,
    readonly state: 'open' | 'half-open',
    readonly retryAfterMs: number,
    cause?: unknown,
  ) {
    super(
      `circuit breaker '${breaker}' is ${state}` +
        (cause === undefined ? '' : `; last failure: ${messageOf(cause)}`),
      cause === undefined ? undefined : { cause },
    );
  }
}

/**
 * Guard for {@link BrokenCircuitError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link BrokenCircuitError}
 * @example
 * ```ts
 * import { BrokenCircuitError, isBrokenCircuitError } from '@hartonomous/pipelines';
 * isBrokenCircuitError(new BrokenCircuitError('db', 'open', 1_000)); // true
 * ```
 */
export const isBrokenCircuitError: (e: unknown) => e is BrokenCircuitError =
  errorGuard<BrokenCircuitError>('BROKEN_CIRCUIT');

/**
 * A call was rejected because the breaker is held open by `isolate()`.
 *
 * @example
 * ```ts
 * import { isIsolatedCircuitError } from '@hartonomous/pipelines';
 * result$.subscribe({ error: (e) => isIsolatedCircuitError(e) && console.warn(`${e.breaker} isolated`) });
 * ```
 */
export class IsolatedCircuitError extends PipelineError {
  readonly code = 'ISOLATED_CIRCUIT' as const;
  /** @param breaker - the breaker's name */
  constructor(readonly breaker: string) {
    super(`circuit breaker '${breaker}' is isolated`);
  }
}

/**
 * Guard for {@link IsolatedCircuitError}.
 * @param e - any caught value
 * @returns whether `e` is an {@link IsolatedCircuitError}
 * @example
 * ```ts
 * import { IsolatedCircuitError, isIsolatedCircuitError } from '@hartonomous/pipelines';
 * isIsolatedCircuitError(new IsolatedCircuitError('db')); // true
 * ```
 */
export const isIsolatedCircuitError: (e: unknown) => e is IsolatedCircuitError =
  errorGuard<IsolatedCircuitError>('ISOLATED_CIRCUIT');

type Internal =
  | { state: 'closed' }
  | { state: 'open'; openedAt: number; until: number }
  | { state: 'half-open'; admitted: number; successes: number; failures: number }
  | { state: 'isolated' };

interface SampleWindow {
  /** Whether `success` and `failure` read their time argument. */
  readonly timed: boolean;
  success(now: number): void;
  /** Records a failure; returns whether the breaker should open. */
  failure(now: number): boolean;
  reset(): void;
  snapshot(now: number): BreakerWindowSnapshot;
  restore(s: BreakerWindowSnapshot): void;
}

/**
 * Creates a {@link CircuitBreaker} to share between every call to one dependency. A number
 * is the `failures` of the default consecutive-failures strategy.
 *
 * @param options - consecutive failures to open at, or {@link CircuitBreakerOptions}
 * @returns the breaker (pass it to {@link circuitBreaker})
 * @throws TypeError when an option or `initialState` is invalid
 *
 * @example
 * ```ts
 * import { circuitBreaker, createCircuitBreaker, fromWork, retry, timeout } from '@hartonomous/pipelines';
 *
 * const breaker = createCircuitBreaker({
 *   name: 'embeddings',
 *   strategy: { type: 'time', ratio: 0.5, windowMs: 30_000, minimumThroughput: 20 },
 *   breakDuration: { strategy: 'exponential', baseMs: 5_000, maxMs: 120_000 },
 * });
 * breaker.state$.subscribe((t) => console.log(t.from, '->', t.to));
 *
 * const embed = (text: string) =>
 *   fromWork((signal) => fetch('http://127.0.0.1:8080/embed', { method: 'POST', body: text, signal }))
 *     .pipe(timeout(1_000), retry(2), circuitBreaker(breaker));
 * ```
 * @see {@link circuitBreaker}
 */
export function createCircuitBreaker(options: number | CircuitBreakerOptions = {}): CircuitBreaker {
  const o: CircuitBreakerOptions =
    typeof options === 'number'
      ? { strategy: { type: 'consecutive', failures: options } }
      : options;
  if (typeof o !== 'object' || o === null) {
    throw new TypeError('createCircuitBreaker: options must be an object');
  }
  const name = o.name ?? 'circuit-breaker';
  const strategy: BreakerStrategy = o.strategy ?? { type: 'consecutive', failures: 5 };
  const halfOpenCalls = o.halfOpenCalls ?? 1;
  const halfOpenMaxFailureRatio = o.halfOpenMaxFailureRatio ?? 0;
  const fail = (msg: string): never => {
    throw new TypeError(`createCircuitBreaker: ${msg}`);
  };
  if (!(Number.isInteger(halfOpenCalls) && halfOpenCalls >= 1)) {
    fail(`halfOpenCalls must be an integer >= 1, got ${halfOpenCalls}`);
  }
  if (!(halfOpenMaxFailureRatio >= 0 && halfOpenMaxFailureRatio < 1)) {
    fail(`halfOpenMaxFailureRatio must be in [0, 1), got ${halfOpenMaxFailureRatio}`);
  }
  checkErrorFilter('createCircuitBreaker', o.handle);
  if (o.now !== undefined && typeof o.now !== 'function') fail('now must be a function');
  const clock = o.scheduler ?? asyncScheduler;
  const now = o.now ?? (() => clock.now());
  const window = sampleWindow(strategy, fail);
  const durationOf = breakDurationOf(o.breakDuration, fail);
  const { logger, scheduler } = o;
  const metrics = instruments(o);
  const subject = new Subject<CircuitBreakerTransition>();
  const state$ = subject.asObservable();

  let s: Internal = { state: 'closed' };
  let generation = 0;
  let opens = 0;
  let isolations = 0;
  let lastFailure: unknown;
  let halfOpenTimer: Subscription | undefined;

  const restore = (saved: CircuitBreakerSnapshot): void => {
    const bad = (): never => fail(`initialState is not a saved breaker state: ${safeJson(saved)}`);
    if (typeof saved !== 'object' || saved === null) bad();
    switch (saved.state) {
      case 'closed':
        if (saved.window !== undefined && saved.window.type === strategy.type) {
          window.restore(saved.window);
        }
        return;
      case 'open':
        if (!(Number.isFinite(saved.openedAt) && Number.isFinite(saved.until))) bad();
        if (!(Number.isInteger(saved.opens) && saved.opens >= 1)) bad();
        opens = durationOf.advance(saved.opens);
        s = { state: 'open', openedAt: saved.openedAt, until: saved.until };
        armHalfOpenTimer();
        return;
      case 'half-open':
        if (!(Number.isInteger(saved.opens) && saved.opens >= 0)) bad();
        opens = durationOf.advance(saved.opens);
        s = { state: 'half-open', admitted: 0, successes: 0, failures: 0 };
        return;
      case 'isolated':
        isolations = 1;
        s = { state: 'isolated' };
        return;
      default:
        bad();
    }
  };

  const armHalfOpenTimer = (): void => {
    halfOpenTimer?.unsubscribe();
    halfOpenTimer = undefined;
    if (!scheduler || s.state !== 'open') return;
    const gen = generation;
    halfOpenTimer = scheduler.schedule(
      () => {
        halfOpenTimer = undefined;
        if (gen === generation) refresh(now());
      },
      Math.max(0, s.until - now()),
    );
  };

  const transition = (next: Internal, at: number, error?: unknown): void => {
    const from = s.state;
    s = next;
    generation++;
    armHalfOpenTimer();
    const to = next.state;
    metrics.breakerTransitions.add(1, {
      'circuit_breaker.name': name,
      'circuit_breaker.from': from,
      'circuit_breaker.to': to,
    });
    metrics.breakerState.add(-1, { 'circuit_breaker.name': name, 'circuit_breaker.state': from });
    metrics.breakerState.add(1, { 'circuit_breaker.name': name, 'circuit_breaker.state': to });
    if (logger) {
      if (to === 'open' || to === 'isolated') {
        logEvent(logger, LogEvents.breakerOpened, () => ({
          name,
          from,
          isolated: to === 'isolated',
          ...(next.state === 'open' ? { opens, breakMs: next.until - next.openedAt } : {}),
          ...(error === undefined ? {} : { error: describeError(error) }),
        }));
      } else if (to === 'half-open') {
        logEvent(logger, LogEvents.breakerHalfOpened, { name, from });
      } else {
        logEvent(logger, LogEvents.breakerClosed, { name, from });
      }
    }
    subject.next(error === undefined ? { name, from, to, at } : { name, from, to, at, error });
  };

  const open = (at: number, error: unknown): void => {
    opens++;
    const ms = durationOf.next({ opens, error });
    transition({ state: 'open', openedAt: at, until: at + ms }, at, error);
  };

  const close = (at: number): void => {
    opens = 0;
    durationOf.restart();
    window.reset();
    transition({ state: 'closed' }, at);
  };

  /** Applies the lazy open -> half-open transition when the break is over. */
  const refresh = (at: number): void => {
    if (s.state === 'open' && at >= s.until) {
      transition({ state: 'half-open', admitted: 0, successes: 0, failures: 0 }, at);
    }
  };

  const settleTrial = (at: number): void => {
    if (s.state !== 'half-open') return;
    if (s.failures > halfOpenMaxFailureRatio * halfOpenCalls) {
      open(at, lastFailure);
    } else if (s.successes + s.failures >= halfOpenCalls) {
      close(at);
    }
  };

  // What a permit reports to. A permit is one small object (no closures), and a call in the
  // closed state reads the clock only when the strategy samples by time.
  const outcomes: PermitOutcomes = {
    succeed(trial, gen) {
      if (gen !== generation) return;
      if (trial) {
        if (s.state === 'half-open') {
          s.successes++;
          settleTrial(now());
        }
      } else if (s.state === 'closed') {
        window.success(window.timed ? now() : 0);
      }
    },
    fail(trial, gen, error) {
      if (!errorMatches(o.handle, error)) {
        outcomes.succeed(trial, gen);
        return;
      }
      if (gen !== generation) return;
      lastFailure = error;
      const at = now();
      if (trial && s.state === 'half-open') {
        s.failures++;
        settleTrial(at);
      } else if (!trial && s.state === 'closed' && window.failure(at)) {
        open(at, error);
      }
    },
    release(trial, gen) {
      if (gen === generation && trial && s.state === 'half-open') s.admitted--;
    },
  };

  if (o.initialState !== undefined) restore(o.initialState);
  metrics.breakerState.add(1, { 'circuit_breaker.name': name, 'circuit_breaker.state': s.state });

  return {
    name,
    state$,
    get state() {
      refresh(now());
      return s.state;
    },
    get lastFailure() {
      return lastFailure;
    },
    admit() {
      // closed: no clock read (only an open breaker's break depends on the time)
      if (s.state === 'closed') return new Permit(outcomes, false, generation);
      const at = now();
      refresh(at);
      const cur: Internal = s; // refresh only ever moves open to half-open
      switch (cur.state) {
        case 'isolated':
          throw new IsolatedCircuitError(name);
        case 'open':
          throw new BrokenCircuitError(name, 'open', Math.max(0, cur.until - at), lastFailure);
        default:
          if (cur.admitted >= halfOpenCalls) {
            throw new BrokenCircuitError(name, 'half-open', 0, lastFailure);
          }
          cur.admitted++;
          return new Permit(outcomes, true, generation);
      }
    },
    isolate() {
      isolations++;
      if (s.state !== 'isolated') transition({ state: 'isolated' }, now());
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          if (isolations === 0) return;
          isolations--;
          if (isolations === 0 && s.state === 'isolated') close(now());
        },
      };
    },
    reset() {
      isolations = 0;
      if (s.state === 'closed') {
        opens = 0;
        durationOf.restart();
        window.reset();
      } else {
        close(now());
      }
    },
    toJSON(): CircuitBreakerSnapshot {
      const at = now();
      refresh(at);
      switch (s.state) {
        case 'closed':
          return { state: 'closed', window: window.snapshot(at) };
        case 'open':
          return { state: 'open', openedAt: s.openedAt, until: s.until, opens };
        case 'half-open':
          return { state: 'half-open', opens };
        default:
          return { state: 'isolated' };
      }
    },
  };
}

/**
 * Applies a shared {@link CircuitBreaker} to each subscription of the source: while the
 * breaker is open (or isolated) the subscription errors at once with
 * {@link BrokenCircuitError} (or {@link IsolatedCircuitError}) and the source is not
 * subscribed, so no work starts; otherwise the source runs and its outcome is reported to
 * the breaker: the first value or completion is a success, an error is a failure if the
 * breaker `handle`s it (a success otherwise); unsubscribing before either reports nothing.
 * The failure is recorded before the error is passed on, so the next call already sees an
 * opened breaker.
 *
 * Put it outside `retry` so the breaker sees one outcome per logical call; see {@link policy}.
 *
 * @param breaker - the shared breaker from {@link createCircuitBreaker}
 * @returns an operator guarding its source with the breaker
 *
 * @example
 * ```ts
 * import { circuitBreaker, createCircuitBreaker, fromWork, isBrokenCircuitError } from '@hartonomous/pipelines';
 *
 * const breaker = createCircuitBreaker(5);
 * fromWork((signal) => fetch('http://127.0.0.1:8080/', { signal }))
 *   .pipe(circuitBreaker(breaker))
 *   .subscribe({ error: (e) => isBrokenCircuitError(e) && console.warn('service is down') });
 * ```
 * @see {@link createCircuitBreaker}
 */
export function circuitBreaker<T>(breaker: CircuitBreaker): MonoTypeOperatorFunction<T> {
  if (typeof breaker?.admit !== 'function') {
    throw new TypeError('circuitBreaker: pass a breaker made by createCircuitBreaker()');
  }
  return (source) =>
    new Observable<T>((subscriber) => {
      let permit: CircuitPermit;
      try {
        permit = breaker.admit();
      } catch (e) {
        subscriber.error(e);
        return;
      }
      const call = new BreakerCall(subscriber, permit);
      call.upstream = source.subscribe(call);
      return call;
    });
}

/**
 * One call through a breaker: reports its outcome on the permit, and is its own teardown
 * (an unsubscribed call releases its permit: a cancelled call is no outcome).
 */
class BreakerCall<T> {
  upstream: Subscription | undefined;

  constructor(
    private readonly downstream: Subscriber<T>,
    private readonly permit: CircuitPermit,
  ) {}

  next(value: T): void {
    this.permit.success();
    this.downstream.next(value);
  }

  error(e: unknown): void {
    try {
      this.permit.failure(e);
    } catch (bug) {
      // a throwing breakDuration function: fail loudly rather than hang the caller
      this.downstream.error(bug);
      return;
    }
    this.downstream.error(e);
  }

  complete(): void {
    this.permit.success();
    this.downstream.complete();
  }

  unsubscribe(): void {
    this.permit.release();
    this.upstream?.unsubscribe();
  }
}

/** Where a {@link Permit} reports (one per breaker). */
interface PermitOutcomes {
  succeed(trial: boolean, generation: number): void;
  fail(trial: boolean, generation: number, error: unknown): void;
  release(trial: boolean, generation: number): void;
}

/** One admitted call's permit: the first of success, failure or release counts. */
class Permit implements CircuitPermit {
  private settled = false;

  constructor(
    private readonly outcomes: PermitOutcomes,
    private readonly trial: boolean,
    private readonly generation: number,
  ) {}

  success(): void {
    if (this.settled) return;
    this.settled = true;
    this.outcomes.succeed(this.trial, this.generation);
  }

  failure(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.outcomes.fail(this.trial, this.generation, error);
  }

  release(): void {
    if (this.settled) return;
    this.settled = true;
    this.outcomes.release(this.trial, this.generation);
  }
}

function breakDurationOf(
  option: CircuitBreakerOptions['breakDuration'],
  fail: (msg: string) => never,
): {
  next(ctx: BreakDurationContext): number;
  restart(): void;
  advance(opens: number): number;
} {
  const checked = (ms: number): number => {
    if (!(Number.isFinite(ms) && ms >= 0)) {
      throw new TypeError(`createCircuitBreaker: breakDuration gave ${ms}, not a number >= 0`);
    }
    return ms;
  };
  if (option === undefined || typeof option === 'number') {
    const ms = option ?? 10_000;
    if (!(Number.isFinite(ms) && ms >= 0)) fail(`breakDuration must be >= 0, got ${ms}`);
    return { next: () => ms, restart: () => {}, advance: (n) => n };
  }
  if (typeof option === 'function') {
    return { next: (ctx) => checked(option(ctx)), restart: () => {}, advance: (n) => n };
  }
  if (typeof option !== 'object' || option === null) {
    return fail('breakDuration must be a number, backoff options or a function');
  }
  const backoffOptions: BackoffOptions = {
    strategy: 'exponential',
    baseMs: 10_000,
    maxMs: Math.max(300_000, option.baseMs ?? 0),
    ...option,
  };
  let delayAt: (n: number) => number;
  try {
    delayAt = backoffFunction(backoffOptions);
  } catch (e) {
    return fail(`breakDuration: ${messageOf(e)}`);
  }
  let index = 0;
  return {
    next: () => delayAt(index++),
    restart: () => {
      delayAt = backoffFunction(backoffOptions);
      index = 0;
    },
    advance: (n) => {
      for (let i = 0; i < n; i++) delayAt(index++);
      return n;
    },
  };
}

function sampleWindow(strategy: BreakerStrategy, fail: (msg: string) => never): SampleWindow {
  if (typeof strategy !== 'object' || strategy === null) return fail('strategy must be an object');
  const ratioOk = (r: unknown): boolean => typeof r === 'number' && r > 0 && r <= 1;
  switch (strategy.type) {
    case 'consecutive': {
      const threshold = strategy.failures;
      if (!(Number.isInteger(threshold) && threshold >= 1)) {
        fail(`strategy.failures must be an integer >= 1, got ${threshold}`);
      }
      let failures = 0;
      return {
        timed: false,
        success: () => {
          failures = 0;
        },
        failure: () => ++failures >= threshold,
        reset: () => {
          failures = 0;
        },
        snapshot: () => ({ type: 'consecutive', failures }),
        restore: (w) => {
          if (w.type === 'consecutive' && Number.isInteger(w.failures) && w.failures >= 0) {
            failures = Math.min(w.failures, threshold - 1);
          }
        },
      };
    }
    case 'count': {
      const { ratio, size } = strategy;
      const minimumCalls = strategy.minimumCalls ?? size;
      if (!ratioOk(ratio)) fail(`strategy.ratio must be in (0, 1], got ${ratio}`);
      if (!(Number.isInteger(size) && size >= 1)) {
        fail(`strategy.size must be an integer >= 1, got ${size}`);
      }
      if (!(Number.isInteger(minimumCalls) && minimumCalls >= 1 && minimumCalls <= size)) {
        fail(`strategy.minimumCalls must be an integer in [1, size], got ${minimumCalls}`);
      }
      let ring: boolean[] = [];
      let next = 0;
      let failures = 0;
      const push = (failed: boolean): void => {
        if (ring.length < size) ring.push(failed);
        else {
          if (ring[next]) failures--;
          ring[next] = failed;
        }
        next = (next + 1) % size;
        if (failed) failures++;
      };
      return {
        timed: false,
        success: () => push(false),
        failure: () => {
          push(true);
          return ring.length >= minimumCalls && failures / ring.length >= ratio;
        },
        reset: () => {
          ring = [];
          next = 0;
          failures = 0;
        },
        snapshot: () => ({
          type: 'count',
          outcomes: ring.length < size ? [...ring] : [...ring.slice(next), ...ring.slice(0, next)],
        }),
        restore: (w) => {
          if (w.type !== 'count' || !Array.isArray(w.outcomes)) return;
          for (const failed of w.outcomes.slice(-size)) push(failed === true);
        },
      };
    }
    case 'time': {
      const { ratio, windowMs } = strategy;
      const minimumThroughput = strategy.minimumThroughput ?? 10;
      const buckets = strategy.buckets ?? 10;
      if (!ratioOk(ratio)) fail(`strategy.ratio must be in (0, 1], got ${ratio}`);
      if (!(Number.isFinite(windowMs) && windowMs > 0)) {
        fail(`strategy.windowMs must be > 0, got ${windowMs}`);
      }
      if (!(Number.isInteger(minimumThroughput) && minimumThroughput >= 1)) {
        fail(`strategy.minimumThroughput must be an integer >= 1, got ${minimumThroughput}`);
      }
      if (!(Number.isInteger(buckets) && buckets >= 1)) {
        fail(`strategy.buckets must be an integer >= 1, got ${buckets}`);
      }
      const width = windowMs / buckets;
      let list: { start: number; calls: number; failures: number }[] = [];
      const record = (at: number, failed: boolean): void => {
        list = list.filter((b) => at - b.start < windowMs);
        let current = list[list.length - 1];
        if (!current || at >= current.start + width) {
          current = { start: at, calls: 0, failures: 0 };
          list.push(current);
        }
        current.calls++;
        if (failed) current.failures++;
      };
      return {
        timed: true,
        success: (at) => record(at, false),
        failure: (at) => {
          record(at, true);
          let calls = 0;
          let failures = 0;
          for (const b of list) {
            calls += b.calls;
            failures += b.failures;
          }
          return calls >= minimumThroughput && failures / calls >= ratio;
        },
        reset: () => {
          list = [];
        },
        snapshot: (at) => ({
          type: 'time',
          buckets: list.filter((b) => at - b.start < windowMs).map((b) => ({ ...b })),
        }),
        restore: (w) => {
          if (w.type !== 'time' || !Array.isArray(w.buckets)) return;
          list = w.buckets
            .filter(
              (b) =>
                Number.isFinite(b.start) &&
                Number.isInteger(b.calls) &&
                Number.isInteger(b.failures) &&
                b.failures >= 0 &&
                b.calls >= b.failures,
            )
            .map((b) => ({ start: b.start, calls: b.calls, failures: b.failures }));
        },
      };
    }
    default:
      return fail(`unknown strategy type '${String((strategy as { type?: unknown }).type)}'`);
  }
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
