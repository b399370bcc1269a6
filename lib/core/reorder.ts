/**
 * The library's one reorder buffer: values finished out of order wait until every earlier
 * position has been emitted. The stream engine (`ordered: true`) and `mapConcurrent`
 * (`ordered: true`) both use it.
 * @internal
 * @module
 */

/**
 * Emits values in position order (0, 1, 2, ...), whatever order they arrive in.
 *
 * Re-entrant: `emit` may push more values (a synchronous consumer that finishes the next item
 * at once); they are emitted by the loop already running, never by a nested one.
 *
 * @example
 * ```ts
 * const out: string[] = [];
 * const r = new ReorderBuffer<string>((v) => out.push(v));
 * r.push(1, 'b');
 * r.push(0, 'a'); // out: ['a', 'b']
 * ```
 * @internal
 */
export class ReorderBuffer<T> {
  private next = 0;
  private readonly held = new Map<number, T>();
  private draining = false;

  /** @param emit - receives each value, in position order */
  constructor(private readonly emit: (value: T) => void) {}

  /** Values waiting for an earlier position. */
  get size(): number {
    return this.held.size;
  }

  /**
   * Accepts the value of `position`; emits it, and every held value after it, once it is next.
   * @param position - the value's position, from 0, each given once
   * @param value - the value
   */
  push(position: number, value: T): void {
    if (this.draining || position !== this.next) {
      this.held.set(position, value);
      return;
    }
    this.draining = true;
    try {
      this.next++;
      this.emit(value);
      while (this.held.size > 0) {
        const n = this.next;
        const v = this.held.get(n);
        if (v === undefined && !this.held.has(n)) break;
        this.held.delete(n);
        this.next++;
        this.emit(v as T);
      }
    } finally {
      this.draining = false;
    }
  }

  /** Forgets every held value. */
  clear(): void {
    this.held.clear();
  }
}
