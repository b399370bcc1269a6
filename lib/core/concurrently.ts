import { Observable, type OperatorFunction } from 'rxjs';
import { Fifo } from '../flow/fifo.js';
import { isPromiseLike } from './from-work.js';

/**
 * `mergeMap` for a project that returns a value or a promise, without an inner Observable per
 * item: at most `limit` promises pending, the rest waiting in an O(1) FIFO (bounded by the
 * pipeline's window). Synchronous results pass straight through. Used by the stream engine for
 * its stages; a rejected promise errors the output (the engine's projects never reject).
 * @internal
 */
export function concurrently<T, R>(
  project: (value: T) => R | PromiseLike<R>,
  limit: number,
): OperatorFunction<T, R> {
  return (source) =>
    new Observable<R>((subscriber) => {
      const waiting = new Fifo<T>();
      let active = 0;
      let sourceDone = false;
      let closed = false;

      const settle = (r: R): void => {
        active--;
        if (closed) return;
        subscriber.next(r);
        drain();
      };
      const fail = (e: unknown): void => {
        closed = true;
        subscriber.error(e);
      };
      const start = (value: T): void => {
        let r: R | PromiseLike<R>;
        try {
          r = project(value);
        } catch (e) {
          fail(e);
          return;
        }
        if (isPromiseLike(r)) {
          active++;
          r.then(settle, fail);
        } else {
          subscriber.next(r);
        }
      };
      const drain = (): void => {
        while (!closed && active < limit && waiting.size > 0) start(waiting.shift() as T);
        if (!closed && sourceDone && active === 0 && waiting.size === 0) {
          closed = true;
          subscriber.complete();
        }
      };
      const subscription = source.subscribe({
        next: (value) => {
          if (active < limit && waiting.size === 0) start(value);
          else waiting.push(value);
        },
        error: fail,
        complete: () => {
          sourceDone = true;
          drain();
        },
      });
      return () => {
        closed = true;
        subscription.unsubscribe();
        waiting.clear();
      };
    });
}
