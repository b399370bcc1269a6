import type { Database } from '../postgres/database.js';
import { resolveModel } from './resolve-model.js';
import { InferenceModel, inferenceOrm } from './schema.js';
import type { ModelDefinition, ResolvedModel } from './types.js';

/**
 * Where an ensemble gets its models, with caching.
 *
 * @example
 * ```ts
 * import { modelRegistry } from '@hartonomous/pipelines/inference';
 * const registry = modelRegistry(db, { cacheMs: 10_000 });
 * const models = await registry.load();
 * registry.invalidate(); // after registerModels(...), to see the change at once
 * ```
 */
export interface ModelRegistry {
  /**
   * Every model (enabled or not), sorted by name. Loaded at most once per `cacheMs`:
   * concurrent callers share one load; a failed load is not cached.
   * @param signal - cancels waiting (a load already running continues for the others)
   * @returns the models
   */
  load(signal?: AbortSignal): Promise<readonly ResolvedModel[]>;
  /** Forgets the cached models; the next `load` reads them again. */
  invalidate(): void;
}

/**
 * Options of {@link modelRegistry}.
 *
 * @example
 * ```ts
 * import type { ModelRegistryOptions } from '@hartonomous/pipelines/inference';
 * const options: ModelRegistryOptions = { cacheMs: 30_000 };
 * ```
 */
export interface ModelRegistryOptions {
  /**
   * How long a load is reused, in ms: a stream of requests (a run) reads the registry once
   * per `cacheMs`, not once per request. `0` reads it for every request.
   * @default 5_000
   */
  cacheMs?: number;
  /** Clock in ms. @default performance.now */
  now?: () => number;
}

/**
 * A model registry over the `inference_models` table (or over a fixed list of models, for
 * tests and static setups), with the models cached for `cacheMs`.
 *
 * @param source - an open database, or the models themselves
 * @param options - cache duration
 * @returns the registry
 * @throws TypeError when a fixed model is invalid or an option is
 *
 * @example
 * ```ts
 * import { ensemble, modelRegistry } from '@hartonomous/pipelines/inference';
 *
 * const registry = modelRegistry(db, { cacheMs: 60_000 });
 * const sentiment = ensemble({ models: registry });
 * ```
 * @see {@link registerModels}
 */
export function modelRegistry(
  source: Database | readonly ModelDefinition[],
  options: ModelRegistryOptions = {},
): ModelRegistry {
  const cacheMs = options.cacheMs ?? 5_000;
  if (!(cacheMs >= 0) || !Number.isFinite(cacheMs)) {
    throw new TypeError(`modelRegistry: cacheMs must be a finite number >= 0, got ${cacheMs}`);
  }
  const now = options.now ?? (() => performance.now());
  if (Array.isArray(source)) {
    const fixed = Object.freeze(
      (source as readonly ModelDefinition[]).map(resolveModel).sort(byName),
    );
    const names = new Set(fixed.map((m) => m.name));
    if (names.size !== fixed.length)
      throw new TypeError('modelRegistry: model names must be unique');
    return { load: async () => fixed, invalidate: () => undefined };
  }
  const db = source as Database;
  inferenceOrm(db); // fails early for something that is not a database
  let cached: { at: number; models: Promise<readonly ResolvedModel[]> } | undefined;
  const read = async (): Promise<readonly ResolvedModel[]> => {
    const rows = await inferenceOrm(db)
      .em.fork()
      .find(InferenceModel, {}, { orderBy: { name: 'asc' } });
    return Object.freeze(
      rows.map((r) =>
        resolveModel({
          name: r.name,
          endpoint: r.endpoint,
          kind: r.kind,
          weight: Number(r.weight),
          timeoutMs: r.timeoutMs,
          enabled: r.enabled,
          options: r.options ?? {},
        }),
      ),
    );
  };
  return {
    load(signal) {
      signal?.throwIfAborted();
      const t = now();
      if (!cached || t - cached.at >= cacheMs || cacheMs === 0) {
        const entry = { at: t, models: read() };
        cached = entry;
        entry.models.catch(() => {
          if (cached === entry) cached = undefined;
        });
      }
      const models = cached.models;
      if (!signal) return models;
      return new Promise((resolve, reject) => {
        const onAbort = () => reject(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        models.then(
          (m) => {
            signal.removeEventListener('abort', onAbort);
            resolve(m);
          },
          (e: unknown) => {
            signal.removeEventListener('abort', onAbort);
            reject(e);
          },
        );
      });
    },
    invalidate() {
      cached = undefined;
    },
  };
}

function byName(a: ResolvedModel, b: ResolvedModel): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
