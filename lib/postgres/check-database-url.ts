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
 * The database URL cannot be used. The message and `url` never contain the password (the
 * URL is shown with the password replaced by `***`, or not at all when it does not parse).
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
   * @param reason - what was wrong
   * @param url - the URL without its password (`'(unparseable)'` when it does not parse)
   * @param detail - a human-readable description
   */
  constructor(
    readonly reason: InvalidDatabaseUrlReason,
    readonly url: string,
    detail: string,
  ) {
    super(`invalid database URL ${url}: ${detail}`);
  }
}

/**
 * Guard for {@link InvalidDatabaseUrlError}.
 * @param e - any caught value
 * @returns whether `e` is an {@link InvalidDatabaseUrlError}
 * @example
 * ```ts
 * import { InvalidDatabaseUrlError, isInvalidDatabaseUrlError } from '@hartonomous/pipelines/postgres';
 * isInvalidDatabaseUrlError(new InvalidDatabaseUrlError('syntax', '(unparseable)', 'not a URL')); // true
 * ```
 */
export const isInvalidDatabaseUrlError: (e: unknown) => e is InvalidDatabaseUrlError =
  errorGuard<InvalidDatabaseUrlError>('INVALID_DATABASE_URL');

/**
 * Checks a PostgreSQL connection URL before the driver sees it, so a typo gives a named error
 * instead of the driver's `URIError: URI malformed` or `Invalid URL`: it must parse as a URL,
 * use `postgres:` or `postgresql:`, have well-formed `%` escapes in the user, password and
 * database name, and name a database.
 *
 * @param url - the connection URL
 * @throws {@link InvalidDatabaseUrlError}
 * @internal
 *
 * @example
 * ```ts
 * checkDatabaseUrl('postgres://app@127.0.0.1:5432/app'); // passes
 * ```
 */
export function checkDatabaseUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidDatabaseUrlError(
      'syntax',
      '(unparseable)',
      'it is not a URL (expected postgres://user:password@host:port/database)',
    );
  }
  const shown = redacted(parsed);
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new InvalidDatabaseUrlError(
      'protocol',
      shown,
      `the scheme is ${parsed.protocol.replace(/:$/, '')}, expected postgres or postgresql`,
    );
  }
  for (const [part, value] of [
    ['user name', parsed.username],
    ['password', parsed.password],
    ['database name', parsed.pathname],
  ] as const) {
    try {
      decodeURIComponent(value);
    } catch {
      throw new InvalidDatabaseUrlError(
        'encoding',
        shown,
        `the ${part} has a malformed %-escape (write a literal % as %25)`,
      );
    }
  }
  if (parsed.pathname.replace(/^\/+/, '') === '') {
    throw new InvalidDatabaseUrlError('no-database', shown, 'it names no database (add /name)');
  }
}

function redacted(u: URL): string {
  const copy = new URL(u.href);
  if (copy.password) copy.password = '***';
  return copy.href;
}
