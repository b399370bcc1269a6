import { Observable } from 'rxjs';
import { linkedController } from './abort.js';
import { CancelledError } from './errors.js';

/**
 * A unit of cancellable work: receives an AbortSignal, returns a value or a promise of one.
 */
export type Work<T> = (signal: AbortSignal) => T | PromiseLike<T>;

/**
 * Turns cancellable async work into a cold Observable: each subscription starts the work
 * once with a fresh AbortSignal (linked to `parent`, if given) and emits its one result.
 * Work that declares no parameter (`() => ...`) cannot read a signal, so none is made for it.
 * Unsubscribing before the work settles aborts that signal with a {@link CancelledError};
 * re-subscribing (as `retry` does) starts the work again. This is the bridge that lets
 * RxJS operators such as `timeout` and `retry` cancel real work.
 *
 * @param work - the work to run per subscription
 * @param parent - an outer signal; aborting it aborts the work
 * @returns an Observable of the work's single result
 *
 * @example
 * ```ts
 * import { fromWork, timeout } from '@hartonomous/pipelines';
 *
 * const body$ = fromWork((signal) => fetch('http://127.0.0.1:8080/', { signal }).then((r) => r.text()))
 *   .pipe(timeout(1_000));
 * ```
 */
export function fromWork<T>(work: Work<T>, parent?: AbortSignal): Observable<T> {
  if (work.length === 0) return fromBlindWork(work, parent);
  return new Observable<T>((subscriber) => {
    const { controller, dispose } = linkedController(parent);
    let settled = false;
    const signal = controller.signal;
    if (signal.aborted) {
      settled = true;
      dispose();
      subscriber.error(signal.reason);
      return;
    }
    let result: T | PromiseLike<T>;
    try {
      result = work(signal);
    } catch (e) {
      settled = true;
      dispose();
      subscriber.error(e);
      return;
    }
    if (isPromiseLike(result)) {
      result.then(
        (value) => {
          settled = true;
          dispose();
          subscriber.next(value);
          subscriber.complete();
        },
        (e: unknown) => {
          settled = true;
          dispose();
          subscriber.error(e);
        },
      );
    } else {
      settled = true;
      dispose();
      subscriber.next(result);
      subscriber.complete();
    }
    return () => {
      if (settled) return;
      settled = true;
      dispose();
      controller.abort(new CancelledError('work'));
    };
  });
}

let neverAborted: AbortSignal | undefined;

/**
 * `fromWork` for work that declares no parameter: it cannot read a signal, so none is made
 * per subscription (an AbortController costs more than many a call). It is given `parent`, or
 * a signal that never aborts, should it read `arguments[0]` anyway.
 */
function fromBlindWork<T>(work: Work<T>, parent: AbortSignal | undefined): Observable<T> {
  return new Observable<T>((subscriber) => {
    if (parent?.aborted) {
      subscriber.error(parent.reason);
      return;
    }
    neverAborted ??= new AbortController().signal;
    let result: T | PromiseLike<T>;
    try {
      result = work(parent ?? neverAborted);
    } catch (e) {
      subscriber.error(e);
      return;
    }
    if (!isPromiseLike(result)) {
      subscriber.next(result);
      subscriber.complete();
      return;
    }
    result.then(
      (value) => {
        subscriber.next(value);
        subscriber.complete();
      },
      (e: unknown) => subscriber.error(e),
    );
  });
}

/** @internal */
export function isPromiseLike<T>(v: unknown): v is PromiseLike<T> {
  return (
    (typeof v === 'object' || typeof v === 'function') &&
    v !== null &&
    typeof (v as { then?: unknown }).then === 'function'
  );
}
