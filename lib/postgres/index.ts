/**
 * `@hartonomous/pipelines/postgres`: opening the library's database, a PostgreSQL server
 * (MikroORM's `@mikro-orm/postgresql` driver) or an embedded PGlite with pgvector, with the same
 * schema and SQL, and its versioned migrations.
 *
 * @example
 * ```ts
 * import { openDatabase } from '@hartonomous/pipelines/postgres';
 *
 * const db = await openDatabase(); // DATABASE_URL, else PGlite in .data/pglite
 * console.log(db.backend, db.schemaVersion);
 * await db.close();
 * ```
 *
 * @module
 */

export {
  InvalidDatabaseUrlError,
  type InvalidDatabaseUrlReason,
  isInvalidDatabaseUrlError,
} from './check-database-url.js';
export { ContentHashType, EmbeddingType } from './column-types.js';
export {
  DatabaseAuthenticationError,
  DatabaseDoesNotExistError,
  DatabaseTimeoutError,
  type DatabaseTimeoutPhase,
  isDatabaseAuthenticationError,
  isDatabaseDoesNotExistError,
  isDatabaseTimeoutError,
} from './connection-errors.js';
export {
  type CreateVectorIndexOptions,
  createVectorIndex,
} from './create-vector-index.js';
export type { Database, VectorStorage } from './database.js';
export {
  type DatabaseBackend,
  type DatabaseSetting,
  DatabaseSettingsMismatchError,
  DatabaseUnavailableError,
  isDatabaseSettingsMismatchError,
  isDatabaseUnavailableError,
  isSchemaOutdatedError,
  isSchemaTooNewError,
  isVectorExtensionUnavailableError,
  SchemaOutdatedError,
  SchemaTooNewError,
  VectorExtensionUnavailableError,
} from './errors.js';
export {
  type AppliedMigration,
  type MigrateOptions,
  type MigrateResult,
  migrate,
} from './migrate.js';
export { type Migration, type MigrationContext, migrations } from './migrations/index.js';
export { type OpenDatabaseOptions, openDatabase } from './open-database.js';
export {
  type LoadSagaOptions,
  loadSaga,
  type PurgeSagasOptions,
  postgresSagaLog,
  purgeSagas,
  SagaRecord,
  type SagaRecordEntity,
  sagaEntityManager,
} from './saga-log.js';
export {
  type ResumeSagasOptions,
  resumeSagas,
  type SagaRecovery,
  type SagaRecoveryOptions,
  type SagaRecoveryStats,
  sagaRecovery,
} from './saga-recovery.js';
export { SchemaMigration, type SchemaMigrationEntity } from './schema-migration.js';
