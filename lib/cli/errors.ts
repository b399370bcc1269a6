/**
 * The named errors of the `hartonomous` command line: bad usage (exit status 2), a path that
 * does not exist and an embedded database that was never created (exit status 1). Each has an
 * `isXError` guard.
 *
 * @module
 */

import { errorGuard, PipelineError } from '../core/errors.js';

/**
 * The command line is wrong: an unknown command or option, a missing or malformed value, a
 * missing argument. The CLI prints the message and the command's usage, and exits with 2.
 *
 * @example
 * ```ts
 * import { isUsageError, UsageError } from '@hartonomous/pipelines/cli';
 *
 * const e = new UsageError("unknown option '--colour'", 'search');
 * isUsageError(e); // true
 * ```
 */
export class UsageError extends PipelineError {
  readonly code = 'CLI_USAGE' as const;
  /**
   * @param detail - what is wrong, e.g. `unknown option '--colour'`
   * @param command - the command whose usage applies (undefined: the top-level usage)
   */
  constructor(
    readonly detail: string,
    readonly command?: string,
  ) {
    super(detail);
  }
}

/**
 * Guard for {@link UsageError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link UsageError}
 * @example
 * ```ts
 * import { isUsageError, UsageError } from '@hartonomous/pipelines/cli';
 * isUsageError(new UsageError('no command')); // true
 * ```
 */
export const isUsageError: (e: unknown) => e is UsageError = errorGuard<UsageError>('CLI_USAGE');

/**
 * A path named on the command line does not exist (or cannot be read).
 *
 * @example
 * ```ts
 * import { isPathNotFoundError, PathNotFoundError } from '@hartonomous/pipelines/cli';
 *
 * const e = new PathNotFoundError('notes/missing.md');
 * isPathNotFoundError(e) && console.error(e.path);
 * ```
 */
export class PathNotFoundError extends PipelineError {
  readonly code = 'PATH_NOT_FOUND' as const;
  /**
   * @param path - the path as given
   * @param reason - the system's reason when it is not plain absence (e.g. `EACCES`)
   * @param options - `cause`: the system error
   */
  constructor(
    readonly path: string,
    readonly reason: string = 'no such file or directory',
    options?: ErrorOptions,
  ) {
    super(`${path}: ${reason}`, options);
  }
}

/**
 * Guard for {@link PathNotFoundError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link PathNotFoundError}
 * @example
 * ```ts
 * import { isPathNotFoundError, PathNotFoundError } from '@hartonomous/pipelines/cli';
 * isPathNotFoundError(new PathNotFoundError('x.md')); // true
 * ```
 */
export const isPathNotFoundError: (e: unknown) => e is PathNotFoundError =
  errorGuard<PathNotFoundError>('PATH_NOT_FOUND');

/**
 * A read-only command (`search`, `stats`) was pointed at an embedded database folder that does
 * not exist; it is not created behind the user's back. `ingest` or `migrate` create it.
 *
 * @example
 * ```ts
 * import { DatabaseNotFoundError, isDatabaseNotFoundError } from '@hartonomous/pipelines/cli';
 *
 * const e = new DatabaseNotFoundError('.data/pglite');
 * isDatabaseNotFoundError(e) && console.error(e.dataDir);
 * ```
 */
export class DatabaseNotFoundError extends PipelineError {
  readonly code = 'DATABASE_NOT_FOUND' as const;
  /** @param dataDir - the PGlite data folder that was looked for */
  constructor(readonly dataDir: string) {
    super(
      `no database in ${dataDir}: run 'hartonomous ingest <path>' or 'hartonomous migrate' first, or pass --db/--data-dir`,
    );
  }
}

/**
 * Guard for {@link DatabaseNotFoundError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link DatabaseNotFoundError}
 * @example
 * ```ts
 * import { DatabaseNotFoundError, isDatabaseNotFoundError } from '@hartonomous/pipelines/cli';
 * isDatabaseNotFoundError(new DatabaseNotFoundError('.data/pglite')); // true
 * ```
 */
export const isDatabaseNotFoundError: (e: unknown) => e is DatabaseNotFoundError =
  errorGuard<DatabaseNotFoundError>('DATABASE_NOT_FOUND');

/**
 * A database URL given to the command line (`--db`, or `DATABASE_URL` in the environment)
 * cannot be used: not a URL, not `postgres://` or `postgresql://`, no database name, or a
 * malformed `%`-escape. The message names where the URL came from and what is wrong, never
 * the URL itself (it may hold a password). The CLI exits with 1.
 *
 * @example
 * ```ts
 * import { InvalidDatabaseUrlError, isInvalidDatabaseUrlError } from '@hartonomous/pipelines/cli';
 *
 * const e = new InvalidDatabaseUrlError('DATABASE_URL', 'the password has a malformed %-escape');
 * isInvalidDatabaseUrlError(e) && console.error(e.message);
 * ```
 */
export class InvalidDatabaseUrlError extends PipelineError {
  readonly code = 'INVALID_DATABASE_URL' as const;
  /**
   * @param source - where the URL came from: `'--db'` or `'DATABASE_URL'`
   * @param problem - what is wrong with it
   */
  constructor(
    readonly source: string,
    readonly problem: string,
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
 * import { InvalidDatabaseUrlError, isInvalidDatabaseUrlError } from '@hartonomous/pipelines/cli';
 * isInvalidDatabaseUrlError(new InvalidDatabaseUrlError('--db', 'not a URL')); // true
 * ```
 */
export const isInvalidDatabaseUrlError: (e: unknown) => e is InvalidDatabaseUrlError =
  errorGuard<InvalidDatabaseUrlError>('INVALID_DATABASE_URL');

/**
 * Checks a PostgreSQL URL before anything connects with it, so a typo is one clear line
 * rather than a driver's `URIError: URI malformed`.
 *
 * @param url - the URL
 * @param source - where it came from, for the message: `'--db'` or `'DATABASE_URL'`
 * @throws {@link InvalidDatabaseUrlError} when it is not a URL, not `postgres:` or
 *   `postgresql:`, names no database, or holds a malformed `%`-escape
 * @internal
 */
export function checkDatabaseUrl(url: string, source: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidDatabaseUrlError(source, 'not a URL (e.g. postgres://user@host:5432/db)');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new InvalidDatabaseUrlError(
      source,
      `it must start with postgres:// or postgresql://, not ${parsed.protocol}//`,
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
      );
    }
  }
  if (parsed.pathname === '' || parsed.pathname === '/') {
    throw new InvalidDatabaseUrlError(
      source,
      'it names no database (e.g. postgres://user@host:5432/db)',
    );
  }
}
