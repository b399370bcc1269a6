import { setMaxListeners } from 'node:events';
import { Observable, type OperatorFunction, Subject, takeUntil } from 'rxjs';
import { BufferOverflowError, CancelledError } from '../core/errors.js';
import { Fifo } from '../core/fifo.js';
import { isPromiseLike } from '../core/from-work.js';
import { Gate } from '../core/gate.js';
import { ReorderBuffer } from '../core/reorder.js';

/**
 * The work {@link mapConcurrent} runs for each item.
 *
 * @param item - the input item
 * @param signal - aborts (with a `CancelledError`) when the subscription ends before this call
 *   settles: on unsubscribe, on an upstream error, or when another call fails
 * @param index - the item's position in the input, from 0
 * @returns the result, or a promise of it
 */
export type ConcurrentProject<T, R> = (
  item: T,
  signal: AbortSignal,
  index: number,
) => R | PromiseLike<R>;

/**
 * Options of {@link mapConcurrent}.
 *
 * @example
 * ```ts
 * import { mapConcurrent, type MapConcurrentOptions } from '@hartonomous/pipelines';
 *
 * const options: MapConcurrentOptions<{ tenant: string }> = {
 *   concurrency: 8,
 *   keyOf: (job) => job.tenant,
 * };
 * ```
 */
export interface MapConcurrentOptions<T> {
  /** Most calls of `project` running at once: a positive integer, or `Infinity`. */
  concurrency: number;
  /**
   * `true`: results are emitted in input order (a result that finishes early waits in a reorder
   * buffer for the results before it, like TPL Dataflow's `EnsureOrdered`). `false`: results
   * are emitted as they complete.
   * @default false
   */
  ordered?: boolean;
  /**
   * Serializes items by key: items with the same key (compared with SameValueZero, as `Map`
   * does) never run at the same time and start in input order. Items with different keys run
   * concurrently up to `concurrency`.
   * @default undefined (no keyed serialization)
   */
  keyOf?: (item: T) => unknown;
  /**
   * Most inputs held waiting for a free slot (or for their key). The upstream is push-based,
   * so inputs that arrive while every slot is busy are buffered; when one more would exceed
   * `maxBuffer` the stream errors with a {@link BufferOverflowError} and in-flight calls are
   * aborted. A non-negative integer, or `Infinity`.
   * @default Infinity
   */
  maxBuffer?: number;
}

/**
 * Maps each item through `project` with at most `concurrency` calls in flight, each given an
 * AbortSignal that is aborted if the subscription ends before the call settles.
 *
 * Like `mergeMap(project, concurrency)` but built for promise-returning work on large inputs:
 * - Inputs that arrive while all slots are busy wait in an O(1) FIFO (a ring buffer), so a
 *   synchronous source of a million items costs the same per item as a paced one (RxJS's
 *   `mergeMap` drains its buffer with `Array#shift`, which degrades with the backlog). The
 *   buffer is unbounded unless `maxBuffer` is set: pull from a demand-driven source (a
 *   {@link BoundedQueue}, an iterable) when the input can outrun the work.
 * - `ordered: true` emits results in input order. Running calls never exceed `concurrency`;
 *   results that finish ahead of an earlier, slower item wait in a reorder buffer, which is
 *   not counted in `maxBuffer` and grows while that earlier item runs.
 * - `keyOf` serializes items that share a key, in input order.
 * - Results are not flattened: if `project` returns an Observable, that Observable is the
 *   result. A promise-like result is awaited; any other value is emitted as is (synchronous
 *   projects free their slot at once).
 * - The first error (from `project`, `keyOf` or upstream) ends the stream at once: buffered
 *   inputs are discarded and the signals of in-flight calls abort with a `CancelledError`.
 *   Unsubscribing does the same. Completion waits for every call to settle.
 *
 * One AbortSignal is shared by all calls of one subscription (creating one per item would
 * double the per-item cost); the operator itself adds no listener to it, and it is not
 * limited to Node's default of 10 listeners, so concurrent calls may each listen to it.
 *
 * @param project - the work per item: `(item, signal, index) => result | Promise<result>`
 * @param options - the concurrency, or {@link MapConcurrentOptions}
 * @returns an operator emitting the results
 * @throws TypeError when the options are invalid
 *
 * @example
 * ```ts
 * import { mapConcurrent } from '@hartonomous/pipelines';
 * import { from } from 'rxjs';
 *
 * const urls = ['http://127.0.0.1:8080/a', 'http://127.0.0.1:8080/b'];
 * from(urls)
 *   .pipe(
 *     mapConcurrent(async (url, signal) => (await fetch(url, { signal })).text(), {
 *       concurrency: 4,
 *       ordered: true,
 *     }),
 *   )
 *   .subscribe((body) => console.log(body.length));
 * ```
 * @see {@link batch} to group items before mapping them
 */
export function mapConcurrent<T, R>(
  project: ConcurrentProject<T, R>,
  options: number | MapConcurrentOptions<T>,
): OperatorFunction<T, R> {
  if (typeof project !== 'function') {
    throw new TypeError('mapConcurrent: project must be a function');
  }
  const { concurrency, ordered, keyOf, maxBuffer } = normalize(options);

  return (source) =>
    new Observable<R>((subscriber) => {
      const controller = new AbortController();
      setMaxListeners(0, controller.signal);
      const signal = controller.signal;

      /** Busy keys: the inputs queued behind the running one (`null` when none). */
      const keys = keyOf === undefined ? undefined : new Map<unknown, Fifo<Entry<T>> | null>();
      /** Results that finished ahead of an earlier item (ordered mode). */
      const reorder = ordered
        ? new ReorderBuffer<R>((value) => {
            if (!finished) subscriber.next(value);
          })
        : undefined;
      let keyQueued = 0;
      let nextIndex = 0;
      let sourceDone = false;
      let finished = false;

      const fail = (e: unknown): void => {
        if (finished) return;
        finished = true;
        subscriber.error(e);
      };

      const completeIfDone = (): void => {
        if (sourceDone && gate.active === 0 && gate.queued === 0 && keyQueued === 0 && !finished) {
          finished = true;
          subscriber.complete();
        }
      };

      /** Frees the entry's key: its next queued input (if any) goes to the gate. */
      const releaseKey = (entry: Entry<T>): void => {
        if (keys === undefined) return;
        const queued = keys.get(entry.key);
        if (queued?.size) {
          keyQueued--;
          gate.offer(queued.shift()!);
        } else keys.delete(entry.key);
      };

      const settle = (entry: Entry<T>, value: R): void => {
        if (finished) return;
        if (reorder === undefined) subscriber.next(value);
        else reorder.push(entry.index, value);
        if (finished || subscriber.closed) return;
        releaseKey(entry);
        gate.release();
        completeIfDone();
      };

      const gate = new Gate<Entry<T>>(concurrency, (entry) => {
        let out: R | PromiseLike<R>;
        try {
          out = project(entry.item, signal, entry.index);
        } catch (e) {
          fail(e);
          return;
        }
        if (!isPromiseLike<R>(out)) {
          settle(entry, out);
          return;
        }
        try {
          out.then((value) => settle(entry, value), fail);
        } catch (e) {
          fail(e); // a thenable whose then() throws
        }
      });

      const accept = (item: T): void => {
        const index = nextIndex++;
        let key: unknown;
        if (keys !== undefined) {
          try {
            key = keyOf!(item);
          } catch (e) {
            fail(e);
            return;
          }
        }
        const entry: Entry<T> = { item, index, key };
        const keyBusy = keys?.has(key) === true;
        if ((keyBusy || gate.wouldQueue) && keyQueued + gate.queued >= maxBuffer) {
          fail(new BufferOverflowError(maxBuffer, 'mapConcurrent input buffer'));
          return;
        }
        if (keys !== undefined) {
          if (keyBusy) {
            let queued = keys.get(key);
            if (!queued) {
              queued = new Fifo<Entry<T>>(4);
              keys.set(key, queued);
            }
            queued.push(entry);
            keyQueued++;
            return;
          }
          keys.set(key, null);
        }
        gate.offer(entry);
      };

      const stop = new Subject<void>();
      subscriber.add(() => stop.next());
      const upstream = source.pipe(takeUntil(stop)).subscribe({
        next: (item) => {
          if (!finished) accept(item);
        },
        error: fail,
        complete: () => {
          if (finished || subscriber.closed) return;
          sourceDone = true;
          completeIfDone();
        },
      });

      return () => {
        upstream.unsubscribe();
        if (!finished || gate.active > 0) {
          finished = true;
          if (gate.active > 0) controller.abort(new CancelledError('mapConcurrent'));
        }
        gate.clear();
        keys?.clear();
        reorder?.clear();
      };
    });
}

interface Entry<T> {
  readonly item: T;
  readonly index: number;
  readonly key: unknown;
}

function normalize<T>(options: number | MapConcurrentOptions<T>): {
  concurrency: number;
  ordered: boolean;
  keyOf: ((item: T) => unknown) | undefined;
  maxBuffer: number;
} {
  if (typeof options === 'number') options = { concurrency: options };
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('mapConcurrent: options must be a concurrency or an options object');
  }
  const { concurrency, ordered, keyOf, maxBuffer } = options;
  if (
    !(
      concurrency === Number.POSITIVE_INFINITY ||
      (Number.isSafeInteger(concurrency) && concurrency >= 1)
    )
  ) {
    throw new TypeError(
      `mapConcurrent: concurrency must be a positive integer or Infinity, got ${String(concurrency)}`,
    );
  }
  if (ordered !== undefined && typeof ordered !== 'boolean') {
    throw new TypeError('mapConcurrent: ordered must be a boolean');
  }
  if (keyOf !== undefined && typeof keyOf !== 'function') {
    throw new TypeError('mapConcurrent: keyOf must be a function');
  }
  if (
    maxBuffer !== undefined &&
    !(maxBuffer === Number.POSITIVE_INFINITY || (Number.isSafeInteger(maxBuffer) && maxBuffer >= 0))
  ) {
    throw new TypeError(
      `mapConcurrent: maxBuffer must be a non-negative integer or Infinity, got ${String(maxBuffer)}`,
    );
  }
  return {
    concurrency,
    ordered: ordered ?? false,
    keyOf,
    maxBuffer: maxBuffer ?? Number.POSITIVE_INFINITY,
  };
}
