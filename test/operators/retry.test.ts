import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import test from 'ava';
import fc from 'fast-check';
import {
  defer,
  firstValueFrom,
  identity,
  lastValueFrom,
  Observable,
  of,
  take,
  throwError,
  toArray,
} from 'rxjs';
import { isCancelledError } from '../../lib/core/errors.js';
import { fromWork } from '../../lib/core/from-work.js';
import { type BackoffStrategy, backoff } from '../../lib/operators/backoff.js';
import {
  createRetryBudget,
  isPermanentError,
  PermanentError,
  type RetryDelayContext,
  type RetryEvent,
  retry,
  retryAfterMs,
} from '../../lib/operators/retry.js';
import { memoryLogger, memoryTracer } from '../support/telemetry.js';
import {
  abortListeners,
  activeTimers,
  collectingMeter,
  testScheduler,
  tick,
  until,
} from './_resilience.js';

const sub = (t: number): string => (t === 0 ? '(^!)' : `${t}ms (^!)`);
const fixed =
  (r: number): (() => number) =>
  () =>
    r;

test('backoff: every strategy gives the documented delays (fixed random 0.5)', (t) => {
  const take = (it: Iterator<number>, n: number) =>
    Array.from({ length: n }, () => it.next().value);
  const r = fixed(0.5);
  t.deepEqual(take(backoff({ strategy: 'constant', baseMs: 100 }), 3), [100, 100, 100]);
  t.deepEqual(take(backoff({ strategy: 'linear', baseMs: 100 }), 4), [100, 200, 300, 400]);
  t.deepEqual(
    take(backoff({ strategy: 'exponential', baseMs: 100, maxMs: 1000 }), 6),
    [100, 200, 400, 800, 1000, 1000],
  );
  t.deepEqual(
    take(backoff({ strategy: 'exponential', baseMs: 100, factor: 3 }), 3),
    [100, 300, 900],
  );
  // full jitter: random * base * 2^n
  t.deepEqual(
    take(backoff({ strategy: 'full-jitter', baseMs: 100, random: r }), 4),
    [50, 100, 200, 400],
  );
  // half jitter: e/2 + random * e/2 = 0.75 e
  t.deepEqual(
    take(backoff({ strategy: 'half-jitter', baseMs: 100, random: r }), 4),
    [75, 150, 300, 600],
  );
  // Polly decorrelated jitter v2, medians near 100, 200, 400, ... after the first
  t.deepEqual(
    take(backoff({ strategy: 'decorrelated-jitter', baseMs: 100, random: r }), 6),
    [90, 109, 204, 405, 808, 1616],
  );
  t.deepEqual(take(backoff({ baseMs: 100, random: fixed(0) }), 6), [0, 138, 146, 287, 572, 1143]);
  // the cap applies to every strategy
  t.deepEqual(take(backoff({ baseMs: 100, maxMs: 300, random: r }), 5), [90, 109, 204, 300, 300]);
  t.deepEqual(
    take(backoff({ strategy: 'full-jitter', baseMs: 100, maxMs: 150, random: fixed(0.99) }), 3),
    [99, 149, 149],
  );
  // the default random source stays within the bounds
  for (const d of take(backoff({ baseMs: 100, maxMs: 5_000 }), 50)) t.true(d >= 0 && d <= 5_000);
});

test('backoff: validates its options', (t) => {
  t.throws(() => backoff({ strategy: 'nope' as BackoffStrategy }), {
    instanceOf: TypeError,
    message: /strategy/,
  });
  t.throws(() => backoff({ baseMs: -1 }), { instanceOf: TypeError, message: /baseMs/ });
  t.throws(() => backoff({ baseMs: 100, maxMs: 50 }), { instanceOf: TypeError, message: /maxMs/ });
  t.throws(() => backoff({ factor: 0.5 }), { instanceOf: TypeError, message: /factor/ });
  t.throws(() => backoff({ random: 1 as never }), { instanceOf: TypeError, message: /random/ });
});

const schedules: Array<[BackoffStrategy, number, number[]]> = [
  ['constant', 10, [0, 10, 20, 30]],
  ['linear', 10, [0, 10, 30, 60]],
  ['exponential', 10, [0, 10, 30, 70]],
  ['full-jitter', 10, [0, 5, 15, 35]],
  ['half-jitter', 10, [0, 8, 23, 53]], // 7.5 rounds to 8, then 15, 30
  ['decorrelated-jitter', 100, [0, 90, 199, 403]], // 90, 109, 204
];

for (const [strategy, baseDelayMs, at] of schedules) {
  test(`retry marbles: '${strategy}' re-subscribes exactly on its schedule, then rethrows`, (t) => {
    testScheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
      const error = new Error('down');
      const source = cold('#', undefined, error);
      const out = source.pipe(
        retry({ maxAttempts: 4, backoff: strategy, baseDelayMs, random: fixed(0.5) }),
      );
      expectObservable(out).toBe(`${at[3]}ms #`, undefined, error);
      expectSubscriptions(source.subscriptions).toBe(at.map(sub));
    });
  });
}

test('retry marbles: recovers when an attempt succeeds; time between attempts is the backoff', (t) => {
  testScheduler(t).run(({ cold, expectObservable }) => {
    let n = 0;
    const source = defer(() => (n++ < 2 ? cold('--#') : cold('--a|')));
    // attempts at 0, 12 and 24 (each fails at +2, then waits 10)
    expectObservable(
      source.pipe(retry({ maxAttempts: 3, backoff: 'constant', baseDelayMs: 10 })),
    ).toBe('26ms a|');
  });
});

test('retry(n) is n retries (n + 1 attempts), like RxJS; no-op options return identity', (t) => {
  t.is(retry(0), identity);
  t.is(retry({ maxAttempts: 1 }), identity);
  testScheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
    const source = cold('-#');
    // attempts at 0, 6, 12, each failing 1 ms in
    expectObservable(
      source.pipe(retry({ maxAttempts: 3, backoff: 'constant', baseDelayMs: 5 })),
    ).toBe('13ms #');
    expectSubscriptions(source.subscriptions).toBe(['^!', '6ms ^!', '12ms ^!']);
  });
});

test('retry(2) makes three attempts with the default backoff (injected scheduler and random)', (t) => {
  const scheduler = testScheduler(t);
  let attempts = 0;
  const errors: unknown[] = [];
  defer(() => {
    attempts++;
    return throwError(() => new Error(`e${attempts}`));
  })
    .pipe(retry({ maxAttempts: 3, scheduler, random: fixed(0.5), baseDelayMs: 100 }))
    .subscribe({ error: (e: unknown) => errors.push(e) });
  t.is(attempts, 1);
  scheduler.flush();
  t.is(attempts, 3);
  t.is(scheduler.now(), 90 + 109);
  t.is((errors[0] as Error).message, 'e3', 'the last error is rethrown, not wrapped');
});

test('retry: handle classes and retryIf choose what is retried; PermanentError never is', (t) => {
  class Transient extends Error {}
  const run = (error: unknown, options: Parameters<typeof retry>[0]) => {
    const scheduler = testScheduler(t);
    let attempts = 0;
    let caught: unknown;
    defer(() => {
      attempts++;
      return throwError(() => error);
    })
      .pipe(retry({ ...(options as object), scheduler, backoff: 'constant', baseDelayMs: 1 }))
      .subscribe({ error: (e: unknown) => (caught = e) });
    scheduler.flush();
    return { attempts, caught };
  };
  t.is(run(new Transient('x'), { maxAttempts: 3, handle: [Transient] }).attempts, 3);
  t.is(run(new Error('x'), { maxAttempts: 3, handle: [Transient] }).attempts, 1);
  t.is(run(new Error('x'), { maxAttempts: 3, handle: (e) => e instanceof Error }).attempts, 3);
  t.is(
    run(new Transient('x'), { maxAttempts: 5, retryIf: (_e, attempt) => attempt < 2 }).attempts,
    2,
  );
  t.is(
    run(new Transient('x'), { maxAttempts: 5, handle: [Transient], retryIf: () => false }).attempts,
    1,
    'both handle and retryIf must accept',
  );
  const permanent = new PermanentError(new Error('400 bad request'));
  const r = run(permanent, { maxAttempts: 5 });
  t.is(r.attempts, 1);
  t.is(r.caught, permanent, 'the PermanentError itself is passed on');
  t.true(isPermanentError(r.caught));
  t.is(((r.caught as PermanentError).cause as Error).message, '400 bad request');
  t.false(isPermanentError(new Error('x')));
  t.deepEqual(permanent.toJSON().code, 'PERMANENT');
});

test('retry: the delay hook sees attempt, error and suggestedDelayMs and can honour Retry-After', (t) => {
  testScheduler(t).run(({ cold, expectSubscriptions, expectObservable }) => {
    const error = Object.assign(new Error('429'), { retryAfterMs: 50 });
    const source = cold('#', undefined, error);
    const seen: RetryDelayContext[] = [];
    const out = source.pipe(
      retry({
        maxAttempts: 4,
        backoff: 'constant',
        baseDelayMs: 7,
        delay: (ctx) => {
          seen.push(ctx);
          return ctx.attempt === 2 ? undefined : retryAfterMs(ctx.error);
        },
      }),
    );
    // delays: 50 (Retry-After), 7 (hook returned undefined: backoff), 50
    expectObservable(out).toBe('107ms #', undefined, error);
    expectSubscriptions(source.subscriptions).toBe([sub(0), sub(50), sub(57), sub(107)]);
    void seen;
  });
  const seen: RetryDelayContext[] = [];
  const scheduler = testScheduler(t);
  throwError(() => 'boom')
    .pipe(
      retry({
        maxAttempts: 3,
        scheduler,
        backoff: 'linear',
        baseDelayMs: 10,
        delay: (ctx) => {
          seen.push(ctx);
          return -5; // invalid: falls back to the suggestion
        },
      }),
    )
    .subscribe({ error: () => {} });
  scheduler.flush();
  t.deepEqual(seen, [
    { attempt: 1, error: 'boom', suggestedDelayMs: 10 },
    { attempt: 2, error: 'boom', suggestedDelayMs: 20 },
  ]);
  t.is(scheduler.now(), 30);
});

test('retryAfterMs reads retryAfterMs, retry-after seconds and HTTP dates', (t) => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  t.is(retryAfterMs({ retryAfterMs: 1234 }), 1234);
  t.is(retryAfterMs({ retryAfterMs: -5 }), 0);
  t.is(retryAfterMs({ response: { headers: { 'retry-after': '3' } } }), 3000);
  t.is(retryAfterMs({ response: { headers: { 'Retry-After': ' 1.5 ' } } }), 1500);
  t.is(retryAfterMs({ response: { headers: { 'retry-after': ['2', '9'] } } }), 2000);
  t.is(retryAfterMs({ response: { headers: new Headers({ 'Retry-After': '4' }) } }), 4000);
  t.is(
    retryAfterMs(
      { response: { headers: { 'retry-after': 'Tue, 01 Jan 2030 00:00:10 GMT' } } },
      now,
    ),
    10_000,
  );
  t.is(
    retryAfterMs(
      { response: { headers: { 'retry-after': 'Mon, 31 Dec 2029 00:00:00 GMT' } } },
      now,
    ),
    0,
  );
  t.is(retryAfterMs({ response: { headers: { 'retry-after': 'soon' } } }), undefined);
  t.is(retryAfterMs({ response: { headers: {} } }), undefined);
  t.is(retryAfterMs({ response: {} }), undefined);
  t.is(retryAfterMs(new Error('x')), undefined);
  t.is(retryAfterMs('x'), undefined);
  t.is(retryAfterMs(null), undefined);
});

test('retry: events report each scheduled retry and the give-up with its reason', (t) => {
  const scheduler = testScheduler(t);
  const events: RetryEvent[] = [];
  let n = 0;
  defer(() => throwError(() => new Error(`e${++n}`)))
    .pipe(
      retry({
        maxAttempts: 3,
        name: 'svc',
        scheduler,
        backoff: 'constant',
        baseDelayMs: 5,
        onEvent: (e) => events.push(e),
      }),
    )
    .subscribe({ error: () => {} });
  scheduler.flush();
  t.deepEqual(
    events.map((e) =>
      e.type === 'scheduled'
        ? [e.type, e.name, e.attempt, e.delayMs, (e.error as Error).message]
        : [e.type, e.name, e.attempts, e.reason, (e.error as Error).message],
    ),
    [
      ['scheduled', 'svc', 1, 5, 'e1'],
      ['scheduled', 'svc', 2, 5, 'e2'],
      ['gave-up', 'svc', 3, 'max-attempts', 'e3'],
    ],
  );
  const reasons: string[] = [];
  throwError(() => new TypeError('x'))
    .pipe(
      retry({
        handle: [RangeError],
        onEvent: (e) => e.type === 'gave-up' && reasons.push(e.reason),
      }),
    )
    .subscribe({ error: () => {} });
  throwError(() => new PermanentError('x'))
    .pipe(retry({ onEvent: (e) => e.type === 'gave-up' && reasons.push(e.reason) }))
    .subscribe({ error: () => {} });
  t.deepEqual(reasons, ['not-handled', 'permanent']);
});

test('retry: a throwing retryIf or delay hook errors the output instead of hanging', (t) => {
  const bug = new Error('bug in hook');
  const errors: unknown[] = [];
  throwError(() => new Error('x'))
    .pipe(
      retry({
        retryIf: () => {
          throw bug;
        },
      }),
    )
    .subscribe({ error: (e: unknown) => errors.push(e) });
  throwError(() => new Error('x'))
    .pipe(
      retry({
        delay: () => {
          throw bug;
        },
      }),
    )
    .subscribe({ error: (e: unknown) => errors.push(e) });
  t.deepEqual(errors, [bug, bug]);
});

test('retry: resetOnSuccess restarts the attempt count after each value', (t) => {
  testScheduler(t).run(({ cold, expectObservable }) => {
    const plain = cold('a#').pipe(retry({ maxAttempts: 2, backoff: 'constant', baseDelayMs: 3 }));
    expectObservable(plain).toBe('a 3ms a#'); // a at 0, error at 1, retry at 4: a, error, give up
    const reset = cold('a#').pipe(
      retry({ maxAttempts: 2, backoff: 'constant', baseDelayMs: 3, resetOnSuccess: true }),
      take(4),
    );
    expectObservable(reset).toBe('a 3ms a 3ms a 3ms (a|)');
  });
});

test.serial(
  'retry: unsubscribing during a backoff sleep cancels its timer (virtual and real)',
  async (t) => {
    const scheduler = testScheduler(t);
    let attempts = 0;
    const s = defer(() => {
      attempts++;
      return throwError(() => new Error('x'));
    })
      .pipe(retry({ maxAttempts: 5, scheduler, backoff: 'constant', baseDelayMs: 100 }))
      .subscribe({ error: () => t.fail() });
    t.is(scheduler.actions.length, 1, 'one sleep pending');
    s.unsubscribe();
    t.is(scheduler.actions.length, 0, 'the sleep was cancelled');
    scheduler.flush();
    t.is(attempts, 1);

    const before = activeTimers();
    const real = throwError(() => new Error('x'))
      .pipe(retry({ maxAttempts: 5, backoff: 'constant', baseDelayMs: 60_000 }))
      .subscribe({ error: () => t.fail() });
    t.is(activeTimers(), before + 1);
    real.unsubscribe();
    t.is(activeTimers(), before, 'no real timer survives the unsubscribe');
  },
);

test.serial('retry: no timer survives after the retried call settles', async (t) => {
  const before = activeTimers();
  let n = 0;
  const value = await lastValueFrom(
    fromWork(async () => {
      if (n++ < 2) throw new Error('flaky');
      return 'ok';
    }).pipe(retry({ maxAttempts: 3, backoff: 'constant', baseDelayMs: 1 })),
  );
  t.is(value, 'ok');
  t.is(n, 3);
  await tick();
  t.is(activeTimers(), before);
});

test('retry: unsubscribing during an attempt aborts that attempt`s work; each attempt gets a fresh signal', async (t) => {
  const signals: AbortSignal[] = [];
  let n = 0;
  const work$ = fromWork(
    (signal) =>
      new Promise<string>((_resolve, reject) => {
        signals.push(signal);
        if (n++ === 0) reject(new Error('first attempt fails'));
        // later attempts hang until aborted
      }),
  );
  const s = work$.pipe(retry({ maxAttempts: 3, backoff: 'constant', baseDelayMs: 1 })).subscribe();
  await until(() => signals.length === 2);
  t.not(signals[0], signals[1]);
  t.false(signals[1]!.aborted);
  s.unsubscribe();
  t.true(signals[1]!.aborted);
  t.true(isCancelledError(signals[1]!.reason));
  t.is(abortListeners(signals[1]!), 0);
});

test('retry: the signal option stops retrying with signal.reason and leaves no listener', async (t) => {
  const scheduler = testScheduler(t);
  const ac = new AbortController();
  let caught: unknown;
  throwError(() => new Error('x'))
    .pipe(retry({ maxAttempts: 5, scheduler, signal: ac.signal, baseDelayMs: 100 }))
    .subscribe({ error: (e: unknown) => (caught = e) });
  t.is(abortListeners(ac.signal), 1);
  t.is(scheduler.actions.length, 1);
  const reason = new Error('shutting down');
  ac.abort(reason);
  t.is(caught, reason);
  t.is(scheduler.actions.length, 0, 'the sleep was cancelled');
  t.is(abortListeners(ac.signal), 0);

  // already aborted: never subscribes the source
  let subscribed = false;
  const errors: unknown[] = [];
  defer(() => {
    subscribed = true;
    return of(1);
  })
    .pipe(retry({ signal: ac.signal }))
    .subscribe({ error: (e: unknown) => errors.push(e) });
  t.false(subscribed);
  t.deepEqual(errors, [reason]);

  // an in-flight attempt is unsubscribed (its work aborted) when the signal aborts
  const ac2 = new AbortController();
  let workSignal: AbortSignal | undefined;
  const p = firstValueFrom(
    fromWork(
      (signal) =>
        new Promise<never>(() => {
          workSignal = signal;
        }),
    ).pipe(retry({ signal: ac2.signal })),
  );
  await until(() => workSignal !== undefined);
  ac2.abort(new Error('stop'));
  await t.throwsAsync(p, { message: 'stop' });
  t.true(workSignal!.aborted);
  t.is(abortListeners(ac2.signal), 0);

  // success removes the listener too
  const ac3 = new AbortController();
  t.is(await lastValueFrom(of(1).pipe(retry({ signal: ac3.signal }))), 1);
  t.is(abortListeners(ac3.signal), 0);
});

test('retry budget: caps retries at ratio * calls + reserve within the window', (t) => {
  let now = 0;
  const budget = createRetryBudget({ ratio: 0.5, minPerSecond: 0, windowMs: 1000, now: () => now });
  t.is(budget.available, 0);
  t.false(budget.tryRetry(), 'no calls: no retries');
  for (let i = 0; i < 4; i++) budget.recordCall();
  t.is(budget.calls, 4);
  t.is(budget.available, 2);
  t.true(budget.tryRetry());
  t.true(budget.tryRetry());
  t.false(budget.tryRetry());
  t.is(budget.retries, 2);
  now = 999;
  t.false(budget.tryRetry());
  now = 1000; // everything recorded at 0 has left the window
  t.is(budget.calls, 0);
  t.is(budget.retries, 0);
  t.false(budget.tryRetry());

  const reserved = createRetryBudget({ ratio: 0, minPerSecond: 2, windowMs: 1500, now: () => now });
  t.is(reserved.available, 3);
  t.true(reserved.tryRetry() && reserved.tryRetry() && reserved.tryRetry());
  t.false(reserved.tryRetry());

  t.throws(() => createRetryBudget({ ratio: 1.5 }), { instanceOf: TypeError, message: /ratio/ });
  t.throws(() => createRetryBudget({ ratio: 0.1, windowMs: 0 }), { instanceOf: TypeError });
  t.throws(() => createRetryBudget({ ratio: 0.1, minPerSecond: -1 }), { instanceOf: TypeError });
  t.throws(() => createRetryBudget(null as never), { instanceOf: TypeError });
  const defaults = createRetryBudget({ ratio: 0.2 });
  t.deepEqual([defaults.minPerSecond, defaults.windowMs], [1, 10_000]);
});

test('retry budget: a shared budget stops retries of many calls with reason "budget"', (t) => {
  const scheduler = testScheduler(t);
  const budget = createRetryBudget({
    ratio: 0.25,
    minPerSecond: 0,
    windowMs: 60_000,
    now: () => scheduler.now(),
  });
  let attempts = 0;
  const reasons: string[] = [];
  for (let i = 0; i < 8; i++) {
    defer(() => {
      attempts++;
      return throwError(() => new Error('down'));
    })
      .pipe(
        retry({
          maxAttempts: 10,
          budget,
          scheduler,
          backoff: 'constant',
          baseDelayMs: 10,
          onEvent: (e) => e.type === 'gave-up' && reasons.push(e.reason),
        }),
      )
      .subscribe({ error: () => {} });
  }
  scheduler.flush();
  t.is(budget.calls, 8);
  t.is(budget.retries, 2);
  t.is(attempts, 8 + 2);
  t.is(reasons.length, 8);
  t.true(reasons.every((r) => r === 'budget'));
});

test('property: retry never makes more than maxAttempts attempts and stops at the first success', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.array(fc.boolean(), { minLength: 0, maxLength: 12 }),
      fc.constantFrom<BackoffStrategy>(
        'constant',
        'linear',
        'exponential',
        'full-jitter',
        'half-jitter',
        'decorrelated-jitter',
      ),
      fc.double({ min: 0, max: 0.999, noNaN: true }),
      (maxAttempts, outcomes, strategy, r) => {
        const scheduler = testScheduler(t);
        let attempts = 0;
        const results: string[] = [];
        defer(() => {
          const ok = outcomes[attempts++] ?? false;
          return ok ? of('ok') : throwError(() => new Error('fail'));
        })
          .pipe(
            retry({
              maxAttempts,
              backoff: strategy,
              baseDelayMs: 10,
              maxDelayMs: 1_000,
              random: () => r,
              scheduler,
            }),
          )
          .subscribe({ next: (v) => results.push(v), error: () => results.push('error') });
        scheduler.flush();
        const firstOk = outcomes.slice(0, maxAttempts).indexOf(true);
        const expectedAttempts = firstOk === -1 ? maxAttempts : firstOk + 1;
        return (
          attempts <= maxAttempts &&
          attempts === expectedAttempts &&
          results.length === 1 &&
          results[0] === (firstOk === -1 ? 'error' : 'ok') &&
          scheduler.actions.length === 0
        );
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});

test('property: a retry budget is never exceeded in any window, and grants whenever there is room', (t) => {
  fc.assert(
    fc.property(
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.integer({ min: 0, max: 5 }),
      fc.integer({ min: 1, max: 2_000 }),
      fc.array(fc.tuple(fc.constantFrom('call', 'retry'), fc.integer({ min: 0, max: 400 })), {
        maxLength: 200,
      }),
      (ratio, minPerSecond, windowMs, ops) => {
        let now = 0;
        const budget = createRetryBudget({ ratio, minPerSecond, windowMs, now: () => now });
        const calls: number[] = [];
        const retries: number[] = [];
        const inWindow = (xs: number[]) => xs.filter((x) => now - x < windowMs).length;
        for (const [op, advance] of ops) {
          now += advance;
          if (op === 'call') {
            budget.recordCall();
            calls.push(now);
            continue;
          }
          const limit = ratio * inWindow(calls) + (minPerSecond * windowMs) / 1000;
          const room = limit - inWindow(retries);
          const granted = budget.tryRetry();
          if (granted) {
            retries.push(now);
            // never exceeded: counting this retry, the window stays within the limit
            if (inWindow(retries) > limit + 1e-6) return false;
          }
          // not stingy: a retry is granted exactly when a whole one fits
          if (granted !== room >= 1 - 1e-9) return false;
        }
        return true;
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});

test('retry: counts scheduled retries on hartonomous.retry.attempts and logs retry.scheduled / retry.gave_up', async (t) => {
  const { meter, sum } = collectingMeter();
  const { logger, lines } = memoryLogger();
  const scheduler = testScheduler(t);
  throwError(() => new Error('down'))
    .pipe(retry({ maxAttempts: 4, name: 'db', meter, logger, scheduler, baseDelayMs: 10 }))
    .subscribe({ error: () => {} });
  scheduler.flush();
  t.is(await sum('hartonomous.retry.attempts', { 'retry.name': 'db' }), 3);
  const events = lines().map((l) => [l.eventId, l.event, l.attempt ?? l.attempts, l.reason]);
  t.deepEqual(events, [
    [1201, 'retry.scheduled', 1, undefined],
    [1201, 'retry.scheduled', 2, undefined],
    [1201, 'retry.scheduled', 3, undefined],
    [1202, 'retry.gave_up', 4, 'max-attempts'],
  ]);
  t.is((lines()[0]!.error as { message: string }).message, 'down');
});

test.serial('retry: adds a "retry" event to the span active at subscription', async (t) => {
  const manager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(manager);
  try {
    const { tracer, spans } = memoryTracer();
    let n = 0;
    await tracer.startActiveSpan('call', async (span) => {
      const v = await lastValueFrom(
        fromWork(async () => {
          if (n++ < 2) throw new TypeError('flaky');
          return 1;
        }).pipe(retry({ maxAttempts: 3, name: 'svc', backoff: 'constant', baseDelayMs: 1 })),
      );
      t.is(v, 1);
      span.end();
    });
    const [finished] = spans();
    t.truthy(finished);
    const retries = finished!.events.filter((e) => e.name === 'retry');
    t.deepEqual(
      retries.map((e) => e.attributes),
      [
        { 'retry.name': 'svc', 'retry.attempt': 1, 'retry.delay_ms': 1, 'error.type': 'TypeError' },
        { 'retry.name': 'svc', 'retry.attempt': 2, 'retry.delay_ms': 1, 'error.type': 'TypeError' },
      ],
    );
    t.is(trace.getActiveSpan(), undefined);
  } finally {
    context.disable();
  }
});

test('retry: validates its options with TypeError', (t) => {
  t.throws(() => retry(-1), { instanceOf: TypeError, message: /retries/ });
  t.throws(() => retry(1.5), { instanceOf: TypeError });
  t.throws(() => retry({ maxAttempts: 0 }), { instanceOf: TypeError, message: /maxAttempts/ });
  t.throws(() => retry({ maxAttempts: Number.NaN }), { instanceOf: TypeError });
  t.throws(() => retry({ baseDelayMs: -1 }), { instanceOf: TypeError, message: /baseMs/ });
  t.throws(() => retry({ baseDelayMs: 100, maxDelayMs: 10 }), {
    instanceOf: TypeError,
    message: /maxMs/,
  });
  t.throws(() => retry({ backoff: 'fast' as never }), {
    instanceOf: TypeError,
    message: /strategy/,
  });
  t.throws(() => retry({ handle: 'all' as never }), { instanceOf: TypeError, message: /handle/ });
  t.throws(() => retry({ handle: [1] as never }), { instanceOf: TypeError, message: /handle/ });
  t.throws(() => retry({ retryIf: true as never }), { instanceOf: TypeError, message: /retryIf/ });
  t.throws(() => retry(null as never), { instanceOf: TypeError });
  t.notThrows(() => retry(Number.POSITIVE_INFINITY));
  t.notThrows(() => retry({ maxAttempts: Number.POSITIVE_INFINITY }));
});

test('retry: a source that emits several values keeps them across attempts', async (t) => {
  let n = 0;
  const values = await lastValueFrom(
    new Observable<number>((s) => {
      s.next(n);
      if (n++ < 2) s.error(new Error('x'));
      else s.complete();
    }).pipe(retry({ maxAttempts: 3, backoff: 'constant', baseDelayMs: 0 }), toArray()),
  );
  t.deepEqual(values, [0, 1, 2]);
});
