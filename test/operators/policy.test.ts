import test from 'ava';
import { expectTypeOf } from 'expect-type';
import { identity, type MonoTypeOperatorFunction, type Observable, of, tap } from 'rxjs';
import * as resilience from '../../lib/index.js';
import { BulkheadRejectedError, bulkhead, createBulkhead } from '../../lib/operators/bulkhead.js';
import {
  BrokenCircuitError,
  circuitBreaker,
  createCircuitBreaker,
} from '../../lib/operators/circuit-breaker.js';
import { fallback } from '../../lib/operators/fallback.js';
import { hedge } from '../../lib/operators/hedge.js';
import { policy } from '../../lib/operators/policy.js';
import { createRateLimiter, rateLimit } from '../../lib/operators/rate-limit.js';
import { retry } from '../../lib/operators/retry.js';
import { TimeoutError, timeout } from '../../lib/operators/timeout.js';
import { testScheduler } from './_resilience.js';

test('policy() applies operators in the order given, like pipe; none is identity', (t) => {
  t.is(policy(), identity);
  const only = retry<number>(1);
  t.is(policy(only), only);
  const order: string[] = [];
  const mark =
    (name: string): MonoTypeOperatorFunction<number> =>
    (source) => {
      order.push(`wrap ${name}`);
      return source.pipe(tap(() => order.push(`see ${name}`)));
    };
  of(1)
    .pipe(policy(mark('inner'), mark('outer')))
    .subscribe();
  t.deepEqual(order, ['wrap inner', 'wrap outer', 'see inner', 'see outer']);
  t.throws(() => policy(mark('a'), 3 as never), { instanceOf: TypeError, message: /operator 1/ });
});

test('marbles: the recommended order timeout -> retry -> circuitBreaker -> bulkhead -> timeout', (t) => {
  testScheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
    const breaker = createCircuitBreaker({
      strategy: { type: 'consecutive', failures: 2 },
      breakDuration: 100,
    });
    const slots = createBulkhead({ limit: 1, queue: 1 });
    const resilient = policy<string>(
      timeout(3), // per attempt
      retry({ maxAttempts: 3, backoff: 'constant', baseDelayMs: 1 }),
      circuitBreaker(breaker),
      bulkhead(slots),
      timeout(50), // overall
    );
    const work = cold('----a|'); // every attempt needs 4 ms: each one times out
    const perAttempt = new TimeoutError('work', 3);
    // call 1: attempts at 0, 4, 8; one breaker failure at 11, after its retries
    expectObservable(work.pipe(resilient)).toBe('11ms #', undefined, perAttempt);
    // call 2 waits in the bulkhead until 11; attempts at 11, 15, 19; second failure opens the breaker at 22
    expectObservable(work.pipe(resilient), '1ms ^').toBe('22ms #', undefined, perAttempt);
    // call 3: one running and one waiting: the bulkhead rejects it
    expectObservable(work.pipe(resilient), '2ms ^').toBe(
      '2ms #',
      undefined,
      new BulkheadRejectedError('bulkhead', 1, 1),
    );
    // call 4: the breaker is open: rejected at once, no attempt, no retry
    expectObservable(work.pipe(resilient), '30ms ^').toBe(
      '30ms #',
      undefined,
      new BrokenCircuitError('circuit-breaker', 'open', 92, perAttempt),
    );
    expectSubscriptions(work.subscriptions).toBe([
      '^--!',
      '4ms ^--!',
      '8ms ^--!',
      '11ms ^--!',
      '15ms ^--!',
      '19ms ^--!',
    ]);
  });
});

test('types: every operator is a MonoTypeOperatorFunction usable in a policy list', (t) => {
  const n$ = of(1);
  const limiter = createRateLimiter(10);
  const list: MonoTypeOperatorFunction<number>[] = [
    timeout(5),
    retry(2),
    circuitBreaker(createCircuitBreaker(3)),
    bulkhead(createBulkhead(2)),
    rateLimit(limiter),
    hedge(10),
    fallback(0),
  ];
  expectTypeOf(policy(...list)).toEqualTypeOf<MonoTypeOperatorFunction<number>>();
  expectTypeOf(n$.pipe(policy(timeout(5), retry(2)))).toEqualTypeOf<Observable<number>>();
  expectTypeOf(
    n$.pipe(timeout(5), retry(2), circuitBreaker(createCircuitBreaker(3))),
  ).toEqualTypeOf<Observable<number>>();
  // @ts-expect-error a string fallback does not fit a number policy list
  const bad: MonoTypeOperatorFunction<number> = fallback('x');
  void bad;
  t.pass();
});

test('the package root exports every resilience operator and error guard', (t) => {
  for (const name of [
    'backoff',
    'retry',
    'retryAfterMs',
    'createRetryBudget',
    'PermanentError',
    'isPermanentError',
    'timeout',
    'TimeoutError',
    'isTimeoutError',
    'createCircuitBreaker',
    'circuitBreaker',
    'BrokenCircuitError',
    'isBrokenCircuitError',
    'IsolatedCircuitError',
    'isIsolatedCircuitError',
    'createBulkhead',
    'bulkhead',
    'BulkheadRejectedError',
    'isBulkheadRejectedError',
    'createRateLimiter',
    'rateLimit',
    'RateLimitedError',
    'isRateLimitedError',
    'fallback',
    'hedge',
    'policy',
  ]) {
    t.is(typeof (resilience as Record<string, unknown>)[name], 'function', name);
  }
});
