import { randomUUID } from 'node:crypto';
import test from 'ava';
import { isStepError } from '../../lib/core/errors.js';
import {
  ensemble,
  InferenceInvocationRecord,
  InferenceModel,
  InferenceRequestRecord,
  InferenceResultRecord,
  modelRegistry,
  registerModels,
  unregisterModels,
} from '../../lib/inference/index.js';
import { loadSaga, postgresSagaLog, resumeSagas } from '../../lib/postgres/saga-log.js';
import { isSagaFailedError } from '../../lib/saga/errors.js';
import { databaseSuite } from '../support/databases.js';
import { type ModelServer, startModelServer } from '../support/model-server.js';

const suite = await databaseSuite('inference');

let servers: ModelServer[] = [];
test.before(async () => {
  servers = await Promise.all([
    startModelServer({ answer: () => 'pos', latencyMs: 1 }),
    startModelServer({ answer: () => 'neg', latencyMs: 1 }),
    startModelServer({ answer: () => 'pos', latencyMs: 1 }),
  ]);
});
test.after.always(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

/** Registers the three servers under names unique to this test. */
async function register(db: Parameters<typeof registerModels>[0], tag: string) {
  const names = servers.map((_, i) => `${tag}-${i}`);
  await registerModels(
    db,
    servers.map((s, i) => ({ name: names[i] as string, endpoint: s.url, timeoutMs: 2_000 })),
  );
  return names;
}

suite.test(
  'the registry: register, update, disable, unregister; loads are cached per cacheMs',
  async (t, db) => {
    const tag = `reg-${randomUUID().slice(0, 6)}`;
    const names = await register(db, tag);
    let clock = 0;
    const registry = modelRegistry(db, { cacheMs: 1_000, now: () => clock });
    const first = (await registry.load()).filter((m) => m.name.startsWith(tag));
    t.deepEqual(
      first.map((m) => [m.name, m.kind, m.weight, m.enabled]),
      names.map((n) => [n, 'json', 1, true]),
    );
    // change the weight and disable one: the cache still has the old list
    await registerModels(db, [
      { name: names[0] as string, endpoint: servers[0]!.url, weight: 2.5 },
      { name: names[1] as string, endpoint: servers[1]!.url, enabled: false },
    ]);
    const cached = await registry.load();
    t.is(cached, await registry.load(), 'the same load is shared');
    t.is(cached.find((m) => m.name === names[0])?.weight, 1);
    clock = 1_000;
    const fresh = await registry.load();
    t.is(fresh.find((m) => m.name === names[0])?.weight, 2.5);
    t.false(fresh.find((m) => m.name === names[1])?.enabled);
    t.is(await unregisterModels(db, [names[2] as string]), 1);
    registry.invalidate();
    t.false((await registry.load()).some((m) => m.name === names[2]));
    const row = await db.orm.em.fork().findOneOrFail(InferenceModel, { name: names[0] as string });
    t.is(Number(row.weight), 2.5);
    await t.throwsAsync(registerModels(db, [{ name: 'x', endpoint: 'nope' }]), {
      instanceOf: TypeError,
    });
    await unregisterModels(db, names);
  },
);

suite.serial(
  'an ensemble over the database registry persists request, invocations and answer in one saga',
  async (t, db) => {
    const tag = `persist-${randomUUID().slice(0, 6)}`;
    const names = await register(db, tag);
    // the models come straight from the database registry: this file's tests run one at a
    // time and each removes its models at the end, so only this test's three are registered
    const e = ensemble({
      models: db,
      modelCacheMs: 0,
      persist: db,
      name: 'ens',
    });
    t.teardown(() => e.close());
    const id = `req-${randomUUID()}`;
    const answer = await e.run({ id, input: 'great food' });
    t.is(answer.answer, 'pos');
    t.true(answer.persisted);
    const em = db.orm.em.fork();
    const request = await em.findOneOrFail(InferenceRequestRecord, { id });
    t.is(request.status, 'answered');
    t.is(request.input, 'great food');
    const invocations = await em.find(
      InferenceInvocationRecord,
      { requestId: id },
      { orderBy: { arrival: 'asc' } },
    );
    t.is(invocations.length, 3);
    t.deepEqual(invocations.map((i) => i.model).sort(), [...names].sort());
    t.true(
      invocations.every((i) => i.outcome === 'ok' && i.attempts === 1 && Number(i.latencyMs) >= 0),
    );
    const result = await em.findOneOrFail(InferenceResultRecord, { requestId: id });
    t.is(result.answer, 'pos');
    t.is(result.strategy, 'majority-vote');
    t.is(Number(result.support), 2);
    t.is(result.agreeing.length, 2);
    const saved = await loadSaga(db, request.sagaId as string);
    t.is(saved?.status, 'completed');
    t.is(saved?.name, 'ens.persist');
    t.deepEqual(saved?.steps[0]?.result, { requestId: id }, 'only the id goes to the saga log');
    await unregisterModels(db, names);
  },
);

suite.serial(
  'a failure after persisting compensates: the request is marked compensated, its rows removed',
  async (t, db) => {
    const tag = `comp-${randomUUID().slice(0, 6)}`;
    const names = await register(db, tag);
    const models = (await modelRegistry(db, { cacheMs: 0 }).load()).filter((m) =>
      m.name.startsWith(tag),
    );
    const published: string[] = [];
    const e = ensemble({
      models,
      name: 'ens-fail',
      persist: {
        db,
        afterPersist: (a) => {
          if (String(a.requestId).endsWith('-bad')) throw new Error('publish failed');
          published.push(a.requestId);
        },
      },
    });
    t.teardown(() => e.close());
    const good = `req-${randomUUID()}-good`;
    const bad = `req-${randomUUID()}-bad`;
    t.true((await e.run({ id: good, input: 1 })).persisted);
    const error = await t.throwsAsync(e.run({ id: bad, input: 2 }));
    t.true(isStepError(error) && error.step === 'persist' && isSagaFailedError(error.cause));
    if (isStepError(error) && isSagaFailedError(error.cause)) {
      t.is(error.cause.failedStep, 'after-persist');
      t.deepEqual(error.cause.compensated, ['result', 'invocations', 'request']);
    }
    t.deepEqual(published, [good]);
    const em = db.orm.em.fork();
    const request = await em.findOneOrFail(InferenceRequestRecord, { id: bad });
    t.is(request.status, 'compensated');
    t.is(request.error?.message, 'publish failed');
    t.is(await em.count(InferenceInvocationRecord, { requestId: bad }), 0);
    t.is(await em.count(InferenceResultRecord, { requestId: bad }), 0);
    t.is(await em.count(InferenceInvocationRecord, { requestId: good }), 3);
    t.is((await loadSaga(db, request.sagaId as string))?.status, 'compensated');

    // stream: per-request outcomes, failures compensated, others stored
    const ids = Array.from(
      { length: 6 },
      (_, i) => `req-${randomUUID()}-${i % 3 === 0 ? 'bad' : 'ok'}`,
    );
    const { lastValueFrom, toArray } = await import('rxjs');
    const outcomes = await lastValueFrom(
      e
        .stream(
          ids.map((id) => ({ id, input: id })),
          { concurrency: 3, ordered: true },
        )
        .pipe(toArray()),
    );
    t.deepEqual(
      outcomes.map((o) => o.ok),
      ids.map((id) => !id.endsWith('-bad')),
    );
    const statuses = await em.find(InferenceRequestRecord, { id: { $in: ids } });
    t.deepEqual(
      ids.map((id) => statuses.find((s) => s.id === id)?.status),
      ids.map((id) => (id.endsWith('-bad') ? 'compensated' : 'answered')),
    );
    await unregisterModels(db, names);
  },
);

suite.serial(
  'resumeSagas finishes a persist saga that crashed halfway, using the ensemble persist saga',
  async (t, db) => {
    const e = ensemble({
      models: [{ name: 'unused', endpoint: servers[0]!.url }],
      persist: db,
      name: 'ens-crash',
    });
    t.teardown(() => e.close());
    const id = `req-${randomUUID()}`;
    const sagaId = randomUUID();
    // what a crashed process leaves: the request row written, the invocations step running
    const at = new Date();
    await db.orm.em.fork().insert(InferenceRequestRecord, {
      id,
      correlationId: id,
      input: 'x',
      strategy: 'majority-vote',
      status: 'persisting',
      sagaId,
      error: null,
      createdAt: at,
      updatedAt: at,
    });
    const log = postgresSagaLog(db);
    await log.write({
      id: sagaId,
      name: 'ens-crash.persist',
      correlationId: id,
      version: 1,
      status: 'running',
      steps: [
        {
          name: 'request',
          status: 'completed',
          compensable: true,
          compensateFailed: false,
          result: { requestId: id },
        },
        { name: 'invocations', status: 'running', compensable: true, compensateFailed: false },
        { name: 'result', status: 'pending', compensable: true, compensateFailed: false },
      ],
    });
    const outcomes = await resumeSagas(db, [e.persistSaga!], { staleAfterMs: 0 });
    const mine = outcomes.find((o) => o.sagaId === sagaId);
    t.is(mine?.status, 'compensated');
    t.deepEqual(mine?.compensated, ['request']);
    const row = await db.orm.em.fork().findOneOrFail(InferenceRequestRecord, { id });
    t.is(row.status, 'compensated');
    t.is(row.error?.code, 'SAGA_INTERRUPTED');
  },
);
