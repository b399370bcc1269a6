import { errorGuard, PipelineError } from '../core/errors.js';

/**
 * Why a database URL was rejected: not a URL at all (`'syntax'`), not `postgres:` or
 * `postgresql:` (`'protocol'`), a malformed `%` escape in the user, password or database
 * name (`'encoding'`), or no database name (`'no-database'`).
 *
 * @example
 * ```ts
 * import type { InvalidDatabaseUrlReason } from '@hartonomous/pipelines/postgres';
 * const typo: InvalidDatabaseUrlReason[] = ['syntax', 'encoding'];
 * ```
 */
export type InvalidDatabaseUrlReason = 'syntax' | 'protocol' | 'encoding' | 'no-database';

/**
 * A database URL (`openDatabase`'s `url`, `DATABASE_URL`, the CLI's `--db`) cannot be used:
 * not a URL, not `postgres://` or `postgresql://`, no database name, or a malformed
 * `%`-escape. The message names where the URL came from and what is wrong, never the URL
 * itself (it may hold a password). The CLI exits with 1.
 *
 * @example
 * ```ts
 * import { isInvalidDatabaseUrlError, openDatabase } from '@hartonomous/pipelines/postgres';
 *
 * try {
 *   await openDatabase({ url: 'postgres://app:50%off@db/app' });
 * } catch (e) {
 *   if (isInvalidDatabaseUrlError(e)) console.error(e.reason, e.message); // 'encoding' ...
 * }
 * ```
 */
export class InvalidDatabaseUrlError extends PipelineError {
  readonly code = 'INVALID_DATABASE_URL' as const;
  /**
   * @param source - where the URL came from: `'url'`, `'--db'` or `'DATABASE_URL'`
   * @param problem - what is wrong with it
   * @param reason - the kind of problem, when known
   */
  constructor(
    readonly source: string,
    readonly problem: string,
    readonly reason?: InvalidDatabaseUrlReason,
  ) {
    super(`${source} is not a usable PostgreSQL URL: ${problem}`);
  }
}

/**
 * Guard for {@link InvalidDatabaseUrlError}.
 * @param e - any caught value
 * @returns whether `e` is an {@link InvalidDatabaseUrlError}
 * @example
 * ```ts
 * import { InvalidDatabaseUrlError, isInvalidDatabaseUrlError } from '@hartonomous/pipelines/postgres';
 * isInvalidDatabaseUrlError(new InvalidDatabaseUrlError('--db', 'not a URL', 'syntax')); // true
 * ```
 */
export const isInvalidDatabaseUrlError: (e: unknown) => e is InvalidDatabaseUrlError =
  errorGuard<InvalidDatabaseUrlError>('INVALID_DATABASE_URL');

/**
 * Checks a PostgreSQL URL before anything connects with it, so a typo is one clear error
 * rather than a driver's `URIError: URI malformed` or `TypeError: Invalid URL`.
 *
 * @param url - the URL
 * @param source - where it came from, for the message: `'url'`, `'--db'` or `'DATABASE_URL'`
 * @throws {@link InvalidDatabaseUrlError} when it is not a URL, not `postgres:` or
 *   `postgresql:`, names no database, or holds a malformed `%`-escape
 * @internal
 *
 * @example
 * ```ts
 * checkDatabaseUrl('postgres://app@127.0.0.1:5432/app', 'url'); // passes
 * ```
 */
export function checkDatabaseUrl(url: string, source = 'url'): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidDatabaseUrlError(
      source,
      'not a URL (e.g. postgres://user@host:5432/db)',
      'syntax',
    );
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new InvalidDatabaseUrlError(
      source,
      `it must start with postgres:// or postgresql://, not ${parsed.protocol}//`,
      'protocol',
    );
  }
  const parts: [string, string][] = [
    ['user name', parsed.username],
    ['password', parsed.password],
    ['database name', parsed.pathname.slice(1)],
  ];
  for (const [part, value] of parts) {
    try {
      decodeURIComponent(value);
    } catch {
      throw new InvalidDatabaseUrlError(
        source,
        `the ${part} holds a malformed %-escape (write a literal % as %25)`,
        'encoding',
      );
    }
  }
  if (parsed.pathname === '' || parsed.pathname === '/') {
    throw new InvalidDatabaseUrlError(
      source,
      'it names no database (e.g. postgres://user@host:5432/db)',
      'no-database',
    );
  }
}
