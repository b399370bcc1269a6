/**
 * The named errors of the database layer.
 *
 * @module
 */

import { errorGuard, isPipelineError, messageOf, PipelineError } from '../core/errors.js';

/**
 * The database's schema was migrated by a newer version of the library than this one:
 * `found` (the highest version recorded in `schema_migrations`) is above `known` (the highest
 * migration this library ships). Opening fails rather than writing through a schema it does
 * not understand; upgrade the library.
 *
 * @example
 * ```ts
 * import { isSchemaTooNewError, openDatabase } from '@hartonomous/pipelines/postgres';
 *
 * try {
 *   await openDatabase({ url: process.env.DATABASE_URL });
 * } catch (e) {
 *   if (isSchemaTooNewError(e)) console.error(`schema v${e.found}, library knows v${e.known}`);
 * }
 * ```
 */
export class SchemaTooNewError extends PipelineError {
  readonly code = 'SCHEMA_TOO_NEW' as const;
  /**
   * @param found - highest schema version recorded in the database
   * @param known - highest migration version this library knows
   * @param schema - the PostgreSQL schema (namespace) that was checked
   */
  constructor(
    readonly found: number,
    readonly known: number,
    readonly schema: string,
  ) {
    super(
      `database schema "${schema}" is at version ${found}, newer than the ${known} this library knows; upgrade @hartonomous/pipelines`,
    );
  }
}

/**
 * Guard for {@link SchemaTooNewError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link SchemaTooNewError}
 * @example
 * ```ts
 * import { isSchemaTooNewError, SchemaTooNewError } from '@hartonomous/pipelines/postgres';
 * isSchemaTooNewError(new SchemaTooNewError(9, 4, 'public')); // true
 * ```
 */
export const isSchemaTooNewError: (e: unknown) => e is SchemaTooNewError =
  errorGuard<SchemaTooNewError>('SCHEMA_TOO_NEW');

/**
 * The database was opened with `migrate: false` and its schema is older than this library
 * needs (`found` below `known`). Run {@link migrate} first.
 *
 * @example
 * ```ts
 * import { isSchemaOutdatedError, migrate } from '@hartonomous/pipelines/postgres';
 *
 * try {
 *   await persistAtoms(db, atoms);
 * } catch (e) {
 *   if (isSchemaOutdatedError(e)) await migrate(db);
 * }
 * ```
 */
export class SchemaOutdatedError extends PipelineError {
  readonly code = 'SCHEMA_OUTDATED' as const;
  /**
   * @param found - highest schema version recorded in the database (0 when empty)
   * @param known - highest migration version this library knows
   * @param schema - the PostgreSQL schema (namespace) that was checked
   */
  constructor(
    readonly found: number,
    readonly known: number,
    readonly schema: string,
  ) {
    super(
      `database schema "${schema}" is at version ${found}, older than the ${known} this library needs; run migrate(db)`,
    );
  }
}

/**
 * Guard for {@link SchemaOutdatedError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link SchemaOutdatedError}
 * @example
 * ```ts
 * import { isSchemaOutdatedError, SchemaOutdatedError } from '@hartonomous/pipelines/postgres';
 * isSchemaOutdatedError(new SchemaOutdatedError(0, 4, 'public')); // true
 * ```
 */
export const isSchemaOutdatedError: (e: unknown) => e is SchemaOutdatedError =
  errorGuard<SchemaOutdatedError>('SCHEMA_OUTDATED');

/**
 * A setting fixed when a database is first migrated.
 *
 * @example
 * ```ts
 * import type { DatabaseSetting } from '@hartonomous/pipelines/postgres';
 * const setting: DatabaseSetting = 'embeddingDimensions';
 * ```
 */
export type DatabaseSetting = 'embeddingDimensions' | 'vectorStorage';

/**
 * The database was created with a different embedding dimension or vector storage than the
 * options ask for. Both are fixed by the first migration (the column type depends on them).
 *
 * @example
 * ```ts
 * import { isDatabaseSettingsMismatchError, openDatabase } from '@hartonomous/pipelines/postgres';
 *
 * try {
 *   await openDatabase({ dimensions: 768 });
 * } catch (e) {
 *   if (isDatabaseSettingsMismatchError(e)) console.error(e.setting, e.stored);
 * }
 * ```
 */
export class DatabaseSettingsMismatchError extends PipelineError {
  readonly code = 'DATABASE_SETTINGS_MISMATCH' as const;
  /**
   * @param setting - which setting differs
   * @param requested - the value the options asked for
   * @param stored - the value the database was created with
   */
  constructor(
    readonly setting: DatabaseSetting,
    readonly requested: string | number,
    readonly stored: string | number,
  ) {
    super(`the database was created with ${setting} = ${stored}, but ${requested} was requested`);
  }
}

/**
 * Guard for {@link DatabaseSettingsMismatchError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link DatabaseSettingsMismatchError}
 * @example
 * ```ts
 * import { isDatabaseSettingsMismatchError } from '@hartonomous/pipelines/postgres';
 * isDatabaseSettingsMismatchError(new Error('x')); // false
 * ```
 */
export const isDatabaseSettingsMismatchError: (e: unknown) => e is DatabaseSettingsMismatchError =
  errorGuard<DatabaseSettingsMismatchError>('DATABASE_SETTINGS_MISMATCH');

/**
 * Which kind of database: a PostgreSQL server or the embedded PGlite.
 *
 * @example
 * ```ts
 * import type { DatabaseBackend } from '@hartonomous/pipelines/postgres';
 * const backend: DatabaseBackend = db.backend; // 'postgres' | 'pglite'
 * ```
 */
export type DatabaseBackend = 'postgres' | 'pglite';

/**
 * The database could not be reached or went away (connection refused or reset, server
 * shut down, embedded database closed). The driver's error is kept as `cause`. Retrying later
 * may succeed; nothing from the failed statement was committed.
 *
 * @example
 * ```ts
 * import { isDatabaseUnavailableError } from '@hartonomous/pipelines/postgres';
 *
 * try {
 *   await persistAtoms(db, atoms);
 * } catch (e) {
 *   if (isDatabaseUnavailableError(e)) console.error('database down:', e.reason);
 * }
 * ```
 */
export class DatabaseUnavailableError extends PipelineError {
  readonly code = 'DATABASE_UNAVAILABLE' as const;
  /** A short description of the driver failure (its code and message). */
  readonly reason: string;
  /**
   * @param backend - the kind of database
   * @param cause - the driver's error
   */
  constructor(
    readonly backend: DatabaseBackend,
    cause: unknown,
  ) {
    const code = driverCode(cause);
    const reason = code ? `${code}: ${messageOf(cause)}` : messageOf(cause);
    super(`the ${backend} database is unavailable (${reason})`, { cause });
    this.reason = reason;
  }
}

/**
 * Guard for {@link DatabaseUnavailableError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link DatabaseUnavailableError}
 * @example
 * ```ts
 * import { DatabaseUnavailableError, isDatabaseUnavailableError } from '@hartonomous/pipelines/postgres';
 * isDatabaseUnavailableError(new DatabaseUnavailableError('postgres', new Error('ECONNREFUSED'))); // true
 * ```
 */
export const isDatabaseUnavailableError: (e: unknown) => e is DatabaseUnavailableError =
  errorGuard<DatabaseUnavailableError>('DATABASE_UNAVAILABLE');

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** SQLSTATEs that mean the server is going away or refusing connections. */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);

const UNAVAILABLE_MESSAGES = [
  /connection terminated/i,
  /connection ended/i,
  /client has encountered a connection error/i,
  /cannot use a pool after calling end/i,
  /timeout acquiring a connection/i,
  /pglite is closed/i,
  /connection .*closed/i,
  /socket hang up/i,
];

function driverCode(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Whether a driver error means the database is unreachable or went away (as opposed to a
 * query error such as a constraint violation).
 * @internal
 */
export function isUnavailable(e: unknown): boolean {
  for (let cur: unknown = e, depth = 0; cur && depth < 5; depth++) {
    const code = driverCode(cur);
    if (code && (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code))) return true;
    if (code?.startsWith('08')) return true;
    const message = messageOf(cur);
    if (UNAVAILABLE_MESSAGES.some((re) => re.test(message))) return true;
    if (cur instanceof AggregateError && cur.errors.some((inner) => isUnavailable(inner))) {
      return true;
    }
    cur = typeof cur === 'object' ? (cur as { cause?: unknown }).cause : undefined;
  }
  return false;
}

/**
 * Maps a driver error to the library's error: unavailability becomes
 * {@link DatabaseUnavailableError}; anything else (and the library's own errors) is returned
 * unchanged.
 * @internal
 */
export function toDatabaseError(backend: DatabaseBackend, e: unknown): unknown {
  if (isPipelineError(e)) return e;
  const named = connectionErrorIn(e);
  if (named) return named;
  return isUnavailable(e) ? new DatabaseUnavailableError(backend, e) : e;
}

const CONNECTION_ERROR_CODES = new Set([
  'DATABASE_TIMEOUT',
  'DATABASE_AUTHENTICATION',
  'DATABASE_DOES_NOT_EXIST',
]);

/**
 * A timeout, refused login or missing database wrapped by a driver layer (knex, MikroORM):
 * the library's named error, found in the cause chain.
 */
function connectionErrorIn(e: unknown): PipelineError | undefined {
  for (let cur: unknown = e, depth = 0; cur && depth < 5; depth++) {
    if (isPipelineError(cur) && CONNECTION_ERROR_CODES.has(cur.code)) return cur;
    cur = typeof cur === 'object' ? (cur as { cause?: unknown }).cause : undefined;
  }
  return undefined;
}

/**
 * `vector: 'pgvector'` was asked for, but the `vector` extension is not available on this
 * server (or could not be created). Use `vector: 'auto'` to fall back to `bytea` storage.
 *
 * @example
 * ```ts
 * import { isVectorExtensionUnavailableError, openDatabase } from '@hartonomous/pipelines/postgres';
 *
 * const db = await openDatabase({ url, vector: 'pgvector' }).catch(async (e: unknown) => {
 *   if (isVectorExtensionUnavailableError(e)) return openDatabase({ url, vector: 'bytea' });
 *   throw e;
 * });
 * ```
 */
export class VectorExtensionUnavailableError extends PipelineError {
  readonly code = 'VECTOR_EXTENSION_UNAVAILABLE' as const;
  /**
   * @param backend - the kind of database
   * @param cause - why `CREATE EXTENSION vector` failed, if it was tried
   */
  constructor(
    readonly backend: DatabaseBackend,
    cause?: unknown,
  ) {
    super(
      `the pgvector extension is not available on this ${backend} database${
        cause === undefined ? '' : ` (${messageOf(cause)})`
      }`,
      { cause },
    );
  }
}

/**
 * Guard for {@link VectorExtensionUnavailableError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link VectorExtensionUnavailableError}
 * @example
 * ```ts
 * import { isVectorExtensionUnavailableError } from '@hartonomous/pipelines/postgres';
 * isVectorExtensionUnavailableError(new Error('x')); // false
 * ```
 */
export const isVectorExtensionUnavailableError: (
  e: unknown,
) => e is VectorExtensionUnavailableError = errorGuard<VectorExtensionUnavailableError>(
  'VECTOR_EXTENSION_UNAVAILABLE',
);
