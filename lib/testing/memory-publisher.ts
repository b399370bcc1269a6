/**
 * An in-process {@link Publisher} for tests and for running without a broker.
 *
 * @module
 */
import {
  type OutgoingMessage,
  type Publisher,
  PublisherClosedError,
  PublishFailedError,
  validateOutgoing,
} from '../broker/publisher.js';
/** Options of {@link memoryPublisher}. */
export interface MemoryPublisherOptions {
  /**
   * Failure injection. A number `n` makes the first `n` publish calls reject with a transient
   * {@link PublishFailedError}; a function is asked before each call (with the messages and the
   * 1-based call number) and its non-`undefined` return value is thrown instead of publishing.
   * @default undefined (never fails)
   */
  fail?: number | ((messages: readonly OutgoingMessage[], call: number) => unknown);
  /**
   * Drop a message whose `messageId` was already recorded, like a broker's duplicate detection.
   * @default false
   */
  dedupe?: boolean;
  /** Keep at most this many recorded messages (oldest dropped first). @default Infinity */
  capacity?: number;
  /** Name used in errors. @default 'memory' */
  destination?: string;
}

/**
 * An in-process {@link Publisher}: what was published, for tests and for running without a
 * broker. Reading `messages` gives a copy.
 */
export interface MemoryPublisher extends Publisher {
  /** The messages accepted so far, in order. */
  readonly messages: readonly OutgoingMessage[];
  /** How many `publish` calls were made (failed ones included). */
  readonly calls: number;
  /** Messages dropped as duplicates (with `dedupe: true`). */
  readonly duplicates: number;
  /** True after `close()`. */
  readonly closed: boolean;
  /** Forgets every recorded message (and the ids used for `dedupe`). */
  clear(): void;
  /** Closes the publisher; later `publish` calls reject with {@link PublisherClosedError}. */
  close(): Promise<void>;
}

/**
 * Creates an in-process publisher that records messages in memory, with optional duplicate
 * dropping and failure injection. It honours the AbortSignal and `close()` like a real one.
 *
 * @param options - failure injection, dedupe and capacity (see {@link MemoryPublisherOptions})
 * @returns a {@link MemoryPublisher}
 *
 * @example
 * ```ts
 * import { memoryPublisher } from '@hartonomous/pipelines/testing';
 *
 * const publisher = memoryPublisher({ fail: 1, dedupe: true });
 * await publisher.publish([{ messageId: 'a', body: 1 }]).catch(() => {}); // injected failure
 * await publisher.publish([{ messageId: 'a', body: 1 }]);
 * await publisher.publish([{ messageId: 'a', body: 1 }]); // dropped as a duplicate
 * console.log(publisher.messages.length, publisher.duplicates); // 1 1
 * ```
 * @see {@link Publisher}
 */
export function memoryPublisher(options: MemoryPublisherOptions = {}): MemoryPublisher {
  const { fail, dedupe = false, capacity = Number.POSITIVE_INFINITY } = options;
  const destination = options.destination ?? 'memory';
  if (fail !== undefined && typeof fail !== 'function') {
    if (!Number.isInteger(fail) || fail < 0) {
      throw new TypeError(`memoryPublisher: fail must be a non-negative integer or a function`);
    }
  }
  if (!(capacity > 0)) throw new TypeError('memoryPublisher: capacity must be > 0');

  let recorded: OutgoingMessage[] = [];
  const seen = new Set<string>();
  let calls = 0;
  let duplicates = 0;
  let closed = false;

  return {
    get messages() {
      return recorded.slice();
    },
    get calls() {
      return calls;
    },
    get duplicates() {
      return duplicates;
    },
    get closed() {
      return closed;
    },
    clear() {
      recorded = [];
      seen.clear();
      duplicates = 0;
    },
    async close() {
      closed = true;
    },
    async publish(messages, signal) {
      if (signal?.aborted) throw signal.reason;
      if (closed) throw new PublisherClosedError(destination);
      validateOutgoing(messages);
      const call = ++calls;
      if (typeof fail === 'number' && call <= fail) {
        throw new PublishFailedError(
          destination,
          messages.length,
          0,
          true,
          new Error(`injected failure ${call} of ${fail}`),
        );
      }
      if (typeof fail === 'function') {
        const injected = fail(messages, call);
        if (injected !== undefined) throw injected;
      }
      for (const m of messages) {
        if (dedupe) {
          if (seen.has(m.messageId)) {
            duplicates++;
            continue;
          }
          seen.add(m.messageId);
        }
        recorded.push(m);
      }
      if (recorded.length > capacity) recorded.splice(0, recorded.length - capacity);
    },
  };
}
