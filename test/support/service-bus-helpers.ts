/**
 * Shared helpers for the Service Bus tests (not a test file).
 * @internal
 * @module
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { ServiceBusClientOptions } from '@azure/service-bus';
import { type Logger, pino } from 'pino';

/** Client options that fail fast instead of the SDK's 30 s retry delays. */
export const fastClient: ServiceBusClientOptions = {
  retryOptions: { maxRetries: 0, retryDelayInMs: 20, maxRetryDelayInMs: 50, timeoutInMs: 5_000 },
};

/**
 * Polls `check` until it returns true (or throws after `timeoutMs`: a guard against a hang,
 * generous so that a loaded machine never trips it; never a speed check).
 */
export async function until(check: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

/** A pino logger at `trace` that keeps every record in `records`. */
export function capturingLogger(): { logger: Logger; records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'trace' },
    {
      write(line: string) {
        records.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  );
  return { logger, records };
}
