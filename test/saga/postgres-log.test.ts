import { randomUUID } from 'node:crypto';
import test from 'ava';
import { loadSaga, postgresSagaLog, resumeSagas, SagaRecord } from '../../lib/postgres/saga-log.js';
import { isSagaConflictError, isSagaFailedError } from '../../lib/saga/errors.js';
import type { SagaSnapshot } from '../../lib/saga/log.js';
import { saga } from '../../lib/saga/saga.js';
import { databaseSuite } from '../support/databases.js';

const suite = await databaseSuite('saga_log');

function running(id: string, name: string, version: number, stepStatus: string[]): SagaSnapshot {
  return {
    id,
    name,
    correlationId: id,
    version,
    status: 'running',
    steps: stepStatus.map((status, i) => ({
      name: `s${i}`,
      status: status as SagaSnapshot['steps'][number]['status'],
      compensable: true,
      compensateFailed: false,
      ...(status === 'completed' || status === 'compensating' ? { result: { n: i } } : {}),
    })),
  };
}

suite.test(
  'the log inserts version 1, updates only from the stored version, and rejects stale or duplicate writes',
  async (t, db) => {
    const log = postgresSagaLog(db);
    const id = randomUUID();
    await log.write(running(id, 'v', 1, ['pending', 'pending']));
    await log.write(running(id, 'v', 2, ['running', 'pending']));
    await log.write(running(id, 'v', 3, ['completed', 'pending']));
    const stale = await t.throwsAsync(log.write(running(id, 'v', 3, ['completed', 'running'])));
    t.true(isSagaConflictError(stale));
    const dup = await t.throwsAsync(log.write(running(id, 'v', 1, ['pending', 'pending'])));
    t.true(isSagaConflictError(dup));
    const row = await db.orm.em.fork().findOneOrFail(SagaRecord, { id });
    t.is(row.version, 3);
    t.is(row.status, 'running');
    t.deepEqual(
      row.steps.map((s) => [s.status, s.result]),
      [
        ['completed', { n: 0 }],
        ['pending', undefined],
      ],
    );
    t.true(row.updatedAt instanceof Date);
  },
);

suite.test(
  'a saga with the postgres log records every state and ends compensated on failure',
  async (t, db) => {
    const undone: unknown[] = [];
    const s = saga(
      { name: 'pg-order', log: postgresSagaLog(db) },
      {
        name: 'reserve',
        action: (sku: string) => ({ sku, reservation: `r-${sku}` }),
        compensate: (r) => void undone.push(r.reservation),
      },
      {
        name: 'charge',
        action: (_r: { sku: string; reservation: string }): number => {
          throw new Error('declined');
        },
      },
    );
    const ok = saga(
      { name: 'pg-ok', log: postgresSagaLog(db) },
      { name: 'x', action: (n: number) => n * 2 },
    );
    const okId = randomUUID();
    t.is(await ok.run(21, { sagaId: okId }), 42);
    const done = await loadSaga(db, okId);
    t.is(done?.status, 'completed');
    t.is(done?.steps[0]?.result, 42);

    const id = randomUUID();
    const e = await t.throwsAsync(s.run('A', { sagaId: id }));
    t.true(isSagaFailedError(e));
    t.deepEqual(undone, ['r-A']);
    const saved = await loadSaga(db, id);
    t.is(saved?.status, 'compensated');
    t.true(saved?.status === 'compensated' && saved.failedStep === 'charge');
    t.true(saved?.status === 'compensated' && saved.cause.message === 'declined');
    t.deepEqual(
      saved?.steps.map((st) => st.status),
      ['compensated', 'failed'],
    );
    t.deepEqual(saved?.steps[0]?.result, { sku: 'A', reservation: 'r-A' });
    t.is(await loadSaga(db, 'no-such-saga'), undefined);
  },
);

suite.serial(
  'resumeSagas compensates stale open sagas exactly once even when two resumers race',
  async (t, db) => {
    const log = postgresSagaLog(db);
    const name = `race-${randomUUID().slice(0, 8)}`;
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    // three sagas left behind by a "crashed" process: two running, one mid-compensation
    await log.write(running(ids[0] as string, name, 1, ['completed', 'completed', 'running']));
    await log.write(running(ids[1] as string, name, 1, ['completed', 'pending', 'pending']));
    await log.write({
      ...running(ids[2] as string, name, 1, ['completed', 'compensating', 'failed']),
      status: 'compensating',
      cause: { name: 'Error', message: 'x' },
      failedStep: 's2',
    });
    // a fresh one (not stale) and a finished one must be left alone
    const fresh = randomUUID();
    await log.write(running(fresh, name, 1, ['completed', 'pending', 'pending']));
    const calls: string[] = [];
    const registry = {
      [name]: {
        s0: (r: { n: number }, ctx: { sagaId: string }) =>
          void calls.push(`${ctx.sagaId}:s0:${r.n}`),
        s1: (r: { n: number }, ctx: { sagaId: string }) =>
          void calls.push(`${ctx.sagaId}:s1:${r.n}`),
        s2: () => t.fail('s2 never completed'),
      },
    };
    // make the three old rows stale
    await db.orm.em
      .fork()
      .nativeUpdate(
        SagaRecord,
        { id: { $in: ids } },
        { updatedAt: new Date(Date.now() - 3_600_000) },
      );

    const [a, b] = await Promise.all([
      resumeSagas(db, registry, { staleAfterMs: 60_000 }),
      resumeSagas(db, registry, { staleAfterMs: 60_000 }),
    ]);
    const all = [...a, ...b];
    for (const id of ids) {
      const mine = all.filter((o) => o.sagaId === id);
      t.is(mine.filter((o) => o.status === 'compensated').length, 1, `saga ${id} compensated once`);
      t.true(mine.every((o) => o.status === 'compensated' || o.status === 'conflict'));
    }
    t.false(all.some((o) => o.sagaId === fresh));
    t.deepEqual(
      calls
        .filter((c) => c.startsWith(ids[0] as string))
        .map((c) => c.split(':').slice(1).join(':')),
      ['s1:1', 's0:0'],
    );
    t.deepEqual(
      calls
        .filter((c) => c.startsWith(ids[1] as string))
        .map((c) => c.split(':').slice(1).join(':')),
      ['s0:0'],
    );
    t.deepEqual(
      calls
        .filter((c) => c.startsWith(ids[2] as string))
        .map((c) => c.split(':').slice(1).join(':')),
      ['s1:1', 's0:0'],
    );
    for (const id of ids) t.is((await loadSaga(db, id))?.status, 'compensated');
    t.is((await loadSaga(db, fresh))?.status, 'running');
    // nothing left to do
    t.deepEqual(await resumeSagas(db, registry, { staleAfterMs: 60_000 }), []);
    t.deepEqual(await resumeSagas(db, {}), []);
    await t.throwsAsync(resumeSagas(db, registry, { limit: 0 }), { instanceOf: TypeError });
  },
);

test('postgresSagaLog rejects something that is not a database', (t) => {
  t.throws(() => postgresSagaLog({} as never), { instanceOf: TypeError });
});
