import { type Logger, pino } from 'pino';

let silent: Logger | undefined;

/**
 * The default logger: a silent pino instance, created on first use (never at import).
 * @internal
 */
export function silentLogger(): Logger {
  silent ??= pino({ level: 'silent' });
  return silent;
}
