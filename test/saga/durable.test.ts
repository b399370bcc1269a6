/**
 * Durable sagas in memory (memorySagaLog): forward recovery, start once per id, transactional
 * steps, heartbeats and takeovers. The same behaviour on PostgreSQL and PGlite is in
 * durable-db.test.ts; across processes in crash-forward.test.ts and start-once.test.ts.
 */
import { getEventListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import test from 'ava';
import fc from 'fast-check';
import {
  type AnySagaStep,
  isCompensationFailedError,
  isSagaConflictError,
  isSagaFailedError,
  memorySagaLog,
  resumeSaga,
  retry,
  type Saga,
  type SagaContext,
  type SagaEvent,
  type SagaLog,
  type SagaOptions,
  type SagaSnapshot,
  saga,
} from '../../lib/index.js';

/** A saga of n steps adding 1 each; records every action and compensation call. */
function adder(
  n: number,
  options: Partial<SagaOptions> & { log: SagaLog },
  hooks: {
    action?: (i: number, x: number, ctx: SagaContext) => Promise<void> | void;
    transactional?: (i: number) => boolean;
  } = {},
) {
  const calls: Array<{ step: string; input: number; key: string; resumed: boolean }> = [];
  const undone: Array<{ step: string; result: unknown }> = [];
  const steps: AnySagaStep[] = Array.from({ length: n }, (_, i) => ({
    name: `s${i}`,
    transactional: hooks.transactional?.(i) ?? false,
    action: async (x: number, ctx: SagaContext) => {
      calls.push({ step: `s${i}`, input: x, key: ctx.idempotencyKey, resumed: ctx.resumed });
      await hooks.action?.(i, x, ctx);
      return x + 1;
    },
    compensate: (r: number) => void undone.push({ step: `s${i}`, result: r }),
  }));
  const s = (saga as (o: SagaOptions, ...steps: AnySagaStep[]) => Saga<number, number>)(
    { name: 'adder', ...options },
    ...steps,
  );
  return { s, calls, undone };
}

/**
 * Runs a saga until step `stopAt` is running and leaves it there for good (its process
 * "died": the action never returns, so the execution never writes again); returns the log
 * as it was then.
 */
async function crashDuring(
  build: (hang: (i: number) => Promise<void>) => Saga<number, number>,
  log: ReturnType<typeof memorySagaLog>,
  stopAt: number,
  id: string,
): Promise<SagaSnapshot> {
  let reached!: () => void;
  const atStop = new Promise<void>((r) => {
    reached = r;
  });
  const s = build(async (i) => {
    if (i === stopAt) {
      reached();
      await new Promise<never>(() => undefined);
    }
  });
  void s.run(1, { sagaId: id }).catch(() => undefined);
  await atStop;
  return (await log.load({ name: 'adder', id })) as SagaSnapshot;
}

test('a forward saga resumes from the running step with the recorded outputs; completed steps never run again', async (t) => {
  const log = memorySagaLog();
  let built!: ReturnType<typeof adder>;
  const saved = await crashDuring(
    (hang) => {
      built = adder(4, { log, recovery: 'forward', heartbeatMs: 0 }, { action: (i) => hang(i) });
      return built.s;
    },
    log,
    2,
    'f-1',
  );
  t.is(saved.status, 'running');
  t.deepEqual(
    saved.steps.map((s) => s.status),
    ['completed', 'completed', 'running', 'pending'],
  );
  t.is(saved.recovery, 'forward');
  t.is(saved.input, 1);
  const firstRun = built.calls.map((c) => c.step);
  t.deepEqual(firstRun, ['s0', 's1', 's2']);

  const again = adder(4, { log, recovery: 'forward', heartbeatMs: 0 });
  const events: SagaEvent[] = [];
  const outcome = await resumeSaga(saved, [again.s], { log, onEvent: (e) => events.push(e) });
  t.is(outcome.status, 'completed');
  t.is(outcome.result, 5);
  // only the step in flight and the ones after it ran again, with the recorded output as input
  t.deepEqual(
    again.calls.map((c) => [c.step, c.input, c.resumed]),
    [
      ['s2', 3, true],
      ['s3', 4, true],
    ],
  );
  t.is(again.calls[0]?.key, built.calls[2]?.key, 'the re-run step has the same idempotency key');
  t.is(again.calls[0]?.key, 'adder/f-1/s2');
  const stored = await log.load({ name: 'adder', id: 'f-1' });
  t.is(stored?.status, 'completed');
  t.deepEqual(
    events.map((e) => e.type),
    ['step-completed', 'step-completed', 'saga-completed'],
  );
  t.deepEqual(again.undone, []);
});

test('a forward saga that fails after resuming compensates as usual, with the decoded results of steps completed before the crash', async (t) => {
  const log = memorySagaLog();
  const build = (fail: boolean, hang?: (i: number) => Promise<void>) => {
    const undone: unknown[] = [];
    const s = saga(
      { name: 'adder', log, recovery: 'forward', heartbeatMs: 0 },
      {
        name: 'a',
        action: async (n: number) => ({ at: new Date(n * 1000) }),
        codec: {
          encode: (r: { at: Date }) => r.at.toISOString(),
          decode: (j: unknown) => ({ at: new Date(String(j)) }),
        },
        compensate: (r) => void undone.push(['a', r.at instanceof Date, r.at.getTime()]),
      },
      {
        name: 'b',
        action: async (r: { at: Date }) => {
          await hang?.(1);
          if (fail) throw new Error('b failed after the restart');
          return r.at.getTime();
        },
      },
    );
    return { s, undone };
  };
  const saved = await crashDuring(
    (hang) => build(false, hang).s as unknown as Saga<number, number>,
    log,
    1,
    'f-2',
  );
  const again = build(true);
  const outcome = await resumeSaga(saved, [again.s], { log });
  t.is(outcome.status, 'compensated');
  t.deepEqual(outcome.compensated, ['a']);
  t.deepEqual(again.undone, [['a', true, 1000]], 'the codec decoded the recorded result');
  const stored = await log.load({ name: 'adder', id: 'f-2' });
  t.is(stored?.status, 'compensated');
  t.true(stored?.status === 'compensated' && stored.failedStep === 'b');
});

test('a forward saga interrupted in its first step restarts from its recorded input (inputCodec)', async (t) => {
  const log = memorySagaLog();
  const inputCodec = {
    encode: (d: Date) => d.toISOString(),
    decode: (j: unknown) => new Date(String(j)),
  };
  const seen: unknown[] = [];
  const make = (hang?: () => Promise<void>) =>
    saga(
      { name: 'dated', log, recovery: 'forward', inputCodec, heartbeatMs: 0 },
      {
        name: 'year',
        action: async (d: Date) => {
          seen.push(d instanceof Date ? d.getUTCFullYear() : d);
          await hang?.();
          return d.getUTCFullYear();
        },
      },
    );
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const live = make(() => gate).run(new Date(Date.UTC(2024, 0, 1)), { sagaId: 'd-1' });
  while ((await log.load({ name: 'dated', id: 'd-1' }))?.steps[0]?.status !== 'running') {
    await delay(1);
  }
  const saved = (await log.load({ name: 'dated', id: 'd-1' })) as SagaSnapshot;
  t.is(saved.input, '2024-01-01T00:00:00.000Z');
  const outcome = await resumeSaga(saved, [make()], { log });
  t.is(outcome.status, 'completed');
  t.is(outcome.result, 2024);
  t.deepEqual(seen, [2024, 2024]);
  release();
  const late = await live.then(
    () => 'resolved',
    (e: unknown) => e,
  );
  t.true(isSagaConflictError(late), 'the abandoned execution stops on its next write');
});

test('resumeSaga without a log writes a forward saga to its own log, whichever way it finishes', async (t) => {
  const log = memorySagaLog();
  const { s, undone } = adder(2, { log, recovery: 'forward', heartbeatMs: 0 });
  const step = (status: 'completed' | 'compensating', result: number) => ({
    name: `s${result - 2}`,
    status,
    compensable: true,
    compensateFailed: false,
    result,
  });
  const base = { name: 'adder', recovery: 'forward' as const, input: 1 };
  // its process died while undoing s1
  await log.write({
    ...base,
    id: 'c-1',
    correlationId: 'c-1',
    version: 1,
    status: 'compensating',
    cause: { name: 'Error', message: 'boom' },
    failedStep: null,
    steps: [step('completed', 2), step('compensating', 3)],
  });
  const saved = (await log.load({ name: 'adder', id: 'c-1' })) as SagaSnapshot;
  t.is((await resumeSaga(saved, [s])).status, 'compensated');
  t.deepEqual(
    undone.map((u) => u.step),
    ['s1', 's0'],
  );
  t.is((await log.load({ name: 'adder', id: 'c-1' }))?.status, 'compensated');
  // the claim went through the saga's log: a second resume of the same state runs nothing
  t.is((await resumeSaga(saved, [s])).status, 'conflict');
  t.is(undone.length, 2);
});

test('a backward saga is still compensated by resumeSaga, and a forward saga needs its Saga object', async (t) => {
  const log = memorySagaLog();
  let built!: ReturnType<typeof adder>;
  const saved = await crashDuring(
    (hang) => {
      built = adder(3, { log, heartbeatMs: 0 }, { action: (i) => hang(i) });
      return built.s;
    },
    log,
    2,
    'b-1',
  );
  t.is(saved.recovery, 'backward');
  t.false('input' in saved && saved.input !== undefined, 'backward sagas do not record input');
  const again = adder(3, { log, heartbeatMs: 0 });
  const outcome = await resumeSaga(saved, [again.s], { log });
  t.is(outcome.status, 'compensated');
  t.deepEqual(outcome.compensated, ['s1', 's0']);
  t.deepEqual(again.calls, []);
  // a forward snapshot with only compensations: nothing is done (continue it with the Saga)
  const forward: SagaSnapshot = { ...saved, id: 'b-2', version: 1, recovery: 'forward' };
  t.is((await resumeSaga(forward, { adder: { s0: () => undefined } })).status, 'unknown-saga');
});

test('start runs an id once: concurrent and later starts get the first result, without running anything', async (t) => {
  const log = memorySagaLog();
  let runs = 0;
  const s = saga(
    { name: 'once', log },
    {
      name: 'slow',
      action: async (n: number) => {
        runs++;
        await delay(20);
        return n * 2;
      },
    },
  );
  const results = await Promise.all([
    s.start(21, { id: 'x' }),
    s.start(21, { id: 'x' }),
    s.start(99, { id: 'x' }), // a second caller's input is ignored
  ]);
  t.deepEqual(results, [42, 42, 42]);
  t.is(runs, 1);
  t.is(await s.start(5, { id: 'x' }), 42);
  t.is(runs, 1);
  // ids are unique per saga name: another saga may use the same id
  const other = saga({ name: 'other', log }, { name: 'one', action: (n: number) => n + 1 });
  t.is(await other.start(1, { id: 'x' }), 2);
  t.is(await s.start(1, { id: 'y' }), 2);
  t.is(runs, 2);
  t.is(log.list().length, 3);
});

test('start of an id running elsewhere waits for it; a stored failure is rethrown to later callers', async (t) => {
  const log = memorySagaLog();
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  let runs = 0;
  // two saga objects over one log behave like two processes (no shared in-process state)
  const make = () =>
    saga(
      { name: 'shared', log },
      {
        name: 'wait',
        action: async (n: number) => {
          runs++;
          await gate;
          return `done ${n}`;
        },
      },
    );
  const first = make().start(1, { id: 'w' });
  while (!(await log.load({ name: 'shared', id: 'w' }))) await delay(1);
  const second = make().start(2, { id: 'w', pollMs: 5 });
  await delay(30);
  release();
  t.deepEqual(await Promise.all([first, second]), ['done 1', 'done 1']);
  t.is(runs, 1);

  // a failed saga: the first caller gets the live error, later ones the stored one
  const failing = () =>
    saga(
      { name: 'fails', log },
      { name: 'a', action: (n: number) => n, compensate: () => undefined },
      {
        name: 'b',
        action: (_n: number): number => {
          throw new Error('card declined');
        },
      },
    );
  const live = await t.throwsAsync(failing().start(1, { id: 'f' }));
  const stored = await t.throwsAsync(failing().start(1, { id: 'f' }));
  t.true(isSagaFailedError(live) && isSagaFailedError(stored));
  if (isSagaFailedError(live) && isSagaFailedError(stored)) {
    t.is(stored.failedStep, live.failedStep);
    t.deepEqual(stored.compensated, live.compensated);
    t.is((stored.cause as Error).message, 'card declined');
    t.is(stored.sagaId, 'f');
  }
  // a caller can stop waiting: its signal aborts the wait, the saga is unaffected
  let releaseSlow!: () => void;
  const slowGate = new Promise<void>((r) => {
    releaseSlow = r;
  });
  const slow = () =>
    saga({ name: 'slow', log }, { name: 'a', action: () => slowGate.then(() => 'ok') });
  const owner = slow().start(undefined, { id: 's' });
  while (!(await log.load({ name: 'slow', id: 's' }))) await delay(1);
  const ac = new AbortController();
  const waiting = slow().start(undefined, { id: 's', pollMs: 5, signal: ac.signal });
  ac.abort(new Error('gave up'));
  await t.throwsAsync(waiting, { message: 'gave up' });
  t.is(getEventListeners(ac.signal, 'abort').length, 0);
  releaseSlow();
  t.is(await owner, 'ok');
});

test('start needs an id and a log that can load', async (t) => {
  const log = memorySagaLog();
  const s = saga({ name: 'v', log }, { name: 'a', action: (n: number) => n });
  await t.throwsAsync(s.start(1, { id: '' }), { instanceOf: TypeError });
  const plain = saga(
    { name: 'v', log: { write: async () => undefined } },
    { name: 'a', action: (n: number) => n },
  );
  await t.throwsAsync(plain.start(1, { id: 'a' }), { instanceOf: TypeError, message: /load/ });
});

test('a transactional step writes its completion in its own transaction; a policy retries the whole transaction', async (t) => {
  const log = memorySagaLog();
  let attempts = 0;
  const s = saga(
    { name: 'tx', log },
    {
      name: 'book',
      transactional: true,
      policy: [retry<number>({ maxAttempts: 3, baseDelayMs: 1 })],
      action: async (n: number, ctx) => {
        attempts++;
        t.truthy(ctx.transaction, 'the action gets the transaction');
        if (attempts < 3) throw new Error(`attempt ${attempts} failed`);
        return n + 1;
      },
      compensate: () => undefined,
    },
    { name: 'plain', action: (n: number, ctx) => (ctx.transaction === undefined ? n : -1) },
  );
  t.is(await s.run(1, { sagaId: 't-1' }), 2);
  t.is(attempts, 3);
  const stored = await log.load({ name: 'tx', id: 't-1' });
  t.is(stored?.status, 'completed');
  t.is(stored?.steps[0]?.result, 2);
  // v1 start, v2 book running, v3 book completed (in its transaction), v4 plain running,
  // v5 plain completed, v6 saga completed: the failed attempts wrote nothing
  t.is(stored?.version, 6);
});

test('a transactional step whose completion write conflicts (the saga was taken over) rolls back and stops', async (t) => {
  const log = memorySagaLog();
  const applied: string[] = [];
  const s = saga(
    { name: 'txc', log, recovery: 'forward' },
    {
      name: 'book',
      transactional: true,
      action: async (n: number, ctx) => {
        // meanwhile, recovery in another process claims the saga
        const held = (await log.load({ name: 'txc', id: ctx.sagaId })) as SagaSnapshot;
        await log.write({ ...held, version: held.version + 1 });
        return n;
      },
      compensate: () => void applied.push('compensated'),
    },
  );
  const e = await t.throwsAsync(s.run(1, { sagaId: 'c-1' }));
  t.true(isSagaConflictError(e));
  const stored = await log.load({ name: 'txc', id: 'c-1' });
  t.is(stored?.steps[0]?.status, 'running', 'the completion was not recorded');
  t.deepEqual(applied, []);
  // a transactional step needs a log with transaction()
  t.throws(
    () =>
      saga(
        { name: 'tx2', log: { write: async () => undefined } },
        { name: 'a', transactional: true, action: (n: number) => n },
      ),
    { instanceOf: TypeError, message: /transaction/ },
  );
});

test('heartbeats keep a running saga fresh; a takeover aborts the action and a forward saga stops without compensating', async (t) => {
  const log = memorySagaLog();
  const compensations: string[] = [];
  let aborted: unknown;
  const s = saga(
    { name: 'hb', log, recovery: 'forward', heartbeatMs: 5 },
    { name: 'a', action: (n: number) => n, compensate: () => void compensations.push('a') },
    {
      name: 'long',
      action: (_n: number, { signal }) =>
        new Promise<number>((_, reject) => {
          signal.addEventListener(
            'abort',
            () => {
              aborted = signal.reason;
              reject(signal.reason);
            },
            { once: true },
          );
        }),
    },
  );
  const running = s.run(1, { sagaId: 'h-1' });
  while ((await log.load({ name: 'hb', id: 'h-1' }))?.steps[1]?.status !== 'running') {
    await delay(1);
  }
  while (log.heartbeats < 2) await delay(2);
  // another process claims the saga (its version moves on)
  const held = (await log.load({ name: 'hb', id: 'h-1' })) as SagaSnapshot;
  await log.write({ ...held, version: held.version + 1 });
  const error = await t.throwsAsync(running);
  t.true(isSagaConflictError(error));
  t.true(isSagaConflictError(aborted), 'the action was aborted with the conflict');
  t.deepEqual(compensations, [], 'nothing compensated: the other process owns the saga');
});

test('a forward saga whose log is down stops where it is, for recovery to finish; if the log can record it, it compensates', async (t) => {
  const cases = [
    { recovery: 'forward', down: true, compensates: false },
    { recovery: 'forward', down: false, compensates: true },
    { recovery: 'backward', down: true, compensates: true },
  ] as const;
  for (const c of cases) {
    let writes = 0;
    const inner = memorySagaLog();
    const log: SagaLog = {
      write: async (snapshot) => {
        writes++;
        // write 4 records step b running; a log that is down refuses every write from then
        if (writes === 4 || (c.down && writes > 4)) throw new Error('db down');
        await inner.write(snapshot);
      },
    };
    const undone: string[] = [];
    const name = `w-${c.recovery}-${c.down}`;
    const s = saga(
      { name, log, recovery: c.recovery },
      { name: 'a', action: (n: number) => n, compensate: () => void undone.push('a') },
      { name: 'b', action: (n: number) => n },
    );
    const e = await t.throwsAsync(s.run(1, { sagaId: 'w' }));
    const stored = await inner.load({ name, id: 'w' });
    if (c.compensates) {
      t.true(isSagaFailedError(e), name);
      t.deepEqual(undone, ['a'], name);
    } else {
      t.is(e?.message, 'db down', name);
      t.deepEqual(undone, [], name);
      t.is(stored?.status, 'running', name);
      t.deepEqual(
        stored?.steps.map((st) => st.status),
        ['completed', 'pending'],
        `${name}: recovery will go on with b`,
      );
    }
    if (c.recovery === 'forward' && !c.down) t.is(stored?.status, 'compensated', name);
  }
});

test('invalid durable options throw TypeError at creation', (t) => {
  const log = memorySagaLog();
  const step = { name: 'a', action: (n: number) => n };
  t.throws(() => saga({ name: 'x', recovery: 'forward' }, step), { message: /needs a log/ });
  t.throws(() => saga({ name: 'x', log, recovery: 'sideways' as 'forward' }, step), {
    instanceOf: TypeError,
  });
  t.throws(() => saga({ name: 'x', log, heartbeatMs: -1 }, step), { instanceOf: TypeError });
  t.throws(() => saga({ name: 'x', log, inputCodec: { encode: () => 1 } as never }, step), {
    instanceOf: TypeError,
  });
});

test('property: a forward saga crashed at any step and resumed runs every step, each completed step exactly once', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 6 }),
      fc.nat(),
      fc.nat(),
      async (n, crashSeed, failSeed) => {
        const log = memorySagaLog();
        const stopAt = crashSeed % n;
        const failAt = failSeed % (n + 2); // >= n: no step fails
        let built!: ReturnType<typeof adder>;
        const id = `p-${n}-${stopAt}-${failAt}`;
        const saved = await crashDuring(
          (hang) => {
            built = adder(
              n,
              { log, recovery: 'forward', heartbeatMs: 0 },
              { action: (i) => hang(i) },
            );
            return built.s;
          },
          log,
          stopAt,
          id,
        );
        const again = adder(
          n,
          { log, recovery: 'forward', heartbeatMs: 0 },
          {
            action: (i) => {
              if (i === failAt) throw new Error('fails after resume');
            },
          },
        );
        const outcome = await resumeSaga(saved, [again.s], { log });
        const ran = [...built.calls.map((c) => c.step), ...again.calls.map((c) => c.step)];
        // each step ran at most twice, and only the one in flight twice
        for (let i = 0; i < n; i++) {
          const times = ran.filter((s) => s === `s${i}`).length;
          if (i === stopAt) t.is(times, 2);
          else t.true(times <= 1);
        }
        if (failAt >= n || failAt < stopAt) {
          // a step before the crash point cannot fail (it does not run again)
          t.is(outcome.status, 'completed');
          t.is(outcome.result, 1 + n);
        } else {
          t.is(outcome.status, 'compensated');
          t.deepEqual(
            again.undone.map((u) => u.step),
            Array.from({ length: failAt }, (_, i) => `s${failAt - 1 - i}`),
          );
        }
      },
    ),
    { numRuns: 40 },
  );
});

test('a compensation that fails after a forward resume is reported as failed', async (t) => {
  const log = memorySagaLog();
  const make = (hang?: () => Promise<void>, fail = false) =>
    saga(
      { name: 'cf', log, recovery: 'forward', heartbeatMs: 0 },
      {
        name: 'a',
        action: (n: number) => n,
        compensate: () => {
          throw new Error('cannot undo a');
        },
      },
      {
        name: 'b',
        action: async (n: number) => {
          await hang?.();
          if (fail) throw new Error('b fails');
          return n;
        },
      },
    );
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  void make(() => gate)
    .run(1, { sagaId: 'cf-1' })
    .catch(() => undefined);
  while ((await log.load({ name: 'cf', id: 'cf-1' }))?.steps[1]?.status !== 'running') {
    await delay(1);
  }
  const saved = (await log.load({ name: 'cf', id: 'cf-1' })) as SagaSnapshot;
  const outcome = await resumeSaga(saved, [make(undefined, true)], { log });
  release();
  t.is(outcome.status, 'failed');
  t.true(isCompensationFailedError(outcome.error));
  t.deepEqual(outcome.notCompensated, ['a']);
  t.is((await log.load({ name: 'cf', id: 'cf-1' }))?.status, 'failed');
});
