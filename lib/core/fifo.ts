/**
 * A first-in first-out queue on a growable ring buffer: `push` and `shift` are O(1) whatever
 * the length (unlike `Array.prototype.shift`, which moves every element and turns a large
 * backlog into a quadratic cliff).
 * @internal
 * @module
 */

const MIN_CAPACITY = 16;

/**
 * An O(1) FIFO on a power-of-two ring buffer that doubles when full.
 *
 * `shift()` and `peek()` return `undefined` when empty; check `size` first when `T` itself
 * may be `undefined`.
 *
 * @example
 * ```ts
 * const q = new Fifo<number>();
 * q.push(1);
 * q.push(2);
 * q.shift(); // 1
 * q.size; // 1
 * ```
 * @internal
 */
export class Fifo<T> {
  private buffer: (T | undefined)[];
  private mask: number;
  private head = 0;
  private count = 0;

  /** @param initialCapacity - slots to allocate up front (rounded up to a power of two) */
  constructor(initialCapacity: number = MIN_CAPACITY) {
    let cap = MIN_CAPACITY;
    while (cap < initialCapacity) cap *= 2;
    this.buffer = new Array<T | undefined>(cap);
    this.mask = cap - 1;
  }

  /** Number of items held. */
  get size(): number {
    return this.count;
  }

  /**
   * Appends an item at the tail.
   * @param item - the item
   */
  push(item: T): void {
    if (this.count === this.buffer.length) this.grow();
    this.buffer[(this.head + this.count) & this.mask] = item;
    this.count++;
  }

  /**
   * Puts an item back at the head, so the next `shift()` returns it.
   * @param item - the item
   */
  unshift(item: T): void {
    if (this.count === this.buffer.length) this.grow();
    this.head = (this.head - 1) & this.mask;
    this.buffer[this.head] = item;
    this.count++;
  }

  /**
   * Removes and returns the item at the head.
   * @returns the oldest item, or `undefined` when empty
   */
  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.buffer[this.head];
    this.buffer[this.head] = undefined;
    this.head = (this.head + 1) & this.mask;
    this.count--;
    return item;
  }

  /**
   * The item at the head, left in place.
   * @returns the oldest item, or `undefined` when empty
   */
  peek(): T | undefined {
    return this.count === 0 ? undefined : this.buffer[this.head];
  }

  /**
   * Removes the first occurrence of `item` (by `===`). O(n): meant for the rare path, such as a
   * cancelled waiter leaving a queue of waiters.
   * @param item - the item to remove
   * @returns whether it was found
   */
  delete(item: T): boolean {
    const { buffer, mask } = this;
    for (let i = 0; i < this.count; i++) {
      if (buffer[(this.head + i) & mask] !== item) continue;
      for (let j = i; j < this.count - 1; j++) {
        buffer[(this.head + j) & mask] = buffer[(this.head + j + 1) & mask];
      }
      buffer[(this.head + this.count - 1) & mask] = undefined;
      this.count--;
      return true;
    }
    return false;
  }

  /** Drops every item (and the references to them). */
  clear(): void {
    this.buffer = new Array<T | undefined>(MIN_CAPACITY);
    this.mask = MIN_CAPACITY - 1;
    this.head = 0;
    this.count = 0;
  }

  /**
   * Iterates from head to tail without removing anything.
   * @returns an iterator over the held items
   */
  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.count; i++) yield this.buffer[(this.head + i) & this.mask] as T;
  }

  private grow(): void {
    const old = this.buffer;
    const next = new Array<T | undefined>(old.length * 2);
    for (let i = 0; i < this.count; i++) next[i] = old[(this.head + i) & this.mask];
    this.buffer = next;
    this.mask = next.length - 1;
    this.head = 0;
  }
}
