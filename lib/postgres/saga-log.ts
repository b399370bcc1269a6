/**
 * The saga log on PostgreSQL (a server or PGlite): a MikroORM entity over the `saga_log` table
 * with optimistic versioning, and a {@link SagaLog} writing to it with every capability of the
 * contract (load for start-once, heartbeats, transactions for transactional steps), plus
 * reading and purging sagas.
 *
 * Exported from `@hartonomous/pipelines/postgres` (it loads MikroORM; the core entry point
 * does not). It implements the contract `lib/saga` declares, as the Service Bus publisher
 * implements the core's `Publisher`.
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
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { silentLogger } from '../observability/logger.js';
import { SagaConflictError } from '../saga/errors.js';
import type {
  SagaLog,
  SagaLogTransaction,
  SagaRecoveryDirection,
  SagaSnapshot,
  SagaStatus,
  SagaStepSnapshot,
  SerializedError,
} from '../saga/log.js';
import type { Database } from './database.js';
import { ensureEntities } from './ensure-entities.js';

/**
 * Entity of the `saga_log` table: one row per saga execution, keyed by saga name and id.
 * `version` is the optimistic lock: every update of the saga log runs `UPDATE ... SET version
 * = ? WHERE name = ? AND id = ? AND version = ?` (the version it last wrote), so two processes
 * can never both move a saga on from the same state; it is also MikroORM's `version` property,
 * so `em.flush()` of a loaded row checks it too (when the entity is registered with
 * `openDatabase({ entities })`).
 *
 * @example
 * ```ts
 * import { openDatabase, SagaRecord } from '@hartonomous/pipelines/postgres';
 *
 * const db = await openDatabase({ dataDir: 'memory://' });
 * const em = db.orm.em.fork();
 * const stuck = await em.find(SagaRecord, { status: 'failed' }, { orderBy: { updatedAt: 'desc' } });
 * console.log(stuck.length);
 * await db.close();
 * ```
 */
export const SagaRecord = defineEntity({
  name: 'SagaRecord',
  tableName: 'saga_log',
  properties: {
    /** The saga's name (with `id`, the primary key). */
    name: p.text().primary(),
    /** The saga execution id, unique per saga name. */
    id: p.text().primary(),
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
    /** `'backward'` or `'forward'`: how the saga is finished after a crash. */
    recovery: p.text().$type<SagaRecoveryDirection>().default('backward'),
    /** The encoded input of a forward saga (null for backward ones). */
    input: p.json<unknown>().nullable(),
    /** Optimistic-concurrency version: 1 on insert, +1 on every update. */
    version: p.integer().version(),
    /** When the saga started. */
    createdAt: p.datetime().onCreate(() => new Date()),
    /** When its state last changed or its owner last sent a heartbeat (staleness is judged on it). */
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

/** The ORM of an open database, with the saga entity registered. @internal */
export function sagaOrm(db: Database): MikroORM {
  if (typeof db !== 'object' || db === null || db.closed) {
    throw new TypeError('expected an open Database returned by openDatabase()');
  }
  const orm = db.orm as unknown as MikroORM;
  ensureEntities(orm, [SagaRecord as unknown as EntitySchema<AnyEntity>]);
  return orm;
}

/** Entity managers of saga-log transactions, for {@link sagaEntityManager}. */
const transactionManagers = new WeakSet<object>();

/**
 * A {@link SagaLog} on the library's database. Each snapshot is written to `saga_log` in one
 * statement: version 1 as an insert, later versions as a compare-and-set update on the
 * `version` column (a stored version other than `version - 1`, or a duplicate saga name and
 * id, rejects with `SagaConflictError`). It also implements `load` (so `saga.start()` runs
 * each id once), `heartbeat` (moves `updated_at` without changing the version) and
 * `transaction` (a MikroORM transaction; a transactional step reaches its entity manager with
 * {@link sagaEntityManager}).
 *
 * @param db - an open database (migrated: the table comes with migrations 5 and 10)
 * @returns the saga log; pass it as the saga's `log` option
 *
 * @example
 * ```ts
 * import { saga } from '@hartonomous/pipelines';
 * import { openDatabase, postgresSagaLog } from '@hartonomous/pipelines/postgres';
 *
 * const db = await openDatabase({ dataDir: 'memory://' });
 * const double = saga(
 *   { name: 'double', log: postgresSagaLog(db), recovery: 'forward' },
 *   { name: 'times-two', action: (n: number) => n * 2 },
 * );
 * console.log(await double.start(21, { id: 'order-1' })); // 42, and 42 again for this id
 * await db.close();
 * ```
 * @see {@link resumeSagas}, {@link sagaRecovery}
 */
export function postgresSagaLog(db: Database): Required<SagaLog> {
  const orm = sagaOrm(db);
  return {
    write: (snapshot) => writeSnapshot(orm.em.fork() as unknown as EntityManager, snapshot),
    async load(ref) {
      const row = await orm.em.fork().findOne(SagaRecord, { name: ref.name, id: ref.id });
      return row ? toSnapshot(row) : undefined;
    },
    async heartbeat(ref) {
      const changed = await orm.em
        .fork()
        .nativeUpdate(
          SagaRecord,
          { name: ref.name, id: ref.id, version: ref.version },
          { updatedAt: new Date() },
        );
      return changed === 1;
    },
    transaction<T>(work: (tx: SagaLogTransaction) => Promise<T>): Promise<T> {
      return (orm.em.fork() as unknown as EntityManager).transactional(async (em) => {
        transactionManagers.add(em);
        return work({ handle: em, write: (snapshot) => writeSnapshot(em, snapshot) });
      });
    },
  };
}

async function writeSnapshot(em: EntityManager, snapshot: SagaSnapshot): Promise<void> {
  const now = new Date();
  const fields = {
    status: snapshot.status,
    correlationId: snapshot.correlationId,
    steps: snapshot.steps.map((s) => ({ ...s })),
    cause: 'cause' in snapshot ? snapshot.cause : null,
    failedStep: 'failedStep' in snapshot ? snapshot.failedStep : null,
    recovery: snapshot.recovery ?? 'backward',
    input: snapshot.input ?? null,
    version: snapshot.version,
    updatedAt: now,
  };
  const expected = snapshot.version - 1;
  if (snapshot.version === 1) {
    try {
      await em.insert(SagaRecord, {
        name: snapshot.name,
        id: snapshot.id,
        ...fields,
        createdAt: now,
      });
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
    { name: snapshot.name, id: snapshot.id, version: expected },
    fields,
  );
  if (changed !== 1) throw new SagaConflictError(snapshot.id, expected);
}

/**
 * The MikroORM entity manager of the transaction a transactional saga step runs in (with
 * `postgresSagaLog`): do the step's database work through it (`em.insert`, `em.nativeUpdate`,
 * `em.execute(sql, params)`), and it commits together with the record of the step's
 * completion, or rolls back with it.
 *
 * @param ctx - the action's context
 * @returns the transaction's entity manager
 * @throws TypeError outside the action of a transactional step of a saga logged by `postgresSagaLog`
 *
 * @example
 * ```ts
 * import { saga } from '@hartonomous/pipelines';
 * import { openDatabase, postgresSagaLog, sagaEntityManager } from '@hartonomous/pipelines/postgres';
 *
 * const db = await openDatabase({ dataDir: 'memory://' });
 * await db.orm.em.getConnection().execute('CREATE TABLE ledger (id text PRIMARY KEY, cents int)');
 * const pay = saga(
 *   { name: 'pay', log: postgresSagaLog(db) },
 *   {
 *     name: 'book',
 *     transactional: true,
 *     action: async (cents: number, ctx) => {
 *       await sagaEntityManager(ctx).execute('INSERT INTO ledger (id, cents) VALUES (?, ?)', [ctx.sagaId, cents]);
 *       return cents;
 *     },
 *   },
 * );
 * await pay.run(1299);
 * await db.close();
 * ```
 */
export function sagaEntityManager(ctx: {
  readonly transaction: SagaLogTransaction | undefined;
}): EntityManager {
  const handle = ctx?.transaction?.handle;
  if (typeof handle !== 'object' || handle === null || !transactionManagers.has(handle)) {
    throw new TypeError(
      'sagaEntityManager: call it from the action of a transactional step of a saga logged by postgresSagaLog',
    );
  }
  return handle as EntityManager;
}

/**
 * Options of {@link loadSaga}.
 *
 * @example
 * ```ts
 * import type { LoadSagaOptions } from '@hartonomous/pipelines/postgres';
 * const options: LoadSagaOptions = { name: 'order' };
 * ```
 */
export interface LoadSagaOptions {
  /** The saga's name (ids are unique per name). @default any name; an id used by several sagas is then an error */
  name?: string;
}

/**
 * Reads one saga's saved state from `saga_log`.
 *
 * @param db - an open database
 * @param sagaId - the saga's id
 * @param options - the saga's name, when several sagas may use the id
 * @returns its snapshot, or undefined when there is no such saga
 * @throws TypeError when no name is given and several sagas use the id
 *
 * @example
 * ```ts
 * import { loadSaga, openDatabase } from '@hartonomous/pipelines/postgres';
 *
 * const db = await openDatabase({ dataDir: 'memory://' });
 * const s = await loadSaga(db, 'order-1001', { name: 'order' });
 * console.log(s?.status, s?.steps.map((st) => `${st.name}=${st.status}`));
 * await db.close();
 * ```
 */
export async function loadSaga(
  db: Database,
  sagaId: string,
  options: LoadSagaOptions = {},
): Promise<SagaSnapshot | undefined> {
  const em = sagaOrm(db).em.fork();
  if (options.name !== undefined) {
    const row = await em.findOne(SagaRecord, { name: options.name, id: sagaId });
    return row ? toSnapshot(row) : undefined;
  }
  const rows = await em.find(SagaRecord, { id: sagaId }, { limit: 2 });
  if (rows.length > 1) {
    throw new TypeError(`loadSaga: several sagas use the id '${sagaId}': give options.name`);
  }
  return rows[0] ? toSnapshot(rows[0]) : undefined;
}

/** @internal */
export function toSnapshot(row: SagaRecordEntity): SagaSnapshot {
  const base = {
    id: row.id,
    name: row.name,
    correlationId: row.correlationId,
    steps: row.steps,
    version: row.version,
    recovery: row.recovery,
    ...(row.input === null || row.input === undefined ? {} : { input: row.input }),
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
 * Options of {@link purgeSagas}.
 *
 * @example
 * ```ts
 * import type { PurgeSagasOptions } from '@hartonomous/pipelines/postgres';
 * const options: PurgeSagasOptions = { olderThan: 7 * 24 * 3_600_000, includeFailed: false };
 * ```
 */
export interface PurgeSagasOptions {
  /** Finished sagas last changed before this moment (a Date), or this many ms ago (a number), go. */
  olderThan: Date | number;
  /**
   * Also purge sagas that ended `'failed'` (a compensation failed: they need attention).
   * @default false
   */
  includeFailed?: boolean;
  /** Only sagas with these names. @default every name */
  names?: readonly string[];
  /** Logger for the `saga.purged` event. @default a silent logger */
  logger?: Logger;
}

/**
 * Deletes finished sagas (`'completed'` and `'compensated'`, and `'failed'` with
 * `includeFailed`) that have not changed for the retention period. Open sagas are never
 * purged. A purged id can be started again by `start`. Run it now and then, e.g. from the
 * process that runs {@link sagaRecovery}.
 *
 * @param db - an open database
 * @param options - the retention period, statuses, names
 * @returns how many sagas were deleted
 *
 * @example
 * ```ts
 * import { openDatabase, purgeSagas } from '@hartonomous/pipelines/postgres';
 *
 * const db = await openDatabase({ dataDir: 'memory://' });
 * const purged = await purgeSagas(db, { olderThan: 30 * 24 * 3_600_000 }); // 30 days
 * console.log(`${purged} sagas purged`);
 * await db.close();
 * ```
 */
export async function purgeSagas(db: Database, options: PurgeSagasOptions): Promise<number> {
  const { olderThan, includeFailed = false, names } = options ?? ({} as PurgeSagasOptions);
  const before =
    olderThan instanceof Date
      ? olderThan
      : typeof olderThan === 'number' && Number.isFinite(olderThan) && olderThan >= 0
        ? new Date(Date.now() - olderThan)
        : undefined;
  if (!before || Number.isNaN(before.getTime())) {
    throw new TypeError(
      `purgeSagas: olderThan must be a Date or a number of ms >= 0, got ${String(olderThan)}`,
    );
  }
  if (names !== undefined && (!Array.isArray(names) || names.length === 0)) {
    throw new TypeError('purgeSagas: names must be a non-empty array when given');
  }
  const statuses: SagaStatus[] = includeFailed
    ? ['completed', 'compensated', 'failed']
    : ['completed', 'compensated'];
  const purged = await sagaOrm(db)
    .em.fork()
    .nativeDelete(SagaRecord, {
      status: { $in: statuses },
      updatedAt: { $lt: before },
      ...(names ? { name: { $in: [...names] } } : {}),
    });
  logEvent(options.logger ?? silentLogger(), LogEvents.sagaPurged, {
    purged,
    before: before.toISOString(),
  });
  return purged;
}
