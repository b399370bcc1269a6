import type { Logger } from 'pino';
import type { MonoTypeOperatorFunction } from 'rxjs';
import { describeError } from '../core/errors.js';
import { retry } from '../operators/retry.js';
import type { Database } from '../postgres/database.js';
import { postgresSagaLog } from '../postgres/saga-log.js';
import { type Saga, type SagaCodec, type SagaContext, saga } from '../saga/saga.js';
import {
  InferenceInvocationRecord,
  InferenceRequestRecord,
  InferenceResultRecord,
  inferenceOrm,
} from './schema.js';
import type { EnsembleAnswer, EnsembleRequest } from './types.js';

/**
 * What the persist saga stores: a request and the ensemble's answer to it.
 *
 * @example
 * ```ts
 * import type { PersistInput } from '@hartonomous/pipelines/inference';
 * const describe = (p: PersistInput) => `${p.answer.requestId}: ${String(p.answer.answer)}`;
 * ```
 */
export interface PersistInput {
  /** The request. */
  readonly request: EnsembleRequest;
  /** The answer (its `requestId` is the request's primary key). */
  readonly answer: EnsembleAnswer;
}

/**
 * Options of {@link persistAnswerSaga}.
 *
 * @example
 * ```ts
 * import type { PersistAnswerOptions } from '@hartonomous/pipelines/inference';
 * const options: PersistAnswerOptions = {
 *   afterPersist: async (answer) => { await publish('answers', answer); },
 * };
 * ```
 */
export interface PersistAnswerOptions {
  /** The saga's name (in the saga log; register the saga under it for `resumeSagas`). @default 'inference.persist' */
  name?: string;
  /** Record the saga in `saga_log` so `resumeSagas` can finish it after a crash. @default true */
  sagaLog?: boolean;
  /**
   * A last step after the answer is stored (e.g. publish it); if it throws, the stored rows
   * are compensated. It has no compensation of its own.
   * @default none
   */
  afterPersist?: (answer: EnsembleAnswer, ctx: SagaContext) => unknown;
  /** Policy of the compensations. @default `[retry({ maxAttempts: 3, baseDelayMs: 50 })]` */
  compensationPolicy?: ReadonlyArray<MonoTypeOperatorFunction<unknown>>;
  /** Logger of the saga. @default a silent logger */
  logger?: Logger;
}

/** Only the request id goes to the saga log: it is all the compensations need. */
const byRequestId: SagaCodec<PersistInput> = {
  encode: (x) => ({ requestId: x.answer.requestId }),
  decode: (json) =>
    ({
      answer: { requestId: String((json as { requestId?: unknown })?.requestId) },
    }) as unknown as PersistInput,
};
const answerById: SagaCodec<EnsembleAnswer> = {
  encode: (a) => ({ requestId: a.requestId }),
  decode: (json) =>
    ({ requestId: String((json as { requestId?: unknown })?.requestId) }) as EnsembleAnswer,
};

/**
 * The saga that stores one answered request, step by step, each with its compensation:
 *
 * 1. `request`: inserts the `inference_requests` row (`status = 'persisting'`);
 *    compensation: sets `status = 'compensated'` and `error` (the saga's cause); the row is
 *    kept as a record that the request was received and rolled back;
 * 2. `invocations`: inserts one `inference_invocations` row per model;
 *    compensation: deletes them;
 * 3. `result`: inserts the `inference_results` row and sets the request `'answered'`, in one
 *    transaction; compensation: deletes the result row;
 * 4. `after-persist` (only with `afterPersist`): your hook; if it fails, 3, 2 and 1 are undone.
 *
 * So after a failure the database holds the request row marked `'compensated'` and nothing
 * else for it. With `sagaLog` the saga is in `saga_log`, and `resumeSagas(db, [thisSaga])`
 * finishes the compensation after a crash.
 *
 * @param db - an open database
 * @param options - saga name, saga log, after-persist hook, compensation policy
 * @returns the saga (also a pipeline step)
 *
 * @example
 * ```ts
 * import { resumeSagas } from '@hartonomous/pipelines/postgres';
 * import { persistAnswerSaga } from '@hartonomous/pipelines/inference';
 *
 * const persist = persistAnswerSaga(db);
 * await resumeSagas(db, [persist]); // at startup: finish what a crash left half-done
 * ```
 */
export function persistAnswerSaga(
  db: Database,
  options: PersistAnswerOptions = {},
): Saga<PersistInput, EnsembleAnswer> {
  const orm = inferenceOrm(db);
  const name = options.name ?? 'inference.persist';
  const compensationPolicy = options.compensationPolicy ?? [
    retry({ maxAttempts: 3, baseDelayMs: 50 }),
  ];
  if (options.afterPersist !== undefined && typeof options.afterPersist !== 'function') {
    throw new TypeError('persistAnswerSaga: afterPersist must be a function');
  }
  const sagaOptions = {
    name,
    compensationPolicy,
    ...(options.sagaLog === false ? {} : { log: postgresSagaLog(db) }),
    ...(options.logger ? { logger: options.logger } : {}),
  };
  const now = () => new Date();

  const requestStep = {
    name: 'request',
    codec: byRequestId,
    action: async (x: PersistInput, ctx: SagaContext) => {
      const at = now();
      await orm.em.fork().insert(InferenceRequestRecord, {
        id: x.answer.requestId,
        correlationId: ctx.correlationId,
        input: x.request.input ?? null,
        strategy: x.answer.strategy,
        status: 'persisting',
        sagaId: ctx.sagaId,
        error: null,
        createdAt: at,
        updatedAt: at,
      });
      return x;
    },
    compensate: async (x: PersistInput, ctx: { cause: unknown }) => {
      await orm.em
        .fork()
        .nativeUpdate(
          InferenceRequestRecord,
          { id: x.answer.requestId },
          { status: 'compensated', error: describeError(ctx.cause), updatedAt: now() },
        );
    },
  };
  const invocationsStep = {
    name: 'invocations',
    codec: byRequestId,
    action: async (x: PersistInput) => {
      const at = now();
      const rows = x.answer.invocations.map((i) => ({
        requestId: x.answer.requestId,
        model: i.model,
        outcome: i.outcome,
        answer: i.answer ?? null,
        confidence: i.confidence ?? null,
        error: i.error === undefined ? null : describeError(i.error),
        latencyMs: i.latencyMs,
        attempts: i.attempts,
        arrival: i.arrival,
        createdAt: at,
      }));
      if (rows.length > 0) await orm.em.fork().insertMany(InferenceInvocationRecord, rows);
      return x;
    },
    compensate: async (x: PersistInput) => {
      await orm.em
        .fork()
        .nativeDelete(InferenceInvocationRecord, { requestId: x.answer.requestId });
    },
  };
  const resultStep = {
    name: 'result',
    codec: answerById,
    action: async (x: PersistInput): Promise<EnsembleAnswer> => {
      const a = x.answer;
      await orm.em.fork().transactional(async (em) => {
        await em.insert(InferenceResultRecord, {
          requestId: a.requestId,
          answer: a.answer,
          strategy: a.strategy,
          support: a.support,
          agreeing: [...a.agreeing],
          responded: a.responded,
          createdAt: now(),
        });
        await em.nativeUpdate(
          InferenceRequestRecord,
          { id: a.requestId },
          { status: 'answered', updatedAt: now() },
        );
      });
      return { ...a, persisted: true };
    },
    compensate: async (a: EnsembleAnswer) => {
      await orm.em.fork().nativeDelete(InferenceResultRecord, { requestId: a.requestId });
    },
  };
  const afterPersist = options.afterPersist;
  if (afterPersist) {
    return saga(sagaOptions, requestStep, invocationsStep, resultStep, {
      name: 'after-persist',
      codec: answerById,
      action: async (a: EnsembleAnswer, ctx: SagaContext) => {
        await afterPersist(a, ctx);
        return a;
      },
    });
  }
  return saga(sagaOptions, requestStep, invocationsStep, resultStep);
}
