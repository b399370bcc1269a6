/**
 * Reading a stream's source by demand: arrays, iterables and async iterables are pulled only
 * while the engine has room; an Observable (push) waits in a bounded FIFO in front of it.
 * @module
 */

import { isObservable, Observable, type Subscriber, type Subscription } from 'rxjs';
import { BufferOverflowError } from './errors.js';
import { Fifo } from './fifo.js';

/**
 * What a pipeline can read from: a push `Observable`, or an `Iterable` / `AsyncIterable` that
 * is pulled only as capacity frees.
 *
 * @example
 * ```ts
 * import type { Source } from '@hartonomous/pipelines';
 *
 * async function* lines(): AsyncGenerator<string> {
 *   yield 'a';
 *   yield 'b';
 * }
 * const sources: Source<string>[] = [['a', 'b'], new Set(['a']), lines()];
 * ```
 */
export type Source<T> = Observable<T> | Iterable<T> | AsyncIterable<T>;

/**
 * What a bounded buffer does when it is full and one more item arrives: the one name for this
 * choice across the library (a `boundedQueue`'s `overflow`, a stream's `overflow`).
 *
 * - `'wait'`: the writer waits for room (only where the writer can wait: a `boundedQueue`).
 * - `'error'`: fail with a `BufferOverflowError` (a stream stops reading its source at once).
 * - `'dropOldest'`: drop the oldest held item to make room.
 * - `'dropNewest'`: drop the arriving item.
 *
 * Every dropped item is reported to `onDrop` where the component takes one.
 *
 * @example
 * ```ts
 * import type { OverflowPolicy } from '@hartonomous/pipelines';
 * const lossy: OverflowPolicy = 'dropOldest';
 * ```
 */
export type OverflowPolicy = 'wait' | 'error' | 'dropOldest' | 'dropNewest';

/**
 * Where the source driver delivers items.
 * @internal
 */
export interface SourceTarget<T> {
  /** Whether one more item may be admitted now. */
  room(): boolean;
  /** Admits one item (only when `room()` said yes). */
  admit(item: T): void;
  /** The source has no more items. */
  end(): void;
  /** The source failed (or overflowed in `'error'` mode). */
  fail(error: unknown): void;
  /** An item a drop mode discarded. */
  drop(item: T): void;
}

/**
 * Options of a push source's buffer.
 * @internal
 */
export interface PushBuffer {
  /** Items held beyond the engine's window. */
  readonly buffer: number;
  /** What a full buffer does (`'wait'` is not possible for a push source). */
  readonly overflow: Exclude<OverflowPolicy, 'wait'>;
}

/**
 * A running source: `pull()` offers items while the target has room (call it whenever room
 * frees); `stop()` ends reading and releases the source.
 * @internal
 */
export interface SourceDriver {
  pull(): void;
  stop(): void;
}

/**
 * Throws a TypeError unless `source` is something `stream` can read.
 * @internal
 */
export function checkSource(source: unknown): void {
  if (!isObservable(source) && !isAsyncIterable(source) && !isIterable(source)) {
    throw new TypeError(
      'stream(source): source must be an Observable, an Iterable or an AsyncIterable (not a string)',
    );
  }
}

/**
 * Starts reading `source` into `target`.
 * @internal
 */
export function driveSource<T>(
  source: Source<T>,
  target: SourceTarget<T>,
  push: PushBuffer,
): SourceDriver {
  if (isObservable(source)) return fromPush(source, target, push);
  if (Array.isArray(source)) return fromArray(source as readonly T[], target);
  if (isAsyncIterable(source)) return fromAsync(source, target);
  return fromIterable(source as Iterable<T>, target);
}

function fromArray<T>(items: readonly T[], target: SourceTarget<T>): SourceDriver {
  let i = 0;
  let stopped = false;
  let pulling = false;
  return {
    pull() {
      if (pulling || stopped) return;
      pulling = true;
      try {
        while (!stopped && i < items.length && target.room()) target.admit(items[i++] as T);
        if (!stopped && i >= items.length) {
          stopped = true;
          target.end();
        }
      } finally {
        pulling = false;
      }
    },
    stop() {
      stopped = true;
    },
  };
}

function fromIterable<T>(source: Iterable<T>, target: SourceTarget<T>): SourceDriver {
  let iterator: Iterator<T> | undefined;
  let stopped = false;
  let pulling = false;
  return {
    pull() {
      if (pulling || stopped) return;
      pulling = true;
      try {
        iterator ??= source[Symbol.iterator]();
        while (!stopped && target.room()) {
          const r = iterator.next();
          if (stopped) return;
          if (r.done) {
            stopped = true;
            target.end();
            return;
          }
          target.admit(r.value);
        }
      } catch (e) {
        if (!stopped) {
          stopped = true;
          target.fail(e);
        }
      } finally {
        pulling = false;
      }
    },
    stop() {
      if (stopped) return;
      stopped = true;
      closeIterator(iterator);
    },
  };
}

function fromAsync<T>(source: AsyncIterable<T>, target: SourceTarget<T>): SourceDriver {
  let iterator: AsyncIterator<T> | undefined;
  let stopped = false;
  let reading = false;
  const onResult = (r: IteratorResult<T>): void => {
    reading = false;
    if (stopped) return;
    if (r.done) {
      stopped = true;
      target.end();
      return;
    }
    target.admit(r.value);
    driver.pull();
  };
  const onError = (e: unknown): void => {
    reading = false;
    if (stopped) return;
    stopped = true;
    target.fail(e);
  };
  const driver: SourceDriver = {
    pull() {
      if (reading || stopped || !target.room()) return;
      reading = true;
      try {
        iterator ??= source[Symbol.asyncIterator]();
        iterator.next().then(onResult, onError);
      } catch (e) {
        onError(e);
      }
    },
    stop() {
      if (stopped) return;
      stopped = true;
      closeIterator(iterator);
    },
  };
  return driver;
}

function fromPush<T>(
  source: Observable<T>,
  target: SourceTarget<T>,
  push: PushBuffer,
): SourceDriver {
  const pending = new Fifo<T>();
  let done = false; // the source completed
  let stopped = false; // nothing more is read or delivered
  let pulling = false;
  let upstream: Subscriber<T> | undefined;
  let subscription: Subscription | undefined;

  const stopUpstream = (): void => {
    // Closing the subscriber the source emits into is what stops a synchronous source
    // (`range`, `from(array)`) in the middle of its loop: it checks `subscriber.closed`.
    upstream?.unsubscribe();
    subscription?.unsubscribe();
  };
  const driver: SourceDriver = {
    pull() {
      if (pulling || stopped) return;
      pulling = true;
      try {
        while (!stopped && pending.size > 0 && target.room()) target.admit(pending.shift() as T);
        if (!stopped && done && pending.size === 0) {
          stopped = true;
          target.end();
        }
      } finally {
        pulling = false;
      }
    },
    stop() {
      stopped = true;
      pending.clear();
      stopUpstream();
    },
  };
  const onNext = (item: T): void => {
    if (stopped) return;
    if (pending.size === 0 && !pulling && target.room()) {
      target.admit(item);
      return;
    }
    if (pending.size < push.buffer) {
      pending.push(item);
      return;
    }
    switch (push.overflow) {
      case 'error':
        stopped = true;
        pending.clear();
        stopUpstream();
        target.fail(new BufferOverflowError(push.buffer, 'stream source buffer'));
        return;
      case 'dropNewest':
        target.drop(item);
        return;
      case 'dropOldest':
        if (pending.size === 0) {
          target.drop(item); // nothing held: the arriving item is the oldest there is
          return;
        }
        target.drop(pending.shift() as T);
        pending.push(item);
        return;
    }
  };
  const gate = new Observable<T>((subscriber) => {
    upstream = subscriber;
    return source.subscribe(subscriber);
  });
  // Subscribe on first pull, so the engine is ready for a source that emits synchronously.
  let started = false;
  const start = (): void => {
    if (started) return;
    started = true;
    subscription = gate.subscribe({
      next: onNext,
      error: (e: unknown) => {
        if (stopped) return;
        stopped = true;
        pending.clear();
        target.fail(e);
      },
      complete: () => {
        done = true;
        driver.pull();
      },
    });
    if (stopped) subscription.unsubscribe();
  };
  return {
    pull() {
      if (!started) start();
      else driver.pull();
    },
    stop: driver.stop,
  };
}

function closeIterator(iterator: Iterator<unknown> | AsyncIterator<unknown> | undefined): void {
  try {
    const r = iterator?.return?.();
    if (r && typeof (r as Promise<unknown>).then === 'function') {
      (r as Promise<unknown>).then(undefined, () => {});
    }
  } catch {
    // a throwing return() must not break teardown
  }
}

function isAsyncIterable<T>(v: unknown): v is AsyncIterable<T> {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as AsyncIterable<T>)[Symbol.asyncIterator] === 'function'
  );
}

function isIterable<T>(v: unknown): v is Iterable<T> {
  return (
    v !== null &&
    v !== undefined &&
    typeof (v as Iterable<T>)[Symbol.iterator] === 'function' &&
    typeof v !== 'string'
  );
}
