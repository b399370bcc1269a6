import { defineEntity, type InferEntity, p } from '@mikro-orm/core';

/**
 * Entity of `schema_migrations`: one row per applied migration.
 *
 * @example
 * ```ts
 * import { SchemaMigration } from '@hartonomous/pipelines/postgres';
 * const applied = await db.orm.em.fork().find(SchemaMigration, {}, { orderBy: { version: 'asc' } });
 * ```
 */
export const SchemaMigration = defineEntity({
  name: 'SchemaMigration',
  tableName: 'schema_migrations',
  properties: {
    /** The migration's id. */
    version: p.integer().primary().autoincrement(false),
    /** The migration's name. */
    name: p.text(),
    /** When it was applied. */
    appliedAt: p.datetime().defaultRaw('now()'),
  },
});

/**
 * A `schema_migrations` row as MikroORM returns it.
 *
 * @example
 * ```ts
 * import type { SchemaMigrationEntity } from '@hartonomous/pipelines/postgres';
 * const label = (m: SchemaMigrationEntity) => `${m.version}-${m.name}`;
 * ```
 */
export type SchemaMigrationEntity = InferEntity<typeof SchemaMigration>;
