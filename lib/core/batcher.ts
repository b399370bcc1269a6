/**
 * The library's one batching rule: group items by count, by age of the batch's first item and
 * by total weight. The `batch` operator and the stream engine's batch stages are both built on
 * it.
 * @internal
 * @module
 */

import type { SchedulerLike, Subscription } from 'rxjs';

/**
 * Limits of a {@link Batcher}; a batch is emitted as soon as one of them says so.
 * @internal
 */
export interface BatcherLimits {
  /** Most items per batch (`Infinity` for no count limit). */
  readonly size: number;
  /** Emit this long after the batch's first item arrived (`undefined` for no time limit). */
  readonly timeMs: number | undefined;
  /** Most total weight per batch (`Infinity` for no limit). */
  readonly maxWeight: number;
  /** Scheduler of the `timeMs` timer. */
  readonly scheduler: SchedulerLike;
}

/**
 * Accumulates items into batches and hands each full batch to `emit`.
 *
 * Rules: an item that would take the total weight above `maxWeight` first flushes the batch
 * before it (an item heavier than `maxWeight` alone gets a batch of its own); a batch is
 * flushed when it holds `size` items or reaches `maxWeight`; the timer starts with a batch's
 * first item and flushes it `timeMs` later. Never emits an empty batch.
 *
 * @example
 * ```ts
 * const b = new Batcher<string>({ size: 2, timeMs: 50, maxWeight: Infinity, scheduler: asyncScheduler }, console.log);
 * b.add('a', 1);
 * b.add('b', 1); // logs ['a', 'b']
 * ```
 * @internal
 */
export class Batcher<T> {
  private items: T[] = [];
  private load = 0;
  private timer: Subscription | undefined;
  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.flush();
  };

  /**
   * @param limits - count, time and weight limits
   * @param emit - receives each batch (never empty)
   */
  constructor(
    private readonly limits: BatcherLimits,
    private readonly emit: (batch: T[]) => void,
  ) {}

  /** Items waiting in the current batch. */
  get size(): number {
    return this.items.length;
  }

  /**
   * Adds one item of weight `weight` (a finite number >= 0, checked by the caller).
   * @param item - the item
   * @param weight - its weight
   */
  add(item: T, weight: number): void {
    const { size, timeMs, maxWeight } = this.limits;
    if (this.items.length > 0 && this.load + weight > maxWeight) this.flush();
    this.items.push(item);
    this.load += weight;
    if (this.items.length >= size || this.load >= maxWeight) this.flush();
    else if (this.items.length === 1 && timeMs !== undefined && this.timer === undefined) {
      this.timer = this.limits.scheduler.schedule(this.onTimer, timeMs);
    }
  }

  /** Emits the current batch now, if it holds anything, and stops its timer. */
  flush(): void {
    this.stopTimer();
    if (this.items.length === 0) return;
    const out = this.items;
    this.items = [];
    this.load = 0;
    this.emit(out);
  }

  /** Drops the current batch and stops its timer. */
  discard(): void {
    this.stopTimer();
    this.items = [];
    this.load = 0;
  }

  private stopTimer(): void {
    if (this.timer !== undefined) {
      this.timer.unsubscribe();
      this.timer = undefined;
    }
  }
}

/**
 * Whether `w` is a valid item weight: a finite number >= 0.
 * @internal
 */
export function isWeight(w: unknown): w is number {
  return typeof w === 'number' && w >= 0 && w !== Number.POSITIVE_INFINITY;
}
