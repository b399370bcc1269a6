/**
 * Azure Service Bus for `@hartonomous/pipelines`: a {@link Publisher} that sends batched
 * messages with stable ids and W3C trace context, a pull-based peekLock source with
 * idempotent settle helpers and a poison-message policy, and a ready worker that runs a
 * pipeline over a queue and settles each message by its outcome. Import from
 * `@hartonomous/pipelines/service-bus`; the core package never loads `@azure/service-bus`.
 *
 * @module
 */
export type { Publisher } from '../broker/publisher.js';
export type { ServiceBusConnectionOptions } from './connection.js';
export { DIAGNOSTIC_ID, extractTraceContext, TRACESTATE } from './extract-trace-context.js';
export {
  type ServiceBusPublisher,
  type ServiceBusPublisherOptions,
  serviceBusPublisher,
} from './publisher.js';
export {
  RECEIVE_STEP,
  type ServiceBusWorker,
  type ServiceBusWorkerHealth,
  type ServiceBusWorkerOptions,
  type ServiceBusWorkerReport,
  serviceBusWorker,
} from './service-bus-worker.js';
export {
  type DeadLetterDetails,
  type SettleAction,
  type Settleable,
  type SettleOutcome,
  type SettlePolicy,
  settleBy,
} from './settle-by.js';
export {
  type ReceivedItem,
  type ServiceBusSource,
  type ServiceBusSourceOptions,
  serviceBusSource,
} from './source.js';
