/**
 * MikroORM entities of ensemble inference, declared with `defineEntity`. The tables are
 * created by migration 6 (`inference`) of `@hartonomous/pipelines/postgres`.
 *
 * @module
 */

import {
  type AnyEntity,
  defineEntity,
  type EntitySchema,
  type InferEntity,
  type MikroORM,
  p,
} from '@mikro-orm/core';
import type { Database } from '../postgres/database.js';
import { ensureEntities } from '../postgres/ensure-entities.js';
import type { Answer, InvocationOutcome } from './types.js';

/**
 * Entity of `inference_models`, the model registry: one row per model endpoint.
 *
 * @example
 * ```ts
 * import { InferenceModel } from '@hartonomous/pipelines/inference';
 * const enabled = await db.orm.em.fork().find(InferenceModel, { enabled: true });
 * ```
 */
export const InferenceModel = defineEntity({
  name: 'InferenceModel',
  tableName: 'inference_models',
  properties: {
    /** Unique model name (primary key). */
    name: p.text().primary(),
    /** The URL requests are sent to. */
    endpoint: p.text(),
    /** Protocol adapter (`'json'` is the library's protocol). */
    kind: p.text().default('json'),
    /** Weight in weighted strategies (>= 0). */
    weight: p.double().$type<number>(),
    /** Limit of one attempt, in ms. */
    timeoutMs: p.integer(),
    /** Disabled models are never invoked. */
    enabled: p.boolean().default(true),
    /** Adapter-specific settings. */
    options: p.json<Record<string, unknown>>(),
    /** When the model was first registered. */
    createdAt: p.datetime().onCreate(() => new Date()),
    /** When the model was last registered or changed. */
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
});

/**
 * An `inference_models` row.
 *
 * @example
 * ```ts
 * import type { InferenceModelEntity } from '@hartonomous/pipelines/inference';
 * const label = (m: InferenceModelEntity) => `${m.name} -> ${m.endpoint}${m.enabled ? '' : ' (disabled)'}`;
 * ```
 */
export type InferenceModelEntity = InferEntity<typeof InferenceModel>;

/**
 * Entity of `inference_requests`: one row per persisted request. `status` is `'persisting'`
 * while its saga runs, `'answered'` once the answer is stored, `'compensated'` when the saga
 * failed after writing it (the `error` column says why; its invocations and result were
 * deleted).
 *
 * @example
 * ```ts
 * import { InferenceRequestRecord } from '@hartonomous/pipelines/inference';
 * const undone = await db.orm.em.fork().count(InferenceRequestRecord, { status: 'compensated' });
 * ```
 */
export const InferenceRequestRecord = defineEntity({
  name: 'InferenceRequestRecord',
  tableName: 'inference_requests',
  properties: {
    /** The request id (primary key). */
    id: p.text().primary(),
    /** Correlation id of the pipeline item. */
    correlationId: p.text(),
    /** The request input, as sent to the models. */
    input: p.json<unknown>(),
    /** The aggregation strategy used. */
    strategy: p.text(),
    /** `'persisting'`, `'answered'` or `'compensated'`. */
    status: p.text().$type<'persisting' | 'answered' | 'compensated'>(),
    /** The persist saga that wrote the row (see `saga_log`). */
    sagaId: p.text().nullable(),
    /** Why the request was compensated, as JSON. */
    error: p.json<Record<string, unknown>>().nullable(),
    /** When the row was written. */
    createdAt: p.datetime().onCreate(() => new Date()),
    /** When the row last changed. */
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
});

/**
 * An `inference_requests` row.
 *
 * @example
 * ```ts
 * import type { InferenceRequestEntity } from '@hartonomous/pipelines/inference';
 * const line = (r: InferenceRequestEntity) => `${r.id} ${r.status}`;
 * ```
 */
export type InferenceRequestEntity = InferEntity<typeof InferenceRequestRecord>;

/**
 * Entity of `inference_invocations`: one row per model called for a request, with its
 * outcome, answer, latency and attempts.
 *
 * @example
 * ```ts
 * import { InferenceInvocationRecord } from '@hartonomous/pipelines/inference';
 * const timeouts = await db.orm.em.fork().count(InferenceInvocationRecord, { model: 'slow', outcome: 'timeout' });
 * ```
 */
export const InferenceInvocationRecord = defineEntity({
  name: 'InferenceInvocationRecord',
  tableName: 'inference_invocations',
  properties: {
    /** Row id (bigserial, as a string). */
    id: p.bigint('string').primary().autoincrement(),
    /** The request. */
    requestId: p.text(),
    /** The model invoked. */
    model: p.text(),
    /** How the invocation ended (`'ok'`, `'timeout'`, ...). */
    outcome: p.text().$type<InvocationOutcome>(),
    /** The answer, when there was one. */
    answer: p.json<Answer>().nullable(),
    /** The model's confidence, when given. */
    confidence: p.double().$type<number>().nullable(),
    /** The error, as JSON, when it failed. */
    error: p.json<Record<string, unknown>>().nullable(),
    /** Duration of the invocation (retries included), in ms. */
    latencyMs: p.double().$type<number>(),
    /** HTTP attempts made. */
    attempts: p.integer(),
    /** Order in which the invocations of the request ended, from 0. */
    arrival: p.integer().nullable(),
    /** When the row was written. */
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});

/**
 * An `inference_invocations` row.
 *
 * @example
 * ```ts
 * import type { InferenceInvocationEntity } from '@hartonomous/pipelines/inference';
 * const line = (i: InferenceInvocationEntity) => `${i.model}: ${i.outcome} ${i.latencyMs} ms`;
 * ```
 */
export type InferenceInvocationEntity = InferEntity<typeof InferenceInvocationRecord>;

/**
 * Entity of `inference_results`: the aggregated answer of a request.
 *
 * @example
 * ```ts
 * import { InferenceResultRecord } from '@hartonomous/pipelines/inference';
 * const result = await db.orm.em.fork().findOne(InferenceResultRecord, { requestId: 'req-1' });
 * ```
 */
export const InferenceResultRecord = defineEntity({
  name: 'InferenceResultRecord',
  tableName: 'inference_results',
  properties: {
    /** The request (primary key). */
    requestId: p.text().primary(),
    /** The aggregated answer. */
    answer: p.json<Answer>(),
    /** The aggregation strategy. */
    strategy: p.text(),
    /** Votes, total weight or values used. */
    support: p.double().$type<number>(),
    /** Models whose answers make up the result. */
    agreeing: p.array(),
    /** Models that gave a usable answer. */
    responded: p.integer(),
    /** When the row was written. */
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});

/**
 * An `inference_results` row.
 *
 * @example
 * ```ts
 * import type { InferenceResultEntity } from '@hartonomous/pipelines/inference';
 * const line = (r: InferenceResultEntity) => `${r.requestId}: ${String(r.answer)} (${r.strategy})`;
 * ```
 */
export type InferenceResultEntity = InferEntity<typeof InferenceResultRecord>;

/**
 * Every inference entity, to pass to `openDatabase({ entities })` if you want them known to
 * MikroORM from the start (the inference functions register them on first use anyway).
 *
 * @example
 * ```ts
 * import { openDatabase } from '@hartonomous/pipelines/postgres';
 * import { inferenceEntities } from '@hartonomous/pipelines/inference';
 * const db = await openDatabase({ entities: inferenceEntities });
 * ```
 */
export const inferenceEntities: readonly EntitySchema<AnyEntity>[] = Object.freeze([
  InferenceModel,
  InferenceRequestRecord,
  InferenceInvocationRecord,
  InferenceResultRecord,
] as unknown as EntitySchema<AnyEntity>[]);

/** The ORM of an open database, with the inference entities registered. @internal */
export function inferenceOrm(db: Database): MikroORM {
  if (typeof db !== 'object' || db === null || db.closed) {
    throw new TypeError('expected an open Database returned by openDatabase()');
  }
  const orm = db.orm as unknown as MikroORM;
  ensureEntities(orm, inferenceEntities);
  return orm;
}
