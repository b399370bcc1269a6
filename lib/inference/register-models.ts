import type { Database } from '../postgres/database.js';
import { resolveModel } from './resolve-model.js';
import { InferenceModel, inferenceOrm } from './schema.js';
import type { ModelDefinition, ResolvedModel } from './types.js';

/**
 * Adds models to the registry in the database, or updates them (matched by name): endpoint,
 * kind, weight, time limit, enabled flag and options are replaced. Disable a model by
 * registering it with `enabled: false`; remove it with {@link unregisterModels}.
 *
 * @param db - an open database (migration 6 applied)
 * @param models - the models
 * @returns the models as stored, with defaults applied
 * @throws TypeError when a definition is invalid (nothing is written then)
 *
 * @example
 * ```ts
 * import { openDatabase } from '@hartonomous/pipelines/postgres';
 * import { registerModels } from '@hartonomous/pipelines/inference';
 *
 * const db = await openDatabase();
 * await registerModels(db, [
 *   { name: 'small', endpoint: 'http://127.0.0.1:8001/predict', timeoutMs: 500 },
 *   { name: 'large', endpoint: 'http://127.0.0.1:8002/predict', weight: 2, timeoutMs: 2_000 },
 * ]);
 * ```
 * @see {@link modelRegistry}
 */
export async function registerModels(
  db: Database,
  models: readonly ModelDefinition[],
): Promise<ResolvedModel[]> {
  if (!Array.isArray(models)) throw new TypeError('registerModels: models must be an array');
  const resolved = models.map(resolveModel);
  const names = new Set<string>();
  for (const m of resolved) {
    if (names.has(m.name)) throw new TypeError(`registerModels: two models are named '${m.name}'`);
    names.add(m.name);
  }
  if (resolved.length === 0) return [];
  const em = inferenceOrm(db).em.fork();
  const now = new Date();
  await em.upsertMany(
    InferenceModel,
    resolved.map((m) => ({
      name: m.name,
      endpoint: m.endpoint,
      kind: m.kind,
      weight: m.weight,
      timeoutMs: m.timeoutMs,
      enabled: m.enabled,
      options: { ...m.options },
      createdAt: now,
      updatedAt: now,
    })),
    {
      onConflictFields: ['name'],
      onConflictAction: 'merge',
      onConflictExcludeFields: ['createdAt'],
    },
  );
  return resolved;
}

/**
 * Removes models from the registry.
 *
 * @param db - an open database
 * @param names - the models' names
 * @returns how many were removed
 *
 * @example
 * ```ts
 * import { unregisterModels } from '@hartonomous/pipelines/inference';
 * await unregisterModels(db, ['old-model']);
 * ```
 */
export async function unregisterModels(db: Database, names: readonly string[]): Promise<number> {
  if (!Array.isArray(names)) throw new TypeError('unregisterModels: names must be an array');
  if (names.length === 0) return 0;
  return inferenceOrm(db)
    .em.fork()
    .nativeDelete(InferenceModel, { name: { $in: [...names] } });
}
