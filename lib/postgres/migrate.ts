import { LogEvents, logEvent } from '../observability/log-events.js';
import {
  type Database,
  type DatabaseSettings,
  type DatabaseState,
  type SqlClient,
  stateOf,
  type VectorStorage,
  withClient,
  withTransaction,
} from './database.js';
import {
  DatabaseSettingsMismatchError,
  SchemaTooNewError,
  VectorExtensionUnavailableError,
} from './errors.js';
import type { MigrationContext } from './migrations/index.js';

/**
 * Options of {@link migrate}.
 *
 * @example
 * ```ts
 * import type { MigrateOptions } from '@hartonomous/pipelines/postgres';
 * const options: MigrateOptions = { signal: AbortSignal.timeout(60_000) };
 * ```
 */
export interface MigrateOptions {
  /** Cancels the migration (checked between statements; the transaction rolls back). @default none */
  signal?: AbortSignal;
}

/**
 * What {@link migrate} did.
 *
 * @example
 * ```ts
 * import { migrate, type MigrateResult } from '@hartonomous/pipelines/postgres';
 * const result: MigrateResult = await migrate(db);
 * console.log(`${result.from} -> ${result.to}`, result.applied.map((m) => m.name));
 * ```
 */
export interface MigrateResult {
  /** Schema version before. */
  readonly from: number;
  /** Schema version after. */
  readonly to: number;
  /** The migrations applied now, in order (empty when the schema was current). */
  readonly applied: readonly AppliedMigration[];
}

/**
 * A migration {@link migrate} applied.
 *
 * @example
 * ```ts
 * import type { AppliedMigration } from '@hartonomous/pipelines/postgres';
 * const label = (m: AppliedMigration) => `${m.id}-${m.name}`;
 * ```
 */
export interface AppliedMigration {
  /** Its id (the schema version it brings the database to). */
  readonly id: number;
  /** Its name. */
  readonly name: string;
}

/** Advisory lock key (two int4 halves) serialising migrations across processes. @internal */
export const MIGRATION_LOCK: readonly [number, number] = [0x48617274, 0x6f6e6f6d];

/** Embedding dimensions of a new database when none are asked for. @internal */
export const DEFAULT_DIMENSIONS = 384;

/**
 * Applies the migrations the database is missing, in order, in ONE transaction that holds a
 * PostgreSQL advisory lock (`pg_advisory_xact_lock`), so several processes opening or
 * migrating the same database at once are safe: one applies, the others wait and then find
 * nothing to do. Creates the schema (namespace) and the `schema_migrations` table if needed.
 * `openDatabase` calls this unless `migrate: false`.
 *
 * @param db - an open database
 * @param options - cancellation
 * @returns the versions before and after and what was applied
 * @throws {@link SchemaTooNewError} when the database is newer than this library
 *
 * @example
 * ```ts
 * import { migrate, openDatabase } from '@hartonomous/pipelines/postgres';
 *
 * const db = await openDatabase({ url: process.env.DATABASE_URL, migrate: false });
 * const { from, to } = await migrate(db);
 * console.log(`schema ${from} -> ${to}`);
 * ```
 * @see {@link migrations}
 */
export async function migrate(db: Database, options: MigrateOptions = {}): Promise<MigrateResult> {
  const state = stateOf(db);
  const { signal } = options;
  // The common case, a database already at the version this library knows, is answered by one
  // read (no transaction, no advisory lock, no DDL): migrations commit in one transaction, so a
  // committed version equal to the last known id means there is nothing to apply.
  const current = await withClient(state, signal, (client) => readSchemaState(client, state));
  const known = state.migrations.at(-1)?.id ?? 0;
  if (current && current.version >= known) {
    if (current.version > known) throw new SchemaTooNewError(current.version, known, state.schema);
    if (current.settings) {
      checkRequested(state, current.settings);
      adopt(state, current);
      return { from: known, to: known, applied: [] };
    }
  }
  const result = await withTransaction(
    state,
    signal,
    async (client) => {
      await client.query({
        text: 'SELECT pg_advisory_xact_lock($1, $2)',
        values: [...MIGRATION_LOCK],
      });
      const q = state.qschema;
      if (state.schema !== 'public') await client.query(`CREATE SCHEMA IF NOT EXISTS ${q}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${q}.schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`,
      );
      const from = await readVersion(client, state);
      if (from > known) throw new SchemaTooNewError(from, known, state.schema);

      let settings = await readSettings(client, state);
      if (settings) checkRequested(state, settings);
      const applied: { id: number; name: string }[] = [];
      if (from < known) {
        settings ??= {
          embeddingDimensions: state.requested.dimensions ?? DEFAULT_DIMENSIONS,
          vectorStorage: await chooseStorage(client, state),
        };
        const ctx: MigrationContext = {
          schema: state.schema,
          vectorStorage: settings.vectorStorage,
          embeddingDimensions: settings.embeddingDimensions,
        };
        await client.query(`SET LOCAL search_path TO ${q}, public`);
        for (const migration of state.migrations.slice(from)) {
          const up = migration.up(ctx);
          for (const statement of typeof up === 'string' ? [up] : up) {
            signal?.throwIfAborted();
            await client.query(statement);
          }
          await client.query({
            text: `INSERT INTO ${q}.schema_migrations (version, name) VALUES ($1, $2)`,
            values: [migration.id, migration.name],
          });
          applied.push({ id: migration.id, name: migration.name });
        }
        settings = await readSettings(client, state);
      }
      return { from, to: from + applied.length, applied, settings };
    },
    { unlimited: true },
  );
  state.version = result.to;
  state.settings = result.settings;
  if (result.settings?.vectorStorage === 'pgvector') {
    state.vectorOid = await withClient(state, signal, (client) => readVectorOid(client, state));
  }
  if (result.applied.length > 0) {
    logEvent(state.logger, LogEvents.databaseMigrated, {
      schema: state.schema,
      from: result.from,
      to: result.to,
      applied: result.applied.map((m) => `${m.id}-${m.name}`),
    });
  }
  return { from: result.from, to: result.to, applied: result.applied };
}

/**
 * Reads the schema version and settings without changing anything (for `migrate: false`).
 * @throws {@link SchemaTooNewError} when the database is newer than this library
 * @internal
 */
export async function inspectSchema(state: DatabaseState, signal?: AbortSignal): Promise<void> {
  const current = await withClient(state, signal, (client) => readSchemaState(client, state));
  const known = state.migrations.at(-1)?.id ?? 0;
  const version = current?.version ?? 0;
  if (version > known) throw new SchemaTooNewError(version, known, state.schema);
  if (current?.settings) checkRequested(state, current.settings);
  adopt(state, current ?? { version: 0 });
}

/** What one read of `schema_migrations` and `pipeline_settings` found. */
interface SchemaState {
  version: number;
  settings?: DatabaseSettings;
  vectorOid?: number;
}

/**
 * The schema version, the settings and the `vector` type's oid in two reads (which tables
 * exist, then one SELECT of all three); `undefined` when the schema has no `schema_migrations`
 * table yet (a new database). Runs no DDL and takes no lock.
 */
async function readSchemaState(
  client: SqlClient,
  state: DatabaseState,
): Promise<SchemaState | undefined> {
  const q = state.qschema;
  const exists = await client.query<{ migrations: boolean; settings: boolean }>({
    text: 'SELECT to_regclass($1) IS NOT NULL AS migrations, to_regclass($2) IS NOT NULL AS settings',
    values: [`${q}.schema_migrations`, `${q}.pipeline_settings`],
  });
  const found = exists.rows[0];
  if (!found?.migrations) return undefined;
  const settingsSql = found.settings
    ? `(SELECT json_object_agg(key, value) FROM ${q}.pipeline_settings)`
    : 'NULL::json';
  const { rows } = await client.query<{
    v: number;
    settings: Record<string, unknown> | null;
    vector_oid: number | null;
  }>(
    `SELECT (SELECT coalesce(max(version), 0)::int FROM ${q}.schema_migrations) AS v,
      ${settingsSql} AS settings, to_regtype('vector')::oid::int AS vector_oid`,
  );
  const row = rows[0];
  const settings = toSettings(row?.settings ?? undefined);
  return {
    version: row?.v ?? 0,
    ...(settings ? { settings } : {}),
    ...(row?.vector_oid ? { vectorOid: row.vector_oid } : {}),
  };
}

/** Records what was read on the handle's state; fails if pgvector storage has no `vector` type. */
function adopt(state: DatabaseState, current: SchemaState): void {
  state.version = current.version;
  state.settings = current.settings;
  if (current.settings?.vectorStorage === 'pgvector') {
    if (!current.vectorOid) {
      throw new VectorExtensionUnavailableError(
        state.backend,
        new Error('the vector type is not on the search_path'),
      );
    }
    state.vectorOid = current.vectorOid;
  }
}

function toSettings(map: Record<string, unknown> | undefined): DatabaseSettings | undefined {
  if (!map) return undefined;
  const dims = Number(map.embedding_dimensions);
  const storage = map.vector_storage;
  if (!Number.isInteger(dims) || (storage !== 'pgvector' && storage !== 'bytea')) return undefined;
  return { embeddingDimensions: dims, vectorStorage: storage };
}

async function readVersion(client: SqlClient, state: DatabaseState): Promise<number> {
  const { rows } = await client.query<{ v: number }>(
    `SELECT coalesce(max(version), 0)::int AS v FROM ${state.qschema}.schema_migrations`,
  );
  return rows[0]?.v ?? 0;
}

async function readSettings(
  client: SqlClient,
  state: DatabaseState,
): Promise<DatabaseSettings | undefined> {
  const exists = await client.query<{ ok: boolean }>({
    text: 'SELECT to_regclass($1) IS NOT NULL AS ok',
    values: [`${state.qschema}.pipeline_settings`],
  });
  if (!exists.rows[0]?.ok) return undefined;
  const { rows } = await client.query<{ key: string; value: unknown }>(
    `SELECT key, value FROM ${state.qschema}.pipeline_settings`,
  );
  return toSettings(Object.fromEntries(rows.map((r) => [r.key, r.value])));
}

function checkRequested(state: DatabaseState, settings: DatabaseSettings): void {
  const { dimensions, vector } = state.requested;
  if (dimensions !== undefined && dimensions !== settings.embeddingDimensions) {
    throw new DatabaseSettingsMismatchError(
      'embeddingDimensions',
      dimensions,
      settings.embeddingDimensions,
    );
  }
  if (vector !== 'auto' && vector !== settings.vectorStorage) {
    throw new DatabaseSettingsMismatchError('vectorStorage', vector, settings.vectorStorage);
  }
}

/** pgvector when installed or installable (in a savepoint), else bytea. */
async function chooseStorage(client: SqlClient, state: DatabaseState): Promise<VectorStorage> {
  const wanted = state.requested.vector;
  if (wanted === 'bytea') return 'bytea';
  const installed = await client.query("SELECT 1 FROM pg_extension WHERE extname = 'vector'");
  if (installed.rows.length > 0) return 'pgvector';
  const available = await client.query(
    "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'",
  );
  if (available.rows.length > 0) {
    await client.query('SAVEPOINT hartonomous_vector');
    try {
      await client.query('CREATE EXTENSION IF NOT EXISTS vector');
      await client.query('RELEASE SAVEPOINT hartonomous_vector');
      return 'pgvector';
    } catch (e) {
      await client.query('ROLLBACK TO SAVEPOINT hartonomous_vector');
      if (wanted === 'pgvector') throw new VectorExtensionUnavailableError(state.backend, e);
      return 'bytea';
    }
  }
  if (wanted === 'pgvector') throw new VectorExtensionUnavailableError(state.backend);
  return 'bytea';
}

async function readVectorOid(client: SqlClient, state: DatabaseState): Promise<number> {
  const { rows } = await client.query<{ oid: number | null }>(
    "SELECT to_regtype('vector')::oid::int AS oid",
  );
  const oid = rows[0]?.oid;
  if (!oid) {
    throw new VectorExtensionUnavailableError(
      state.backend,
      new Error('the vector type is not on the search_path'),
    );
  }
  return oid;
}
