import type { ServiceBusReceivedMessage } from '@azure/service-bus';
import { errorGuard, PipelineError } from '../core/errors.js';

/**
 * A message body cannot be turned into the item the pipeline expects (not JSON, JSON but not an
 * object, ...). Retrying cannot help: a {@link serviceBusSource} dead-letters such a message on
 * its first delivery with reason `DecodeFailed` and this error's message as the description.
 * Throw it from your own `decode` too (any throw from `decode` dead-letters the message).
 *
 * @example
 * ```ts
 * import { isMessageDecodeError, jsonObjectBody } from '@hartonomous/pipelines/service-bus';
 *
 * try {
 *   jsonObjectBody({ body: '42', messageId: 'm-1' } as never);
 * } catch (e) {
 *   if (isMessageDecodeError(e)) console.log(e.messageId, e.bodyType); // m-1 number
 * }
 * ```
 */
export class MessageDecodeError extends PipelineError {
  readonly code = 'MESSAGE_DECODE_FAILED' as const;
  /** Retrying cannot succeed. */
  readonly permanent = true as const;
  /**
   * @param messageId - the message's id (`''` when it has none)
   * @param bodyType - what the body was: `string`, `number`, `array`, `null`, `bytes`, ...
   * @param reason - what is wrong with it
   * @param options - `cause`, e.g. the `SyntaxError` of `JSON.parse`
   */
  constructor(
    readonly messageId: string,
    readonly bodyType: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`message ${messageId || '(no id)'}: ${reason}`, options);
  }
}

/**
 * Guard for {@link MessageDecodeError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link MessageDecodeError}
 * @example
 * ```ts
 * import { isMessageDecodeError } from '@hartonomous/pipelines/service-bus';
 * isMessageDecodeError(new Error('x')); // false
 * ```
 */
export const isMessageDecodeError: (e: unknown) => e is MessageDecodeError =
  errorGuard<MessageDecodeError>('MESSAGE_DECODE_FAILED');

/** `typeof`, with `null`, `array` and `bytes` told apart. */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (value instanceof Uint8Array) return 'bytes';
  return typeof value;
}

/**
 * A `decode` for {@link serviceBusSource} that accepts only a JSON object: a body the SDK
 * already decoded to an object, or a string or bytes (UTF-8) holding one. Anything else (not
 * JSON, or valid JSON that is a number, string, array or `null`) throws a
 * {@link MessageDecodeError}, so the source dead-letters the message on its first delivery
 * (`DecodeFailed`) instead of handing it to the pipeline to fail again on every redelivery.
 *
 * @typeParam T - the object type the pipeline expects (not checked beyond "an object": validate
 *   the fields in your first step, or wrap this function)
 * @param message - the received message
 * @returns the body as an object
 * @throws {@link MessageDecodeError} when the body is not a JSON object
 *
 * @example
 * ```ts
 * import { jsonObjectBody, serviceBusSource } from '@hartonomous/pipelines/service-bus';
 *
 * const source = serviceBusSource<{ content: string }>({
 *   connectionString: process.env.SERVICEBUS_CONNECTION_STRING,
 *   queue: 'atoms-in',
 *   decode: jsonObjectBody, // "42", "[1]" or "not json" are dead-lettered at once
 * });
 * ```
 */
export function jsonObjectBody<T extends object = Record<string, unknown>>(
  message: ServiceBusReceivedMessage,
): T {
  const id = String(message.messageId ?? '');
  let body: unknown = message.body;
  if (body instanceof Uint8Array) body = Buffer.from(body).toString('utf8');
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch (e) {
      throw new MessageDecodeError(id, 'string', 'the body is not JSON', { cause: e });
    }
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body) || body instanceof Date) {
    const kind = kindOf(body);
    throw new MessageDecodeError(id, kind, `the body is JSON ${kind}, not an object`);
  }
  return body as T;
}
