import { getEventListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import test from 'ava';
import { expectTypeOf } from 'expect-type';
import fc from 'fast-check';
import { from, lastValueFrom, type Observable, of, toArray } from 'rxjs';
import { isStepError, pipeline, step } from '../../lib/index.js';
import { retry } from '../../lib/operators/retry.js';
import { isTimeoutError } from '../../lib/operators/timeout.js';
import {
  isCompensationFailedError,
  isSagaConflictError,
  isSagaFailedError,
  isSagaInterruptedError,
  SagaConflictError,
} from '../../lib/saga/errors.js';
import type { SagaLog, SagaSnapshot } from '../../lib/saga/log.js';
import { resumeSaga } from '../../lib/saga/resume.js';
import {
  type AnySagaStep,
  type Saga,
  type SagaEvent,
  type SagaStep,
  saga,
} from '../../lib/saga/saga.js';

/** Collects every event of one saga execution, and its error if it failed. */
async function collect<O>(
  events$: Observable<SagaEvent<O>>,
): Promise<{ events: SagaEvent<O>[]; error: unknown }> {
  const events: SagaEvent<O>[] = [];
  return new Promise((resolve) => {
    events$.subscribe({
      next: (e) => events.push(e),
      error: (error: unknown) => resolve({ events, error }),
      complete: () => resolve({ events, error: undefined }),
    });
  });
}

/** n steps that each add 1, record their compensations, and fail at index `failAt`. */
function counting(
  n: number,
  failAt: number,
  opts: {
    compensateFailed?: (i: number) => boolean;
    hasCompensation?: (i: number) => boolean;
  } = {},
) {
  const actions: number[] = [];
  const compensations: Array<{ index: number; result: unknown; actionFailed: boolean }> = [];
  const steps: AnySagaStep[] = Array.from({ length: n }, (_, i) => {
    const has = opts.hasCompensation?.(i) ?? true;
    const cf = has && (opts.compensateFailed?.(i) ?? false);
    return {
      name: `s${i}`,
      action: async (x: number) => {
        actions.push(i);
        await delay(0);
        if (i === failAt) throw new Error(`boom at ${i}`);
        return x + 1;
      },
      ...(has
        ? {
            compensateFailed: cf,
            compensate: (result: number | undefined, ctx: { actionFailed: boolean }) => {
              compensations.push({ index: i, result, actionFailed: ctx.actionFailed });
            },
          }
        : {}),
    } as AnySagaStep;
  });
  const s = (saga as (name: string, ...steps: AnySagaStep[]) => Saga<number, number>)(
    'count',
    ...steps,
  );
  return { s, actions, compensations };
}

/** A SagaLog in memory honouring the version contract. */
function memoryLog(): SagaLog & { records: Map<string, SagaSnapshot>; writes: SagaSnapshot[] } {
  const records = new Map<string, SagaSnapshot>();
  const writes: SagaSnapshot[] = [];
  return {
    records,
    writes,
    async write(snapshot) {
      const held = records.get(snapshot.id)?.version ?? 0;
      if (held !== snapshot.version - 1) {
        throw new SagaConflictError(snapshot.id, snapshot.version - 1);
      }
      const copy = JSON.parse(JSON.stringify(snapshot)) as SagaSnapshot;
      records.set(snapshot.id, copy);
      writes.push(copy);
    },
  };
}

test('a successful saga emits step-completed per step then saga-completed, and completes', async (t) => {
  const s = saga(
    'ok',
    { name: 'a', action: (n: number) => n + 1, compensate: () => t.fail('no compensation') },
    { name: 'b', action: async (n: number) => `${n}!` },
    { name: 'c', action: (x: string) => of(x, `${x}?`) },
  );
  const { events, error } = await collect(s.events(1, { sagaId: 'id-1' }));
  t.is(error, undefined);
  t.deepEqual(
    events.map((e) => [e.type, 'step' in e ? e.step : '']),
    [
      ['step-completed', 'a'],
      ['step-completed', 'b'],
      ['step-completed', 'c'],
      ['saga-completed', ''],
    ],
  );
  const last = events.at(-1);
  t.true(last?.type === 'saga-completed' && last.result === '2!?' && last.sagaId === 'id-1');
  t.is(await s.run(1), '2!?');
});

test('a failing step compensates the completed steps in reverse order with their results, then errors with SagaFailedError', async (t) => {
  const undone: Array<[string, unknown]> = [];
  const cause = new Error('card declined');
  const s = saga(
    'order',
    {
      name: 'reserve',
      action: (sku: string) => ({ sku, reservation: `r-${sku}` }),
      compensate: (r) => {
        undone.push(['reserve', r.reservation]);
      },
    },
    {
      name: 'charge',
      action: async (r) => ({ ...r, charge: 'ch-1' }),
      compensate: async (c, ctx) => {
        t.is(ctx.cause, cause);
        t.false(ctx.actionFailed);
        t.false(ctx.resumed);
        undone.push(['charge', c.charge]);
      },
    },
    {
      name: 'ship',
      action: async (_c): Promise<string> => {
        throw cause;
      },
      compensate: () => t.fail('the failed step is not compensated without compensateFailed'),
    },
  );
  const { events, error } = await collect(s.events('A-1', { sagaId: 's-1' }));
  t.deepEqual(undone, [
    ['charge', 'ch-1'],
    ['reserve', 'r-A-1'],
  ]);
  t.true(isSagaFailedError(error));
  if (!isSagaFailedError(error)) return;
  t.is(error.failedStep, 'ship');
  t.is(error.sagaId, 's-1');
  t.is(error.cause, cause);
  t.deepEqual(error.compensated, ['charge', 'reserve']);
  t.deepEqual(
    events.map((e) => `${e.type}${'step' in e ? `:${e.step}` : ''}`),
    [
      'step-completed:reserve',
      'step-completed:charge',
      'compensating:charge',
      'compensated:charge',
      'compensating:reserve',
      'compensated:reserve',
      'saga-failed',
    ],
  );
  const failed = events.at(-1);
  t.true(failed?.type === 'saga-failed' && failed.error === error && failed.cause === cause);
  t.true(failed?.type === 'saga-failed' && !failed.cancelled && failed.failedStep === 'ship');
  await t.throwsAsync(s.run('B'), { message: /at step 'ship'/ });
});

test('compensateFailed also compensates the failed step, with undefined and actionFailed', async (t) => {
  const { s, compensations } = counting(3, 2, { compensateFailed: (i) => i === 2 });
  const { error } = await collect(s.events(0));
  t.true(isSagaFailedError(error));
  t.deepEqual(compensations, [
    { index: 2, result: undefined, actionFailed: true },
    { index: 1, result: 2, actionFailed: false },
    { index: 0, result: 1, actionFailed: false },
  ]);
  t.deepEqual(isSagaFailedError(error) ? error.compensated : [], ['s2', 's1', 's0']);
});

test('property: for any failing step, the compensations run are exactly the completed steps in reverse order, each once', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 8 }).chain((n) =>
        fc.record({
          n: fc.constant(n),
          failAt: fc.integer({ min: 0, max: n }), // n = no failure
          compensateFailed: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
          hasCompensation: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
        }),
      ),
      async ({ n, failAt, compensateFailed, hasCompensation }) => {
        const { s, actions, compensations } = counting(n, failAt, {
          compensateFailed: (i) => compensateFailed[i] === true,
          hasCompensation: (i) => hasCompensation[i] === true,
        });
        const { events, error } = await collect(s.events(0));
        const ran = compensations.map((c) => c.index);
        const expected: number[] = [];
        if (failAt < n) {
          if (hasCompensation[failAt] && compensateFailed[failAt]) expected.push(failAt);
          for (let i = failAt - 1; i >= 0; i--) if (hasCompensation[i]) expected.push(i);
        }
        const compensatingEvents = events
          .filter((e) => e.type === 'compensated')
          .map((e) => (e.type === 'compensated' ? e.index : -1));
        return (
          JSON.stringify(ran) === JSON.stringify(expected) &&
          new Set(ran).size === ran.length &&
          JSON.stringify(compensatingEvents) === JSON.stringify(expected) &&
          actions.length === Math.min(failAt + 1, n) &&
          compensations.every((c) => c.actionFailed === (c.index === failAt)) &&
          compensations.every((c) => c.actionFailed || c.result === c.index + 1) &&
          (failAt < n ? isSagaFailedError(error) : error === undefined)
        );
      },
    ),
    { numRuns: 150 },
  );
  t.pass();
});

test('a failed compensation is never swallowed: CompensationFailedError says what was and was not undone', async (t) => {
  const original = new Error('ship failed');
  const compError = new Error('refund API down');
  const ran: string[] = [];
  const steps = (mode: 'continue' | 'halt') =>
    saga(
      { name: 'order', onCompensationFailure: mode },
      { name: 'reserve', action: (n: number) => n, compensate: () => void ran.push('reserve') },
      {
        name: 'charge',
        action: (n: number) => n,
        compensate: () => {
          ran.push('charge');
          throw compError;
        },
      },
      { name: 'email', action: (n: number) => n, compensate: () => void ran.push('email') },
      {
        name: 'ship',
        action: (_n: number): number => {
          throw original;
        },
      },
    );

  const { events, error } = await collect(steps('continue').events(1, { sagaId: 'x' }));
  t.deepEqual(ran, ['email', 'charge', 'reserve']);
  t.true(isCompensationFailedError(error));
  if (!isCompensationFailedError(error)) return;
  t.is(error.cause, original);
  t.is(error.failedStep, 'ship');
  t.is(error.sagaId, 'x');
  t.deepEqual(error.compensated, ['email', 'reserve']);
  t.deepEqual(error.notCompensated, ['charge']);
  t.deepEqual(error.failures, [{ step: 'charge', error: compError }]);
  t.regex(error.message, /'charge' \(refund API down\) failed; not undone: charge/);
  t.deepEqual(error.toJSON().notCompensated, ['charge']);
  const failedEvent = events.find((e) => e.type === 'compensation-failed');
  t.true(failedEvent?.type === 'compensation-failed' && failedEvent.error === compError);
  const last = events.at(-1);
  t.true(last?.type === 'saga-failed' && last.error === error);

  ran.length = 0;
  const halted = await collect(steps('halt').events(1));
  t.deepEqual(ran, ['email', 'charge']);
  t.true(isCompensationFailedError(halted.error));
  if (!isCompensationFailedError(halted.error)) return;
  t.deepEqual(halted.error.compensated, ['email']);
  t.deepEqual(halted.error.notCompensated, ['charge', 'reserve']);
});

test('each compensation runs through its own retry policy', async (t) => {
  let attempts = 0;
  const s = saga(
    'retrying',
    {
      name: 'a',
      action: (n: number) => n,
      compensate: () => {
        attempts++;
        if (attempts < 3) throw new Error(`flaky ${attempts}`);
      },
      compensationPolicy: [retry({ maxAttempts: 3, baseDelayMs: 1, backoff: 'constant' })],
    },
    {
      name: 'b',
      action: (_n: number): number => {
        throw new Error('no');
      },
    },
  );
  const { error } = await collect(s.events(1));
  t.is(attempts, 3);
  t.true(isSagaFailedError(error));
});

test('a compensation time limit aborts the compensation signal and fails the compensation', async (t) => {
  let compSignal: AbortSignal | undefined;
  const s = saga(
    { name: 'slow-undo', compensationTimeoutMs: 20 },
    {
      name: 'a',
      action: (n: number) => n,
      compensate: (_r, { signal }) => {
        compSignal = signal;
        return new Promise((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
        );
      },
    },
    {
      name: 'b',
      action: (_n: number): number => {
        throw new Error('no');
      },
    },
  );
  const { error } = await collect(s.events(1));
  t.true(isCompensationFailedError(error));
  if (!isCompensationFailedError(error)) return;
  t.true(isTimeoutError(error.failures[0]?.error));
  t.true(compSignal?.aborted);
});

test('unsubscribing mid-saga cancels the running action and compensates the completed steps with an unaborted signal', async (t) => {
  const outer = new AbortController();
  let actionSignal: AbortSignal | undefined;
  const compensationSignals: AbortSignal[] = [];
  const late: SagaEvent[] = [];
  let undone!: () => void;
  const allUndone = new Promise<void>((r) => {
    undone = r;
  });
  const s = saga(
    'cancel',
    {
      name: 'a',
      action: (n: number) => n + 1,
      compensate: async (_r, { signal }) => {
        compensationSignals.push(signal);
        await delay(5);
        t.false(signal.aborted);
      },
    },
    {
      name: 'b',
      action: (n: number) => n + 1,
      compensate: async (_r, { signal }) => {
        compensationSignals.push(signal);
        await delay(5);
        t.false(signal.aborted);
      },
    },
    {
      name: 'hang',
      action: (_n: number, { signal }) => {
        actionSignal = signal;
        return new Promise<number>((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
        );
      },
      compensate: () => t.fail('the cancelled step did not complete'),
    },
  );
  const seen: SagaEvent[] = [];
  const sub = s
    .events(0, {
      signal: outer.signal,
      onEvent: (e) => {
        late.push(e);
        if (e.type === 'saga-failed') undone();
      },
    })
    .subscribe({ next: (e) => seen.push(e), error: () => t.fail('no error after unsubscribe') });
  while (!actionSignal) await delay(1);
  sub.unsubscribe();
  t.true(actionSignal.aborted);
  await allUndone;
  t.deepEqual(
    late.map((e) => `${e.type}${'step' in e ? `:${e.step}` : ''}`),
    [
      'step-completed:a',
      'step-completed:b',
      'compensating:b',
      'compensated:b',
      'compensating:a',
      'compensated:a',
      'saga-failed',
    ],
  );
  t.deepEqual(
    seen.map((e) => e.type),
    ['step-completed', 'step-completed'],
  );
  const failed = late.at(-1);
  t.true(failed?.type === 'saga-failed' && failed.cancelled && failed.failedStep === 'hang');
  t.is(compensationSignals.length, 2);
  t.true(compensationSignals.every((sig) => !sig.aborted));
  t.is(getEventListeners(outer.signal, 'abort').length, 0);
});

test('aborting the signal compensates, then errors with the signal reason', async (t) => {
  const outer = new AbortController();
  const reason = new Error('shutting down');
  const undone: string[] = [];
  const s = saga(
    'abort',
    { name: 'a', action: (n: number) => n, compensate: () => void undone.push('a') },
    {
      name: 'wait',
      action: (_n: number, { signal }) =>
        new Promise<number>((_, reject) =>
          signal.addEventListener('abort', () => reject(new Error('aborted fetch')), {
            once: true,
          }),
        ),
    },
  );
  const running = collect(s.events(1, { signal: outer.signal }));
  await delay(5);
  outer.abort(reason);
  const { events, error } = await running;
  t.is(error, reason);
  t.deepEqual(undone, ['a']);
  const last = events.at(-1);
  t.true(last?.type === 'saga-failed' && last.cancelled && last.cause === reason);
  t.is(getEventListeners(outer.signal, 'abort').length, 0);
  // an already-aborted signal runs nothing
  const none = await collect(s.events(1, { signal: AbortSignal.abort(reason) }));
  t.is(none.error, reason);
  t.deepEqual(undone, ['a']);
});

test('a saga is a pipeline step: it resolves with the result or fails the item with the saga error', async (t) => {
  const s = saga('inner', {
    name: 'check',
    action: (n: number) => {
      if (n < 0) throw new Error('negative');
      return n * 2;
    },
  });
  const p = pipeline(
    'outer',
    step('parse', (x: string) => Number(x)),
    s,
  );
  t.is(await p.run('21'), 42);
  const e = await t.throwsAsync(p.run('-1'));
  t.true(isStepError(e) && e.step === 'inner' && isSagaFailedError(e.cause));
  const outcomes = await lastValueFrom(
    p.stream(['1', '-2', '3'], { ordered: true }).pipe(toArray()),
  );
  t.deepEqual(
    outcomes.map((o) => (o.ok ? o.value : o.failedStep)),
    [2, 'inner', 6],
  );
  const renamed = pipeline('renamed', s.asStep({ name: 'persist', concurrency: 2 }));
  t.is((await t.throwsAsync(renamed.run(-1)))?.message.includes("'persist'"), true);
});

test('operator: one saga per source value, events downstream, an error after the failed saga events', async (t) => {
  const s = saga('op', {
    name: 'half',
    action: (n: number) => {
      if (n % 2) throw new Error(`odd ${n}`);
      return n / 2;
    },
  });
  const ok = await lastValueFrom(
    from([2, 4]).pipe(s.operator({ sagaId: (n) => `id-${n}` }), toArray()),
  );
  t.deepEqual(
    ok
      .filter((e) => e.type === 'saga-completed')
      .map((e) => [e.sagaId, e.type === 'saga-completed' ? e.result : 0]),
    [
      ['id-2', 1],
      ['id-4', 2],
    ],
  );
  const seen: SagaEvent<number>[] = [];
  const error = await new Promise<unknown>((resolve) =>
    from([2, 3, 4])
      .pipe(s.operator())
      .subscribe({ next: (e) => seen.push(e), error: resolve, complete: () => resolve(undefined) }),
  );
  t.true(isSagaFailedError(error));
  t.deepEqual(
    seen.map((e) => e.type),
    ['step-completed', 'saga-completed', 'saga-failed'],
  );
  t.throws(() => s.operator({ concurrency: 0 }), { instanceOf: TypeError });
});

test('with a saga log, each step is recorded as running before its action runs, then completed with its result', async (t) => {
  const log = memoryLog();
  const s = saga(
    { name: 'logged', log },
    {
      name: 'a',
      action: (n: number) => {
        const held = log.records.get('L1');
        t.is(held?.steps[0]?.status, 'running');
        return { n: n + 1, at: new Date(0) };
      },
      compensate: () => undefined,
      codec: {
        encode: (r) => ({ n: r.n, at: r.at.toISOString() }),
        decode: (j) => {
          const o = j as { n: number; at: string };
          return { n: o.n, at: new Date(o.at) };
        },
      },
    },
    { name: 'b', action: (r) => r.n * 10 },
  );
  t.is(await s.run(1, { sagaId: 'L1' }), 20);
  t.deepEqual(
    log.writes.map((w) => [w.version, w.status, w.steps.map((st) => st.status).join(',')]),
    [
      [1, 'running', 'pending,pending'],
      [2, 'running', 'running,pending'],
      [3, 'running', 'completed,pending'],
      [4, 'running', 'completed,running'],
      [5, 'running', 'completed,completed'],
      [6, 'completed', 'completed,completed'],
    ],
  );
  const last = log.records.get('L1');
  t.deepEqual(last?.steps[0]?.result, { n: 2, at: '1970-01-01T00:00:00.000Z' });
  t.is(last?.steps[1]?.result, 20);
  t.deepEqual(
    last?.steps.map((st) => [st.compensable, st.compensateFailed]),
    [
      [true, false],
      [false, false],
    ],
  );
});

test('a log write that fails before an action means the action never runs; after it, the step is compensated', async (t) => {
  let failWrite = 0;
  let writes = 0;
  const log: SagaLog = {
    async write() {
      writes++;
      if (writes === failWrite) throw new Error('db down');
    },
  };
  const ran: string[] = [];
  const make = () =>
    saga(
      { name: 'flaky-log', log },
      {
        name: 'a',
        action: (n: number) => {
          ran.push('a');
          return n;
        },
        compensate: () => void ran.push('undo a'),
      },
      {
        name: 'b',
        action: (n: number) => {
          ran.push('b');
          return n;
        },
        compensate: () => void ran.push('undo b'),
      },
    );
  // write 4 = step b running: b never runs, a is undone
  failWrite = 4;
  writes = 0;
  let e = await t.throwsAsync(make().run(1));
  t.deepEqual(ran, ['a', 'undo a']);
  t.true(isSagaFailedError(e) && e.failedStep === 'b');
  // write 5 = step b completed: b ran and is undone too
  ran.length = 0;
  failWrite = 5;
  writes = 0;
  e = await t.throwsAsync(make().run(1));
  t.deepEqual(ran, ['a', 'b', 'undo b', 'undo a']);
  // write 6 = saga completed: the whole saga is undone (the log still says running)
  ran.length = 0;
  failWrite = 6;
  writes = 0;
  e = await t.throwsAsync(make().run(1));
  t.deepEqual(ran, ['a', 'b', 'undo b', 'undo a']);
  t.true(isSagaFailedError(e) && e.failedStep === undefined);
});

test('resumeSaga finishes the compensation of a saved running saga, claims it through the version, and reports conflicts', async (t) => {
  const log = memoryLog();
  const undone: Array<[string, unknown, boolean]> = [];
  const definition = () =>
    saga(
      { name: 'crashy', log },
      {
        name: 'a',
        action: (n: number) => ({ n }),
        compensate: (r, ctx) => void undone.push(['a', r, ctx.resumed]),
      },
      {
        name: 'b',
        action: (r: { n: number }) => r.n + 1,
        compensate: (r, ctx) => void undone.push(['b', r, ctx.resumed]),
      },
      {
        name: 'c',
        compensateFailed: true,
        action: (_n: number, { signal }) =>
          new Promise<number>((_, reject) =>
            signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
          ),
        compensate: (r, ctx) => void undone.push(['c', r, ctx.actionFailed]),
      },
    );
  // simulate a crash: copy the log while step c runs, then let the live saga go away
  const live = definition();
  let liveDone!: () => void;
  const liveFinished = new Promise<void>((r) => {
    liveDone = r;
  });
  const sub = live
    .events(1, {
      sagaId: 'crash-1',
      onEvent: (e) => {
        if (e.type === 'saga-failed') liveDone();
      },
    })
    .subscribe({ error: () => undefined });
  while (log.records.get('crash-1')?.steps[2]?.status !== 'running') await delay(1);
  const saved = structuredClone(log.records.get('crash-1')) as SagaSnapshot;
  // the live one goes away (its background compensation finishes), then the log is put back to
  // the crash point, as if the process had died there
  sub.unsubscribe();
  await liveFinished;
  undone.length = 0;
  log.records.set('crash-1', saved);

  const events: SagaEvent[] = [];
  const outcome = await resumeSaga(saved, [definition()], { log, onEvent: (e) => events.push(e) });
  t.is(outcome.status, 'compensated');
  t.deepEqual(outcome.compensated, ['c', 'b', 'a']);
  t.deepEqual(undone, [
    ['c', undefined, true],
    ['b', 2, true],
    ['a', { n: 1 }, true],
  ]);
  const after = log.records.get('crash-1');
  t.is(after?.status, 'compensated');
  t.true(after?.status === 'compensated' && after.failedStep === 'c');
  t.deepEqual(
    after?.steps.map((s) => s.status),
    ['compensated', 'compensated', 'compensated'],
  );
  const last = events.at(-1);
  t.true(last?.type === 'saga-failed' && isSagaInterruptedError(last.cause));

  // resuming the same old snapshot again: the version moved on, so it is a conflict
  undone.length = 0;
  const again = await resumeSaga(saved, [definition()], { log });
  t.is(again.status, 'conflict');
  t.deepEqual(undone, []);
  // a finished saga is left alone, an unknown one too
  t.is((await resumeSaga(after as SagaSnapshot, [definition()], { log })).status, 'unchanged');
  t.is((await resumeSaga({ ...saved, name: 'other' }, [definition()])).status, 'unknown-saga');
});

test('resumeSaga with a plain-record registry; a missing compensation is a failure, not a silent skip', async (t) => {
  const saved: SagaSnapshot = {
    id: 'r-1',
    name: 'order',
    correlationId: 'c-1',
    version: 7,
    status: 'compensating',
    cause: { name: 'Error', message: 'ship failed' },
    failedStep: 'ship',
    steps: [
      {
        name: 'reserve',
        status: 'completed',
        compensable: true,
        compensateFailed: false,
        result: 'r1',
      },
      {
        name: 'charge',
        status: 'compensating',
        compensable: true,
        compensateFailed: false,
        result: 'c1',
      },
      { name: 'ship', status: 'failed', compensable: false, compensateFailed: false },
    ],
  };
  const undone: unknown[] = [];
  const ok = await resumeSaga(saved, {
    order: { reserve: (r) => void undone.push(r), charge: (c) => void undone.push(c) },
  });
  t.is(ok.status, 'compensated');
  t.deepEqual(undone, ['c1', 'r1']);
  const missing = await resumeSaga(saved, { order: { reserve: () => undefined } });
  t.is(missing.status, 'failed');
  t.deepEqual(missing.error?.notCompensated, ['charge']);
  t.deepEqual(missing.compensated, ['reserve']);
  t.regex(
    String(missing.error?.failures[0]?.error),
    /no compensation registered for step 'charge'/,
  );
  await t.throwsAsync(resumeSaga({ bogus: true } as unknown as SagaSnapshot, {}), {
    instanceOf: TypeError,
  });
  t.true(isSagaConflictError(new SagaConflictError('x', 1)));
});

test('invalid definitions throw TypeError at creation', (t) => {
  const a = { name: 'a', action: (n: number) => n };
  t.throws(() => (saga as (n: string) => unknown)('x'), { instanceOf: TypeError });
  t.throws(() => saga('', a), { instanceOf: TypeError });
  t.throws(() => saga('x', a, a), { instanceOf: TypeError, message: /two steps are named 'a'/ });
  t.throws(() => saga('x', { ...a, compensate: 3 as never }), { instanceOf: TypeError });
  t.throws(() => saga('x', { ...a, compensateFailed: true } as never), {
    instanceOf: TypeError,
    message: /compensateFailed needs/,
  });
  t.throws(() => saga({ name: 'x', compensationTimeoutMs: 0 }, a), { instanceOf: TypeError });
  t.throws(() => saga({ name: 'x', onCompensationFailure: 'skip' as never }, a), {
    instanceOf: TypeError,
  });
  t.throws(() => saga('x', { ...a, policy: 'retry' as never }), { instanceOf: TypeError });
});

test('types: steps chain from input to output; a mismatched step does not compile', (t) => {
  const s = saga(
    'typed',
    {
      name: 'a',
      action: (x: string) => x.length,
      compensate: (n) => void expectTypeOf(n).toEqualTypeOf<number>(),
    },
    {
      name: 'b',
      action: async (n: number) => n > 1,
      compensateFailed: true,
      compensate: (r) => void expectTypeOf(r).toEqualTypeOf<boolean | undefined>(),
    },
  );
  expectTypeOf(s).toMatchTypeOf<Saga<string, boolean>>();
  expectTypeOf(s.run).returns.toEqualTypeOf<Promise<boolean>>();
  const typedStep: SagaStep<number, string> = { name: 'c', action: (n) => `${n}` };
  const len = { name: 'a', action: (x: string) => x.length };
  const upper = { name: 'b', action: (x: string) => x.toUpperCase() };
  // @ts-expect-error: 'a' outputs a number but 'b' takes a string
  saga('bad', len, upper);
  t.truthy(typedStep);
});
