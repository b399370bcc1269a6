/**
 * The named errors of embedding model changes (`reembed`, `setDefaultModel`, `dropModel`).
 * Each carries structured fields and has an `isXError` guard.
 *
 * @module
 */

import { errorGuard, PipelineError } from '../core/errors.js';

/**
 * A collection's default model cannot be switched: some of its atoms have no vector of that
 * model yet. Run `reembed` with that model (and the collection) first.
 *
 * @example
 * ```ts
 * import { isModelNotEmbeddedError, setDefaultModel } from '@hartonomous/pipelines/documents';
 *
 * try {
 *   await setDefaultModel(db, 'docs', 'text-embedding-3-small');
 * } catch (e) {
 *   if (isModelNotEmbeddedError(e)) console.error(`${e.missing} atoms still to embed`);
 *   else throw e;
 * }
 * ```
 */
export class ModelNotEmbeddedError extends PipelineError {
  readonly code = 'MODEL_NOT_EMBEDDED' as const;
  /**
   * @param collection - the collection
   * @param model - the model asked for
   * @param missing - atoms of the collection without a vector of that model
   */
  constructor(
    readonly collection: string,
    readonly model: string,
    readonly missing: number,
  ) {
    super(
      `collection '${collection}' cannot default to model '${model}': ${missing} of its atoms have no vector of it (run reembed with that model first)`,
    );
  }
}

/**
 * Guard for {@link ModelNotEmbeddedError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link ModelNotEmbeddedError}
 * @example
 * ```ts
 * import { isModelNotEmbeddedError, ModelNotEmbeddedError } from '@hartonomous/pipelines/documents';
 * isModelNotEmbeddedError(new ModelNotEmbeddedError('docs', 'm2', 3)); // true
 * ```
 */
export const isModelNotEmbeddedError: (e: unknown) => e is ModelNotEmbeddedError =
  errorGuard<ModelNotEmbeddedError>('MODEL_NOT_EMBEDDED');

/**
 * A model's vectors cannot be dropped: it is the default model of some collections. Switch
 * those collections to another model first.
 *
 * @example
 * ```ts
 * import { ModelInUseError } from '@hartonomous/pipelines/documents';
 * const e = new ModelInUseError('m1', ['docs']);
 * console.log(e.message); // model 'm1' is the default model of collection(s) docs: ...
 * ```
 */
export class ModelInUseError extends PipelineError {
  readonly code = 'MODEL_IN_USE' as const;
  /**
   * @param model - the model
   * @param collections - the collections whose default it is
   */
  constructor(
    readonly model: string,
    readonly collections: readonly string[],
  ) {
    super(
      `model '${model}' is the default model of collection(s) ${collections.join(', ')}: switch them to another model before dropping it`,
    );
  }
}

/**
 * Guard for {@link ModelInUseError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link ModelInUseError}
 * @example
 * ```ts
 * import { isModelInUseError, ModelInUseError } from '@hartonomous/pipelines/documents';
 * isModelInUseError(new ModelInUseError('m1', ['docs'])); // true
 * ```
 */
export const isModelInUseError: (e: unknown) => e is ModelInUseError =
  errorGuard<ModelInUseError>('MODEL_IN_USE');

/**
 * An embedder's dimensions differ from those stored for its model (a model has one length):
 * its vectors would not be comparable with the stored ones.
 *
 * @example
 * ```ts
 * import { ModelDimensionsError } from '@hartonomous/pipelines/documents';
 * const e = new ModelDimensionsError('m2', 768, 1024);
 * console.log(e.stored, e.given); // 768 1024
 * ```
 */
export class ModelDimensionsError extends PipelineError {
  readonly code = 'MODEL_DIMENSIONS' as const;
  /**
   * @param model - the model
   * @param stored - the dimensions stored for it
   * @param given - the embedder's dimensions
   */
  constructor(
    readonly model: string,
    readonly stored: number,
    readonly given: number,
  ) {
    super(`model '${model}' is stored with ${stored} dimensions; the embedder gives ${given}`);
  }
}

/**
 * Guard for {@link ModelDimensionsError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link ModelDimensionsError}
 * @example
 * ```ts
 * import { isModelDimensionsError, ModelDimensionsError } from '@hartonomous/pipelines/documents';
 * isModelDimensionsError(new ModelDimensionsError('m2', 768, 1024)); // true
 * ```
 */
export const isModelDimensionsError: (e: unknown) => e is ModelDimensionsError =
  errorGuard<ModelDimensionsError>('MODEL_DIMENSIONS');

/**
 * A document's collection searches with a default model that the sync was given no embedder
 * for: its atoms would have no vector of that model, and searches of the collection would not
 * find them. Pass an embedder of that model in `ingestDocuments`' `models` (or sync with it as
 * the `embedder`). The document fails alone; the rest of the run goes on.
 *
 * @example
 * ```ts
 * import { DefaultModelNotGivenError } from '@hartonomous/pipelines/documents';
 * const e = new DefaultModelNotGivenError('docs', 'm2');
 * console.log(e.message); // collection 'docs' searches with model 'm2' by default: ...
 * ```
 */
export class DefaultModelNotGivenError extends PipelineError {
  readonly code = 'DEFAULT_MODEL_NOT_GIVEN' as const;
  /**
   * @param collection - the document's collection
   * @param model - the collection's default model
   */
  constructor(
    readonly collection: string,
    readonly model: string,
  ) {
    super(
      `collection '${collection}' searches with model '${model}' by default: pass an embedder of '${model}' in models (or as the embedder) so its new atoms get vectors of it`,
    );
  }
}

/**
 * Guard for {@link DefaultModelNotGivenError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link DefaultModelNotGivenError}
 * @example
 * ```ts
 * import { DefaultModelNotGivenError, isDefaultModelNotGivenError } from '@hartonomous/pipelines/documents';
 * isDefaultModelNotGivenError(new DefaultModelNotGivenError('docs', 'm2')); // true
 * ```
 */
export const isDefaultModelNotGivenError: (e: unknown) => e is DefaultModelNotGivenError =
  errorGuard<DefaultModelNotGivenError>('DEFAULT_MODEL_NOT_GIVEN');
