import type { Attributes } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { type MonoTypeOperatorFunction, Observable, type Subscription } from 'rxjs';
import { errorGuard, PipelineError } from '../core/errors.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { instruments, type TelemetryOptions } from '../observability/telemetry.js';

/**
 * A bulkhead was full: `limit` calls were running and `queue` were waiting (for its key, if
 * keyed). The work was not started.
 *
 * @example
 * ```ts
 * import { isBulkheadRejectedError } from '@hartonomous/pipelines';
 * result$.subscribe({ error: (e) => isBulkheadRejectedError(e) && console.warn(`over ${e.limit} + ${e.queue}`) });
 * ```
 */
export class BulkheadRejectedError extends PipelineError {
  readonly code = 'BULKHEAD_REJECTED' as const;
  /**
   * @param bulkhead - the bulkhead's name
   * @param limit - its concurrency limit
   * @param queue - its queue capacity
   * @param key - the key whose lane was full, for a keyed bulkhead
   */
  constructor(
    readonly bulkhead: string,
    readonly limit: number,
    readonly queue: number,
    readonly key?: string,
  ) {
    super(
      `bulkhead '${bulkhead}'${key === undefined ? '' : ` (key '${key}')`} is full: ` +
        `${limit} running and ${queue} queued`,
    );
  }
}

/**
 * Guard for {@link BulkheadRejectedError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link BulkheadRejectedError}
 * @example
 * ```ts
 * import { BulkheadRejectedError, isBulkheadRejectedError } from '@hartonomous/pipelines';
 * isBulkheadRejectedError(new BulkheadRejectedError('db', 4, 0)); // true
 * ```
 */
export const isBulkheadRejectedError: (e: unknown) => e is BulkheadRejectedError =
  errorGuard<BulkheadRejectedError>('BULKHEAD_REJECTED');

/**
 * Typed event of a bulkhead, delivered to {@link BulkheadOptions.onEvent}.
 *
 * @example
 * ```ts
 * import type { BulkheadEvent } from '@hartonomous/pipelines';
 * const onEvent = (e: BulkheadEvent) => console.warn(`${e.name} rejected a call`, e.key);
 * ```
 */
export interface BulkheadEvent {
  /** Always `'rejected'`. */
  readonly type: 'rejected';
  /** The bulkhead's name. */
  readonly name: string;
  /** The key of the full lane, for a keyed bulkhead. */
  readonly key?: string;
}

/**
 * Options of {@link createBulkhead}.
 *
 * @example
 * ```ts
 * import type { BulkheadOptions } from '@hartonomous/pipelines';
 * const options: BulkheadOptions = { limit: 4, queue: 100, keyed: true, name: 'per-tenant' };
 * ```
 */
export interface BulkheadOptions extends TelemetryOptions {
  /** Calls allowed to run at once (per key, if keyed). */
  limit: number;
  /** Calls allowed to wait for a slot, first in first out (per key, if keyed); `Infinity` for no bound. @default 0 */
  queue?: number;
  /** One independent lane of `limit` + `queue` per key (the operator must then be given a key); idle keys are forgotten. @default false */
  keyed?: boolean;
  /** Name in errors, logs and the metric attribute `bulkhead.name`. @default 'bulkhead' */
  name?: string;
  /** Receives {@link BulkheadEvent}s; must not throw. @default none */
  onEvent?: (event: BulkheadEvent) => void;
  /** Logs `bulkhead.rejected` when given. @default no logging */
  logger?: Logger;
}

/**
 * A place in a bulkhead: running or waiting. Low level; the {@link bulkhead} operator uses it.
 *
 * @example
 * ```ts
 * import { createBulkhead } from '@hartonomous/pipelines';
 *
 * const slots = createBulkhead({ limit: 2, queue: 10 });
 * const ticket = slots.enter();
 * ticket.whenGranted(async () => {
 *   try {
 *     await fetch('http://127.0.0.1:8080/');
 *   } finally {
 *     ticket.release();
 *   }
 * });
 * ```
 */
export interface BulkheadTicket {
  /** Whether the slot is held now (`false` while waiting or after release). */
  readonly granted: boolean;
  /**
   * Runs `fn` once the slot is granted: at once if it already is, later in FIFO order
   * otherwise, never after `release()`. Call it once.
   * @param fn - what to run in the slot
   */
  whenGranted(fn: () => void): void;
  /** Frees the slot, or leaves the queue if still waiting. Idempotent. */
  release(): void;
}

/**
 * A shared concurrency limit with a bounded FIFO queue; create it with
 * {@link createBulkhead} and apply it with the {@link bulkhead} operator.
 *
 * @example
 * ```ts
 * import { createBulkhead } from '@hartonomous/pipelines';
 * const slots = createBulkhead({ limit: 8, queue: 32 });
 * console.log(slots.active, slots.queued);
 * ```
 */
export interface Bulkhead {
  /** The bulkhead's name. */
  readonly name: string;
  /** Concurrency limit (per key, if keyed). */
  readonly limit: number;
  /** Queue capacity (per key, if keyed). */
  readonly queue: number;
  /** Whether it keeps one lane per key. */
  readonly keyed: boolean;
  /** Calls running now, all keys together. */
  readonly active: number;
  /** Calls waiting now, all keys together. */
  readonly queued: number;
  /** Keys with running or waiting calls (idle keys are dropped). */
  readonly keys: number;
  /**
   * Calls running and waiting for one key (for an unkeyed bulkhead, omit the key).
   * @param key - the lane's key
   * @returns the lane's running and waiting counts
   */
  stats(key?: string): {
    /** Calls of the lane running now (`0` for an idle key). */
    active: number;
    /** Calls of the lane waiting for a slot now (`0` for an idle key). */
    queued: number;
  };
  /**
   * Takes a slot or a place in the queue, or throws {@link BulkheadRejectedError}.
   * Low level: the {@link bulkhead} operator calls this.
   * @param key - the lane, required exactly when the bulkhead is keyed
   * @returns a ticket to run in and release
   */
  enter(key?: string): BulkheadTicket;
}

interface Waiter {
  state: 'waiting' | 'active' | 'done';
  fn: (() => void) | undefined;
}

interface Lane {
  active: number;
  readonly waiting: Set<Waiter>;
  pumping: boolean;
}

/**
 * Creates a {@link Bulkhead}: at most `limit` calls run at once and up to `queue` wait for a
 * slot in FIFO order; further calls are rejected with {@link BulkheadRejectedError}. With
 * `keyed: true` each key (tenant, host, model) gets its own `limit` and `queue`, and a key's
 * lane is deleted as soon as it is idle. A number is the `limit` with no queue.
 *
 * Queue depth is tracked on `hartonomous.bulkhead.queued` and rejections are counted on
 * `hartonomous.bulkhead.rejections` (attribute `bulkhead.name`).
 *
 * @param options - the limit, or {@link BulkheadOptions}
 * @returns the bulkhead (pass it to {@link bulkhead})
 * @throws TypeError when an option is out of range
 *
 * @example
 * ```ts
 * import { bulkhead, createBulkhead, fromWork } from '@hartonomous/pipelines';
 *
 * const perHost = createBulkhead({ limit: 4, queue: 50, keyed: true });
 * const get = (host: string, path: string) =>
 *   fromWork((signal) => fetch(`http://${host}${path}`, { signal })).pipe(bulkhead(perHost, host));
 * ```
 * @see {@link bulkhead}
 */
export function createBulkhead(options: number | BulkheadOptions): Bulkhead {
  const o: BulkheadOptions = typeof options === 'number' ? { limit: options } : options;
  if (typeof o !== 'object' || o === null) {
    throw new TypeError('createBulkhead: options must be a number or an object');
  }
  const { limit, logger } = o;
  const queue = o.queue ?? 0;
  const keyed = o.keyed ?? false;
  const name = o.name ?? 'bulkhead';
  if (!(Number.isInteger(limit) && limit >= 1)) {
    throw new TypeError(`createBulkhead: limit must be an integer >= 1, got ${limit}`);
  }
  if (!(queue === Infinity || (Number.isInteger(queue) && queue >= 0))) {
    throw new TypeError(`createBulkhead: queue must be an integer >= 0 or Infinity, got ${queue}`);
  }
  const metrics = instruments(o);
  const attrs: Attributes = { 'bulkhead.name': name };
  const lanes = new Map<string, Lane>();
  let active = 0;
  let queued = 0;

  const laneKey = (key: string | undefined): string => {
    if (keyed) {
      if (typeof key !== 'string') {
        throw new TypeError(`bulkhead '${name}' is keyed: pass a string key`);
      }
      return key;
    }
    if (key !== undefined) {
      throw new TypeError(
        `bulkhead '${name}' is not keyed: create it with keyed: true to use keys`,
      );
    }
    return '';
  };
  const dropIfIdle = (key: string, lane: Lane): void => {
    if (lane.active === 0 && lane.waiting.size === 0 && !lane.pumping) lanes.delete(key);
  };
  const pump = (key: string, lane: Lane): void => {
    if (lane.pumping) return;
    lane.pumping = true;
    try {
      while (lane.active < limit && lane.waiting.size > 0) {
        const waiter = lane.waiting.values().next().value as Waiter;
        lane.waiting.delete(waiter);
        queued--;
        metrics.bulkheadQueueDepth.add(-1, attrs);
        waiter.state = 'active';
        lane.active++;
        active++;
        waiter.fn?.();
      }
    } finally {
      lane.pumping = false;
    }
    dropIfIdle(key, lane);
  };

  return {
    name,
    limit,
    queue,
    keyed,
    get active() {
      return active;
    },
    get queued() {
      return queued;
    },
    get keys() {
      return lanes.size;
    },
    stats(key) {
      const lane = lanes.get(laneKey(key));
      return { active: lane?.active ?? 0, queued: lane?.waiting.size ?? 0 };
    },
    enter(key) {
      const k = laneKey(key);
      let lane = lanes.get(k);
      if (!lane) {
        lane = { active: 0, waiting: new Set(), pumping: false };
        lanes.set(k, lane);
      }
      const waiter: Waiter = { state: 'waiting', fn: undefined };
      if (lane.active < limit && lane.waiting.size === 0) {
        waiter.state = 'active';
        lane.active++;
        active++;
      } else if (lane.waiting.size < queue) {
        lane.waiting.add(waiter);
        queued++;
        metrics.bulkheadQueueDepth.add(1, attrs);
      } else {
        dropIfIdle(k, lane);
        metrics.bulkheadRejections.add(1, attrs);
        if (logger) {
          logEvent(logger, LogEvents.bulkheadRejected, {
            name,
            limit,
            queue,
            key: keyed ? k : undefined,
          });
        }
        o.onEvent?.(keyed ? { type: 'rejected', name, key: k } : { type: 'rejected', name });
        throw new BulkheadRejectedError(name, limit, queue, keyed ? k : undefined);
      }
      const owner = lane;
      return {
        get granted() {
          return waiter.state === 'active';
        },
        whenGranted(fn) {
          if (waiter.state === 'done') return;
          waiter.fn = fn;
          if (waiter.state === 'active') fn();
        },
        release() {
          if (waiter.state === 'done') return;
          const was = waiter.state;
          waiter.state = 'done';
          waiter.fn = undefined;
          if (was === 'waiting') {
            owner.waiting.delete(waiter);
            queued--;
            metrics.bulkheadQueueDepth.add(-1, attrs);
            dropIfIdle(k, owner);
          } else {
            owner.active--;
            active--;
            pump(k, owner);
          }
        },
      };
    },
  };
}

/**
 * Runs each subscription of the source inside a slot of a shared {@link Bulkhead}: the
 * source is subscribed when a slot is free (at once, or later in FIFO order), the slot is
 * freed when it completes, errors or is unsubscribed, and a subscription that finds the
 * bulkhead full errors with {@link BulkheadRejectedError} without subscribing the source.
 * Unsubscribing while waiting leaves the queue. So with `fromWork`, at most `limit` units of
 * work run at once.
 *
 * @param slots - the shared bulkhead from {@link createBulkhead}
 * @param keyOf - for a keyed bulkhead: the key, or a function evaluated at each subscription
 * @returns an operator that limits concurrent subscriptions of its source
 * @throws TypeError when a key is given to an unkeyed bulkhead or missing for a keyed one
 *
 * @example
 * ```ts
 * import { bulkhead, createBulkhead, fromWork } from '@hartonomous/pipelines';
 * import { from, mergeMap } from 'rxjs';
 *
 * const slots = createBulkhead({ limit: 4, queue: 100 });
 * const pages$ = from([1, 2, 3, 4, 5, 6, 7, 8]).pipe(
 *   mergeMap((n) => fromWork((signal) => fetch(`http://127.0.0.1:8080/page/${n}`, { signal })).pipe(bulkhead(slots))),
 * );
 * ```
 * @see {@link createBulkhead}
 * @see {@link policy} for the order of combined policies
 */
export function bulkhead<T>(
  slots: Bulkhead,
  keyOf?: string | (() => string),
): MonoTypeOperatorFunction<T> {
  if (typeof slots?.enter !== 'function') {
    throw new TypeError('bulkhead: pass a bulkhead made by createBulkhead()');
  }
  if (slots.keyed && keyOf === undefined) {
    throw new TypeError(`bulkhead: '${slots.name}' is keyed; pass keyOf`);
  }
  if (!slots.keyed && keyOf !== undefined) {
    throw new TypeError(`bulkhead: '${slots.name}' is not keyed; create it with keyed: true`);
  }
  return (source) =>
    new Observable<T>((subscriber) => {
      let ticket: BulkheadTicket;
      try {
        ticket = slots.enter(typeof keyOf === 'function' ? keyOf() : keyOf);
      } catch (e) {
        subscriber.error(e);
        return;
      }
      let inner: Subscription | undefined;
      ticket.whenGranted(() => {
        inner = source.subscribe({
          next: (value) => subscriber.next(value),
          error: (e: unknown) => subscriber.error(e),
          complete: () => subscriber.complete(),
        });
      });
      // Runs on completion, error and unsubscribe alike: the work is finalized before its slot
      // goes to the next caller, so the limit is never exceeded, even for a moment.
      return () => {
        inner?.unsubscribe();
        ticket.release();
      };
    });
}
