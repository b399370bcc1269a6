import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import type { AnyEntity, EntitySchema } from '@mikro-orm/core';
import type { Knex, MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { redactUrl } from '../core/redact-url.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { silentLogger } from '../observability/logger.js';
import { checkDatabaseUrl } from './check-database-url.js';
import {
  type ClientPool,
  type Database,
  type DatabaseSettings,
  type DatabaseState,
  knexPool,
  quoteIdent,
  registerState,
  type SqlClient,
  singleClientPool,
  type VectorStorage,
} from './database.js';
import { DatabaseUnavailableError, SchemaOutdatedError, toDatabaseError } from './errors.js';
import { DEFAULT_DIMENSIONS, inspectSchema, migrate } from './migrate.js';
import {
  migrations as builtinMigrations,
  checkMigrations,
  type Migration,
} from './migrations/index.js';
import {
  pgliteTemplateDir,
  pgliteTemplateKey,
  readPgliteTemplate,
  writePgliteTemplate,
} from './pglite-template.js';

/**
 * Options of {@link openDatabase}.
 *
 * Which database is opened: `url` given: that PostgreSQL server; else `dataDir` given: an
 * embedded PGlite there; else environment `DATABASE_URL` set: that server; else an embedded
 * PGlite in `.data/pglite` under the working directory.
 *
 * @example
 * ```ts
 * import type { OpenDatabaseOptions } from '@hartonomous/pipelines/postgres';
 *
 * const server: OpenDatabaseOptions = { url: 'postgres://app@db:5432/app', poolSize: 20 };
 * const embedded: OpenDatabaseOptions = { dataDir: './state/pglite' };
 * const inMemory: OpenDatabaseOptions = { dataDir: 'memory://' };
 * ```
 */
export interface OpenDatabaseOptions {
  /** PostgreSQL connection URL. @default process.env.DATABASE_URL when `dataDir` is not given */
  url?: string;
  /** PGlite data folder, or `'memory://'` for a throw-away in-memory database. @default '.data/pglite' under `process.cwd()` */
  dataDir?: string;
  /** Schema (namespace) holding the tables; created if missing. @default 'public' */
  schema?: string;
  /** Apply missing migrations while opening (see {@link migrate}). @default true */
  migrate?: boolean;
  /**
   * Embedding dimensions. Fixed when the database is first migrated; opening an existing
   * database with a different value fails with {@link DatabaseSettingsMismatchError}.
   * @default the stored value, or 384 for a new database
   */
  dimensions?: number;
  /**
   * Embedding storage for a new database: pgvector where available (`'auto'`), pgvector or fail
   * (`'pgvector'`), or float32 `bytea` (`'bytea'`).
   * @default 'auto'
   */
  vector?: 'auto' | VectorStorage;
  /** Maximum connections in the server pool (PGlite always uses one). @default 10 */
  poolSize?: number;
  /**
   * Server only: the deadline of opening one connection (TCP connect, login, first setup
   * statements), in milliseconds. A server that accepts the connection but does not answer in
   * time fails with `DatabaseTimeoutError` (`phase: 'connect'`) and leaves no socket
   * open. The URL's `connect_timeout` parameter (seconds, as in libpq) is used when this is not
   * given.
   * @default 10_000
   */
  connectTimeoutMs?: number;
  /**
   * Server only: the longest one statement may run, in milliseconds; 0 for no limit. The
   * server cancels a statement past it (`statement_timeout`), and a server that stops
   * answering altogether has the connection closed by the client 5 s later; either way the
   * statement fails with `DatabaseTimeoutError` (`phase: 'statement'`). Migrations and
   * `createVectorIndex` run without this limit.
   * @default 300_000
   */
  statementTimeoutMs?: number;
  /** Server only: an unused pool connection is closed after this many milliseconds. @default 30_000 */
  idleTimeoutMs?: number;
  /** More MikroORM entities to register (for tables added by your own migrations). @default [] */
  entities?: readonly EntitySchema<AnyEntity>[];
  /** The migrations to apply: the library's, optionally followed by your own. @default migrations */
  migrations?: readonly Migration[];
  /** Logger for open/migrate/close events. @default a silent logger */
  logger?: Logger;
  /** Log every SQL statement MikroORM runs (via MikroORM's debug logger). @default false */
  debug?: boolean;
  /**
   * Load MikroORM and expose it as `db.orm`. With `false` on embedded PGlite, MikroORM and
   * knex are not even loaded (about a second of start-up here): the library's own functions
   * (`ingest`, `persistAtoms`, `searchSimilar`, `migrate`, ...) do not need them, and `db.orm`
   * throws a `TypeError`. A server connection always goes through MikroORM's pool; there
   * `false` only hides `db.orm`.
   * @default true
   */
  orm?: boolean;
  /**
   * Embedded PGlite only: start a NEW database (`memory://`, or a folder holding no database
   * yet) as a copy of a cached template that was initialised and migrated once, instead of
   * running PostgreSQL's `initdb` and every migration again (about 1 CPU second instead of
   * 4-5). The first such open on a machine builds the template; it is kept in
   * `node_modules/.cache/@hartonomous/pipelines` (or the folder named by the environment
   * variable `HARTONOMOUS_PGLITE_TEMPLATES`; `off` disables templates), keyed by the PGlite
   * version and the migrations' SQL. Used only when migrating (`migrate` not false).
   * @default true
   */
  template?: boolean;
  /** Cancels opening. @default none */
  signal?: AbortSignal;
}

/** The PGlite folder used when no URL or data folder is given. @internal */
export const DEFAULT_DATA_DIR = '.data/pglite';

/**
 * Opens the library's database: a PostgreSQL server (through MikroORM's
 * `@mikro-orm/postgresql` driver) when a URL is given or `DATABASE_URL` is set, otherwise an
 * embedded PGlite with pgvector. Both get the same schema and the same SQL. Applies missing
 * migrations unless `migrate: false`; fails with {@link SchemaTooNewError} if the database is
 * newer than this library, and with {@link DatabaseUnavailableError} if it cannot be reached.
 *
 * @param options - a connection URL, or {@link OpenDatabaseOptions}
 * @returns an open {@link Database}; close it when done
 *
 * @example
 * ```ts
 * import { openDatabase } from '@hartonomous/pipelines/postgres';
 *
 * const db = await openDatabase(process.env.DATABASE_URL ?? { dataDir: 'memory://' });
 * try {
 *   console.log(db.backend, db.schemaVersion, db.vectorStorage);
 * } finally {
 *   await db.close();
 * }
 * ```
 * @see {@link migrate}
 */
export async function openDatabase(options: string | OpenDatabaseOptions = {}): Promise<Database> {
  const opts: OpenDatabaseOptions = typeof options === 'string' ? { url: options } : options;
  const schema = opts.schema ?? 'public';
  const poolSize = opts.poolSize ?? 10;
  const vector = opts.vector ?? 'auto';
  const migrationList = opts.migrations ?? builtinMigrations;
  validate(opts, schema, poolSize, vector);
  const timeouts = timeoutsOf(opts);
  checkMigrations(migrationList);
  opts.signal?.throwIfAborted();
  const logger = opts.logger ?? silentLogger();

  const url = opts.url ?? (opts.dataDir === undefined ? process.env.DATABASE_URL : undefined);
  if (url) checkDatabaseUrl(url, opts.url !== undefined ? 'url' : 'DATABASE_URL');
  const backend = url ? 'postgres' : 'pglite';
  const wantOrm = opts.orm ?? true;

  let orm: MikroORM | undefined;
  let knex: Knex | undefined;
  let pool: ClientPool;
  let closeEmbedded: (() => Promise<void>) | undefined;
  let location: string;
  let template: Awaited<ReturnType<typeof findTemplate>>;
  let saveTemplate: (() => Promise<Blob>) | undefined;
  // MikroORM (and the entities, which import it) load only when an ORM is made
  const makeOrm = async (
    driver: { clientUrl: string; pool: object; driverOptions: object } | { knex: Knex },
  ) => {
    const [{ MikroORM: ORM }, { atomEntities }, { SchemaMigration }] = await Promise.all([
      import('@mikro-orm/postgresql'),
      import('./entities.js'),
      import('./schema-migration.js'),
    ]);
    const config = {
      entities: [...atomEntities, SchemaMigration, ...(opts.entities ?? [])],
      schema,
      debug: opts.debug ?? false,
      connect: false,
      ensureDatabase: false,
      allowGlobalContext: false,
      discovery: { disableDynamicFileAccess: true, warnWhenNoEntities: false },
      logger: (message: string) => logger.debug({ mikroOrm: true }, message),
    };
    return 'knex' in driver
      ? ORM.init({ ...config, dbName: 'postgres', driverOptions: driver.knex })
      : ORM.init({
          ...config,
          clientUrl: driver.clientUrl,
          pool: driver.pool,
          driverOptions: driver.driverOptions,
        });
  };
  if (url) {
    location = redactUrl(url);
    const connectMs = timeouts.connectMs ?? connectTimeoutOfUrl(url) ?? DEFAULT_CONNECT_TIMEOUT_MS;
    // imported here: the dialect extends MikroORM's, which an embedded open may never load
    const { serverDialect } = await import('./server-dialect.js');
    orm = await makeOrm({
      clientUrl: url,
      pool: {
        min: 0,
        max: poolSize,
        idleTimeoutMillis: timeouts.idleMs,
        // the dialect enforces the connect deadline and closes the socket; tarn's own (which
        // leaves the socket open) only as a far backstop: the dialect's deadline does not
        // count time the event loop was blocked, tarn's does
        createTimeoutMillis: Math.max(60_000, 3 * connectMs),
      },
      driverOptions: {
        client: serverDialect({ connectMs, statementMs: timeouts.statementMs }),
        connection: {
          keepAlive: true,
          ...(timeouts.statementMs > 0 ? { statement_timeout: timeouts.statementMs } : {}),
        },
        log: knexLog(logger),
      },
    });
    knex = orm.em.getConnection().getKnex();
    pool = knexPool(knex);
  } else {
    const dataDir = opts.dataDir ?? resolve(process.cwd(), DEFAULT_DATA_DIR);
    location = dataDir;
    template = await findTemplate(opts, dataDir, schema, vector, migrationList);
    const embedded = await openPglite(dataDir, logger, wantOrm, template?.tarball);
    saveTemplate = embedded.dump;
    closeEmbedded = embedded.close;
    pool = embedded.pool;
    knex = embedded.knex;
    if (knex) {
      try {
        orm = await makeOrm({ knex });
      } catch (e) {
        await embedded.close();
        throw e;
      }
    }
  }

  const state: DatabaseState = {
    backend,
    schema,
    qschema: quoteIdent(schema),
    ...(knex ? { knex } : {}),
    pool,
    logger,
    migrations: migrationList,
    requested: { dimensions: opts.dimensions, vector },
    version: 0,
    closed: false,
    closeHooks: [],
  };
  const known = migrationList.at(-1)?.id ?? 0;
  let closing: Promise<void> | undefined;
  const db: Database = {
    backend,
    schema,
    get orm(): MikroORM {
      if (!orm || !wantOrm) {
        throw new TypeError('this database was opened with orm: false; db.orm is not available');
      }
      return orm;
    },
    get schemaVersion() {
      return state.version;
    },
    knownVersion: known,
    get embeddingDimensions() {
      return readySettings().embeddingDimensions;
    },
    get vectorStorage() {
      return readySettings().vectorStorage;
    },
    get closed() {
      return state.closed;
    },
    close() {
      closing ??= (async () => {
        state.closed = true;
        try {
          await Promise.all(state.closeHooks.map((hook) => hook().catch(() => undefined)));
          await orm?.close(true);
        } finally {
          await closeEmbedded?.();
          logEvent(logger, LogEvents.databaseClosed, { backend, schema });
        }
      })();
      return closing;
    },
  };
  function readySettings(): DatabaseSettings {
    if (!state.settings) throw new SchemaOutdatedError(state.version, known, schema);
    return state.settings;
  }
  registerState(db, state);
  if (orm) {
    const { bindVectorStorage } = await import('./column-types.js');
    bindVectorStorage(orm.em.getPlatform(), () => state.settings?.vectorStorage);
  }

  try {
    if (opts.migrate ?? true) await migrate(db, { signal: opts.signal });
    else await inspectSchema(state, opts.signal);
    if (template && !template.tarball && saveTemplate) {
      // an optimisation for the next open: a failure to build it is logged, never thrown
      const saved = await saveTemplate().then(
        (tarball) => writePgliteTemplate(template.dir, template.key, tarball),
        (e: unknown) => {
          logger.debug({ err: e }, 'pglite template not built');
          return false;
        },
      );
      logger.debug({ template: template.key, saved }, 'pglite template stored');
    }
  } catch (e) {
    await db.close().catch(() => undefined);
    throw toDatabaseError(backend, e);
  }
  logEvent(logger, LogEvents.databaseOpened, {
    backend,
    location,
    schema,
    schemaVersion: state.version,
    vectorStorage: state.settings?.vectorStorage,
  });
  return db;
}

function validate(
  opts: OpenDatabaseOptions,
  schema: string,
  poolSize: number,
  vector: string,
): void {
  if (opts.url !== undefined && (typeof opts.url !== 'string' || opts.url.length === 0)) {
    throw new TypeError('openDatabase: url must be a non-empty string');
  }
  if (opts.dataDir !== undefined && (typeof opts.dataDir !== 'string' || opts.dataDir === '')) {
    throw new TypeError('openDatabase: dataDir must be a non-empty string');
  }
  if (opts.url !== undefined && opts.dataDir !== undefined) {
    throw new TypeError('openDatabase: give url (a server) or dataDir (PGlite), not both');
  }
  if (typeof schema !== 'string' || !/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/.test(schema)) {
    throw new TypeError(
      `openDatabase: schema must be a plain SQL identifier, got ${String(schema)}`,
    );
  }
  if (!Number.isInteger(poolSize) || poolSize < 1) {
    throw new TypeError(`openDatabase: poolSize must be a positive integer, got ${poolSize}`);
  }
  const dims = opts.dimensions;
  if (dims !== undefined && (!Number.isInteger(dims) || dims < 1 || dims > 16_000)) {
    throw new TypeError(`openDatabase: dimensions must be an integer in 1..16000, got ${dims}`);
  }
  if (vector !== 'auto' && vector !== 'pgvector' && vector !== 'bytea') {
    throw new TypeError(
      `openDatabase: vector must be 'auto', 'pgvector' or 'bytea', got ${vector}`,
    );
  }
}

/**
 * Settings of the embedded PostgreSQL, chosen for a small, quick, single-process database
 * (measured in bench/, scenario `embedded`). PGlite already runs with `fsync` off, so its
 * folder survives a crash of the process (the operating system still holds every write) but
 * not of the machine; the settings below keep exactly that guarantee:
 * - `shared_buffers=32MB` (PGlite's default is 128MB): start-up zeroes the whole buffer pool,
 *   which was the largest single cost of reopening a folder;
 * - `full_page_writes=off`: full-page images protect against torn pages after a power loss,
 *   which `fsync=off` already gives up; without them the WAL of a bulk ingest is much smaller;
 * - `wal_recycle=off` and `max_wal_size=128MB`: a checkpoint (at the latest, the one `close()`
 *   runs) deletes old WAL segments instead of keeping up to 80MB of them for reuse.
 * @internal
 */
export const PGLITE_SETTINGS: readonly string[] = [
  'shared_buffers=32MB',
  'full_page_writes=off',
  'wal_recycle=off',
  'max_wal_size=128MB',
];

/**
 * `initdb` options of a new PGlite folder: 1MB WAL segments instead of 16MB, so a closed
 * folder keeps one or two megabytes of WAL, not 16-32; and no WAL recycling during `initdb`
 * either (with it, `initdb` leaves five future segments behind that a new folder carried
 * until it had written 5 MB of WAL).
 * @internal
 */
export const PGLITE_INITDB_PARAMS: readonly string[] = ['--wal-segsize=1', '-c', 'wal_recycle=off'];

/**
 * Drops PGlite's `template0` and `template1` (the sources of `CREATE DATABASE`, which an
 * embedded database never runs: PGlite opens one database, `postgres`) before a template is
 * dumped: 14 MB less in every folder made from it.
 */
const DROP_TEMPLATE_DATABASES: readonly string[] = [
  "UPDATE pg_database SET datistemplate = false WHERE datname IN ('template0', 'template1')",
  // one statement each: DROP DATABASE refuses to run inside a (multi-statement) transaction
  'DROP DATABASE IF EXISTS template0',
  'DROP DATABASE IF EXISTS template1',
];

/**
 * The template a new embedded database can start from: where it is kept, its key, and its
 * tarball when one is stored (`tarball` undefined: build it after migrating). `undefined`
 * when no template applies: templates off, not migrating, or the folder already holds a
 * database.
 */
async function findTemplate(
  opts: OpenDatabaseOptions,
  dataDir: string,
  schema: string,
  vector: string,
  migrationList: readonly Migration[],
): Promise<{ dir: string; key: string; tarball?: Blob } | undefined> {
  if (opts.template === false || opts.migrate === false) return undefined;
  const memory = dataDir.startsWith('memory://');
  if (!memory && (dataDir.includes('://') || existsSync(join(dataDir, 'PG_VERSION')))) {
    return undefined;
  }
  const dir = pgliteTemplateDir();
  if (!dir) return undefined;
  const key = pgliteTemplateKey({
    migrations: migrationList,
    schema,
    // PGlite always has pgvector: 'auto' chooses it
    vectorStorage: vector === 'bytea' ? 'bytea' : 'pgvector',
    embeddingDimensions: opts.dimensions ?? DEFAULT_DIMENSIONS,
    initdbParams: PGLITE_INITDB_PARAMS,
  });
  const tarball = await readPgliteTemplate(dir, key);
  return tarball ? { dir, key, tarball } : { dir, key };
}

/**
 * An embedded PGlite (with pgvector) behind a one-connection pool: knex's (for MikroORM), or
 * with `withKnex: false` one node-postgres client handed out by {@link singleClientPool}.
 */
async function openPglite(
  dataDir: string,
  logger: Logger,
  withKnex: boolean,
  template?: Blob,
): Promise<{
  knex?: Knex;
  pool: ClientPool;
  close: () => Promise<void>;
  dump: () => Promise<Blob>;
}> {
  const [{ PGlite }, { vector }, { createPgConfig }] = await Promise.all([
    import('@electric-sql/pglite'),
    import('@electric-sql/pglite-pgvector'),
    import('@electric-sql/pglite/node-postgres'),
  ]);
  if (!dataDir.includes('://')) await mkdir(dataDir, { recursive: true });
  let pglite: InstanceType<typeof PGlite>;
  try {
    pglite = await PGlite.create(dataDir, {
      extensions: { vector },
      ...(template ? { loadDataDir: template } : {}),
      initDbStartParams: [...PGLITE_INITDB_PARAMS],
      startParams: [...PGlite.defaultStartParams, ...PGLITE_SETTINGS.flatMap((s) => ['-c', s])],
    });
  } catch (e) {
    throw new DatabaseUnavailableError('pglite', e);
  }
  // the template holds one database (template0 and template1 dropped: see pglite-template.ts),
  // and a checkpoint comes first: the copy then starts without replaying the migrations' WAL
  const dump = async () => {
    for (const sql of DROP_TEMPLATE_DATABASES) await pglite.exec(sql);
    await pglite.exec('CHECKPOINT');
    return pglite.dumpDataDir('none');
  };
  const connectionConfig = () => {
    const config = createPgConfig(pglite);
    return {
      user: config.user,
      password: config.password,
      host: config.host,
      port: config.port,
      database: config.database,
      connection: config.connection,
    };
  };
  if (!withKnex) {
    try {
      // the node-postgres that MikroORM's driver depends on, without loading MikroORM
      const { Client } = nodePostgres();
      const client = new Client(connectionConfig());
      await client.connect();
      return {
        pool: singleClientPool(client),
        dump,
        close: async () => {
          try {
            await client.end();
          } finally {
            if (!pglite.closed) await pglite.close();
          }
        },
      };
    } catch (e) {
      if (!pglite.closed) await pglite.close();
      throw e;
    }
  }
  const { knex: createKnex, PostgreSqlKnexDialect } = await import('@mikro-orm/postgresql');
  const knex = createKnex({
    client: PostgreSqlKnexDialect as unknown as typeof Knex.Client,
    log: knexLog(logger),
    pool: {
      min: 1,
      max: 1,
      idleTimeoutMillis: 2 ** 31 - 1,
      // PGlite is ONE backend session shared by every adapter connection: if the pool ever
      // replaces its connection, clear session state the new client does not know about.
      afterCreate: (
        conn: { query(sql: string): Promise<unknown> },
        done: (e?: unknown) => void,
      ) => {
        conn
          .query('ROLLBACK')
          .then(() => conn.query('DEALLOCATE ALL'))
          .then(
            () => done(),
            (e: unknown) => done(e),
          );
      },
    },
    connection: () => connectionConfig() as Knex.PgConnectionConfig,
  });
  return {
    knex,
    pool: knexPool(knex),
    dump,
    close: async () => {
      try {
        await knex.destroy();
      } finally {
        if (!pglite.closed) await pglite.close();
      }
    },
  };
}

/** A node-postgres client: one connection, as knex's pg dialect makes it. */
interface NodePostgresClient extends SqlClient {
  connect(): Promise<void>;
  end(): Promise<void>;
}

/**
 * node-postgres (`pg`), resolved from `@mikro-orm/postgresql`, the peer dependency that brings
 * it, so it is the same copy knex uses.
 */
function nodePostgres(): { Client: new (config: object) => NodePostgresClient } {
  const fromHere = createRequire(import.meta.url);
  const fromDriver = createRequire(fromHere.resolve('@mikro-orm/postgresql'));
  return fromDriver('pg') as { Client: new (config: object) => NodePostgresClient };
}

/** knex's own warnings (e.g. a dropped connection) go to the logger, not the console. */
function knexLog(logger: Logger): Knex.Logger {
  return {
    warn: (message: unknown) => logger.warn({ knex: true }, String(message)),
    error: (message: unknown) => logger.error({ knex: true }, String(message)),
    deprecate: (method: string, alternative: string) =>
      logger.debug({ knex: true }, `${method} is deprecated, use ${alternative}`),
    debug: (message: unknown) => logger.debug({ knex: true }, String(message)),
  };
}

/** The default of {@link OpenDatabaseOptions.connectTimeoutMs}. @internal */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** The default of {@link OpenDatabaseOptions.statementTimeoutMs}. @internal */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 300_000;
/** The default of {@link OpenDatabaseOptions.idleTimeoutMs}. @internal */
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;

function timeoutsOf(opts: OpenDatabaseOptions): {
  connectMs: number | undefined;
  statementMs: number;
  idleMs: number;
} {
  const check = (name: string, value: number | undefined, min: number): void => {
    if (value !== undefined && (!Number.isInteger(value) || value < min || value > 2 ** 31 - 1)) {
      throw new TypeError(
        `openDatabase: ${name} must be an integer number of milliseconds >= ${min}, got ${value}`,
      );
    }
  };
  check('connectTimeoutMs', opts.connectTimeoutMs, 1);
  check('statementTimeoutMs', opts.statementTimeoutMs, 0);
  check('idleTimeoutMs', opts.idleTimeoutMs, 1);
  return {
    connectMs: opts.connectTimeoutMs,
    statementMs: opts.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS,
    idleMs: opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
  };
}

/** libpq's `connect_timeout` URL parameter (seconds; 0 or absent: not set), in ms. */
function connectTimeoutOfUrl(url: string): number | undefined {
  let value: string | null;
  try {
    value = new URL(url).searchParams.get('connect_timeout');
  } catch {
    return undefined;
  }
  if (value === null) return undefined;
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw new TypeError(
      `openDatabase: the URL's connect_timeout must be a number of seconds, got ${value}`,
    );
  }
  // libpq: 0 means wait indefinitely, and values under 2 s count as 2 s
  return seconds === 0 ? 2 ** 31 - 1 : Math.max(2, seconds) * 1000;
}
