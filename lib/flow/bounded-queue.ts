/**
 * A bounded, asynchronous, multi-producer multi-consumer queue: the library's Channel.
 *
 * Modelled on .NET `System.Threading.Channels.BoundedChannel`: writers wait (or drop, or fail)
 * while the queue is full; readers wait while it is empty; `complete()` lets readers drain what
 * is left and then end (or throw the completion error).
 *
 * @module
 */

import type { Logger } from 'pino';
import { Observable } from 'rxjs';
import { BufferOverflowError, errorGuard, PipelineError } from '../core/errors.js';
import { Fifo } from '../core/fifo.js';
import type { OverflowPolicy } from '../core/source.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { silentLogger } from '../observability/logger.js';
import { instruments, type TelemetryOptions } from '../observability/telemetry.js';

/**
 * Options of {@link boundedQueue}.
 *
 * @example
 * ```ts
 * import { boundedQueue, type BoundedQueueOptions } from '@hartonomous/pipelines';
 *
 * const options: BoundedQueueOptions<string> = { capacity: 100, overflow: 'dropOldest', name: 'events' };
 * const queue = boundedQueue(options);
 * ```
 */
export interface BoundedQueueOptions<T> extends TelemetryOptions {
  /** Most items the queue holds; a positive integer. */
  capacity: number;
  /**
   * What `write` does when the queue is full:
   * - `'wait'`: the writer waits for room (writers are served first come, first served).
   * - `'dropOldest'`: the oldest queued item is removed to make room; the write succeeds.
   * - `'dropNewest'`: the item being written is dropped (the queue keeps what it holds); the
   *   write succeeds. This is .NET's `DropWrite`; .NET's own `DropNewest` (evict the last
   *   queued item in favour of the incoming one) is not offered.
   * - `'error'`: the write rejects with a {@link BufferOverflowError}.
   *
   * Every dropped item is reported to `onDrop` and counted in `rx.queue.dropped`.
   * @default 'wait'
   */
  overflow?: OverflowPolicy;
  /**
   * Called with each item dropped by a drop mode, synchronously inside the `write`/`tryWrite`
   * that caused the drop. If it throws, that `write` rejects (`tryWrite` throws) with its
   * error; the drop has already happened.
   * @default undefined
   */
  onDrop?: (item: T) => void;
  /** Name used in metric attributes (`queue.name`), logs and errors. @default 'queue' */
  name?: string;
  /** Logger for the `queue.full`, `queue.dropped` and `queue.completed` events. @default a silent logger */
  logger?: Logger;
}

/**
 * The answer of {@link BoundedQueue.tryRead}: an item, or nothing available right now.
 */
export type TryReadResult<T> =
  | {
      /** An item was taken. */
      readonly ok: true;
      /** The item. */
      readonly value: T;
    }
  | {
      /** Nothing was held. */
      readonly ok: false;
    };

/**
 * A point-in-time description of a queue, for logs and diagnostics.
 */
export interface BoundedQueueSnapshot {
  /** The queue's name. */
  readonly name: string;
  /** Its capacity. */
  readonly capacity: number;
  /** What a write does when full. */
  readonly overflow: OverflowPolicy;
  /** Items held. */
  readonly size: number;
  /** Writers waiting for room. */
  readonly waitingWriters: number;
  /** Readers waiting for an item. */
  readonly waitingReaders: number;
  /** Whether `complete()` was called. */
  readonly completed: boolean;
}

/**
 * A bounded asynchronous queue (a Channel) made by {@link boundedQueue}.
 *
 * Many producers and many consumers may use one queue. Consumers compete: every item goes to
 * exactly one reader (one `read`, one iterator, or one `toObservable()` subscriber), readers
 * waiting in `read` being served in the order they started waiting.
 */
export interface BoundedQueue<T> extends AsyncIterable<T> {
  /** The queue's name (metric attribute `queue.name`). */
  readonly name: string;
  /** Most items held at once. */
  readonly capacity: number;
  /** What a write does when full. */
  readonly overflow: OverflowPolicy;
  /** Items held now (never more than `capacity`). */
  readonly size: number;
  /** Whether `complete()` was called (items may still be left to read). */
  readonly completed: boolean;
  /**
   * Settles once the queue is completed and every item has been read: resolves after
   * `complete()`, rejects with the error given to `complete(error)`.
   */
  readonly completion: Promise<void>;

  /**
   * Writes an item. Resolves when the item is accepted: at once when there is room or a
   * reader waiting; in `'wait'` mode after room frees up (waiting writers are served in
   * order); at once in drop modes (see {@link OverflowPolicy}). Rejects with
   * {@link BufferOverflowError} when full in `'error'` mode, with {@link QueueClosedError}
   * after `complete()` (also for writers still waiting when it is called), and with
   * `signal.reason` if `signal` aborts first (the waiting writer is removed and its item is
   * never enqueued).
   * @param item - the item
   * @param signal - cancels a waiting write
   * @returns a promise settled as described
   */
  write(item: T, signal?: AbortSignal): Promise<void>;

  /**
   * Writes an item without waiting.
   * @param item - the item
   * @returns `true` if the item was accepted or dropped by a drop mode; `false` when the queue
   * is full in `'wait'` or `'error'` mode, or completed
   */
  tryWrite(item: T): boolean;

  /**
   * Reads the next item, waiting while the queue is empty. Resolves `{ done: true }` once the
   * queue is completed and drained; rejects with the completion error if `complete(error)` was
   * called; rejects with `signal.reason` if `signal` aborts first (no item is taken).
   * @param signal - cancels a waiting read
   * @returns the next item as an iterator result
   */
  read(signal?: AbortSignal): Promise<IteratorResult<T, undefined>>;

  /**
   * Takes the next item if one is held, without waiting.
   * @returns `{ ok: true, value }` or `{ ok: false }`
   */
  tryRead(): TryReadResult<T>;

  /**
   * Waits until an item is available or the queue is finished, without taking anything.
   * Another reader may take the item first: follow with `tryRead()` in a loop.
   * @param signal - cancels the wait (rejects with `signal.reason`)
   * @returns `true` when an item is held, `false` when the queue is completed and drained;
   * rejects with the completion error after `complete(error)`
   */
  waitToRead(signal?: AbortSignal): Promise<boolean>;

  /**
   * Marks the queue complete: no more writes (they reject with {@link QueueClosedError});
   * writers still waiting are rejected likewise; readers drain what is held, then end, or
   * throw `error` if one is given. Idempotent.
   * @param error - the error readers get after draining (`undefined` completes normally)
   * @returns `true` if this call completed the queue, `false` if it was already complete
   */
  complete(error?: unknown): boolean;

  /**
   * A cold Observable view: each subscriber is one more competing reader.
   *
   * RxJS has no downstream demand, so the view uses the only readiness signal it has: it takes
   * an item out of the queue immediately before emitting it, and takes the next only after
   * the previous `subscriber.next()` returned. Items already held are emitted synchronously
   * one after the other; when the queue is empty the view waits (`waitToRead`) without taking
   * anything. There is no prefetch: an item is never held by the view, so unsubscribing never
   * loses one. Backpressure therefore reaches the writers only through synchronous
   * downstream work; an asynchronous downstream (e.g. `mergeMap`) buffers in its own memory.
   * Completes when the queue is completed and drained; errors with the completion error.
   * @returns an Observable of the queue's items
   */
  toObservable(): Observable<T>;

  /**
   * An async iterator that reads with `read()`. Several iterators compete for items.
   * Breaking out of `for await` (calling `return()`) stops only that iterator; the queue
   * stays open.
   * @returns an async iterator over the queue's items
   */
  [Symbol.asyncIterator](): AsyncIterator<T, undefined>;

  /**
   * A snapshot of the queue's state.
   * @returns name, capacity, size, waiters and completion
   */
  toJSON(): BoundedQueueSnapshot;
}

/**
 * A write was made to a completed {@link BoundedQueue}, or a writer was still waiting when the
 * queue was completed.
 *
 * @example
 * ```ts
 * import { boundedQueue, isQueueClosedError } from '@hartonomous/pipelines';
 *
 * const queue = boundedQueue<number>(4);
 * queue.complete();
 * await queue.write(1).catch((e: unknown) => isQueueClosedError(e)); // true
 * ```
 */
export class QueueClosedError extends PipelineError {
  readonly code = 'QUEUE_CLOSED' as const;
  /**
   * @param queue - name of the queue
   * @param cause - the error the queue was completed with, if any
   */
  constructor(
    readonly queue: string,
    cause?: unknown,
  ) {
    super(
      `queue '${queue}' is completed and accepts no more items`,
      cause === undefined ? undefined : { cause },
    );
  }
}

/**
 * Guard for {@link QueueClosedError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link QueueClosedError}
 * @example
 * ```ts
 * import { isQueueClosedError, QueueClosedError } from '@hartonomous/pipelines';
 * isQueueClosedError(new QueueClosedError('jobs')); // true
 * ```
 */
export const isQueueClosedError: (e: unknown) => e is QueueClosedError =
  errorGuard<QueueClosedError>('QUEUE_CLOSED');

interface Waiter<V, I> {
  readonly item: I;
  resolve(value: V): void;
  reject(error: unknown): void;
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });
const NOTHING: TryReadResult<never> = Object.freeze({ ok: false });
const RESOLVED: Promise<void> = Promise.resolve();
const OVERFLOW_POLICIES: readonly OverflowPolicy[] = ['wait', 'dropOldest', 'dropNewest', 'error'];

/**
 * Creates a bounded asynchronous queue (a Channel) with `capacity` slots.
 *
 * Producers `await queue.write(item)` (which waits while full in the default `'wait'` mode) and
 * finish with `queue.complete()`; consumers `for await` over the queue, call `read()`, or
 * subscribe to `toObservable()`. Consumers compete: each item is delivered to exactly one of
 * them. Writes are accepted in order and items are read in the order they were accepted.
 *
 * Metrics: `hartonomous.queue.size` (UpDownCounter, +1 per enqueued item, -1 per dequeued item; an item
 * handed straight to a waiting reader never counts) and `hartonomous.queue.dropped` (Counter), both
 * with the attribute `queue.name`.
 *
 * @param options - the capacity, or {@link BoundedQueueOptions}
 * @returns a new, empty {@link BoundedQueue}
 * @throws TypeError when the options are invalid
 *
 * @example
 * ```ts
 * import { boundedQueue } from '@hartonomous/pipelines';
 *
 * const queue = boundedQueue<number>({ capacity: 64, name: 'ids' });
 *
 * const producer = (async () => {
 *   for (let i = 0; i < 1_000; i++) await queue.write(i); // waits while 64 items are held
 *   queue.complete();
 * })();
 *
 * let sum = 0;
 * for await (const id of queue) sum += id;
 * await producer;
 * ```
 * @see {@link OverflowPolicy}
 */
export function boundedQueue<T>(options: number | BoundedQueueOptions<T>): BoundedQueue<T> {
  const opts = normalize(options);
  const { capacity, overflow, onDrop, name } = opts;
  const logger = opts.logger ?? silentLogger();
  const { queueSize, queueDropped } = instruments(opts);
  const attrs = { 'queue.name': name };

  const items = new Fifo<T>();
  const writers = new Fifo<Waiter<void, T>>();
  const readers = new Fifo<Waiter<IteratorResult<T, undefined>, undefined>>();
  const watchers = new Fifo<Waiter<boolean, undefined>>();

  let closed = false;
  let failed = false;
  let failure: unknown;
  let finished = false;
  let settleCompletion!: (error?: { error: unknown }) => void;
  const completion = new Promise<void>((resolve, reject) => {
    settleCompletion = (e) => (e ? reject(e.error) : resolve());
  });
  completion.catch(() => {}); // a completion error nobody awaits is not an unhandled rejection

  const finishIfDrained = (): void => {
    if (!closed || finished || items.size > 0) return;
    finished = true;
    settleCompletion(failed ? { error: failure } : undefined);
  };

  /** Takes the head item; moves the first waiting writer's item in. */
  const take = (): T => {
    const item = items.shift() as T;
    queueSize.add(-1, attrs);
    if (writers.size > 0) {
      const writer = writers.shift()!;
      items.push(writer.item);
      queueSize.add(1, attrs);
      writer.resolve();
    } else if (closed && items.size === 0) {
      finishIfDrained();
    }
    return item;
  };

  /** Accepts an item if a reader waits or there is room. */
  const offer = (item: T): boolean => {
    if (readers.size > 0) {
      readers.shift()!.resolve({ done: false, value: item });
      return true;
    }
    if (items.size >= capacity) return false;
    items.push(item);
    queueSize.add(1, attrs);
    while (watchers.size > 0) watchers.shift()!.resolve(true);
    return true;
  };

  const reportDrop = (item: T): void => {
    queueDropped.add(1, attrs);
    logEvent(logger, LogEvents.queueDropped, { queue: name, overflow });
    onDrop?.(item);
  };

  /** Applies a drop mode to a write into a full queue. */
  const drop = (item: T): void => {
    if (overflow === 'dropOldest') {
      const oldest = items.shift() as T;
      items.push(item);
      reportDrop(oldest);
    } else {
      reportDrop(item);
    }
  };

  const readEnd = (): Promise<IteratorResult<T, undefined>> =>
    failed ? Promise.reject(failure) : Promise.resolve(DONE);

  const queue: BoundedQueue<T> = {
    name,
    capacity,
    overflow,
    get size() {
      return items.size;
    },
    get completed() {
      return closed;
    },
    completion,

    write(item, signal) {
      if (signal?.aborted) return Promise.reject(signal.reason);
      if (closed) return Promise.reject(new QueueClosedError(name, failure));
      if (offer(item)) return RESOLVED;
      switch (overflow) {
        case 'wait':
          logEvent(logger, LogEvents.queueFull, () => ({ queue: name, capacity }));
          return park(writers, item, signal);
        case 'error':
          return Promise.reject(new BufferOverflowError(capacity, `queue '${name}'`));
        default:
          try {
            drop(item);
          } catch (e) {
            return Promise.reject(e);
          }
          return RESOLVED;
      }
    },

    tryWrite(item) {
      if (closed) return false;
      if (offer(item)) return true;
      if (overflow === 'wait' || overflow === 'error') return false;
      drop(item);
      return true;
    },

    read(signal) {
      if (signal?.aborted) return Promise.reject(signal.reason);
      if (items.size > 0) return Promise.resolve({ done: false, value: take() });
      if (closed) return readEnd();
      return park(readers, undefined, signal);
    },

    tryRead() {
      return items.size > 0 ? { ok: true, value: take() } : NOTHING;
    },

    waitToRead(signal) {
      if (signal?.aborted) return Promise.reject(signal.reason);
      if (items.size > 0) return Promise.resolve(true);
      if (closed) return failed ? Promise.reject(failure) : Promise.resolve(false);
      return park(watchers, undefined, signal);
    },

    complete(error) {
      if (closed) return false;
      closed = true;
      failed = error !== undefined;
      failure = error;
      logEvent(logger, LogEvents.queueCompleted, () => ({
        queue: name,
        remaining: items.size,
        failed,
      }));
      while (writers.size > 0) writers.shift()!.reject(new QueueClosedError(name, failure));
      while (readers.size > 0) {
        const reader = readers.shift()!;
        if (failed) reader.reject(failure);
        else reader.resolve(DONE);
      }
      while (watchers.size > 0) {
        const watcher = watchers.shift()!;
        if (failed) watcher.reject(failure);
        else watcher.resolve(false);
      }
      finishIfDrained();
      return true;
    },

    toObservable() {
      return new Observable<T>((subscriber) => {
        // The wait is cancelled by taking the watcher out of the list (cheaper than an
        // AbortSignal listener per wait); a removed watcher's promise just never settles.
        let watcher: Waiter<boolean, undefined> | undefined;
        const pump = async (): Promise<void> => {
          for (;;) {
            while (items.size > 0) {
              subscriber.next(take());
              if (subscriber.closed) return;
            }
            if (closed) {
              if (failed) subscriber.error(failure);
              else subscriber.complete();
              return;
            }
            const ready = new Promise<boolean>((resolve, reject) => {
              watcher = { item: undefined, resolve, reject };
              watchers.push(watcher);
            });
            await ready.catch(() => false); // rejected only by complete(error): handled above
            watcher = undefined;
            if (subscriber.closed) return;
          }
        };
        pump().catch((e: unknown) => subscriber.error(e));
        return () => {
          if (watcher !== undefined) watchers.delete(watcher);
          watcher = undefined;
        };
      });
    },

    [Symbol.asyncIterator]() {
      let done = false;
      let pending: Waiter<IteratorResult<T, undefined>, undefined> | undefined;
      const end = (result: IteratorResult<T, undefined>): IteratorResult<T, undefined> => {
        pending = undefined;
        if (result.done) done = true;
        return result;
      };
      const iterator: AsyncIterator<T, undefined> = {
        next() {
          if (done) return Promise.resolve(DONE);
          if (items.size > 0) return Promise.resolve({ done: false, value: take() });
          if (closed) {
            done = true;
            return readEnd();
          }
          return new Promise<IteratorResult<T, undefined>>((resolve, reject) => {
            pending = { item: undefined, resolve, reject };
            readers.push(pending);
          }).then(end, (e: unknown) => {
            end(DONE);
            throw e;
          });
        },
        return() {
          done = true;
          if (pending !== undefined && readers.delete(pending)) pending.resolve(DONE);
          pending = undefined;
          return Promise.resolve(DONE);
        },
      };
      return iterator;
    },

    toJSON() {
      return {
        name,
        capacity,
        overflow,
        size: items.size,
        waitingWriters: writers.size,
        waitingReaders: readers.size + watchers.size,
        completed: closed,
      };
    },
  };
  return queue;
}

/**
 * Parks a waiter at the tail of `list` until it is resolved or rejected by the queue, or until
 * `signal` aborts (then it leaves the list and rejects with `signal.reason`). The abort
 * listener is removed whichever happens first.
 */
function park<V, I>(list: Fifo<Waiter<V, I>>, item: I, signal?: AbortSignal): Promise<V> {
  return new Promise<V>((resolve, reject) => {
    if (!signal) {
      list.push({ item, resolve, reject });
      return;
    }
    const onAbort = (): void => {
      if (list.delete(waiter)) reject(signal.reason);
    };
    const waiter: Waiter<V, I> = {
      item,
      resolve(value) {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      reject(error) {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    };
    signal.addEventListener('abort', onAbort, { once: true });
    list.push(waiter);
  });
}

interface Normalized<T> extends BoundedQueueOptions<T> {
  overflow: OverflowPolicy;
  name: string;
}

function normalize<T>(options: number | BoundedQueueOptions<T>): Normalized<T> {
  if (typeof options !== 'number' && (typeof options !== 'object' || options === null)) {
    throw new TypeError('boundedQueue: options must be a capacity or an options object');
  }
  const o: BoundedQueueOptions<T> = typeof options === 'number' ? { capacity: options } : options;
  if (!Number.isSafeInteger(o.capacity) || o.capacity < 1) {
    throw new TypeError(
      `boundedQueue: capacity must be a positive integer, got ${String(o.capacity)}`,
    );
  }
  const overflow = o.overflow ?? 'wait';
  if (!OVERFLOW_POLICIES.includes(overflow)) {
    throw new TypeError(
      `boundedQueue: overflow must be one of ${OVERFLOW_POLICIES.join(', ')}, got ${String(overflow)}`,
    );
  }
  if (o.onDrop !== undefined && typeof o.onDrop !== 'function') {
    throw new TypeError('boundedQueue: onDrop must be a function');
  }
  const name = o.name ?? 'queue';
  if (typeof name !== 'string' || name.length === 0) {
    throw new TypeError('boundedQueue: name must be a non-empty string');
  }
  return {
    capacity: o.capacity,
    overflow,
    name,
    onDrop: o.onDrop,
    tracer: o.tracer,
    meter: o.meter,
    logger: o.logger,
  };
}
