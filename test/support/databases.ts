/**
 * One suite, three databases: a helper giving every database test the PostgreSQL server
 * (`DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/test, in a schema unique to the
 * test file so parallel files never collide), an in-memory PGlite, and an in-memory PGlite
 * with pgvector served over the wire by `@electric-sql/pglite-socket` and opened by URL (one
 * per test file, started on first use).
 *
 * When the server is unreachable: with `CI` set the suite FAILS; locally its server tests are
 * registered as skipped with the reason in their title (visible in ava's output). When it is
 * reachable but the database `DATABASE_URL` names does not exist, it is created.
 */

import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import type { Database } from '../../lib/postgres/database.js';
import { DEFAULT_DIMENSIONS } from '../../lib/postgres/migrate.js';
import { migrations } from '../../lib/postgres/migrations/index.js';
import {
  type OpenDatabaseOptions,
  openDatabase,
  PGLITE_INITDB_PARAMS,
  PGLITE_SETTINGS,
} from '../../lib/postgres/open-database.js';
import {
  pgliteTemplateDir,
  pgliteTemplateKey,
  readPgliteTemplate,
} from '../../lib/postgres/pglite-template.js';

/** The server tests run against. */
export const SERVER_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * The kinds of database every suite runs on: the PostgreSQL server (`DATABASE_URL`; no
 * pgvector here, so embeddings are `bytea`), the embedded PGlite in this process (pgvector),
 * and PGlite with pgvector served over the PostgreSQL wire protocol by
 * `@electric-sql/pglite-socket`, opened through the server code path (`openDatabase({ url })`,
 * the MikroORM/pg driver with `vector` columns).
 */
export type Backend = 'postgres' | 'pglite' | 'pgvector';

/** Every backend, in the order tests are registered. */
export const BACKENDS: readonly Backend[] = ['postgres', 'pglite', 'pgvector'];

/** A PGlite with pgvector behind a socket server on 127.0.0.1. */
export interface PgliteServer {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * The library's migrated PGlite template (see `lib/postgres/pglite-template.ts`), built by an
 * `openDatabase` of a new in-memory database when it is not cached yet; undefined when
 * templates are off.
 */
async function pgliteTemplate(): Promise<Blob | undefined> {
  const dir = pgliteTemplateDir();
  if (!dir) return undefined;
  const key = pgliteTemplateKey({
    migrations,
    schema: 'public',
    vectorStorage: 'pgvector',
    embeddingDimensions: DEFAULT_DIMENSIONS,
    initdbParams: PGLITE_INITDB_PARAMS,
  });
  const stored = await readPgliteTemplate(dir, key);
  if (stored) return stored;
  const db = await openDatabase({ dataDir: 'memory://', orm: false });
  await db.close();
  return readPgliteTemplate(dir, key);
}

/**
 * Starts an in-memory PGlite with pgvector and serves it over the wire protocol on a free
 * port of 127.0.0.1. It is ONE backend session: one connection at a time (`poolSize: 1`).
 * It starts from the library's migrated template (no `initdb`, a few CPU seconds less); the
 * tests' own schemas are migrated over the wire as on any server.
 */
export async function startPgliteServer(): Promise<PgliteServer> {
  const [{ PGlite }, { vector }, { PGLiteSocketServer }, template] = await Promise.all([
    import('@electric-sql/pglite'),
    import('@electric-sql/pglite-pgvector'),
    import('@electric-sql/pglite-socket'),
    pgliteTemplate(),
  ]);
  const pglite = await PGlite.create('memory://', {
    extensions: { vector },
    ...(template ? { loadDataDir: template } : {}),
    // the library's embedded settings: PGlite's default 128 MB of shared buffers are zeroed at
    // every start (about 0.3 CPU s more per server than 32 MB)
    startParams: [...PGlite.defaultStartParams, ...PGLITE_SETTINGS.flatMap((s) => ['-c', s])],
  });
  // 2, not 1: a pool (max 1) replacing its connection may connect before the server has
  // noticed the old one close, and would be refused; there is never more than one in use
  const server = new PGLiteSocketServer({
    db: pglite,
    host: '127.0.0.1',
    port: 0,
    maxConnections: 2,
  });
  try {
    await server.start();
  } catch (e) {
    await pglite.close();
    throw e;
  }
  return {
    url: `postgres://postgres@${server.getServerConn()}/postgres`,
    stop: async () => {
      try {
        await server.stop();
      } finally {
        if (!pglite.closed) await pglite.close();
      }
    },
  };
}

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
    if (!reason) await ensureServerDatabase(url);
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

/**
 * Creates the database `url` names when the server says it does not exist (3D000), through
 * the server's `postgres` database; a parallel test file creating it at the same moment is
 * fine. Other failures are left for the tests to report.
 */
export async function ensureServerDatabase(url: URL): Promise<void> {
  const { knex } = await import('@mikro-orm/postgresql');
  const probe = knex({ client: 'pg', connection: url.toString(), pool: { min: 0, max: 1 } });
  let missing = false;
  try {
    await probe.raw('SELECT 1');
  } catch (e) {
    missing = (e as { code?: unknown }).code === '3D000';
  } finally {
    await probe.destroy();
  }
  if (!missing) return;
  const name = decodeURIComponent(url.pathname.slice(1));
  const admin = new URL(url.toString());
  admin.pathname = '/postgres';
  const client = knex({ client: 'pg', connection: admin.toString(), pool: { min: 0, max: 1 } });
  try {
    await client.raw(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
    console.warn(`\n[databases] created the database "${name}" named by DATABASE_URL\n`);
  } catch (e) {
    // 42P04: created meanwhile by another test file; 23505: the same race, caught by the catalog
    const code = (e as { code?: unknown }).code;
    if (code !== '42P04' && code !== '23505') throw e;
  } finally {
    await client.destroy();
  }
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
  /** The schema used (unique on the server and the PGlite socket server, `public` on PGlite). */
  readonly schema: string;
  /** Closes the database and, on the server, drops its schema (a PGlite server is stopped). */
  dispose(): Promise<void>;
}

/**
 * Opens a fresh database on `backend`: a unique schema on the server, a new in-memory PGlite,
 * or a unique schema on a new PGlite socket server (started for this database).
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
  if (backend === 'pgvector') {
    const server = await startPgliteServer();
    const schema = options.schema ?? uniqueSchema(tag);
    try {
      // the socket server runs on this process's event loop, beside the test's own work
      const db = await openDatabase({
        connectTimeoutMs: 120_000,
        ...options,
        url: server.url,
        schema,
        poolSize: 1,
      });
      return {
        backend,
        db,
        schema,
        dispose: async () => {
          try {
            await db.close();
          } finally {
            await server.stop();
          }
        },
      };
    } catch (e) {
      await server.stop();
      throw e;
    }
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
   * Registers `title` once per backend (`title [postgres]`, `title [pglite]`,
   * `title [pgvector]`); a backend that is unavailable gets a skipped test saying why.
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
