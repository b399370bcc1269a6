import test from 'ava';
import fc from 'fast-check';
import { Observable } from 'rxjs';
import { isCancelledError } from '../../lib/core/errors.js';
import { fromWork } from '../../lib/core/from-work.js';
import {
  createRateLimiter,
  isRateLimitedError,
  type RateLimitEvent,
  RateLimitedError,
  rateLimit,
} from '../../lib/operators/rate-limit.js';
import { memoryLogger } from '../support/telemetry.js';
import { abortListeners, collectingMeter, testScheduler } from './_resilience.js';

test('marbles, wait mode: after the burst, calls start exactly 1000 / rate ms apart', (t) => {
  testScheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
    const limiter = createRateLimiter({ rate: 100, burst: 2 }); // a token every 10 ms
    const work = cold('a|');
    for (let i = 0; i < 4; i++) expectObservable(work.pipe(rateLimit(limiter)));
    expectObservable(work.pipe(rateLimit(limiter)), '50ms ^').toBe('50ms a|'); // refilled by then
    expectSubscriptions(work.subscriptions).toBe(['^!', '^!', '10ms ^!', '20ms ^!', '50ms ^!']);
  });
});

test('marbles, reject mode: errors with retryAfterMs without subscribing the source', (t) => {
  testScheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
    const limiter = createRateLimiter({ rate: 50, mode: 'reject', name: 'api' }); // 20 ms a token
    const work = cold('-a|');
    expectObservable(work.pipe(rateLimit(limiter))).toBe('-a|');
    expectObservable(work.pipe(rateLimit(limiter)), '5ms ^').toBe(
      '5ms #',
      undefined,
      new RateLimitedError('api', 15),
    );
    expectObservable(work.pipe(rateLimit(limiter)), '20ms ^').toBe('21ms a|');
    expectSubscriptions(work.subscriptions).toBe(['^-!', '20ms ^-!']);
  });
});

test('marbles, maxWaitMs: a call that would wait longer is rejected', (t) => {
  testScheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
    const limiter = createRateLimiter({ rate: 100, maxWaitMs: 15 });
    const work = cold('a|');
    expectObservable(work.pipe(rateLimit(limiter))).toBe('a|');
    expectObservable(work.pipe(rateLimit(limiter))).toBe('10ms a|'); // waits 10 <= 15
    expectObservable(work.pipe(rateLimit(limiter))).toBe(
      '#',
      undefined,
      new RateLimitedError('rate-limiter', 20),
    );
    // the rejected call took no token: at 1 ms the next token is 19 ms away, still > 15
    expectObservable(work.pipe(rateLimit(limiter)), '1ms ^').toBe(
      '-#',
      undefined,
      new RateLimitedError('rate-limiter', 19),
    );
    expectObservable(work.pipe(rateLimit(limiter)), '5ms ^').toBe('20ms a|'); // 15 ms away: waits
    expectSubscriptions(work.subscriptions).toBe(['^!', '10ms ^!', '20ms ^!']);
  });
});

test('marbles: unsubscribing a waiting call gives its token back', (t) => {
  testScheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
    const limiter = createRateLimiter({ rate: 100 });
    const a = cold('a|');
    const b = cold('b|');
    const c = cold('c|');
    expectObservable(a.pipe(rateLimit(limiter))).toBe('a|');
    expectObservable(b.pipe(rateLimit(limiter)), '^----!').toBe('-'); // would start at 10; leaves at 5
    expectObservable(c.pipe(rateLimit(limiter)), '6ms ^').toBe('10ms c|'); // takes b's place
    expectSubscriptions(b.subscriptions).toBe([]);
    expectSubscriptions(c.subscriptions).toBe('10ms ^!');
  });
});

test('no timer survives an unsubscribe while waiting', (t) => {
  const scheduler = testScheduler(t);
  const limiter = createRateLimiter({ rate: 1, scheduler });
  const never = new Observable<number>(() => {});
  never.pipe(rateLimit(limiter)).subscribe();
  const waiting = never.pipe(rateLimit(limiter)).subscribe();
  t.is(scheduler.actions.length, 1);
  t.true(limiter.tokens() < 0);
  waiting.unsubscribe();
  t.is(scheduler.actions.length, 0);
  t.is(limiter.tokens(), 0, 'the promised token was given back');
});

test('unsubscribing after the wait aborts the started fromWork work; no listener is left', (t) => {
  const scheduler = testScheduler(t);
  const limiter = createRateLimiter({ rate: 10, scheduler });
  const parent = new AbortController();
  const signals: AbortSignal[] = [];
  const hang = () =>
    fromWork(
      (signal) =>
        new Promise<never>(() => {
          signals.push(signal);
        }),
      parent.signal,
    ).pipe(rateLimit(limiter));
  hang().subscribe();
  const second = hang().subscribe();
  t.is(signals.length, 1, 'the second call waits for its token');
  scheduler.flush();
  t.is(scheduler.now(), 100);
  t.is(signals.length, 2);
  second.unsubscribe();
  t.true(signals[1]!.aborted);
  t.true(isCancelledError(signals[1]!.reason));
  t.is(abortListeners(parent.signal), 1, 'only the first, still running, listens');
});

test('keyed: one bucket per key; full idle buckets are forgotten', (t) => {
  let now = 0;
  const scheduler = testScheduler(t);
  const limiter = createRateLimiter({
    rate: 10,
    burst: 1,
    keyed: true,
    mode: 'reject',
    now: () => now,
    scheduler,
  });
  const results: unknown[] = [];
  const call = (key: string) =>
    new Observable<string>((s) => {
      s.next(key);
      s.complete();
    })
      .pipe(rateLimit(limiter, () => key))
      .subscribe({ next: (v) => results.push(v), error: (e) => results.push(e) });
  call('a');
  call('b');
  call('a');
  t.deepEqual(results.slice(0, 2), ['a', 'b']);
  t.true(isRateLimitedError(results[2]));
  t.like(results[2] as RateLimitedError, { key: 'a', retryAfterMs: 100, limiter: 'rate-limiter' });
  t.is(limiter.keys, 2);
  now = 1_000; // both buckets refilled long ago
  t.is(limiter.keys, 0);
  t.is(limiter.tokens('a'), 1);
  t.throws(() => rateLimit(limiter), { instanceOf: TypeError, message: /keyed/ });
  t.throws(() => rateLimit(createRateLimiter(1), 'k'), {
    instanceOf: TypeError,
    message: /not keyed/,
  });
  t.throws(() => limiter.reserve(), { instanceOf: TypeError });
});

test('metrics, logs and events', async (t) => {
  const { meter, sum } = collectingMeter();
  const { logger, lines } = memoryLogger();
  const events: RateLimitEvent[] = [];
  const scheduler = testScheduler(t);
  const limiter = createRateLimiter({
    rate: 10,
    maxWaitMs: 150,
    name: 'llm',
    scheduler,
    meter,
    logger,
    onEvent: (e) => events.push(e),
  });
  const never = new Observable<number>(() => {});
  for (let i = 0; i < 4; i++) never.pipe(rateLimit(limiter)).subscribe({ error: () => {} });
  t.is(await sum('hartonomous.rate_limit.waits', { 'rate_limiter.name': 'llm' }), 1);
  t.is(await sum('hartonomous.rate_limit.rejections', { 'rate_limiter.name': 'llm' }), 2);
  t.deepEqual(events, [
    { type: 'waiting', name: 'llm', waitMs: 100 },
    { type: 'rejected', name: 'llm', waitMs: 200 },
    { type: 'rejected', name: 'llm', waitMs: 200 },
  ]);
  t.deepEqual(
    lines().map((l) => [l.eventId, l.event, l.retryAfterMs]),
    [
      [1208, 'rate_limit.rejected', 200],
      [1208, 'rate_limit.rejected', 200],
    ],
  );
});

test('validates its options with TypeError', (t) => {
  for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
    t.throws(() => createRateLimiter(bad), { instanceOf: TypeError, message: /rate/ });
  }
  t.throws(() => createRateLimiter({ rate: 1, burst: 0 }), {
    instanceOf: TypeError,
    message: /burst/,
  });
  t.throws(() => createRateLimiter({ rate: 1, mode: 'drop' as never }), {
    instanceOf: TypeError,
    message: /mode/,
  });
  t.throws(() => createRateLimiter({ rate: 1, maxWaitMs: -1 }), {
    instanceOf: TypeError,
    message: /maxWaitMs/,
  });
  t.throws(() => createRateLimiter(null as never), { instanceOf: TypeError });
  t.throws(() => rateLimit({} as never), { instanceOf: TypeError });
  const d = createRateLimiter(5);
  t.deepEqual(
    [d.rate, d.burst, d.mode, d.maxWaitMs, d.keyed],
    [5, 1, 'wait', Number.POSITIVE_INFINITY, false],
  );
});

test('property: starts never exceed burst + rate * elapsed in any interval; waits are granted in order', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 200 }),
      fc.integer({ min: 1, max: 4 }),
      fc.array(fc.integer({ min: 0, max: 100 }), { maxLength: 40 }),
      (rate, burst, arrivals) => {
        const scheduler = testScheduler(t);
        const limiter = createRateLimiter({ rate, burst, scheduler });
        const starts: number[] = [];
        const order: number[] = [];
        arrivals
          .slice()
          .sort((a, b) => a - b)
          .forEach((at, i) => {
            scheduler.schedule(() => {
              new Observable<void>((s) => {
                starts.push(scheduler.now());
                order.push(i);
                s.complete();
              })
                .pipe(rateLimit(limiter))
                .subscribe();
            }, at);
          });
        scheduler.flush();
        if (starts.length !== arrivals.length) return false;
        if (order.some((v, i) => v !== i)) return false;
        for (let i = 0; i < starts.length; i++) {
          for (let j = i; j < starts.length; j++) {
            // ceil() of waits may add up to 1 ms per token; allow it
            const allowed = burst + ((starts[j]! - starts[i]! + (j - i)) * rate) / 1000;
            if (j - i + 1 > allowed + 1e-9) return false;
          }
        }
        return true;
      },
    ),
    { numRuns: 200 },
  );
  t.pass();
});
