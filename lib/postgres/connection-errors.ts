/**
 * The named errors of connecting to a PostgreSQL server, apart from plain unavailability
 * ({@link DatabaseUnavailableError}): a server that does not answer in time, a login the server
 * refuses, a database that does not exist on it.
 *
 * @module
 */

import { errorGuard, messageOf, PipelineError } from '../core/errors.js';
import type { DatabaseBackend } from './errors.js';

/**
 * What timed out: opening a connection (TCP connect, TLS and login) or one statement.
 *
 * @example
 * ```ts
 * import type { DatabaseTimeoutPhase } from '@hartonomous/pipelines/postgres';
 * const phase: DatabaseTimeoutPhase = 'connect';
 * ```
 */
export type DatabaseTimeoutPhase = 'connect' | 'statement';

/**
 * The database did not answer in time: a server that accepts the connection but never
 * completes the login (`phase: 'connect'`, see `connectTimeoutMs` of `openDatabase`), or a
 * statement that ran past `statementTimeoutMs` (the server cancelled it, or the server stopped
 * answering and the client gave up and closed the connection). Nothing of the timed-out
 * statement was committed. Retrying later may succeed.
 *
 * @example
 * ```ts
 * import { isDatabaseTimeoutError, openDatabase } from '@hartonomous/pipelines/postgres';
 *
 * try {
 *   await openDatabase({ url: 'postgres://app@db:5432/app', connectTimeoutMs: 2_000 });
 * } catch (e) {
 *   if (isDatabaseTimeoutError(e)) console.error(`no answer within ${e.timeoutMs} ms (${e.phase})`);
 * }
 * ```
 */
export class DatabaseTimeoutError extends PipelineError {
  readonly code = 'DATABASE_TIMEOUT' as const;
  /**
   * @param backend - the kind of database
   * @param phase - what timed out
   * @param timeoutMs - the limit that was exceeded, in milliseconds
   * @param location - where the database is (host:port), for the message
   * @param options - `cause`: the driver's error
   */
  constructor(
    readonly backend: DatabaseBackend,
    readonly phase: DatabaseTimeoutPhase,
    readonly timeoutMs: number,
    readonly location?: string,
    options?: ErrorOptions,
  ) {
    const where = location ? ` at ${location}` : '';
    super(
      phase === 'connect'
        ? `the ${backend} server${where} did not answer within ${timeoutMs} ms (connect timeout): it accepted the connection but never completed the login; is it overloaded or hung, or is something else listening there?`
        : `a statement on the ${backend} database${where} did not finish within ${timeoutMs} ms (statement timeout); nothing of it was committed`,
      options,
    );
  }
}

/**
 * Guard for {@link DatabaseTimeoutError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link DatabaseTimeoutError}
 * @example
 * ```ts
 * import { DatabaseTimeoutError, isDatabaseTimeoutError } from '@hartonomous/pipelines/postgres';
 * isDatabaseTimeoutError(new DatabaseTimeoutError('postgres', 'connect', 10_000)); // true
 * ```
 */
export const isDatabaseTimeoutError: (e: unknown) => e is DatabaseTimeoutError =
  errorGuard<DatabaseTimeoutError>('DATABASE_TIMEOUT');

/**
 * The server refused the login: a wrong password (SQLSTATE `28P01`), or a user or client
 * address it does not accept (`28000`). Fix the user name or password in the URL (or the
 * server's `pg_hba.conf`); retrying will not help. The password is never part of the message.
 *
 * @example
 * ```ts
 * import { isDatabaseAuthenticationError, openDatabase } from '@hartonomous/pipelines/postgres';
 *
 * try {
 *   await openDatabase({ url: 'postgres://app:wrong@db:5432/app' });
 * } catch (e) {
 *   if (isDatabaseAuthenticationError(e)) console.error(`login refused for ${e.user} (${e.sqlstate})`);
 * }
 * ```
 */
export class DatabaseAuthenticationError extends PipelineError {
  readonly code = 'DATABASE_AUTHENTICATION' as const;
  /**
   * @param user - the user name that tried to log in
   * @param sqlstate - the server's SQLSTATE (`28P01` or `28000`)
   * @param location - where the server is (host:port), for the message
   * @param options - `cause`: the server's error
   */
  constructor(
    readonly user: string,
    readonly sqlstate: string,
    readonly location?: string,
    options?: ErrorOptions,
  ) {
    const where = location ? ` at ${location}` : '';
    super(
      `the PostgreSQL server${where} refused the login of user "${user}" (${sqlstate}: ${
        options?.cause === undefined ? 'authentication failed' : messageOf(options.cause)
      }): check the user name and password of the database URL`,
      options,
    );
  }
}

/**
 * Guard for {@link DatabaseAuthenticationError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link DatabaseAuthenticationError}
 * @example
 * ```ts
 * import { DatabaseAuthenticationError, isDatabaseAuthenticationError } from '@hartonomous/pipelines/postgres';
 * isDatabaseAuthenticationError(new DatabaseAuthenticationError('app', '28P01')); // true
 * ```
 */
export const isDatabaseAuthenticationError: (e: unknown) => e is DatabaseAuthenticationError =
  errorGuard<DatabaseAuthenticationError>('DATABASE_AUTHENTICATION');

/**
 * The server answered, but the database named in the URL does not exist on it (SQLSTATE
 * `3D000`). Create it (`createdb <name>`) or fix the URL's database name; retrying will not help.
 *
 * @example
 * ```ts
 * import { isDatabaseDoesNotExistError, openDatabase } from '@hartonomous/pipelines/postgres';
 *
 * try {
 *   await openDatabase({ url: 'postgres://app@db:5432/typo' });
 * } catch (e) {
 *   if (isDatabaseDoesNotExistError(e)) console.error(`create it first: createdb ${e.database}`);
 * }
 * ```
 */
export class DatabaseDoesNotExistError extends PipelineError {
  readonly code = 'DATABASE_DOES_NOT_EXIST' as const;
  /**
   * @param database - the database name from the URL
   * @param location - where the server is (host:port), for the message
   * @param options - `cause`: the server's error
   */
  constructor(
    readonly database: string,
    readonly location?: string,
    options?: ErrorOptions,
  ) {
    const where = location ? ` at ${location}` : '';
    super(
      `database "${database}" does not exist on the PostgreSQL server${where}: create it (createdb ${database}) or fix the database name in the URL`,
      options,
    );
  }
}

/**
 * Guard for {@link DatabaseDoesNotExistError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link DatabaseDoesNotExistError}
 * @example
 * ```ts
 * import { DatabaseDoesNotExistError, isDatabaseDoesNotExistError } from '@hartonomous/pipelines/postgres';
 * isDatabaseDoesNotExistError(new DatabaseDoesNotExistError('app')); // true
 * ```
 */
export const isDatabaseDoesNotExistError: (e: unknown) => e is DatabaseDoesNotExistError =
  errorGuard<DatabaseDoesNotExistError>('DATABASE_DOES_NOT_EXIST');
