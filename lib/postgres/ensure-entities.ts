/**
 * Registering MikroORM entities on an open database at first use, so features whose tables
 * come with migrations (the saga log, inference) need no registration by the caller.
 *
 * @internal
 * @module
 */

import type { AnyEntity, EntitySchema, MikroORM } from '@mikro-orm/core';

/**
 * Makes sure `orm` knows `entities` (it was opened without them): discovered once, at first
 * use.
 * @internal
 */
export function ensureEntities(orm: MikroORM, entities: readonly EntitySchema<AnyEntity>[]): void {
  const missing = entities.filter((e) => !orm.getMetadata().has(e.meta.className));
  if (missing.length > 0) orm.discoverEntity(missing as EntitySchema<AnyEntity>[]);
}
