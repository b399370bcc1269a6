import {
  asyncScheduler,
  Observable,
  type OperatorFunction,
  type SchedulerLike,
  Subject,
  takeUntil,
} from 'rxjs';
import { Batcher, isWeight } from '../core/batcher.js';
import { instruments, type TelemetryOptions } from '../observability/telemetry.js';

/**
 * Options of {@link batch}. Give at least one of `size`, `timeMs` or `maxWeight`; a batch is
 * emitted as soon as any of them says so.
 *
 * @example
 * ```ts
 * import { batch, type BatchOptions } from '@hartonomous/pipelines';
 *
 * const options: BatchOptions<string> = { size: 32, timeMs: 50 };
 * const toBatches = batch(options);
 * ```
 */
export interface BatchOptions<T> extends TelemetryOptions {
  /** Emit when the batch holds this many items; a positive integer. @default Infinity (no count limit) */
  size?: number;
  /**
   * Emit when this many milliseconds have passed since the FIRST item of the current batch
   * arrived (not since the last emission: an idle stream starts no timer); a positive number.
   * @default undefined (no time limit)
   */
  timeMs?: number;
  /**
   * The weight of one item (e.g. its byte length or token count): a finite number `>= 0`.
   * Needs `maxWeight`. A weight function that throws or returns anything else errors the
   * stream (the items batched so far are emitted first).
   * @default () => 1
   */
  weight?: (item: T) => number;
  /**
   * Emit before an item would take the batch's total weight above this, and as soon as the
   * total reaches it. An item heavier than `maxWeight` on its own is emitted in a batch of its
   * own (never dropped, never split). A positive number.
   * @default Infinity (no weight limit)
   */
  maxWeight?: number;
  /** Scheduler for the `timeMs` timer (a `TestScheduler` in tests). @default asyncScheduler */
  scheduler?: SchedulerLike;
  /** Value of the `batch.name` attribute on `hartonomous.batch.size`. @default 'batch' */
  name?: string;
}

/**
 * Groups items into arrays, emitted when the batch is full by count (`size`), by age
 * (`timeMs` since its first item) or by weight (`maxWeight`), whichever comes first.
 *
 * Guarantees: every item is emitted exactly once and in order (the concatenation of the
 * batches is the input); no empty batch is ever emitted; the partial batch is emitted on
 * completion and also on error (the batch first, then the error); no timer survives
 * completion, error or unsubscription. Each emitted batch's length is recorded in the
 * `hartonomous.batch.size` histogram with the attribute `batch.name`.
 *
 * @param options - the batch size, or {@link BatchOptions}
 * @returns an operator from items to non-empty arrays of items
 * @throws TypeError when the options are invalid
 *
 * @example
 * ```ts
 * import { batch } from '@hartonomous/pipelines';
 * import { from } from 'rxjs';
 *
 * const texts = ['alpha', 'beta', 'gamma'];
 * // up to 32 texts per request, never waiting more than 50 ms for a batch to fill,
 * // and at most 8 000 characters per request
 * from(texts)
 *   .pipe(batch({ size: 32, timeMs: 50, weight: (t: string) => t.length, maxWeight: 8_000 }))
 *   .subscribe((group) => console.log(group.length));
 * ```
 * @see {@link mapConcurrent} to process the batches concurrently
 */
export function batch<T>(options: number | BatchOptions<T>): OperatorFunction<T, T[]> {
  const { size, timeMs, weight, maxWeight, scheduler, telemetry, name } = normalize(options);
  const attrs = { 'batch.name': name };
  return (source) =>
    new Observable<T[]>((subscriber) => {
      const { batchSize } = instruments(telemetry);
      const batcher = new Batcher<T>({ size, timeMs, maxWeight, scheduler }, (out) => {
        batchSize.record(out.length, attrs);
        subscriber.next(out);
      });
      const fail = (e: unknown): void => {
        batcher.flush();
        subscriber.error(e);
      };

      // Stops a synchronous source as soon as the subscriber goes away (e.g. `take(1)` right
      // after the first batch of an endless iterable); registered before subscribing.
      const stop = new Subject<void>();
      subscriber.add(() => stop.next());
      const upstream = source.pipe(takeUntil(stop)).subscribe({
        next: (item) => {
          let w = 1;
          if (weight !== undefined) {
            try {
              w = weight(item);
            } catch (e) {
              fail(e);
              return;
            }
            if (!isWeight(w)) {
              fail(
                new TypeError(`batch: weight(item) must be a finite number >= 0, got ${String(w)}`),
              );
              return;
            }
          }
          batcher.add(item, w);
        },
        error: (e: unknown) => {
          if (!subscriber.closed) fail(e);
        },
        complete: () => {
          if (subscriber.closed) return;
          batcher.flush();
          subscriber.complete();
        },
      });
      return () => {
        upstream.unsubscribe();
        batcher.discard();
      };
    });
}

interface Normalized<T> {
  size: number;
  timeMs: number | undefined;
  weight: ((item: T) => number) | undefined;
  maxWeight: number;
  scheduler: SchedulerLike;
  telemetry: TelemetryOptions;
  name: string;
}

function normalize<T>(options: number | BatchOptions<T>): Normalized<T> {
  if (typeof options === 'number') options = { size: options };
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('batch: options must be a size or an options object');
  }
  const { size, timeMs, weight, maxWeight, scheduler, tracer, meter, name } = options;
  if (size !== undefined && !(size === Number.POSITIVE_INFINITY || isPositiveInteger(size))) {
    throw new TypeError(`batch: size must be a positive integer, got ${String(size)}`);
  }
  if (timeMs !== undefined && !(typeof timeMs === 'number' && timeMs > 0 && timeMs < Infinity)) {
    throw new TypeError(`batch: timeMs must be a positive finite number, got ${String(timeMs)}`);
  }
  if (maxWeight !== undefined && !(typeof maxWeight === 'number' && maxWeight > 0)) {
    throw new TypeError(`batch: maxWeight must be a positive number, got ${String(maxWeight)}`);
  }
  if (weight !== undefined && typeof weight !== 'function') {
    throw new TypeError('batch: weight must be a function');
  }
  if (weight !== undefined && maxWeight === undefined) {
    throw new TypeError('batch: weight needs maxWeight');
  }
  if (size === undefined && timeMs === undefined && maxWeight === undefined) {
    throw new TypeError('batch: give at least one of size, timeMs or maxWeight');
  }
  if (scheduler !== undefined && typeof scheduler?.schedule !== 'function') {
    throw new TypeError('batch: scheduler must be an RxJS SchedulerLike');
  }
  if (name !== undefined && (typeof name !== 'string' || name.length === 0)) {
    throw new TypeError('batch: name must be a non-empty string');
  }
  return {
    size: size ?? Number.POSITIVE_INFINITY,
    timeMs,
    weight,
    maxWeight: maxWeight ?? Number.POSITIVE_INFINITY,
    scheduler: scheduler ?? asyncScheduler,
    telemetry: { tracer, meter },
    name: name ?? 'batch',
  };
}

function isPositiveInteger(n: unknown): boolean {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 1;
}
