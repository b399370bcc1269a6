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

export {
  checkDatabaseUrl,
  InvalidDatabaseUrlError,
  isInvalidDatabaseUrlError,
} from '../postgres/check-database-url.js';
