/**
 * `@hartonomous/pipelines/testing`: helpers for testing code built on the library. An in-process
 * {@link memoryPublisher} with duplicate dropping and failure injection stands in for a broker.
 *
 * @example
 * ```ts
 * import { memoryPublisher } from '@hartonomous/pipelines/testing';
 * const publisher = memoryPublisher({ fail: 1 });
 * await publisher.publish([{ messageId: 'a', body: 1 }]).catch(() => {}); // injected failure
 * await publisher.publish([{ messageId: 'a', body: 1 }]);
 * console.log(publisher.messages.length); // 1
 * ```
 *
 * @module
 */
export {
  type MemoryPublisher,
  type MemoryPublisherOptions,
  memoryPublisher,
} from './memory-publisher.js';
