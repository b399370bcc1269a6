import { getEventListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import test from 'ava';
import fc from 'fast-check';
import { firstValueFrom, from, lastValueFrom, Observable, of, Subject, toArray } from 'rxjs';
import {
  batchStep,
  contextBag,
  contextKey,
  isBufferOverflowError,
  isCancelledError,
  isStepError,
  itemFailure,
  type Outcome,
  pipeline,
  step,
} from '../../lib/index.js';

const collect = <I, O>(o$: Observable<Outcome<I, O>>) => lastValueFrom(o$.pipe(toArray()));

test('run passes one input through every step in order', async (t) => {
  const seen: string[] = [];
  const p = pipeline(
    'p',
    step('trim', (s: string) => {
      seen.push('trim');
      return s.trim();
    }),
    step('len', async (s: string) => {
      seen.push('len');
      return s.length;
    }),
    step('obs', (n: number) => of(n, n * 10)),
  );
  t.is(await p.run('  four '), 40);
  t.deepEqual(seen, ['trim', 'len']);
});

test('run rejects with a StepError naming the step and keeping the cause', async (t) => {
  const cause = new Error('boom');
  const p = pipeline(
    'named',
    step('ok', (n: number) => n),
    step('bad', (_: number): number => {
      throw cause;
    }),
  );
  const e = await t.throwsAsync(p.run(1, { correlationId: 'c-1' }));
  t.true(isStepError(e));
  if (!isStepError(e)) return;
  t.is(e.step, 'bad');
  t.is(e.pipeline, 'named');
  t.is(e.correlationId, 'c-1');
  t.is(e.cause, cause);
  t.is(e.toJSON().code, 'STEP_FAILED');
});

test('run: cancelling aborts the step signal, rejects with the reason, leaves no listeners', async (t) => {
  const outer = new AbortController();
  let stepSignal: AbortSignal | undefined;
  const p = pipeline(
    'cancel',
    step('wait', (_: number, ctx) => {
      stepSignal = ctx.signal;
      return new Promise<number>((_, reject) => {
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
      });
    }),
  );
  const running = p.run(1, { signal: outer.signal });
  await delay(5);
  const reason = new Error('user cancelled');
  outer.abort(reason);
  const e = await t.throwsAsync(running);
  t.is(e, reason);
  t.true(stepSignal?.aborted);
  t.is(getEventListeners(outer.signal, 'abort').length, 0);
});

test('the context carries correlation id, bag, names and a lazy logger', async (t) => {
  const Tenant = contextKey<string>('tenant');
  const p = pipeline(
    'ctx',
    step('read', (_: null, ctx) => ({
      id: ctx.correlationId,
      tenant: ctx.bag.get(Tenant),
      names: `${ctx.pipeline}/${ctx.step}`,
      hasLogger: typeof ctx.logger.info === 'function',
    })),
  );
  const out = await p.run(null, { correlationId: 'abc', bag: contextBag().set(Tenant, 'acme') });
  t.deepEqual(out, { id: 'abc', tenant: 'acme', names: 'ctx/read', hasLogger: true });
});

test('pipelines nest: an inner failure names the inner step', async (t) => {
  const inner = pipeline(
    'inner',
    step('double', (n: number) => n * 2),
    step('check', (n: number) => {
      if (n > 10) throw new Error('too big');
      return n;
    }),
  );
  const outer = pipeline(
    'outer',
    step('inc', (n: number) => n + 1),
    inner,
    step('str', (n: number) => `${n}`),
  );
  t.is(await outer.run(1), '4');
  const e = await t.throwsAsync(outer.run(10));
  t.true(isStepError(e) && e.step === 'check' && e.pipeline === 'inner');
  const outcomes = await collect(outer.stream([1, 10]));
  const failed = outcomes.find((o) => !o.ok);
  t.is(failed && !failed.ok ? failed.failedStep : '', 'check');
});

test('append extends a pipeline without changing it', async (t) => {
  const base = pipeline(
    'base',
    step('inc', (n: number) => n + 1),
  );
  const longer = base.append(step('neg', (n: number) => -n));
  t.is(await base.run(1), 2);
  t.is(await longer.run(1), -2);
  t.is(longer.steps.length, 2);
});

test('stream: one bad item never ends the stream', async (t) => {
  const p = pipeline(
    'iso',
    step('half', async (n: number) => {
      if (n % 3 === 0) throw new Error(`bad ${n}`);
      return n / 2;
    }),
  );
  const outcomes = await collect(p.stream(Array.from({ length: 30 }, (_, i) => i + 1)));
  t.is(outcomes.length, 30);
  const bad = outcomes.filter((o) => !o.ok);
  t.is(bad.length, 10);
  for (const o of bad) {
    t.false(o.ok);
    if (!o.ok) {
      t.is(o.failedStep, 'half');
      t.true(isStepError(o.error));
      t.is((o.input as number) % 3, 0);
    }
  }
  t.deepEqual(
    outcomes
      .filter((o) => o.ok)
      .map((o) => (o.ok ? o.value : 0))
      .sort((a, b) => a - b),
    outcomes
      .filter((o) => o.ok)
      .map((o) => o.input / 2)
      .sort((a, b) => a - b),
  );
});

test('stream accepts Observable, Iterable and AsyncIterable sources', async (t) => {
  const p = pipeline(
    'src',
    step('x2', (n: number) => n * 2),
  );
  async function* gen() {
    yield 1;
    yield 2;
  }
  for (const src of [of(1, 2), [1, 2], new Set([1, 2]), gen()]) {
    const values = (await collect(p.stream(src, { ordered: true }))).map((o) =>
      o.ok ? o.value : -1,
    );
    t.deepEqual(values, [2, 4]);
  }
});

test('operator() plugs a pipeline into any RxJS pipe', async (t) => {
  const p = pipeline(
    'op',
    step('up', async (s: string) => s.toUpperCase()),
  );
  const out = await lastValueFrom(
    from(['a', 'b', 'c']).pipe(p.operator({ ordered: true }), toArray()),
  );
  t.deepEqual(
    out.map((o) => (o.ok ? o.value : '')),
    ['A', 'B', 'C'],
  );
});

test('ordered streams emit in input order; unordered ones as items finish', async (t) => {
  const p = pipeline(
    'order',
    step('sleep', async (n: number) => {
      await delay(n);
      return n;
    }),
  );
  const input = [30, 1, 20, 2, 10, 3];
  const ordered = (await collect(p.stream(input, { concurrency: 6, ordered: true }))).map(
    (o) => o.input,
  );
  t.deepEqual(ordered, input);
  const unordered = (await collect(p.stream(input, { concurrency: 6 }))).map((o) => o.input);
  t.notDeepEqual(unordered, input);
  t.deepEqual(
    [...unordered].sort((a, b) => a - b),
    [...input].sort((a, b) => a - b),
  );
});

test('property: per-step concurrency never exceeds its limit, no item lost or duplicated, order kept when asked', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 60 }),
      fc.integer({ min: 1, max: 6 }),
      fc.integer({ min: 1, max: 3 }),
      fc.boolean(),
      async (delays, concurrency, limited, ordered) => {
        let active = 0;
        let maxActive = 0;
        let activeB = 0;
        let maxB = 0;
        const p = pipeline(
          'prop',
          step('a', async (n: { i: number; d: number }) => {
            active++;
            maxActive = Math.max(maxActive, active);
            await delay(n.d);
            active--;
            return n;
          }),
          step(
            'b',
            async (n: { i: number; d: number }) => {
              activeB++;
              maxB = Math.max(maxB, activeB);
              await delay(n.d);
              activeB--;
              return n.i;
            },
            { concurrency: limited },
          ),
        );
        const items = delays.map((d, i) => ({ i, d }));
        const outcomes = await collect(p.stream(items, { concurrency, ordered }));
        const values = outcomes.map((o) => (o.ok ? o.value : -1));
        if (maxActive > concurrency || maxB > limited) return false;
        if (ordered && values.some((v, i) => v !== i)) return false;
        return [...values].sort((a, b) => a - b).every((v, i) => v === i);
      },
    ),
    { numRuns: 40 },
  );
  t.pass();
});

test('backpressure: items pulled from an iterable and not finished never exceed concurrency + buffer', async (t) => {
  let pulled = 0;
  let finished = 0;
  let maxGap = 0;
  function* source() {
    for (let i = 0; i < 2_000; i++) {
      pulled++;
      maxGap = Math.max(maxGap, pulled - finished);
      yield i;
    }
  }
  const p = pipeline(
    'bound',
    step('slow', async (n: number) => {
      await delay(0);
      return n;
    }),
  );
  const concurrency = 4;
  const buffer = 6;
  await lastValueFrom(
    p.stream(source(), { concurrency, buffer }).pipe(
      // count a finish when its outcome is delivered
      (o$) =>
        new Observable<Outcome<number, number>>((sub) =>
          o$.subscribe({
            next: (o) => {
              finished++;
              sub.next(o);
            },
            error: (e) => sub.error(e),
            complete: () => sub.complete(),
          }),
        ),
      toArray(),
    ),
  );
  t.is(finished, 2_000);
  t.true(maxGap <= concurrency + buffer + 1, `max gap ${maxGap}`); // +1: the item being read counts before admission
  t.true(maxGap >= concurrency, 'the window is actually used');
});

test('backpressure: an async generator is never read ahead of demand', async (t) => {
  let pulled = 0;
  async function* endless() {
    for (let i = 0; ; i++) {
      pulled++;
      yield i;
    }
  }
  const p = pipeline(
    'endless',
    step('never', (_: number) => new Promise<number>(() => {})),
  );
  const sub = p.stream(endless(), { concurrency: 3, buffer: 2 }).subscribe();
  await delay(30);
  t.is(pulled, 5);
  sub.unsubscribe();
});

test('a push source overflowing its buffer errors with BufferOverflowError by default', async (t) => {
  const subject = new Subject<number>();
  const p = pipeline(
    'push',
    step('never', (_: number) => new Promise<number>(() => {})),
  );
  const done = firstValueFrom(
    p.stream(subject, { concurrency: 1, buffer: 1 }).pipe(toArray()),
  ).catch((e) => e);
  for (let i = 0; i < 4; i++) subject.next(i);
  const e = await done;
  t.true(isBufferOverflowError(e));
});

test('a push source with dropNewest drops and reports instead of failing', async (t) => {
  const subject = new Subject<number>();
  const dropped: number[] = [];
  const p = pipeline(
    'drop',
    step('slow', async (n: number) => {
      await delay(5);
      return n;
    }),
  );
  const done = collect(
    p.stream(subject, {
      concurrency: 1,
      buffer: 1,
      overflow: 'dropNewest',
      onDrop: (n) => dropped.push(n),
    }),
  );
  for (let i = 0; i < 6; i++) subject.next(i);
  subject.complete();
  const outcomes = await done;
  t.deepEqual(dropped, [3, 4, 5]);
  t.deepEqual(outcomes.map((o) => o.input).sort(), [0, 1, 2]);
});

test('unsubscribing a stream aborts every in-flight step signal and leaves no listener', async (t) => {
  const outer = new AbortController();
  const signals: AbortSignal[] = [];
  const p = pipeline(
    'unsub',
    step('hang', (_: number, ctx) => {
      signals.push(ctx.signal);
      return new Promise<number>(() => {});
    }),
  );
  const sub = p.stream([1, 2, 3, 4], { concurrency: 4, signal: outer.signal }).subscribe();
  await delay(5);
  t.is(signals.length, 4);
  t.true(signals.every((s) => !s.aborted));
  sub.unsubscribe();
  t.true(signals.every((s) => s.aborted && isCancelledError(s.reason)));
  t.is(getEventListeners(outer.signal, 'abort').length, 0);
});

test('aborting the stream signal cancels the work and completes the stream', async (t) => {
  const outer = new AbortController();
  let aborted = 0;
  const p = pipeline(
    'abortable',
    step('hang', (_: number, ctx) => {
      ctx.signal.addEventListener('abort', () => aborted++);
      return new Promise<number>(() => {});
    }),
  );
  const done = collect(p.stream([1, 2], { signal: outer.signal }));
  await delay(5);
  outer.abort();
  t.deepEqual(await done, []);
  t.is(aborted, 2);
});

test('batch steps group items, fail single items, and keep per-item outcomes', async (t) => {
  const sizes: number[] = [];
  const p = pipeline(
    'batched',
    step('inc', (n: number) => n + 1),
    batchStep(
      'evens',
      async (ns: number[]) => {
        sizes.push(ns.length);
        return ns.map((n) => (n % 2 === 0 ? n * 10 : itemFailure(new Error(`odd ${n}`))));
      },
      { size: 10, timeMs: 5 },
    ),
  );
  const outcomes = await collect(p.stream(Array.from({ length: 35 }, (_, i) => i)));
  t.is(outcomes.length, 35);
  t.is(outcomes.filter((o) => o.ok).length, 17);
  t.true(sizes.every((s) => s <= 10));
  t.is(
    sizes.reduce((a, b) => a + b, 0),
    35,
  );
  t.true(sizes.filter((s) => s === 10).length >= 3);
  const fail = outcomes.find((o) => !o.ok);
  t.true(fail !== undefined && !fail.ok && fail.failedStep === 'evens');
  t.is(await p.run(1), 20);
});

test('a batch step returning the wrong number of results fails its items clearly', async (t) => {
  const p = pipeline(
    'wrong',
    batchStep('short', async (ns: number[]) => ns.slice(1)),
  );
  const outcomes = await collect(p.stream([1, 2, 3]));
  t.true(
    outcomes.every(
      (o) => !o.ok && isStepError(o.error) && /one result per input/.test(o.error.message),
    ),
  );
});

test('invalid arguments throw TypeError at construction', (t) => {
  t.throws(() => step('', (n: number) => n), { instanceOf: TypeError });
  t.throws(() => step('x', (n: number) => n, { concurrency: 0 }), { instanceOf: TypeError });
  t.throws(() => batchStep('b', async (n: number[]) => n, { size: 0 }), { instanceOf: TypeError });
  const s = step('dup', (n: number) => n);
  t.throws(() => pipeline('p', s, s), {
    instanceOf: TypeError,
    message: /two steps are named 'dup'/,
  });
  const p = pipeline('p', s);
  t.throws(() => p.stream([1], { concurrency: 1.5 }), { instanceOf: TypeError });
  t.throws(() => p.stream('abc' as never), { instanceOf: TypeError });
});
