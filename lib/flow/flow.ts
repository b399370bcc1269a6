/**
 * Flow control: the bounded queue (a Channel) and the batching and concurrent-mapping
 * operators. The lead re-exports these names from the package root.
 *
 * @module
 */

export { type BatchOptions, batch } from '../operators/batch.js';
export {
  type ConcurrentProject,
  type MapConcurrentOptions,
  mapConcurrent,
} from '../operators/map-concurrent.js';
export {
  type BoundedQueue,
  type BoundedQueueOptions,
  type BoundedQueueSnapshot,
  boundedQueue,
  isQueueClosedError,
  QueueClosedError,
  type QueueFullMode,
  type TryReadResult,
} from './bounded-queue.js';
