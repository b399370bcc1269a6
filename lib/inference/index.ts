/**
 * `@hartonomous/pipelines/inference`: ensemble inference. A model registry in the database,
 * every enabled model invoked in parallel over HTTP (each through its own timeout, retry and
 * circuit breaker), answers combined by an aggregation strategy (majority or weighted vote,
 * mean, median, trimmed mean, first-k, quorum), and requests, invocations and answers
 * persisted in one saga. The ensemble is a core `Pipeline`, so `stream()` answers a stream
 * of requests with bounded concurrency and one outcome per request.
 *
 * @example
 * ```ts
 * import { openDatabase } from '@hartonomous/pipelines/postgres';
 * import { ensemble, majorityVote, registerModels } from '@hartonomous/pipelines/inference';
 *
 * const db = await openDatabase();
 * await registerModels(db, [{ name: 'a', endpoint: 'http://127.0.0.1:8001/predict' }]);
 * const e = ensemble({ models: db, strategy: majorityVote(), persist: db });
 * console.log((await e.run({ input: 'hello' })).answer);
 * ```
 *
 * @module
 */

export type {
  Aggregation,
  AggregationStrategy,
  ModelResponse,
  VoteOptions,
} from './aggregation.js';
export {
  type Ensemble,
  type EnsembleOptions,
  type EnsemblePersistOptions,
  ensemble,
} from './ensemble.js';
export {
  EnsembleFailedError,
  type EnsembleFailureReason,
  InvalidAnswerError,
  isEnsembleFailedError,
  isInvalidAnswerError,
  isModelHttpError,
  isTieError,
  type ModelFailure,
  ModelHttpError,
  TieError,
} from './errors.js';
export { type FirstKOptions, firstK } from './first-k.js';
export { type InvokeModelsOptions, invokeModels } from './invoke-models.js';
export { jsonProtocol } from './json-protocol.js';
export { majorityVote } from './majority-vote.js';
export { type MeanOptions, mean } from './mean.js';
export { median } from './median.js';
export {
  type ModelAdapter,
  type ModelCall,
  type ModelClient,
  type ModelClientOptions,
  type ModelHttpRequest,
  modelClient,
} from './model-client.js';
export {
  type ModelRegistry,
  type ModelRegistryOptions,
  modelRegistry,
} from './model-registry.js';
export { type OpenAIChatOptions, openAIChat } from './openai-chat.js';
export {
  type PersistAnswerOptions,
  type PersistInput,
  persistAnswerSaga,
} from './persist-answer.js';
export { type QuorumOptions, quorum } from './quorum.js';
export { registerModels, unregisterModels } from './register-models.js';
export { resolveModel } from './resolve-model.js';
export {
  type InferenceInvocationEntity,
  InferenceInvocationRecord,
  InferenceModel,
  type InferenceModelEntity,
  type InferenceRequestEntity,
  InferenceRequestRecord,
  type InferenceResultEntity,
  InferenceResultRecord,
  inferenceEntities,
} from './schema.js';
export { type TrimmedMeanOptions, trimmedMean } from './trimmed-mean.js';
export type {
  Answer,
  EnsembleAnswer,
  EnsembleRequest,
  InvocationOutcome,
  ModelAnswer,
  ModelDefinition,
  ModelInvocation,
  ResolvedModel,
} from './types.js';
export { type WeightedVoteOptions, weightedVote } from './weighted-vote.js';
