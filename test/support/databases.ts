/**
 * One suite, two databases: a helper giving every database test the PostgreSQL server
 * (`DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/test, in a schema unique to the
 * test file so parallel files never collide) and an in-memory PGlite.
 *
 * When the server is unreachable: with `CI` set the suite FAILS; locally its server tests are
 * registered as skipped with the reason in their title (visible in ava's output).
 */

import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import type { Database } from '../../lib/postgres/database.js';
import { type OpenDatabaseOptions, openDatabase } from '../../lib/postgres/open-database.js';

/** The server tests run against. */
export const SERVER_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The two kinds of database every suite runs on. */
export type Backend = 'postgres' | 'pglite';

/** Both backends, in the order tests are registered. */
export const BACKENDS: readonly Backend[] = ['postgres', 'pglite'];

let reachability: Promise<string | undefined> | undefined;

/**
 * Why the server cannot be used (undefined when it can). Throws when `CI` is set and the
 * server is unreachable: in CI a missing database is a failure, never a skip.
 */
export function serverUnavailableReason(): Promise<string | undefined> {
  reachability ??= (async () => {
    const url = new URL(SERVER_URL);
    const reason = await new Promise<string | undefined>((resolve) => {
      const socket = connect({ host: url.hostname, port: Number(url.port || 5432) });
      const timer = setTimeout(() => {
        socket.destroy();
        resolve('connection timed out');
      }, 3_000);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.end();
        resolve(undefined);
      });
      socket.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        resolve(e.code ?? e.message);
      });
    });
    if (reason && process.env.CI) {
      throw new Error(`PostgreSQL at ${url.host} is unreachable (${reason}) and CI is set`);
    }
    if (reason) {
      console.warn(
        `\n[databases] PostgreSQL at ${url.host} unreachable (${reason}): server tests are SKIPPED\n`,
      );
    }
    return reason;
  })();
  return reachability;
}

/** A schema name unique to this process and call: `t_<tag>_<pid>_<random>`. */
export function uniqueSchema(tag: string): string {
  const clean = tag
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 20);
  return `t_${clean}_${process.pid}_${randomBytes(3).toString('hex')}`;
}

/** A database opened for a test, with its clean-up. */
export interface TestDatabase {
  readonly backend: Backend;
  readonly db: Database;
  /** The schema used (unique on the server, `public` on PGlite). */
  readonly schema: string;
  /** Closes the database and, on the server, drops its schema. */
  dispose(): Promise<void>;
}

/**
 * Opens a fresh database on `backend`: a unique schema on the server, or a new in-memory
 * PGlite.
 */
export async function openTestDatabase(
  backend: Backend,
  tag: string,
  options: Omit<OpenDatabaseOptions, 'url' | 'dataDir'> = {},
): Promise<TestDatabase> {
  if (backend === 'pglite') {
    const db = await openDatabase({ ...options, dataDir: 'memory://' });
    return { backend, db, schema: db.schema, dispose: () => db.close() };
  }
  const schema = options.schema ?? uniqueSchema(tag);
  const db = await openDatabase({ ...options, url: SERVER_URL, schema });
  return { backend, db, schema, dispose: () => dropSchemaAndClose(db, schema) };
}

/** Drops a server schema (cascade) and closes the handle. */
export async function dropSchemaAndClose(db: Database, schema: string): Promise<void> {
  try {
    if (!db.closed) {
      await db.orm.em.getConnection().execute(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
  } finally {
    await db.close();
  }
}

/** The test body of {@link DatabaseSuite.test}. */
export type DatabaseTest = (t: ExecutionContext, db: Database, backend: Backend) => Promise<void>;

/** A file's databases: shared per backend, opened on first use, closed after the file. */
export interface DatabaseSuite {
  /** The shared database of a backend. */
  get(backend: Backend): Promise<Database>;
  /**
   * Registers `title` once per backend (`title [postgres]`, `title [pglite]`); a backend that
   * is unavailable gets a skipped test saying why.
   */
  test(title: string, fn: DatabaseTest): void;
  /** Like {@link DatabaseSuite.test} but serial (for tests that change shared state). */
  serial(title: string, fn: DatabaseTest): void;
}

/**
 * Creates the suite of a test file. Call at the top level (it awaits the reachability check,
 * so skips are decided before tests are registered).
 */
export async function databaseSuite(
  tag: string,
  options: Omit<OpenDatabaseOptions, 'url' | 'dataDir' | 'schema'> = {},
): Promise<DatabaseSuite> {
  const unavailable = await serverUnavailableReason();
  const opened = new Map<Backend, Promise<TestDatabase>>();
  const get = (backend: Backend): Promise<Database> => {
    let entry = opened.get(backend);
    if (!entry) {
      entry = openTestDatabase(backend, tag, options);
      opened.set(backend, entry);
    }
    return entry.then((d) => d.db);
  };
  test.after.always('close databases', async () => {
    for (const entry of opened.values()) {
      const d = await entry.catch(() => undefined);
      await d?.dispose();
    }
  });
  const register =
    (serial: boolean) =>
    (title: string, fn: DatabaseTest): void => {
      for (const backend of BACKENDS) {
        const name = `${title} [${backend}]`;
        if (backend === 'postgres' && unavailable) {
          test.skip(`${name} (server unreachable: ${unavailable})`, () => undefined);
          continue;
        }
        (serial ? test.serial : test)(name, async (t) => fn(t, await get(backend), backend));
      }
    };
  return { get, test: register(false), serial: register(true) };
}
