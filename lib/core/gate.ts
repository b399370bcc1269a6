/**
 * The library's one bounded-concurrency mechanism: at most `limit` tasks running, the rest
 * waiting in an O(1) FIFO. The stream engine runs every stage through one, and `mapConcurrent`
 * is built on it.
 * @internal
 * @module
 */

import { Fifo } from './fifo.js';

/**
 * Admits tasks while fewer than `limit` run; queues the rest in arrival order.
 *
 * `start(task)` is called for each admitted task and must eventually be followed by exactly one
 * {@link Gate.release}. It may call `release` synchronously (a task that finished at once) and
 * may `offer` more tasks: re-entrant calls never recurse into `start` more than one level deep,
 * the outer loop picks the work up, so a long run of synchronous tasks uses constant stack.
 *
 * @example
 * ```ts
 * const gate = new Gate<number>(2, (n) => void work(n).finally(() => gate.release()));
 * for (const n of [1, 2, 3, 4]) gate.offer(n); // 1 and 2 start; 3 and 4 wait
 * ```
 * @internal
 */
export class Gate<T> {
  /** Tasks started and not yet released. */
  active = 0;
  private readonly waiting = new Fifo<T>();
  private pumping = false;

  /**
   * @param limit - most tasks running at once: a positive integer or `Infinity`
   * @param start - starts one task
   */
  constructor(
    readonly limit: number,
    private readonly start: (task: T) => void,
  ) {}

  /** Tasks waiting for a slot. */
  get queued(): number {
    return this.waiting.size;
  }

  /** Whether a task offered now would wait instead of starting. */
  get wouldQueue(): boolean {
    return this.pumping || this.active >= this.limit || this.waiting.size > 0;
  }

  /**
   * Starts `task` now if a slot is free and nothing waits before it, else queues it.
   * @param task - the task
   */
  offer(task: T): void {
    if (this.pumping || this.active >= this.limit || this.waiting.size > 0) {
      this.waiting.push(task);
      this.pump();
      return;
    }
    this.active++;
    this.start(task);
  }

  /** Marks one started task finished and starts waiting tasks while slots are free. */
  release(): void {
    this.active--;
    this.pump();
  }

  /** Drops every waiting task (they are never started). */
  clear(): void {
    this.waiting.clear();
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.active < this.limit && this.waiting.size > 0) {
        this.active++;
        this.start(this.waiting.shift() as T);
      }
    } finally {
      this.pumping = false;
    }
  }
}
