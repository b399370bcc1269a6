/**
 * The knex dialect used for PostgreSQL servers: MikroORM's PostgreSQL dialect with timeouts
 * that node-postgres and knex do not give together.
 *
 * - Connecting (TCP connect, login, the dialect's version check and `search_path`) has ONE
 *   deadline; past it the socket is destroyed and the attempt fails with
 *   {@link DatabaseTimeoutError} (`phase: 'connect'`). node-postgres's own
 *   `connectionTimeoutMillis` covers only the login, and tarn's `createTimeoutMillis` abandons
 *   the attempt but leaves its socket open, which kept processes alive forever.
 * - A statement that gets no answer within the statement timeout plus a grace period has its
 *   connection destroyed (not just its promise rejected: node-postgres's `query_timeout` leaves
 *   the late answer to be read as the next statement's) and fails with
 *   {@link DatabaseTimeoutError} (`phase: 'statement'`). The server's own `statement_timeout`
 *   is set to the same limit, so a live server cancels first and keeps the connection.
 * - A login the server refuses and a database that does not exist become
 *   {@link DatabaseAuthenticationError} and {@link DatabaseDoesNotExistError}.
 * - Closing a connection waits a short while for the server's goodbye, then destroys the socket,
 *   so a hung server cannot keep the process alive.
 *
 * Hand-written because these are the seams of two libraries (knex's pool and node-postgres's
 * client); no package provides them.
 *
 * @internal
 * @module
 */

import { PostgreSqlKnexDialect } from '@mikro-orm/postgresql';
import {
  DatabaseAuthenticationError,
  DatabaseDoesNotExistError,
  DatabaseTimeoutError,
} from './connection-errors.js';

/** Timeouts of the server dialect, in milliseconds. @internal */
export interface ServerTimeouts {
  /** Deadline of opening one connection. */
  readonly connectMs: number;
  /** Statement timeout; 0 for none. */
  readonly statementMs: number;
}

/** How much longer than the statement timeout the client waits before it gives up. @internal */
export const STATEMENT_GRACE_MS = 5_000;

/** How long closing a connection waits for the server before destroying the socket. */
const END_GRACE_MS = 2_000;

const GUARD_OFF = Symbol('hartonomous.statementGuardOff');
const TIMED_OUT = Symbol('hartonomous.timedOut');

type Callback = (err: unknown, result?: unknown) => void;

/** The parts of a node-postgres `Client` this module uses. */
interface PgClient {
  connect(): Promise<void>;
  end(callback?: (err?: unknown) => void): unknown;
  query(...args: unknown[]): unknown;
  on(event: string, listener: (arg: unknown) => void): unknown;
  connection?: { stream?: { destroy(error?: Error): void; destroyed?: boolean } };
  readonly user?: string;
  readonly database?: string;
  readonly host?: string;
  readonly port?: number;
  __knex__disposed?: unknown;
  [GUARD_OFF]?: boolean;
  [TIMED_OUT]?: boolean;
}

/** The parts of knex's PostgreSQL client this module overrides or calls. */
interface DialectBase {
  driver: { Client: new (settings: unknown) => PgClient };
  connectionSettings: unknown;
  version?: string;
  checkVersion(connection: PgClient): Promise<string>;
  setSchemaSearchPath(connection: PgClient): Promise<unknown>;
}

/**
 * Calls `onExpire` once `ms` have passed, not counting time this process's event loop was
 * blocked (e.g. by an embedded PGlite's WebAssembly in the same process): a timer that fires
 * late is re-armed for the lateness, so an answer that arrived while the loop was blocked is
 * read before the deadline is judged. Returns a cancel function.
 */
function deadline(ms: number, onExpire: () => void): () => void {
  let due = performance.now() + ms;
  let timer: NodeJS.Timeout;
  const arm = (wait: number): void => {
    timer = setTimeout(() => {
      const late = performance.now() - due;
      if (late > LATE_TIMER_MS) {
        const extra = Math.min(late, ms);
        due = performance.now() + extra;
        arm(extra);
      } else {
        onExpire();
      }
    }, wait);
  };
  arm(ms);
  return () => clearTimeout(timer);
}

/** A timer firing this much later than due means the event loop was blocked. */
const LATE_TIMER_MS = 250;

function destroySocket(client: PgClient, error?: Error): void {
  const stream = client.connection?.stream;
  if (stream && !stream.destroyed) stream.destroy(error);
}

function sqlstateOf(e: unknown): string | undefined {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

function locationOf(client: PgClient): string {
  return `${client.host ?? 'localhost'}:${client.port ?? 5432}`;
}

/**
 * Wraps `client.query` so that a statement without an answer past `limitMs` destroys the
 * connection and fails with {@link DatabaseTimeoutError}; the server's `statement_timeout`
 * cancellation (SQLSTATE 57014) becomes the same error. Submittable queries (cursors, streams)
 * pass through unguarded.
 */
function guardQueries(client: PgClient, statementMs: number): void {
  const query = client.query.bind(client);
  const limitMs = statementMs + STATEMENT_GRACE_MS;
  const mapError = (err: unknown): unknown => {
    if (client[TIMED_OUT]) {
      return new DatabaseTimeoutError('postgres', 'statement', statementMs, locationOf(client), {
        cause: err,
      });
    }
    if (
      sqlstateOf(err) === '57014' &&
      err instanceof Error &&
      /statement timeout/i.test(err.message)
    ) {
      return new DatabaseTimeoutError('postgres', 'statement', statementMs, locationOf(client), {
        cause: err,
      });
    }
    return err;
  };
  client.query = (...args: unknown[]): unknown => {
    const config = args[0];
    if (
      typeof config === 'object' &&
      config !== null &&
      typeof (config as { submit?: unknown }).submit === 'function'
    ) {
      return query(...args);
    }
    const guarded = statementMs > 0 && !client[GUARD_OFF];
    const cancel = guarded
      ? deadline(limitMs, () => {
          client[TIMED_OUT] = true;
          destroySocket(client, new Error(`no answer within ${limitMs} ms`));
        })
      : undefined;
    const last = args.at(-1);
    if (typeof last === 'function') {
      const callback = last as Callback;
      args[args.length - 1] = (err: unknown, result?: unknown) => {
        cancel?.();
        callback(err ? mapError(err) : err, result);
      };
      return query(...args);
    }
    const result = query(...args) as Promise<unknown>;
    return result.then(
      (value) => {
        cancel?.();
        return value;
      },
      (err: unknown) => {
        cancel?.();
        throw mapError(err);
      },
    );
  };
}

/**
 * Runs `fn` with the statement timeout lifted on this connection (for migrations and index
 * builds that may rightly take long): the server's `statement_timeout` is set to 0 and the
 * client's guard is off, both restored afterwards.
 * @internal
 */
export async function withoutStatementTimeout<T>(
  client: { query(text: string): Promise<unknown> },
  fn: () => Promise<T>,
): Promise<T> {
  const pg = client as unknown as PgClient;
  const before = pg[GUARD_OFF];
  pg[GUARD_OFF] = true;
  try {
    await client.query('SET statement_timeout = 0');
    try {
      return await fn();
    } finally {
      await client.query('RESET statement_timeout').catch(() => undefined);
    }
  } finally {
    pg[GUARD_OFF] = before;
  }
}

/**
 * The knex client class for a PostgreSQL server with the given timeouts (see the module
 * description).
 * @internal
 */
export function serverDialect(timeouts: ServerTimeouts): typeof PostgreSqlKnexDialect {
  const Base = PostgreSqlKnexDialect as unknown as new (...args: unknown[]) => DialectBase;
  class TimedPostgreSqlDialect extends Base {
    async acquireRawConnection(): Promise<PgClient> {
      const client = new this.driver.Client(this.connectionSettings);
      client.on('error', (err) => {
        client.__knex__disposed = err;
      });
      client.on('end', (err) => {
        client.__knex__disposed = err || 'Connection ended unexpectedly';
      });
      guardQueries(client, timeouts.statementMs);
      let timedOut = false;
      const cancel = deadline(timeouts.connectMs, () => {
        timedOut = true;
        destroySocket(client, new Error(`no answer within ${timeouts.connectMs} ms`));
      });
      try {
        await client.connect();
        this.version ??= await this.checkVersion(client);
        await this.setSchemaSearchPath(client);
        return client;
      } catch (e) {
        destroySocket(client);
        if (timedOut) {
          throw new DatabaseTimeoutError(
            'postgres',
            'connect',
            timeouts.connectMs,
            locationOf(client),
            { cause: e },
          );
        }
        const code = sqlstateOf(e);
        if (code === '28P01' || code === '28000') {
          throw new DatabaseAuthenticationError(client.user ?? '', code, locationOf(client), {
            cause: e,
          });
        }
        if (code === '3D000') {
          throw new DatabaseDoesNotExistError(client.database ?? '', locationOf(client), {
            cause: e,
          });
        }
        throw e;
      } finally {
        cancel();
      }
    }

    async destroyRawConnection(client: PgClient): Promise<void> {
      if (client[TIMED_OUT] || client.connection?.stream?.destroyed) {
        destroySocket(client);
        return;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          destroySocket(client);
          resolve();
        }, END_GRACE_MS);
        client.end(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }

    validateConnection(client: PgClient): boolean {
      return !client[TIMED_OUT] && !client.__knex__disposed;
    }
  }
  return TimedPostgreSqlDialect as unknown as typeof PostgreSqlKnexDialect;
}
