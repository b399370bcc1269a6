import { isObservable, Observable } from 'rxjs';
import { Fifo } from '../flow/fifo.js';
import { BufferOverflowError } from './errors.js';

/**
 * What a pipeline can read from: a push `Observable`, or an `Iterable` / `AsyncIterable` that
 * is pulled only as capacity frees.
 */
export type Source<T> = Observable<T> | Iterable<T> | AsyncIterable<T>;

/**
 * What a push source does when the pipeline's window and its buffer are both full.
 * `'error'` fails the stream with `BufferOverflowError`; the drop modes are lossy and report
 * each dropped item to `onDrop`.
 */
export type OverflowPolicy = 'error' | 'dropOldest' | 'dropNewest';

/**
 * A window of items admitted and not yet finished, shared by the source driver and the end of
 * the pipeline.
 * @internal
 */
export interface Window {
  readonly size: number;
  inFlight: number;
  /** Set by the source driver: called after each release. */
  onRelease: (() => void) | null;
}

/**
 * Marks one admitted item as finished and lets the source admit another.
 * @internal
 */
export function release(window: Window): void {
  window.inFlight--;
  window.onRelease?.();
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
 * Reads `source` into an Observable that never has more than `window.size` items admitted and
 * unfinished. Iterables are pulled by demand; push sources wait in a FIFO of `buffer` items.
 * @internal
 */
export function pullSource<T>(
  source: Source<T>,
  window: Window,
  push: { buffer: number; overflow: OverflowPolicy; onDrop?: (item: T) => void },
): Observable<T> {
  if (isObservable(source)) return fromPush(source, window, push);
  if (isAsyncIterable(source)) return fromPull(source, true, window);
  if (isIterable(source)) return fromPull(source, false, window);
  throw new TypeError(
    'stream(source): source must be an Observable, an Iterable or an AsyncIterable',
  );
}

function fromPull<T>(
  source: Iterable<T> | AsyncIterable<T>,
  isAsync: boolean,
  window: Window,
): Observable<T> {
  return new Observable<T>((subscriber) => {
    let wake: (() => void) | null = null;
    window.onRelease = () => {
      const w = wake;
      if (w !== null) {
        wake = null;
        w();
      }
    };
    let stopped = false;
    let iterator: Iterator<T> | AsyncIterator<T>;
    try {
      iterator = isAsync
        ? (source as AsyncIterable<T>)[Symbol.asyncIterator]()
        : (source as Iterable<T>)[Symbol.iterator]();
    } catch (e) {
      subscriber.error(e);
      return;
    }
    const loop = async (): Promise<void> => {
      try {
        while (!stopped) {
          if (window.inFlight >= window.size) {
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
            continue;
          }
          const r = isAsync
            ? await (iterator as AsyncIterator<T>).next()
            : (iterator as Iterator<T>).next();
          if (stopped) return;
          if (r.done) {
            subscriber.complete();
            return;
          }
          window.inFlight++;
          subscriber.next(r.value);
        }
      } catch (e) {
        if (!stopped) subscriber.error(e);
      }
    };
    void loop();
    return () => {
      stopped = true;
      window.onRelease = null;
      const w = wake;
      wake = null;
      w?.();
      try {
        const r = iterator.return?.();
        if (r && typeof (r as Promise<unknown>).then === 'function') {
          (r as Promise<unknown>).then(undefined, () => {});
        }
      } catch {
        // a throwing return() must not break teardown
      }
    };
  });
}

function fromPush<T>(
  source: Observable<T>,
  window: Window,
  push: { buffer: number; overflow: OverflowPolicy; onDrop?: (item: T) => void },
): Observable<T> {
  return new Observable<T>((subscriber) => {
    const pending = new Fifo<T>();
    let sourceDone = false;
    const pendingCount = (): number => pending.size;
    const shift = (): T => pending.shift() as T;
    window.onRelease = () => {
      if (pendingCount() > 0 && window.inFlight < window.size) {
        window.inFlight++;
        subscriber.next(shift());
      }
      if (sourceDone && pendingCount() === 0) subscriber.complete();
    };
    const sub = source.subscribe({
      next: (item) => {
        if (window.inFlight < window.size && pendingCount() === 0) {
          window.inFlight++;
          subscriber.next(item);
          return;
        }
        if (pendingCount() < push.buffer) {
          pending.push(item);
          return;
        }
        switch (push.overflow) {
          case 'error':
            subscriber.error(new BufferOverflowError(push.buffer, 'stream source buffer'));
            return;
          case 'dropNewest':
            push.onDrop?.(item);
            return;
          case 'dropOldest':
            push.onDrop?.(shift());
            pending.push(item);
            return;
        }
      },
      error: (e: unknown) => subscriber.error(e),
      complete: () => {
        sourceDone = true;
        if (pendingCount() === 0) subscriber.complete();
      },
    });
    return () => {
      window.onRelease = null;
      sub.unsubscribe();
    };
  });
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
