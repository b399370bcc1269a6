import { ServiceBusClient, type ServiceBusClientOptions } from '@azure/service-bus';

/**
 * How a Service Bus component gets its client: a connection string (the component creates the
 * client and closes it on `close()`), or a client you own and close yourself.
 *
 * @example
 * ```ts
 * import type { ServiceBusConnectionOptions } from '@hartonomous/pipelines/service-bus';
 *
 * const viaString: ServiceBusConnectionOptions = {
 *   connectionString: process.env.SERVICEBUS_CONNECTION_STRING,
 *   clientOptions: { retryOptions: { maxRetries: 5 } },
 * };
 * ```
 */
export interface ServiceBusConnectionOptions {
  /**
   * A Service Bus connection string. Exactly one of `connectionString` and `client`.
   * @default undefined
   */
  connectionString?: string;
  /**
   * An existing client (not closed by the component). Exactly one of `connectionString` and
   * `client`. @default undefined
   */
  client?: ServiceBusClient;
  /**
   * Options for the client created from `connectionString` (retry, web sockets, ...).
   * @default undefined (the SDK's defaults)
   */
  clientOptions?: ServiceBusClientOptions;
}

/**
 * Validates the connection options and returns the client and whether the caller owns it.
 * @internal
 */
export function resolveClient(
  options: ServiceBusConnectionOptions,
  who: string,
): { client: ServiceBusClient; owned: boolean } {
  const { connectionString, client } = options;
  if (client !== undefined && connectionString !== undefined) {
    throw new TypeError(`${who}: give either connectionString or client, not both`);
  }
  if (client !== undefined) {
    if (typeof client !== 'object' || client === null) {
      throw new TypeError(`${who}: client must be a ServiceBusClient`);
    }
    return { client, owned: false };
  }
  if (typeof connectionString !== 'string' || connectionString.trim() === '') {
    throw new TypeError(`${who}: connectionString (a non-empty string) or client is required`);
  }
  return { client: new ServiceBusClient(connectionString, options.clientOptions), owned: true };
}

/**
 * Throws a TypeError unless `value` is a non-empty entity name.
 * @internal
 */
export function requireEntity(value: unknown, name: string, who: string): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new TypeError(`${who}: ${name} must be a non-empty string`);
  }
  return value;
}

/**
 * Throws a TypeError unless `value` is undefined or an integer within [min, max].
 * @internal
 */
export function optionalInt(
  value: unknown,
  name: string,
  who: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(`${who}: ${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
}
