/**
 * The {@link Database} handle and the internal plumbing the hot path uses: a raw
 * node-postgres client taken from the same pool MikroORM uses, named prepared statements, and
 * the mapping of driver failures to {@link DatabaseUnavailableError}.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import type { Knex, MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { isPipelineError } from '../core/errors.js';
import {
  type DatabaseBackend,
  DatabaseUnavailableError,
  SchemaOutdatedError,
  toDatabaseError,
} from './errors.js';
import type { Migration } from './migrations/index.js';

/**
 * How embeddings are stored: a pgvector `vector(dims)` column (cosine search with `<=>` and an
 * HNSW index) or, where the `vector` extension is not available, `bytea` holding float32
 * little-endian values (exact search by a bounded scan). The API is the same either way.
 *
 * @example
 * ```ts
 * import { openDatabase, type VectorStorage } from '@hartonomous/pipelines/postgres';
 * const db = await openDatabase({ dataDir: 'memory://' });
 * const storage: VectorStorage = db.vectorStorage; // 'pgvector' on PGlite
 * ```
 */
export type VectorStorage = 'pgvector' | 'bytea';

/**
 * An open database: a PostgreSQL server or an embedded PGlite, with the library's schema.
 * Use `orm` (MikroORM) for ordinary queries and the functions of
 * `@hartonomous/pipelines/atoms` for the hot path. Close it when done.
 *
 * @example
 * ```ts
 * import { openDatabase } from '@hartonomous/pipelines/postgres';
 * import { Atom } from '@hartonomous/pipelines/atoms';
 *
 * const db = await openDatabase({ dataDir: 'memory://' });
 * const em = db.orm.em.fork();
 * console.log(await em.count(Atom), db.backend, db.schemaVersion);
 * await db.close();
 * ```
 */
export interface Database {
  /** `'postgres'` for a server opened by URL, `'pglite'` for the embedded database. */
  readonly backend: DatabaseBackend;
  /** The PostgreSQL schema (namespace) holding the library's tables. */
  readonly schema: string;
  /** The MikroORM instance, for ordinary queries (`db.orm.em.fork()`). */
  readonly orm: MikroORM;
  /** The highest migration applied (0 for an empty database). */
  readonly schemaVersion: number;
  /** The highest migration this library knows. */
  readonly knownVersion: number;
  /**
   * Dimensions of stored embeddings, fixed when the database was created.
   * Throws {@link SchemaOutdatedError} before the first migration.
   */
  readonly embeddingDimensions: number;
  /**
   * Storage form of embeddings, fixed when the database was created.
   * Throws {@link SchemaOutdatedError} before the first migration.
   */
  readonly vectorStorage: VectorStorage;
  /** Whether {@link Database.close} has been called. */
  readonly closed: boolean;
  /**
   * Closes the connection pool (and the embedded database, if this handle opened it).
   * Idempotent.
   * @returns when everything is closed
   */
  close(): Promise<void>;
}

/** Settings fixed by the first migration. @internal */
export interface DatabaseSettings {
  embeddingDimensions: number;
  vectorStorage: VectorStorage;
}

/** A node-postgres client (a server connection or PGlite's adapter). @internal */
export interface SqlClient {
  query<R = Record<string, unknown>>(
    config: string | { text: string; values?: unknown[]; name?: string },
  ): Promise<{ rows: R[]; rowCount: number | null }>;
}

/** Hands out raw clients: knex's pool, or {@link singleClientPool}. @internal */
export interface ClientPool {
  acquireConnection(): Promise<SqlClient>;
  releaseConnection(client: SqlClient): Promise<void>;
}

/** The pool of a knex instance. @internal */
export function knexPool(knex: Knex): ClientPool {
  return knex.client as unknown as ClientPool;
}

/**
 * A pool of ONE client handed to one holder at a time, the others queued in order (what knex's
 * pool with `max: 1` does, without loading knex). @internal
 */
export function singleClientPool(client: SqlClient): ClientPool {
  let busy = false;
  const waiting: (() => void)[] = [];
  return {
    async acquireConnection() {
      if (busy) await new Promise<void>((resolve) => waiting.push(resolve));
      busy = true;
      return client;
    },
    async releaseConnection() {
      const next = waiting.shift();
      if (next) next();
      else busy = false;
    },
  };
}

/** Mutable state behind a {@link Database}. @internal */
export interface DatabaseState {
  readonly backend: DatabaseBackend;
  readonly schema: string;
  /** `"schema"`, quoted for SQL. */
  readonly qschema: string;
  /** MikroORM's knex instance, whose pool `withClient` draws from; absent when `orm: false`. */
  readonly knex?: Knex;
  /** Where `withClient` takes its client from: knex's pool, or one PGlite session. */
  readonly pool: ClientPool;
  readonly logger: Logger;
  readonly migrations: readonly Migration[];
  readonly requested: { dimensions?: number; vector: 'auto' | 'pgvector' | 'bytea' };
  version: number;
  settings?: DatabaseSettings;
  vectorOid?: number;
  closed: boolean;
  /**
   * Run by `close()` before the pool closes: resources held beside the pool (the claim
   * leases' dedicated connection) close with the handle.
   */
  readonly closeHooks: Array<() => Promise<void>>;
}

const states = new WeakMap<Database, DatabaseState>();

/** @internal */
export function registerState(db: Database, state: DatabaseState): void {
  states.set(db, state);
}

/**
 * The internal state of a handle; throws TypeError for anything that is not an open
 * {@link Database}.
 * @internal
 */
export function stateOf(db: Database): DatabaseState {
  const state = states.get(db);
  if (!state) throw new TypeError('expected a Database returned by openDatabase()');
  if (state.closed) throw new TypeError('the database has been closed');
  return state;
}

/**
 * The state of a handle whose schema is fully migrated; throws {@link SchemaOutdatedError}
 * otherwise.
 * @internal
 */
export function readyStateOf(db: Database): DatabaseState & { settings: DatabaseSettings } {
  const state = stateOf(db);
  const known = state.migrations.at(-1)?.id ?? 0;
  if (state.version < known || !state.settings) {
    throw new SchemaOutdatedError(state.version, known, state.schema);
  }
  return state as DatabaseState & { settings: DatabaseSettings };
}

/**
 * Runs `fn` with a raw client from the pool and releases it afterwards. Driver failures that
 * mean the database is gone become {@link DatabaseUnavailableError}. The signal is checked
 * before the client is taken; an in-flight statement is not interrupted.
 * @internal
 */
export async function withClient<T>(
  state: DatabaseState,
  signal: AbortSignal | undefined,
  fn: (client: SqlClient) => Promise<T>,
  options: ClientOptions = {},
): Promise<T> {
  signal?.throwIfAborted();
  const { pool } = state;
  let client: SqlClient;
  try {
    client = await pool.acquireConnection();
  } catch (e) {
    const mapped = toDatabaseError(state.backend, e);
    throw isPipelineError(mapped) ? mapped : new DatabaseUnavailableError(state.backend, e);
  }
  try {
    signal?.throwIfAborted();
    // only a server connection has a statement timeout (the server dialect, imported here
    // because it loads MikroORM, which an embedded open with `orm: false` never does)
    if (options.unlimited && state.backend === 'postgres') {
      const { withoutStatementTimeout } = await import('./server-dialect.js');
      return await withoutStatementTimeout(client, () => fn(client));
    }
    return await fn(client);
  } catch (e) {
    throw toDatabaseError(state.backend, e);
  } finally {
    await pool.releaseConnection(client).catch(() => undefined);
  }
}

/**
 * Runs `fn` inside BEGIN/COMMIT on one client; rolls back if it throws (or the signal aborted
 * meanwhile) and rethrows.
 * @internal
 */
export function withTransaction<T>(
  state: DatabaseState,
  signal: AbortSignal | undefined,
  fn: (client: SqlClient) => Promise<T>,
  options: ClientOptions = {},
): Promise<T> {
  return withClient(
    state,
    signal,
    async (client) => {
      await client.query('BEGIN');
      try {
        const result = await fn(client);
        signal?.throwIfAborted();
        await client.query('COMMIT');
        return result;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
    },
    options,
  );
}

/** Options of {@link withClient} and {@link withTransaction}. @internal */
export interface ClientOptions {
  /**
   * Run without the statement timeout (migrations, index builds): see
   * `OpenDatabaseOptions.statementTimeoutMs`. @default false
   */
  readonly unlimited?: boolean;
}

/**
 * Runs a named prepared statement. The name is derived from the text (a short SHA-1), so a
 * connection prepares each distinct statement once and reuses it; they are visible in
 * `pg_prepared_statements`.
 * @internal
 */
export function prepared<R = Record<string, unknown>>(
  client: SqlClient,
  purpose: string,
  text: string,
  values: unknown[],
): Promise<{ rows: R[]; rowCount: number | null }> {
  return client.query<R>({ name: statementName(purpose, text), text, values });
}

const names = new Map<string, string>();

/** The prepared-statement name used for a statement text. @internal */
export function statementName(purpose: string, text: string): string {
  const key = `${purpose}\u0000${text}`;
  let name = names.get(key);
  if (!name) {
    const digest = createHash('sha1').update(text).digest('hex').slice(0, 12);
    name = `hartonomous_${purpose}_${digest}`;
    names.set(key, name);
  }
  return name;
}

/** Quotes an SQL identifier. @internal */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
