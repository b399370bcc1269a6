import test from 'ava';
import { firstValueFrom, identity, lastValueFrom, NEVER, of } from 'rxjs';
import { isCancelledError } from '../../lib/core/errors.js';
import { fromWork } from '../../lib/core/from-work.js';
import { retry } from '../../lib/operators/retry.js';
import {
  isTimeoutError,
  TimeoutError,
  type TimeoutEvent,
  timeout,
} from '../../lib/operators/timeout.js';
import { memoryLogger } from '../support/telemetry.js';
import {
  abortListeners,
  activeTimers,
  collectingMeter,
  testScheduler,
  tick,
} from './_resilience.js';

test('marbles: errors with TimeoutError after ms and unsubscribes the source', (t) => {
  testScheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
    const source = cold('----a|');
    const out = source.pipe(timeout({ ms: 3, label: 'embed' }));
    expectObservable(out).toBe('3ms #', undefined, new TimeoutError('embed', 3, 'total'));
    expectSubscriptions(source.subscriptions).toBe('^--!');
  });
});

test('marbles: a source finishing in time passes through untouched', (t) => {
  testScheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
    const source = cold('-a-b|');
    expectObservable(source.pipe(timeout(5))).toBe('-a-b|');
    expectSubscriptions(source.subscriptions).toBe('^---!');
    const failing = cold('-#', undefined, new Error('own'));
    expectObservable(failing.pipe(timeout(5))).toBe('-#', undefined, new Error('own'));
  });
});

test('marbles: `each` bounds the gap before the first value and between values', (t) => {
  testScheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
    const slowSecond = cold('-a---b|');
    expectObservable(slowSecond.pipe(timeout({ each: 3 }))).toBe(
      '-a--#',
      undefined,
      new TimeoutError('work', 3, 'each'),
    );
    expectSubscriptions(slowSecond.subscriptions).toBe('^---!');

    const steady = cold('--a--b--c|');
    // every gap is 3, within `each`, but the whole takes 9 > ms 8
    expectObservable(steady.pipe(timeout({ each: 3, ms: 8 }))).toBe(
      '--a--b--#',
      undefined,
      new TimeoutError('work', 8, 'total'),
    );
    const quietStart = cold('----a|');
    expectObservable(quietStart.pipe(timeout({ each: 2, ms: 100 }))).toBe(
      '--#',
      undefined,
      new TimeoutError('work', 2, 'each'),
    );
  });
});

test('marbles: inside retry it bounds each attempt; outside it bounds the whole call', (t) => {
  testScheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
    const slow = cold('----a|'); // every attempt needs 4 ms
    const perAttempt = slow.pipe(
      timeout(3),
      retry({ maxAttempts: 3, backoff: 'constant', baseDelayMs: 1 }),
    );
    // attempts at 0, 4, 8, each cut at +3
    expectObservable(perAttempt).toBe('11ms #', undefined, new TimeoutError('work', 3));
    expectSubscriptions(slow.subscriptions).toBe(['^--!', '4ms ^--!', '8ms ^--!']);

    const flaky = cold('--#');
    const overall = flaky.pipe(
      retry({ maxAttempts: 10, backoff: 'constant', baseDelayMs: 1 }),
      timeout(7),
    );
    // attempts at 0, 3, 6; the overall limit cuts the third at 7
    expectObservable(overall).toBe('7ms #', undefined, new TimeoutError('work', 7));
    expectSubscriptions(flaky.subscriptions).toBe(['^-!', '3ms ^-!', '6ms ^!']);
  });
});

test('no timer survives completion, error or unsubscribe (virtual scheduler)', (t) => {
  const scheduler = testScheduler(t);
  const completes = of(1)
    .pipe(timeout({ ms: 100, each: 50, scheduler }))
    .subscribe();
  t.true(completes.closed);
  t.is(scheduler.actions.length, 0, 'after a synchronous completion');

  const src = scheduler.createColdObservable('--a--|');
  src.pipe(timeout({ ms: 100, each: 50, scheduler })).subscribe();
  t.is(scheduler.actions.length >= 2, true);
  scheduler.flush();
  t.is(scheduler.actions.length, 0, 'after completion');

  const failing = scheduler.createColdObservable('--#');
  failing.pipe(timeout({ ms: 100, each: 50, scheduler })).subscribe({ error: () => {} });
  scheduler.flush();
  t.is(scheduler.actions.length, 0, 'after an error');

  const s = NEVER.pipe(timeout({ ms: 100, each: 50, scheduler })).subscribe();
  t.is(scheduler.actions.length, 2);
  s.unsubscribe();
  t.is(scheduler.actions.length, 0, 'after unsubscribe');
});

test('on expiry the fromWork signal aborts (cooperative cancellation) and no listener is left', (t) => {
  const scheduler = testScheduler(t);
  const parent = new AbortController();
  let workSignal: AbortSignal | undefined;
  let caught: unknown;
  fromWork(
    (signal) =>
      new Promise<never>(() => {
        workSignal = signal;
      }),
    parent.signal,
  )
    .pipe(timeout({ ms: 250, label: 'GET /slow', scheduler }))
    .subscribe({ error: (e: unknown) => (caught = e) });
  t.false(workSignal!.aborted);
  t.is(abortListeners(parent.signal), 1);
  scheduler.flush();
  t.is(scheduler.now(), 250);
  t.true(workSignal!.aborted);
  t.true(isCancelledError(workSignal!.reason));
  t.true(isTimeoutError(caught));
  t.like(caught as TimeoutError, { label: 'GET /slow', ms: 250, kind: 'total', code: 'TIMEOUT' });
  t.is((caught as Error).message, 'GET /slow timed out after 250 ms');
  t.is(abortListeners(parent.signal), 0);
  t.false(isTimeoutError(new Error('x')));
});

test.serial('real timers: a timed-out call and a call in time both leave no timer', async (t) => {
  const before = activeTimers();
  let aborted = false;
  await t.throwsAsync(
    firstValueFrom(
      fromWork(
        (signal) =>
          new Promise<never>(() => {
            signal.addEventListener('abort', () => {
              aborted = true;
            });
          }),
      ).pipe(timeout(20)),
    ),
    { instanceOf: TimeoutError },
  );
  t.true(aborted);
  t.is(
    await lastValueFrom(fromWork(async () => 'fast').pipe(timeout({ ms: 60_000, each: 60_000 }))),
    'fast',
  );
  await tick();
  t.is(activeTimers(), before);
});

test('counts expiries on hartonomous.timeouts, logs timeout.elapsed and reports onEvent', async (t) => {
  const { meter, sum } = collectingMeter();
  const { logger, lines } = memoryLogger();
  const events: TimeoutEvent[] = [];
  const scheduler = testScheduler(t);
  for (const options of [{ ms: 10 }, { each: 5 }, { ms: 10 }]) {
    NEVER.pipe(
      timeout({
        ...options,
        label: 'embed',
        scheduler,
        meter,
        logger,
        onEvent: (e) => events.push(e),
      }),
    ).subscribe({ error: () => {} });
  }
  scheduler.flush();
  t.is(await sum('hartonomous.timeouts', { 'timeout.label': 'embed', 'timeout.kind': 'total' }), 2);
  t.is(await sum('hartonomous.timeouts', { 'timeout.label': 'embed', 'timeout.kind': 'each' }), 1);
  t.deepEqual(
    lines().map((l) => [l.eventId, l.event, l.label, l.ms, l.kind]),
    [
      [1203, 'timeout.elapsed', 'embed', 5, 'each'],
      [1203, 'timeout.elapsed', 'embed', 10, 'total'],
      [1203, 'timeout.elapsed', 'embed', 10, 'total'],
    ],
  );
  t.deepEqual(events[0], { type: 'timeout', label: 'embed', ms: 5, kind: 'each' });
});

test('validates its options; no limit at all is identity', (t) => {
  for (const bad of [0, -1, Number.NaN]) {
    t.throws(() => timeout(bad), { instanceOf: TypeError, message: /ms/ });
  }
  t.throws(() => timeout({ each: 0 }), { instanceOf: TypeError, message: /each/ });
  t.throws(() => timeout({ ms: '5' as never }), { instanceOf: TypeError });
  t.throws(() => timeout(null as never), { instanceOf: TypeError });
  t.is(timeout(Number.POSITIVE_INFINITY), identity);
  t.is(timeout({}), identity);
  t.is(new TimeoutError('x', 5, 'each').message, 'x produced no value within 5 ms');
  t.deepEqual(new TimeoutError('x', 5).toJSON(), {
    name: 'TimeoutError',
    code: 'TIMEOUT',
    message: 'x timed out after 5 ms',
    label: 'x',
    ms: 5,
    kind: 'total',
  });
});
