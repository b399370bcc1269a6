/**
 * The saga log on PostgreSQL (a server or PGlite): a MikroORM entity over the `saga_log` table
 * with optimistic versioning, a {@link SagaLog} writing to it, and `resumeSagas`, which
 * finishes the compensation of sagas a crashed process left open.
 *
 * Exported from `@hartonomous/pipelines/postgres` (it loads MikroORM; the core entry point
 * does not).
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
  UniqueConstraintViolationException,
} from '@mikro-orm/core';
import { SagaConflictError } from '../saga/errors.js';
import type {
  SagaLog,
  SagaSnapshot,
  SagaStatus,
  SagaStepSnapshot,
  SerializedError,
} from '../saga/log.js';
import {
  type ResumeOutcome,
  type ResumeSagaOptions,
  resumeSaga,
  type SagaRegistry,
} from '../saga/resume.js';
import type { Database } from './database.js';
import { ensureEntities } from './ensure-entities.js';

/**
 * Entity of the `saga_log` table: one row per saga execution. `version` is the optimistic
 * lock: every update of the saga log runs `UPDATE ... SET version = ? WHERE id = ? AND
 * version = ?` (the version it last wrote), so two processes can never both move a saga on
 * from the same state; it is also MikroORM's `version` property, so `em.flush()` of a loaded
 * row checks it too (when the entity is registered with `openDatabase({ entities })`).
 *
 * @example
 * ```ts
 * import { SagaRecord } from '@hartonomous/pipelines/postgres';
 *
 * const em = db.orm.em.fork();
 * const stuck = await em.find(SagaRecord, { status: 'failed' }, { orderBy: { updatedAt: 'desc' } });
 * ```
 */
export const SagaRecord = defineEntity({
  name: 'SagaRecord',
  tableName: 'saga_log',
  properties: {
    /** The saga execution id (primary key). */
    id: p.text().primary(),
    /** The saga's name. */
    name: p.text(),
    /** `'running'`, `'compensating'`, `'completed'`, `'compensated'` or `'failed'`. */
    status: p.text().$type<SagaStatus>(),
    /** Correlation id of the item the saga ran for. */
    correlationId: p.text(),
    /** Each step: name, status, serialized result, error. */
    steps: p.json<SagaStepSnapshot[]>(),
    /** The original error, as JSON, once the saga fails. */
    cause: p.json<SerializedError>().nullable(),
    /** The step whose action failed, if any. */
    failedStep: p.text().nullable(),
    /** Optimistic-concurrency version: 1 on insert, +1 on every update. */
    version: p.integer().version(),
    /** When the saga started. */
    createdAt: p.datetime().onCreate(() => new Date()),
    /** When its state last changed (staleness is judged on it). */
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
});

/**
 * A `saga_log` row as MikroORM returns it.
 *
 * @example
 * ```ts
 * import type { SagaRecordEntity } from '@hartonomous/pipelines/postgres';
 * const line = (r: SagaRecordEntity) => `${r.name} ${r.id} ${r.status} v${r.version}`;
 * ```
 */
export type SagaRecordEntity = InferEntity<typeof SagaRecord>;

function ormOf(db: Database): MikroORM {
  if (typeof db !== 'object' || db === null || db.closed) {
    throw new TypeError('expected an open Database returned by openDatabase()');
  }
  const orm = db.orm as unknown as MikroORM;
  ensureEntities(orm, [SagaRecord as unknown as EntitySchema<AnyEntity>]);
  return orm;
}

/**
 * A {@link SagaLog} on the library's database: each snapshot is written to `saga_log` through
 * MikroORM in one statement, version 1 as an insert, later versions as a compare-and-set
 * update on the `version` column (a stored version other than `version - 1`, or a duplicate
 * id, rejects with `SagaConflictError`).
 *
 * @param db - an open database (migrated: the table comes with migration 5)
 * @returns the saga log; pass it as the saga's `log` option
 *
 * @example
 * ```ts
 * import { saga } from '@hartonomous/pipelines';
 * import { openDatabase, postgresSagaLog } from '@hartonomous/pipelines/postgres';
 *
 * const db = await openDatabase();
 * const order = saga(
 *   { name: 'order', log: postgresSagaLog(db) },
 *   { name: 'reserve', action: (sku: string) => stock.reserve(sku), compensate: (r) => stock.release(r) },
 * );
 * ```
 * @see {@link resumeSagas}
 */
export function postgresSagaLog(db: Database): SagaLog {
  const orm = ormOf(db);
  return {
    async write(snapshot) {
      const em = orm.em.fork();
      const now = new Date();
      const fields = {
        name: snapshot.name,
        status: snapshot.status,
        correlationId: snapshot.correlationId,
        steps: snapshot.steps.map((s) => ({ ...s })),
        cause: 'cause' in snapshot ? snapshot.cause : null,
        failedStep: 'failedStep' in snapshot ? snapshot.failedStep : null,
        version: snapshot.version,
        updatedAt: now,
      };
      const expected = snapshot.version - 1;
      if (snapshot.version === 1) {
        try {
          await em.insert(SagaRecord, { id: snapshot.id, ...fields, createdAt: now });
        } catch (e) {
          if (e instanceof UniqueConstraintViolationException) {
            throw new SagaConflictError(snapshot.id, expected, e);
          }
          throw e;
        }
        return;
      }
      // compare-and-set on the version column: one statement, atomic
      const changed = await em.nativeUpdate(
        SagaRecord,
        { id: snapshot.id, version: expected },
        fields,
      );
      if (changed !== 1) throw new SagaConflictError(snapshot.id, expected);
    },
  };
}

/**
 * Reads one saga's saved state from `saga_log`.
 *
 * @param db - an open database
 * @param sagaId - the saga's id
 * @returns its snapshot, or undefined when there is no such saga
 *
 * @example
 * ```ts
 * import { loadSaga } from '@hartonomous/pipelines/postgres';
 * const s = await loadSaga(db, sagaId);
 * console.log(s?.status, s?.steps.map((st) => `${st.name}=${st.status}`));
 * ```
 */
export async function loadSaga(db: Database, sagaId: string): Promise<SagaSnapshot | undefined> {
  const row = await ormOf(db).em.fork().findOne(SagaRecord, { id: sagaId });
  return row ? toSnapshot(row) : undefined;
}

/** @internal */
export function toSnapshot(row: SagaRecordEntity): SagaSnapshot {
  const base = {
    id: row.id,
    name: row.name,
    correlationId: row.correlationId,
    steps: row.steps,
    version: row.version,
  };
  switch (row.status) {
    case 'running':
    case 'completed':
      return { ...base, status: row.status } as SagaSnapshot;
    default:
      return {
        ...base,
        status: row.status,
        cause: row.cause ?? { name: 'Error', message: 'unknown cause' },
        failedStep: row.failedStep ?? null,
      };
  }
}

/**
 * Options of {@link resumeSagas}.
 *
 * @example
 * ```ts
 * import { retry } from '@hartonomous/pipelines';
 * import type { ResumeSagasOptions } from '@hartonomous/pipelines/postgres';
 *
 * const options: ResumeSagasOptions = { staleAfterMs: 5 * 60_000, limit: 500, compensationPolicy: [retry(3)] };
 * ```
 */
export interface ResumeSagasOptions extends Omit<ResumeSagaOptions, 'log'> {
  /**
   * A saga counts as abandoned when its row has not changed for this long, in ms. Its owner
   * writes on every step, so set it well above your longest step (a live saga taken over is
   * compensated by both processes; compensations must be idempotent anyway).
   * @default 60_000
   */
  staleAfterMs?: number;
  /** Most sagas handled per call (oldest first); call again for more. @default 100 */
  limit?: number;
  /** Sagas compensated at once. @default 1 */
  concurrency?: number;
  /** Also retry sagas that ended `'failed'` (a compensation failed). @default false */
  retryFailed?: boolean;
  /** Cancels the search and stops starting new sagas (compensations already running finish). @default none */
  signal?: AbortSignal;
}

/**
 * Finishes the sagas a crashed (or killed) process left open: finds the `saga_log` rows of
 * registered sagas that are `'running'` or `'compensating'` and have not changed for
 * `staleAfterMs`, claims each through its version (another process resuming the same saga
 * gets `'conflict'` and skips it) and runs the remaining compensations, latest first, with the
 * compensations the registry gives for the saga's name and step names. Call it at startup,
 * after building the registry, and periodically if you like.
 *
 * @param db - an open database
 * @param registry - the app's sagas, or `{ [sagaName]: { [stepName]: compensate } }`
 * @param options - staleness, batch size, concurrency, compensation policy
 * @returns what happened to each saga found (`'compensated'`, `'failed'`, `'conflict'`)
 *
 * @example
 * ```ts
 * import { openDatabase, resumeSagas } from '@hartonomous/pipelines/postgres';
 *
 * const db = await openDatabase();
 * const outcomes = await resumeSagas(db, [orderSaga, refundSaga], { staleAfterMs: 120_000 });
 * for (const o of outcomes) if (o.status === 'failed') console.error(o.sagaId, o.error?.notCompensated);
 * ```
 * @see {@link postgresSagaLog}
 */
export async function resumeSagas(
  db: Database,
  registry: SagaRegistry,
  options: ResumeSagasOptions = {},
): Promise<ResumeOutcome[]> {
  const { staleAfterMs = 60_000, limit = 100, concurrency = 1, retryFailed = false } = options;
  if (!(staleAfterMs >= 0) || !Number.isFinite(staleAfterMs)) {
    throw new TypeError(
      `resumeSagas: staleAfterMs must be a finite number >= 0, got ${staleAfterMs}`,
    );
  }
  for (const [key, v] of [
    ['limit', limit],
    ['concurrency', concurrency],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new TypeError(`resumeSagas: ${key} must be a positive integer, got ${v}`);
    }
  }
  const names = Array.isArray(registry)
    ? registry.map((s: { name: string }) => s.name)
    : Object.keys(registry);
  if (names.length === 0) return [];
  options.signal?.throwIfAborted();
  const orm = ormOf(db);
  const statuses: SagaStatus[] = retryFailed
    ? ['running', 'compensating', 'failed']
    : ['running', 'compensating'];
  const rows = await orm.em.fork().find(
    SagaRecord,
    {
      name: { $in: names },
      status: { $in: statuses },
      updatedAt: { $lte: new Date(Date.now() - staleAfterMs) },
    },
    { orderBy: { updatedAt: 'asc' }, limit },
  );
  const log = postgresSagaLog(db);
  const outcomes: ResumeOutcome[] = new Array(rows.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < rows.length) {
      options.signal?.throwIfAborted();
      const i = next++;
      outcomes[i] = await resumeSaga(toSnapshot(rows[i] as SagaRecordEntity), registry, {
        ...options,
        log,
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, rows.length) }, worker));
  return outcomes;
}
