/**
 * The broker-neutral publishing contract: a {@link Publisher} sends {@link OutgoingMessage}s
 * somewhere (Azure Service Bus, an in-process array, your own broker), and the errors every
 * publisher shares. This module imports no broker SDK.
 *
 * @module
 */
import { errorGuard, messageOf, PipelineError } from '../core/errors.js';

/**
 * One message to publish. `messageId` is required and should be stable for the content (for
 * example an atom's content hash), so a broker with duplicate detection drops a replay after a
 * crash between "sent" and "marked as sent".
 *
 * @example
 * ```ts
 * import type { OutgoingMessage } from '@hartonomous/pipelines';
 *
 * const message: OutgoingMessage = {
 *   messageId: 'sha256:9f86d081',
 *   body: { atomId: 42 },
 *   contentType: 'application/json',
 *   correlationId: 'ingest-2024-05-01',
 *   applicationProperties: { kind: 'atom.created' },
 * };
 * ```
 */
export interface OutgoingMessage {
  /** Stable, unique id of the message (used for duplicate detection). */
  readonly messageId: string;
  /** The payload; objects are sent as JSON by the Service Bus publisher. */
  readonly body: unknown;
  /** MIME type of the body, e.g. `application/json`. @default undefined (not set) */
  readonly contentType?: string;
  /** Correlation id, e.g. the pipeline item's correlation id. @default undefined (not set) */
  readonly correlationId?: string;
  /** Application-defined label (Service Bus `subject`). @default undefined (not set) */
  readonly subject?: string;
  /** Partition key for partitioned entities. @default undefined (not set) */
  readonly partitionKey?: string;
  /** Session id for session-enabled entities. @default undefined (not set) */
  readonly sessionId?: string;
  /** Custom properties sent beside the body. @default undefined (none) */
  readonly applicationProperties?: Readonly<Record<string, string | number | boolean>>;
  /**
   * W3C `traceparent` of the producing span. When absent, a publisher takes the active
   * OpenTelemetry context. @default undefined (use the active context)
   */
  readonly traceparent?: string;
  /** W3C `tracestate` to send with `traceparent`. @default undefined (none) */
  readonly tracestate?: string;
}

/**
 * Sends messages to a broker. `publish` resolves once the broker has accepted every message
 * (at-least-once: after a failure some messages may have been accepted; publishing them again
 * with the same `messageId` is safe on a broker with duplicate detection). It rejects with
 * `signal.reason` when `signal` aborts, with a {@link MessageTooLargeError} when a message can
 * never fit, with a {@link PublisherClosedError} after `close()`, and with a
 * {@link PublishFailedError} otherwise.
 *
 * @example
 * ```ts
 * import type { Publisher } from '@hartonomous/pipelines';
 * import { memoryPublisher } from '@hartonomous/pipelines/testing';
 *
 * const publisher: Publisher = memoryPublisher();
 * await publisher.publish([{ messageId: 'a1', body: { n: 1 } }]);
 * await publisher.close?.();
 * ```
 * @see `memoryPublisher` in `@hartonomous/pipelines/testing`
 */
export interface Publisher {
  /**
   * Publishes `messages` (in order, batched as the broker allows).
   * @param messages - the messages; an empty array resolves at once
   * @param signal - aborts the send
   * @returns a promise that resolves when the broker accepted every message
   */
  publish(messages: readonly OutgoingMessage[], signal?: AbortSignal): Promise<void>;
  /**
   * Releases the publisher's connections; later `publish` calls reject.
   * @returns a promise that resolves when closed
   */
  close?(): Promise<void>;
}

/**
 * Publishing failed (broker unreachable, entity missing, rejected by the broker, ...). The
 * original error is the `cause`. `transient` says whether trying again later may succeed.
 *
 * @example
 * ```ts
 * import { isPublishFailedError } from '@hartonomous/pipelines';
 *
 * try {
 *   await publisher.publish(messages);
 * } catch (e) {
 *   if (isPublishFailedError(e) && e.transient) console.warn('broker down, will retry', e.sent);
 * }
 * ```
 */
export class PublishFailedError extends PipelineError {
  readonly code = 'PUBLISH_FAILED' as const;
  /**
   * @param destination - queue or topic the messages were for
   * @param attempted - how many messages the publish call held
   * @param sent - how many of them the broker had accepted before the failure
   * @param transient - whether trying again later may succeed
   * @param cause - the broker client's error
   */
  constructor(
    readonly destination: string,
    readonly attempted: number,
    readonly sent: number,
    readonly transient: boolean,
    cause: unknown,
  ) {
    super(
      `publishing ${attempted} message(s) to '${destination}' failed after ${sent} were sent: ${messageOf(cause)}`,
      { cause },
    );
  }
}

/**
 * Guard for {@link PublishFailedError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link PublishFailedError}
 * @example
 * ```ts
 * import { isPublishFailedError } from '@hartonomous/pipelines';
 * isPublishFailedError(new Error('x')); // false
 * ```
 */
export const isPublishFailedError: (e: unknown) => e is PublishFailedError =
  errorGuard<PublishFailedError>('PUBLISH_FAILED');

/**
 * A message is larger than the broker accepts even alone in an empty batch. Publishing it again
 * cannot succeed (a permanent failure). Nothing of the publish call was sent.
 *
 * @example
 * ```ts
 * import { isMessageTooLargeError } from '@hartonomous/pipelines';
 *
 * try {
 *   await publisher.publish([{ messageId: 'big', body: hugeText }]);
 * } catch (e) {
 *   if (isMessageTooLargeError(e)) console.error(e.messageId, e.maxSizeInBytes);
 * }
 * ```
 */
export class MessageTooLargeError extends PipelineError {
  readonly code = 'MESSAGE_TOO_LARGE' as const;
  /**
   * @param messageId - id of the message that does not fit
   * @param destination - queue or topic
   * @param maxSizeInBytes - the broker's limit for one batch (and so for one message)
   */
  constructor(
    readonly messageId: string,
    readonly destination: string,
    readonly maxSizeInBytes: number,
  ) {
    super(
      `message '${messageId}' does not fit in an empty batch for '${destination}' (limit ${maxSizeInBytes} bytes)`,
    );
  }
}

/**
 * Guard for {@link MessageTooLargeError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link MessageTooLargeError}
 * @example
 * ```ts
 * import { isMessageTooLargeError, MessageTooLargeError } from '@hartonomous/pipelines';
 * isMessageTooLargeError(new MessageTooLargeError('m1', 'q', 1024)); // true
 * ```
 */
export const isMessageTooLargeError: (e: unknown) => e is MessageTooLargeError =
  errorGuard<MessageTooLargeError>('MESSAGE_TOO_LARGE');

/**
 * `publish` was called after `close()`.
 *
 * @example
 * ```ts
 * import { isPublisherClosedError } from '@hartonomous/pipelines';
 * import { memoryPublisher } from '@hartonomous/pipelines/testing';
 *
 * const p = memoryPublisher();
 * await p.close();
 * await p.publish([{ messageId: 'x', body: 1 }]).catch((e) => isPublisherClosedError(e)); // true
 * ```
 */
export class PublisherClosedError extends PipelineError {
  readonly code = 'PUBLISHER_CLOSED' as const;
  /** @param destination - what the publisher sent to */
  constructor(readonly destination: string) {
    super(`publisher for '${destination}' is closed`);
  }
}

/**
 * Guard for {@link PublisherClosedError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link PublisherClosedError}
 * @example
 * ```ts
 * import { isPublisherClosedError, PublisherClosedError } from '@hartonomous/pipelines';
 * isPublisherClosedError(new PublisherClosedError('q')); // true
 * ```
 */
export const isPublisherClosedError: (e: unknown) => e is PublisherClosedError =
  errorGuard<PublisherClosedError>('PUBLISHER_CLOSED');

/**
 * Checks messages before sending: each needs a non-empty string `messageId`.
 * @internal
 */
export function validateOutgoing(messages: readonly OutgoingMessage[]): void {
  if (!Array.isArray(messages)) throw new TypeError('publish: messages must be an array');
  for (const [i, m] of messages.entries()) {
    if (typeof m !== 'object' || m === null) {
      throw new TypeError(`publish: messages[${i}] must be an object`);
    }
    if (typeof m.messageId !== 'string' || m.messageId.length === 0) {
      throw new TypeError(`publish: messages[${i}].messageId must be a non-empty string`);
    }
  }
}
