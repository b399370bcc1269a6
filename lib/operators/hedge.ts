import type { Attributes } from '@opentelemetry/api';
import type { Logger } from 'pino';
import {
  asyncScheduler,
  identity,
  type MonoTypeOperatorFunction,
  Observable,
  type SchedulerLike,
  type Subscription,
} from 'rxjs';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { instruments, type TelemetryOptions } from '../observability/telemetry.js';
import { checkErrorFilter, type ErrorFilter, errorMatches } from './policy.js';

/**
 * Typed event of {@link hedge}, delivered to {@link HedgeOptions.onEvent} when an extra
 * attempt starts.
 *
 * @example
 * ```ts
 * import type { HedgeEvent } from '@hartonomous/pipelines';
 * const onEvent = (e: HedgeEvent) => console.log(`hedge ${e.hedge} started (${e.reason})`);
 * ```
 */
export interface HedgeEvent {
  /** Always `'hedge'`. */
  readonly type: 'hedge';
  /** The policy's name. */
  readonly name: string;
  /** 1-based number of the extra attempt. */
  readonly hedge: number;
  /** `'delay'`: the earlier attempts were slow; `'failure'`: every earlier attempt failed. */
  readonly reason: 'delay' | 'failure';
}

/**
 * Options of {@link hedge}.
 *
 * @example
 * ```ts
 * import type { HedgeOptions } from '@hartonomous/pipelines';
 * const options: HedgeOptions = { delayMs: 50, maxHedges: 2 };
 * ```
 */
export interface HedgeOptions extends TelemetryOptions {
  /**
   * How long to wait for a result before starting the next attempt, in ms: a number, or a
   * function of the 1-based number of the hedge about to be scheduled. `0` starts all
   * attempts together (a race).
   */
  delayMs: number | ((hedge: number) => number);
  /** Extra attempts at most; `0` makes `hedge` a no-op. @default 1 */
  maxHedges?: number;
  /**
   * Which errors mean "this attempt failed, wait for (or start) another"; any other error
   * ends the call at once, cancelling the other attempts. @default every error
   */
  handle?: ErrorFilter;
  /** Scheduler of the hedge delays; pass a `TestScheduler` for virtual time. @default asyncScheduler */
  scheduler?: SchedulerLike;
  /** Name in events, logs and the metric attribute `hedge.name`. @default 'hedge' */
  name?: string;
  /** Receives a {@link HedgeEvent} per extra attempt; must not throw. @default none */
  onEvent?: (event: HedgeEvent) => void;
  /** Logs `hedge.started` when given. @default no logging */
  logger?: Logger;
}

/**
 * Hedged requests for a cold (per-attempt) source such as `fromWork(...)`: subscribes once
 * and, if no value has arrived after `delayMs`, subscribes again, up to `maxHedges` extra
 * attempts, each `delayMs` after the previous one. The first attempt to emit (or complete)
 * wins: the others are unsubscribed, so their AbortSignals abort, and the winner's values
 * and completion are passed on. When an attempt fails while others are pending, it waits
 * for them; when it fails and none is pending, the next hedge starts at once. It errors only
 * when every attempt has failed, with the last error. Use it only for idempotent work: up to
 * `1 + maxHedges` copies may run.
 *
 * Each extra attempt is counted on `hartonomous.hedge.attempts` (attribute `hedge.name`). A number is
 * `delayMs`.
 *
 * @param options - the delay in ms, or {@link HedgeOptions}
 * @returns an operator hedging its source
 * @throws TypeError when an option is out of range
 *
 * @example
 * ```ts
 * import { fromWork, hedge, timeout } from '@hartonomous/pipelines';
 *
 * // p99 latency is 10x the median: ask a second replica if the first is slow
 * const doc$ = fromWork((signal) => fetch('http://127.0.0.1:8080/doc/7', { signal }).then((r) => r.json()))
 *   .pipe(timeout(2_000), hedge({ delayMs: 100, maxHedges: 2 }));
 * ```
 * @see {@link policy} for the order of combined policies
 */
export function hedge<T>(options: number | HedgeOptions): MonoTypeOperatorFunction<T> {
  const o: HedgeOptions = typeof options === 'number' ? { delayMs: options } : options;
  if (typeof o !== 'object' || o === null) throw new TypeError('hedge: options must be an object');
  const maxHedges = o.maxHedges ?? 1;
  const { delayMs, logger } = o;
  if (!(Number.isInteger(maxHedges) && maxHedges >= 0)) {
    throw new TypeError(`hedge: maxHedges must be an integer >= 0, got ${maxHedges}`);
  }
  if (typeof delayMs !== 'function' && !(Number.isFinite(delayMs) && delayMs >= 0)) {
    throw new TypeError(
      `hedge: delayMs must be a finite number >= 0 or a function, got ${delayMs}`,
    );
  }
  checkErrorFilter('hedge', o.handle);
  if (maxHedges === 0) return identity;
  const name = o.name ?? 'hedge';
  const scheduler = o.scheduler ?? asyncScheduler;
  const attrs: Attributes = { 'hedge.name': name };
  const delayOf = (hedgeNumber: number): number => {
    const d = typeof delayMs === 'function' ? delayMs(hedgeNumber) : delayMs;
    if (!(Number.isFinite(d) && d >= 0)) {
      throw new TypeError(`hedge: delayMs gave ${d} for hedge ${hedgeNumber}, not a number >= 0`);
    }
    return d;
  };
  const total = 1 + maxHedges;

  return (source) =>
    new Observable<T>((subscriber) => {
      /** Attempts started and not finished, by index. */
      const pending = new Map<number, Subscription>();
      let launched = 0;
      let winner = -1;
      let timer: Subscription | undefined;

      const cancelTimer = (): void => {
        timer?.unsubscribe();
        timer = undefined;
      };
      const win = (i: number): void => {
        winner = i;
        cancelTimer();
        for (const [j, sub] of pending) {
          if (j === i) continue;
          pending.delete(j);
          sub.unsubscribe();
        }
      };
      const arm = (): void => {
        cancelTimer();
        if (launched >= total) return;
        let d: number;
        try {
          d = delayOf(launched);
        } catch (e) {
          subscriber.error(e);
          return;
        }
        timer = scheduler.schedule(() => {
          timer = undefined;
          launch('delay');
        }, d);
      };
      const launch = (reason: 'delay' | 'failure'): void => {
        const i = launched++;
        if (i > 0) {
          instruments(o).hedgeAttempts.add(1, attrs);
          if (logger) logEvent(logger, LogEvents.hedgeStarted, { name, hedge: i, reason });
          o.onEvent?.({ type: 'hedge', name, hedge: i, reason });
        }
        let finished = false;
        const sub = source.subscribe({
          next: (value) => {
            if (winner === -1) win(i);
            if (winner === i) subscriber.next(value);
          },
          error: (e: unknown) => {
            finished = true;
            pending.delete(i);
            if (winner === i) {
              subscriber.error(e);
            } else if (winner !== -1) {
              // A loser finishing after the winner was chosen: ignore.
            } else if (!errorMatches(o.handle, e)) {
              win(i);
              subscriber.error(e);
            } else if (pending.size === 0) {
              if (launched < total) {
                cancelTimer();
                launch('failure');
              } else {
                subscriber.error(e);
              }
            }
          },
          complete: () => {
            finished = true;
            pending.delete(i);
            if (winner === -1) win(i);
            if (winner === i) subscriber.complete();
          },
        });
        if (!finished && (winner === -1 || winner === i)) pending.set(i, sub);
        // Arm the next hedge only from the latest launch still undecided.
        if (winner === -1 && i === launched - 1 && !subscriber.closed) arm();
      };

      launch('delay');
      return () => {
        cancelTimer();
        for (const sub of pending.values()) sub.unsubscribe();
        pending.clear();
      };
    });
}
