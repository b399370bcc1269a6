/**
 * Durable sagas on every database the suite provides: transactional steps (rows and the
 * completion record commit together), start once per id, forward recovery through
 * resumeSagas, the sagaRecovery service (two services, each saga once; metrics and logs;
 * stop), purgeSagas.
 */
import { randomUUID } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import {
  type AnySagaStep,
  isSagaConflictError,
  isSagaFailedError,
  type Saga,
  type SagaContext,
  type SagaOptions,
  type SagaSnapshot,
  saga,
} from '../../lib/index.js';
import type { Database } from '../../lib/postgres/database.js';
import {
  loadSaga,
  postgresSagaLog,
  purgeSagas,
  resumeSagas,
  SagaRecord,
  sagaEntityManager,
  sagaRecovery,
} from '../../lib/postgres/index.js';
import { databaseSuite } from '../support/databases.js';
import { memoryLogger, memoryMeter } from '../support/telemetry.js';

const suite = await databaseSuite('saga_durable');

/** A table the test's steps write to, one row per execution of a step. */
async function effectsTable(db: Database): Promise<{
  table: string;
  count: (sagaId: string, step?: string) => Promise<number>;
}> {
  const table = `"${db.schema}".effects_${randomUUID().slice(0, 8)}`;
  const conn = db.orm.em.getConnection();
  await conn.execute(
    `CREATE TABLE ${table} (seq bigserial PRIMARY KEY, saga_id text NOT NULL, step text NOT NULL)`,
  );
  return {
    table,
    count: async (sagaId, step) => {
      const rows = await conn.execute<Array<{ n: string | number }>>(
        `SELECT count(*) AS n FROM ${table} WHERE saga_id = ?${step ? ' AND step = ?' : ''}`,
        step ? [sagaId, step] : [sagaId],
      );
      return Number(rows[0]?.n ?? 0);
    },
  };
}

suite.test(
  'a transactional step commits its rows with its completion record; a failed one leaves neither',
  async (t, db) => {
    const { table, count } = await effectsTable(db);
    const insert = (ctx: SagaContext) =>
      sagaEntityManager(ctx).execute(`INSERT INTO ${table} (saga_id, step) VALUES (?, ?)`, [
        ctx.sagaId,
        ctx.step,
      ]);
    let failSecond = true;
    let secondRuns = 0;
    const s = saga(
      { name: `tx-${randomUUID().slice(0, 6)}`, log: postgresSagaLog(db) },
      {
        name: 'first',
        transactional: true,
        action: async (n: number, ctx) => {
          await insert(ctx);
          return n + 1;
        },
        compensate: async (_r, ctx) => {
          await db.orm.em
            .getConnection()
            .execute(`DELETE FROM ${table} WHERE saga_id = ? AND step = 'first'`, [ctx.sagaId]);
        },
      },
      {
        name: 'second',
        transactional: true,
        action: async (n: number, ctx) => {
          secondRuns++;
          await insert(ctx);
          if (failSecond) throw new Error('after the insert');
          return n + 1;
        },
      },
    );
    const failedId = randomUUID();
    const e = await t.throwsAsync(s.run(1, { sagaId: failedId }));
    t.true(isSagaFailedError(e));
    t.is(secondRuns, 1);
    t.is(await count(failedId, 'second'), 0, 'the failed step rolled back its insert');
    t.is(await count(failedId, 'first'), 0, 'the completed step was compensated');
    const failed = await loadSaga(db, failedId);
    t.deepEqual(
      failed?.steps.map((st) => st.status),
      ['compensated', 'failed'],
    );

    failSecond = false;
    const okId = randomUUID();
    t.is(await s.run(1, { sagaId: okId }), 3);
    t.is(await count(okId), 2);
    const ok = await loadSaga(db, okId);
    t.is(ok?.status, 'completed');
    t.deepEqual(
      ok?.steps.map((st) => [st.status, st.result]),
      [
        ['completed', 2],
        ['completed', 3],
      ],
    );
    t.throws(() => sagaEntityManager({ transaction: undefined }), { instanceOf: TypeError });
  },
);

suite.test(
  'a transactional step whose completion record conflicts rolls back its rows (server: a second connection takes the saga over)',
  async (t, db, backend) => {
    if (backend !== 'postgres') {
      // PGlite is one connection, held by the step's transaction: nobody can take over meanwhile
      t.pass();
      return;
    }
    const { table, count } = await effectsTable(db);
    const log = postgresSagaLog(db);
    const name = `txc-${randomUUID().slice(0, 6)}`;
    const s = saga(
      { name, log, recovery: 'forward' },
      {
        name: 'book',
        transactional: true,
        action: async (n: number, ctx) => {
          await sagaEntityManager(ctx).execute(
            `INSERT INTO ${table} (saga_id, step) VALUES (?, ?)`,
            [ctx.sagaId, ctx.step],
          );
          const held = (await log.load({ name, id: ctx.sagaId })) as SagaSnapshot;
          await log.write({ ...held, version: held.version + 1 }); // another process claims it
          return n;
        },
      },
    );
    const id = randomUUID();
    const e = await t.throwsAsync(s.run(1, { sagaId: id }));
    t.true(isSagaConflictError(e));
    t.is(await count(id), 0);
    t.is((await loadSaga(db, id))?.steps[0]?.status, 'running');
  },
);

suite.test(
  'start runs each id once per saga name; later callers get the stored result or failure',
  async (t, db) => {
    const name = `once-${randomUUID().slice(0, 6)}`;
    let runs = 0;
    // two saga objects over one database behave like two processes
    const make = () =>
      saga(
        { name, log: postgresSagaLog(db) },
        {
          name: 'double',
          action: async (n: number) => {
            runs++;
            await delay(20);
            if (n < 0) throw new Error('negative');
            return n * 2;
          },
        },
      );
    const [a, b] = [make(), make()];
    const id = randomUUID();
    t.deepEqual(
      await Promise.all([a.start(21, { id, pollMs: 10 }), b.start(21, { id, pollMs: 10 })]),
      [42, 42],
    );
    t.is(runs, 1);
    t.is(await b.start(0, { id }), 42);
    const failId = randomUUID();
    await t.throwsAsync(a.start(-1, { id: failId }));
    const stored = await t.throwsAsync(b.start(-1, { id: failId }));
    t.true(isSagaFailedError(stored));
    t.is(((stored as Error).cause as Error).message, 'negative');
    t.is(runs, 2);
    // the same id under another saga name is another saga
    const other = saga(
      { name: `${name}-other`, log: postgresSagaLog(db) },
      { name: 'x', action: (n: number) => n + 1 },
    );
    t.is(await other.start(1, { id }), 2);
    await t.throwsAsync(loadSaga(db, id), { message: /several sagas/ });
    t.is((await loadSaga(db, id, { name }))?.status, 'completed');
  },
);

/**
 * A forward saga of 3 steps (the middle one transactional) counting each execution in `table`;
 * step `hangAt` (0 or 2: a hang inside a transaction would hold PGlite's one connection)
 * never returns.
 */
function counted(
  db: Database,
  name: string,
  table: string,
  options: { hangAt?: number; failAt?: number; recovery?: SagaOptions['recovery'] } = {},
) {
  const steps: AnySagaStep[] = ['a', 'b', 'c'].map((step, i) => ({
    name: step,
    transactional: i === 1,
    action: async (n: number, ctx: SagaContext) => {
      const sql = `INSERT INTO ${table} (saga_id, step) VALUES (?, ?)`;
      if (ctx.transaction) await sagaEntityManager(ctx).execute(sql, [ctx.sagaId, step]);
      else await db.orm.em.getConnection().execute(sql, [ctx.sagaId, step]);
      if (i === options.hangAt) await new Promise<never>(() => undefined);
      if (i === options.failAt) throw new Error(`${step} fails`);
      return n + 1;
    },
    compensate: async (_r: number, ctx: SagaContext) => {
      await db.orm.em
        .getConnection()
        .execute(`INSERT INTO ${table} (saga_id, step) VALUES (?, ?)`, [
          ctx.sagaId,
          `undo ${step}`,
        ]);
    },
  }));
  return (saga as (o: SagaOptions, ...s: AnySagaStep[]) => Saga<number, number>)(
    { name, log: postgresSagaLog(db), recovery: options.recovery ?? 'forward', heartbeatMs: 0 },
    ...steps,
  );
}

/** Starts a saga that hangs in step `hangAt` (its process "dies" there); waits for that point. */
async function abandon(db: Database, s: Saga<number, number>, id: string, hangAt: number) {
  void s.run(1, { sagaId: id }).catch(() => undefined);
  for (;;) {
    const saved = await loadSaga(db, id, { name: s.name });
    if (saved?.steps[hangAt]?.status === 'running') return;
    await delay(5);
  }
}

suite.serial(
  'resumeSagas continues an abandoned forward saga from the running step; completed steps never run again',
  async (t, db) => {
    const { table, count } = await effectsTable(db);
    const name = `fwd-${randomUUID().slice(0, 6)}`;
    const id = randomUUID();
    await abandon(db, counted(db, name, table, { hangAt: 2 }), id, 2);
    const outcomes = await resumeSagas(db, [counted(db, name, table)], { staleAfterMs: 0 });
    const mine = outcomes.find((o) => o.sagaId === id);
    t.is(mine?.status, 'completed');
    t.is(mine?.result, 4);
    t.is(await count(id, 'a'), 1);
    t.is(await count(id, 'b'), 1);
    t.is(await count(id, 'c'), 2, 'only the step in flight ran again');
    t.is((await loadSaga(db, id, { name }))?.status, 'completed');
    t.deepEqual(await resumeSagas(db, [counted(db, name, table)], { staleAfterMs: 0 }), []);
  },
);

suite.serial(
  'sagaRecovery: two services finish every abandoned saga once, count outcomes in stats, metrics and logs, and stop cleanly',
  async (t, db) => {
    const { table, count } = await effectsTable(db);
    const name = `rec-${randomUUID().slice(0, 6)}`;
    const back = `${name}-back`;
    const forwardIds = [randomUUID(), randomUUID(), randomUUID()];
    const failingId = randomUUID();
    const backwardId = randomUUID();
    for (const id of forwardIds) await abandon(db, counted(db, name, table, { hangAt: 2 }), id, 2);
    await abandon(db, counted(db, name, table, { hangAt: 0 }), failingId, 0);
    await abandon(db, counted(db, back, table, { hangAt: 2, recovery: 'backward' }), backwardId, 2);
    // the recovering processes: the failing saga's first step fails this time
    const sagas = (failAt?: number) => [
      counted(db, name, table, failAt === undefined ? {} : { failAt }),
      counted(db, back, table, { recovery: 'backward' }),
    ];
    const telemetry = memoryMeter();
    const logs = memoryLogger('info');
    const ac = new AbortController();
    // their processes "died" an hour ago; a saga being recovered is written (so fresh) at its
    // claim, so with staleAfterMs a minute the other service never takes it over
    await db.orm.em
      .fork()
      .nativeUpdate(
        SagaRecord,
        { name: { $in: [name, back] } },
        { updatedAt: new Date(Date.now() - 3_600_000) },
      );
    const common = { db, staleAfterMs: 60_000, intervalMs: 20, concurrency: 2 } as const;
    // sagas fail at step a only for the failing saga (the others already completed a)
    const one = sagaRecovery({
      ...common,
      sagas: sagas(0),
      meter: telemetry.meter,
      logger: logs.logger,
      signal: ac.signal,
    });
    const two = sagaRecovery({ ...common, sagas: sagas(0) });
    await Promise.all([one.runOnce(), two.runOnce()]);
    const stats = [one.stats, two.stats];
    const sum = (k: 'recovered' | 'compensated' | 'failed') => stats.reduce((n, s) => n + s[k], 0);
    t.is(sum('recovered'), 3);
    t.is(sum('compensated'), 2);
    t.is(sum('failed'), 0);
    for (const id of forwardIds) {
      t.is((await loadSaga(db, id, { name }))?.status, 'completed');
      t.is(await count(id, 'a'), 1);
      t.is(await count(id, 'b'), 1);
      t.is(await count(id, 'c'), 2, 'only the step in flight ran again');
    }
    t.is((await loadSaga(db, failingId, { name }))?.status, 'compensated');
    t.is((await loadSaga(db, backwardId, { name: back }))?.status, 'compensated');
    t.is(await count(backwardId, 'undo b'), 1);
    t.is(await count(backwardId, 'undo a'), 1);
    t.is(await count(backwardId, 'c'), 1, 'a backward saga is not continued');

    // metrics and catalog logs of the service that had them
    const metric = (await telemetry.collect()).find(
      (m) => m.descriptor.name === 'saga.recovery.sagas',
    );
    const byOutcome = new Map<string, number>();
    for (const p of metric?.dataPoints ?? []) {
      const o = String(p.attributes.outcome);
      byOutcome.set(o, (byOutcome.get(o) ?? 0) + Number(p.value));
    }
    t.is(byOutcome.get('recovered') ?? 0, one.stats.recovered);
    t.is(byOutcome.get('compensated') ?? 0, one.stats.compensated);
    t.is(
      logs.lines().filter((l) => l.event === 'saga.recovered').length,
      one.stats.recovered + one.stats.compensated,
    );
    t.true(logs.lines().some((l) => l.event === 'saga.recovery_started'));

    // stop: by signal and by stop(); no pass runs afterwards, no listener stays
    ac.abort();
    await one.stopped;
    await two.stop();
    const passes = [one.stats.passes, two.stats.passes];
    await delay(100);
    t.deepEqual([one.stats.passes, two.stats.passes], passes);
    t.is(getEventListeners(ac.signal, 'abort').length, 0);
    t.true(logs.lines().some((l) => l.event === 'saga.recovery_stopped'));
    t.throws(() => sagaRecovery({ db, sagas: [], intervalMs: 0 }), { instanceOf: TypeError });
  },
);

suite.serial(
  'a saga whose resume throws does not hold up the others: resumeSagas and sagaRecovery finish them, then report it',
  async (t, db) => {
    const log = postgresSagaLog(db);
    const name = `poison-${randomUUID().slice(0, 6)}`;
    // step a's recorded result must hold a number: a row that does not cannot be resumed
    const s = saga(
      { name, log, recovery: 'forward', heartbeatMs: 0 },
      {
        name: 'a',
        action: (n: number) => ({ n: n + 1 }),
        codec: {
          encode: (v: { n: number }) => v,
          decode: (json: unknown) => {
            const n = (json as { n?: unknown } | null)?.n;
            if (typeof n !== 'number') throw new TypeError(`not a result: ${JSON.stringify(json)}`);
            return { n };
          },
        },
      },
      { name: 'b', action: (v: { n: number }) => v.n + 1 },
    );
    const abandoned = async (id: string, result: unknown, minutesAgo: number) => {
      await log.write({
        id,
        name,
        correlationId: id,
        version: 1,
        status: 'running',
        recovery: 'forward',
        input: 1,
        steps: [
          { name: 'a', status: 'completed', compensable: false, compensateFailed: false, result },
          { name: 'b', status: 'running', compensable: false, compensateFailed: false },
        ],
      });
      await db.orm.em
        .fork()
        .nativeUpdate(
          SagaRecord,
          { name, id },
          { updatedAt: new Date(Date.now() - minutesAgo * 60_000) },
        );
    };
    // the poisoned saga is the oldest: every pass meets it first
    await abandoned('bad', { n: 'two' }, 30);
    await abandoned('good-1', { n: 2 }, 20);
    await abandoned('good-2', { n: 2 }, 10);
    const options = { staleAfterMs: 60_000, limit: 2 } as const;
    await t.throwsAsync(resumeSagas(db, [s], options), { message: /not a result/ });
    t.is((await loadSaga(db, 'good-1', { name }))?.status, 'completed', 'resumeSagas went on');

    const logs = memoryLogger('info');
    const recovery = sagaRecovery({
      db,
      sagas: [s],
      intervalMs: 60_000,
      logger: logs.logger,
      ...options,
    });
    await recovery.runOnce(); // after the pass it ran at once
    await recovery.stop();
    t.is((await loadSaga(db, 'good-2', { name }))?.status, 'completed', 'sagaRecovery went on');
    t.is(recovery.stats.recovered, 1);
    t.true(recovery.stats.errors >= 1);
    const failed = logs.lines().filter((l) => l.event === 'saga.recovery_failed');
    t.true(
      failed.some((l) => l.sagaId === 'bad' && l.saga === name),
      JSON.stringify(failed),
    );
    t.is((await loadSaga(db, 'bad', { name }))?.status, 'running', 'left for someone to look at');
  },
);

suite.serial('purgeSagas deletes finished sagas past retention, never open ones', async (t, db) => {
  const log = postgresSagaLog(db);
  const name = `purge-${randomUUID().slice(0, 6)}`;
  const write = async (status: SagaSnapshot['status']): Promise<string> => {
    const id = randomUUID();
    const base = { id, name, correlationId: id, steps: [], version: 1 };
    await log.write(
      status === 'running' || status === 'completed'
        ? { ...base, status }
        : { ...base, status, cause: { name: 'Error', message: 'x' }, failedStep: null },
    );
    return id;
  };
  const ids = {
    completed: await write('completed'),
    compensated: await write('compensated'),
    failed: await write('failed'),
    running: await write('running'),
    fresh: await write('completed'),
  };
  const old = new Date(Date.now() - 10 * 86_400_000);
  await db.orm.em
    .fork()
    .nativeUpdate(SagaRecord, { name, id: { $ne: ids.fresh } }, { updatedAt: old });
  t.is(await purgeSagas(db, { olderThan: 86_400_000, names: [name] }), 2);
  const left = async () =>
    (await db.orm.em.fork().find(SagaRecord, { name })).map((r) => r.status).sort();
  t.deepEqual(await left(), ['completed', 'failed', 'running']);
  t.is(await purgeSagas(db, { olderThan: new Date(), names: [name], includeFailed: true }), 2);
  t.deepEqual(await left(), ['running']);
  await t.throwsAsync(purgeSagas(db, { olderThan: -1 }), { instanceOf: TypeError });
});
