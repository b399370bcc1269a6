import type {
  ServiceBusMessage,
  ServiceBusMessageBatch,
  ServiceBusSender,
} from '@azure/service-bus';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Logger } from 'pino';
import {
  MessageTooLargeError,
  type OutgoingMessage,
  type Publisher,
  PublisherClosedError,
  PublishFailedError,
  validateOutgoing,
} from '../broker/publisher.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { silentLogger } from '../observability/logger.js';
import { instruments, type TelemetryOptions, tracerOf } from '../observability/telemetry.js';
import { requireEntity, resolveClient, type ServiceBusConnectionOptions } from './connection.js';
import { diagnosticProperties } from './extract-trace-context.js';

/** Options of {@link serviceBusPublisher}. */
export interface ServiceBusPublisherOptions extends ServiceBusConnectionOptions, TelemetryOptions {
  /** The queue or topic to send to. */
  queueOrTopic: string;
  /** Logger for the catalog events (`servicebus.sent`). @default a silent logger */
  logger?: Logger;
}

/**
 * A {@link Publisher} on Azure Service Bus, with its destination.
 */
export interface ServiceBusPublisher extends Publisher {
  /** The queue or topic messages go to. */
  readonly queueOrTopic: string;
  /** Closes the sender, and the client when it was created from a connection string. */
  close(): Promise<void>;
}

/**
 * A {@link Publisher} that sends to an Azure Service Bus queue or topic with the official
 * `@azure/service-bus` client. Each `publish` call packs the messages into as few size-limited
 * batches as possible (`createMessageBatch`/`tryAddMessage`) and sends them in order. Every
 * message keeps its `messageId` (so duplicate detection drops replays), `correlationId`,
 * `contentType`, `subject`, partition and session keys, and carries the W3C trace context in
 * the `Diagnostic-Id` application property (plus `tracestate`): the message's own
 * `traceparent`, else the active OpenTelemetry context.
 *
 * All batches are built before the first is sent, so a message too large for an empty batch
 * fails the call with a {@link MessageTooLargeError} before anything is sent. A broker error
 * rejects with a {@link PublishFailedError} (`transient`, and how many messages were already
 * accepted); an abort rejects with `signal.reason`.
 *
 * @param options - connection, destination, logger and telemetry
 * @returns a publisher; call `close()` when done
 *
 * @example
 * ```ts
 * import { serviceBusPublisher } from '@hartonomous/pipelines/service-bus';
 *
 * const publisher = serviceBusPublisher({
 *   connectionString: process.env.SERVICEBUS_CONNECTION_STRING,
 *   queueOrTopic: 'atoms',
 * });
 * await publisher.publish([
 *   { messageId: 'sha256:9f86d081', body: { atomId: 42 }, contentType: 'application/json' },
 * ]);
 * await publisher.close();
 * ```
 * @see {@link Publisher}
 */
export function serviceBusPublisher(options: ServiceBusPublisherOptions): ServiceBusPublisher {
  const who = 'serviceBusPublisher';
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`${who}: options are required`);
  }
  const queueOrTopic = requireEntity(options.queueOrTopic, 'queueOrTopic', who);
  const { client, owned } = resolveClient(options, who);
  const logger = options.logger ?? silentLogger();
  const sender: ServiceBusSender = client.createSender(queueOrTopic);
  let closing: Promise<void> | undefined;
  const inst = instruments(options);
  const sendAttrs = {
    'messaging.system': 'servicebus',
    'messaging.destination.name': queueOrTopic,
    'messaging.operation.type': 'send',
    'messaging.operation.name': 'send',
  };

  async function publish(
    messages: readonly OutgoingMessage[],
    signal?: AbortSignal,
  ): Promise<void> {
    if (signal?.aborted) throw signal.reason;
    if (closing) throw new PublisherClosedError(queueOrTopic);
    validateOutgoing(messages);
    if (messages.length === 0) return;

    const tracer = tracerOf(options);
    const span = tracer.startSpan(`publish ${queueOrTopic}`, {
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.system': 'servicebus',
        'messaging.operation.name': 'publish',
        'messaging.destination.name': queueOrTopic,
        'messaging.batch.message_count': messages.length,
      },
    });
    const spanContext = trace.setSpan(context.active(), span);
    let sent = 0;
    try {
      const opts = signal ? { abortSignal: signal } : {};
      const batches: ServiceBusMessageBatch[] = [];
      let batch = await sender.createMessageBatch(opts);
      for (const m of messages) {
        const sb = toServiceBusMessage(m, spanContext);
        if (batch.tryAddMessage(sb)) continue;
        if (batch.count === 0) {
          throw new MessageTooLargeError(m.messageId, queueOrTopic, batch.maxSizeInBytes);
        }
        batches.push(batch);
        batch = await sender.createMessageBatch(opts);
        if (!batch.tryAddMessage(sb)) {
          throw new MessageTooLargeError(m.messageId, queueOrTopic, batch.maxSizeInBytes);
        }
      }
      batches.push(batch);
      for (const b of batches) {
        const started = performance.now();
        await sender.sendMessages(b, opts);
        sent += b.count;
        inst.messagingOperationDuration.record(performance.now() - started, sendAttrs);
        inst.messagingSent.add(b.count, sendAttrs);
        logEvent(logger, LogEvents.serviceBusSent, () => ({
          destination: queueOrTopic,
          messages: b.count,
          bytes: b.sizeInBytes,
        }));
      }
      span.setStatus({ code: SpanStatusCode.OK });
    } catch (e) {
      span.setStatus({ code: SpanStatusCode.ERROR });
      const errorType = e instanceof Error ? e.name : 'Error';
      inst.messagingSent.add(messages.length - sent, { ...sendAttrs, 'error.type': errorType });
      if (signal?.aborted) throw signal.reason;
      if (e instanceof MessageTooLargeError) throw e;
      const failure = new PublishFailedError(
        queueOrTopic,
        messages.length,
        sent,
        transientOf(e),
        e,
      );
      span.recordException(failure);
      throw failure;
    } finally {
      span.end();
    }
  }

  return {
    queueOrTopic,
    publish,
    close() {
      closing ??= (async () => {
        try {
          await sender.close();
        } finally {
          if (owned) await client.close();
        }
      })();
      return closing;
    },
  };
}

function toServiceBusMessage(
  m: OutgoingMessage,
  ctx: ReturnType<typeof context.active>,
): ServiceBusMessage {
  const applicationProperties: Record<string, string | number | boolean> = {
    ...(m.applicationProperties ?? {}),
  };
  const hasOwn = typeof applicationProperties['Diagnostic-Id'] === 'string';
  if (m.traceparent || !hasOwn) {
    Object.assign(applicationProperties, diagnosticProperties(m.traceparent, m.tracestate, ctx));
  }
  const out: ServiceBusMessage = { body: m.body, messageId: m.messageId, applicationProperties };
  if (m.contentType !== undefined) out.contentType = m.contentType;
  if (m.correlationId !== undefined) out.correlationId = m.correlationId;
  if (m.subject !== undefined) out.subject = m.subject;
  if (m.partitionKey !== undefined) out.partitionKey = m.partitionKey;
  if (m.sessionId !== undefined) out.sessionId = m.sessionId;
  return out;
}

/** Service Bus errors say whether retrying may help; anything else is assumed transient. */
function transientOf(e: unknown): boolean {
  if (typeof e === 'object' && e !== null && 'retryable' in e) {
    const r = (e as { retryable?: unknown }).retryable;
    if (typeof r === 'boolean') return r;
  }
  return true;
}
