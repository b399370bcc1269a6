/**
 * Azure Service Bus for `@hartonomous/pipelines`: a {@link Publisher} that sends batched
 * messages with stable ids and W3C trace context, and a pull-based peekLock source with
 * idempotent settle helpers and a poison-message policy. Import from
 * `@hartonomous/pipelines/service-bus`; the core package never loads `@azure/service-bus`.
 *
 * @module
 */
export type { Publisher } from '../core/publisher.js';
export type { ServiceBusConnectionOptions } from './connection.js';
export { DIAGNOSTIC_ID, extractTraceContext, TRACESTATE } from './extract-trace-context.js';
export {
  type ServiceBusPublisher,
  type ServiceBusPublisherOptions,
  serviceBusPublisher,
} from './publisher.js';
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
