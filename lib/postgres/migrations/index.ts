/**
 * The library's versioned schema migrations, in order. Each has a numeric `id` (1, 2, 3, ...
 * without gaps), a name, and the SQL it applies. A database records the ids it has applied in
 * `schema_migrations`; {@link migrate} applies the missing ones in one transaction under a
 * PostgreSQL advisory lock.
 *
 * Adding a feature that needs tables (a saga log, a model registry, inference results): add a
 * file `NNNN-feature-name.ts` exporting a {@link Migration} with the next id and append it to
 * {@link migrations}. Never edit or reorder a released migration; write a new one.
 *
 * @module
 */

import type { VectorStorage } from '../database.js';
import { pipelineSettingsMigration } from './0001-pipeline-settings.js';
import { atomsMigration } from './0002-atoms.js';
import { outboxMigration } from './0003-outbox.js';
import { atomClaimsMigration } from './0004-atom-claims.js';
import { sagaLogMigration } from './0005-saga-log.js';
import { inferenceMigration } from './0006-inference.js';
import { outboxRelayMigration } from './0007-outbox-relay.js';
import { sagaDurableMigration } from './0010-saga-durable.js';
import { atomsFullTextMigration } from './0012-atoms-full-text.js';
import { documentsMigration } from './0013-documents.js';
import { embeddingModelsMigration } from './0014-embedding-models.js';

/**
 * What a migration's SQL may depend on. Statements run with `search_path` set (for the
 * migration's transaction only) to the target schema first, then `public`, so they can name
 * tables without a schema.
 *
 * @example
 * ```ts
 * import type { MigrationContext } from '@hartonomous/pipelines/postgres';
 * const ctx: MigrationContext = { schema: 'public', vectorStorage: 'bytea', embeddingDimensions: 384 };
 * ```
 */
export interface MigrationContext {
  /** The schema (namespace) being migrated, unquoted. */
  readonly schema: string;
  /** How embeddings are stored in this database. */
  readonly vectorStorage: VectorStorage;
  /** Dimensions of stored embeddings. */
  readonly embeddingDimensions: number;
}

/**
 * One versioned schema change.
 *
 * @example
 * ```ts
 * import type { Migration } from '@hartonomous/pipelines/postgres';
 *
 * export const sagaLogMigration: Migration = {
 *   id: 5,
 *   name: 'saga-log',
 *   up: () => ['CREATE TABLE saga_log (id bigserial PRIMARY KEY, saga_id text NOT NULL, state jsonb NOT NULL)'],
 * };
 * ```
 */
export interface Migration {
  /** Position in the list: 1 for the first, then +1 each. Stored in `schema_migrations.version`. */
  readonly id: number;
  /** A short kebab-case name, stored beside the id. */
  readonly name: string;
  /**
   * The SQL statements to apply, in order, inside the migration transaction.
   * @param ctx - what the SQL may depend on
   * @returns one statement or several
   */
  up(ctx: MigrationContext): string | readonly string[];
}

/**
 * Every migration the library ships, ordered by id. The last id is the schema version this
 * version of the library knows.
 *
 * @example
 * ```ts
 * import { migrations } from '@hartonomous/pipelines/postgres';
 * console.log(migrations.at(-1)?.id); // the schema version this library knows
 * ```
 */
export const migrations: readonly Migration[] = Object.freeze([
  pipelineSettingsMigration,
  atomsMigration,
  outboxMigration,
  atomClaimsMigration,
  sagaLogMigration,
  inferenceMigration,
  outboxRelayMigration,
  // TEMPORARY (saga branch): ids 8 and 9 belong to migrations landing from another branch;
  // these no-op placeholders keep the ids contiguous until they do. Replace them with the real
  // 0008/0009 migrations when merging (never apply these to a database you keep).
  { id: 8, name: 'reserved-8', up: () => [] },
  { id: 9, name: 'reserved-9', up: () => [] },
  sagaDurableMigration,
  // TEMPORARY: id 11 is reserved for the atoms branch (which has needed no migration so far);
  // this no-op placeholder keeps the ids contiguous (replace it with the real 0011 if one lands).
  { id: 11, name: 'reserved-11', up: () => [] },
  atomsFullTextMigration,
  documentsMigration,
  embeddingModelsMigration,
]);

/**
 * Checks that ids run 1, 2, 3, ... without gaps or duplicates and names are non-empty.
 * @internal
 */
export function checkMigrations(list: readonly Migration[]): void {
  list.forEach((m, i) => {
    if (m.id !== i + 1) {
      throw new TypeError(
        `migration ids must be 1, 2, 3, ... in order: position ${i + 1} has id ${String(m.id)} (${m.name})`,
      );
    }
    if (typeof m.name !== 'string' || m.name.length === 0) {
      throw new TypeError(`migration ${m.id} needs a name`);
    }
    if (typeof m.up !== 'function') throw new TypeError(`migration ${m.id} needs an up() function`);
  });
}
