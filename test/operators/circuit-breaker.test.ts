import test from 'ava';
import { defer, type Observable, of, throwError } from 'rxjs';
import { isCancelledError } from '../../lib/core/errors.js';
import { fromWork } from '../../lib/core/from-work.js';
import {
  BrokenCircuitError,
  type CircuitBreaker,
  type CircuitBreakerSnapshot,
  type CircuitBreakerTransition,
  circuitBreaker,
  createCircuitBreaker,
  IsolatedCircuitError,
  isBrokenCircuitError,
  isIsolatedCircuitError,
} from '../../lib/operators/circuit-breaker.js';
import { memoryLogger } from '../support/telemetry.js';
import { abortListeners, collectingMeter, testScheduler } from './_resilience.js';

const transitions = (b: CircuitBreaker): Array<[string, string, number]> => {
  const out: Array<[string, string, number]> = [];
  b.state$.subscribe((x) => out.push([x.from, x.to, x.at]));
  return out;
};

/** Runs one call through the breaker synchronously; returns 'ok', the error, or 'rejected'. */
const call = (b: CircuitBreaker, outcome: 'ok' | 'fail' | unknown): unknown => {
  let result: unknown;
  (outcome === 'ok'
    ? of('ok')
    : throwError(() => (outcome === 'fail' ? new Error('fail') : outcome))
  )
    .pipe(circuitBreaker(b))
    .subscribe({ next: (v) => (result = v), error: (e: unknown) => (result = e) });
  return result;
};

test('marbles, consecutive: opens after N failures, rejects without subscribing, half-opens after the break, closes on a good trial', (t) => {
  testScheduler(t).run(({ cold, expectObservable, expectSubscriptions, flush }) => {
    const breaker = createCircuitBreaker({
      name: 'svc',
      strategy: { type: 'consecutive', failures: 2 },
      breakDuration: 10,
    });
    const seen = transitions(breaker);
    const err = new Error('down');
    const failing = cold('-#', undefined, err);
    const ok = cold('-a|');
    const guarded = (src: Observable<string>) => src.pipe(circuitBreaker(breaker));

    expectObservable(guarded(failing), '^').toBe('-#', undefined, err); // failure 1 at 1
    expectObservable(guarded(failing), '2ms ^').toBe('3ms #', undefined, err); // failure 2 at 3: opens until 13
    expectObservable(guarded(ok), '5ms ^').toBe(
      '5ms #',
      undefined,
      new BrokenCircuitError('svc', 'open', 8, err),
    );
    expectObservable(guarded(ok), '12ms ^').toBe(
      '12ms #',
      undefined,
      new BrokenCircuitError('svc', 'open', 1, err),
    );
    expectObservable(guarded(ok), '13ms ^').toBe('14ms a|'); // the trial call; closes at 14
    expectObservable(guarded(failing), '16ms ^').toBe('17ms #', undefined, err); // closed again
    expectSubscriptions(failing.subscriptions).toBe(['^!', '2ms ^!', '16ms ^!']);
    expectSubscriptions(ok.subscriptions).toBe(['13ms ^-!']);
    flush();
    t.deepEqual(seen, [
      ['closed', 'open', 3],
      ['open', 'half-open', 13],
      ['half-open', 'closed', 14],
    ]);
    t.is(breaker.state, 'closed');
  });
});

test('marbles, consecutive: a failed trial re-opens for the next backoff break; a success resets the count', (t) => {
  testScheduler(t).run(({ cold, expectObservable, flush }) => {
    const breaker = createCircuitBreaker({
      strategy: { type: 'consecutive', failures: 2 },
      breakDuration: { strategy: 'exponential', baseMs: 10, maxMs: 1000 },
    });
    const seen = transitions(breaker);
    const err = new Error('down');
    const f = () => cold('-#', undefined, err).pipe(circuitBreaker(breaker));
    const s = () => cold('-a|').pipe(circuitBreaker(breaker));
    expectObservable(f(), '^').toBe('-#', undefined, err);
    expectObservable(s(), '2ms ^').toBe('3ms a|'); // success resets the consecutive count
    expectObservable(f(), '5ms ^').toBe('6ms #', undefined, err);
    expectObservable(f(), '7ms ^').toBe('8ms #', undefined, err); // opens at 8 for 10: until 18
    expectObservable(f(), '18ms ^').toBe('19ms #', undefined, err); // trial fails: opens for 20
    expectObservable(s(), '38ms ^').toBe(
      '38ms #',
      undefined,
      new BrokenCircuitError('circuit-breaker', 'open', 1, err),
    );
    expectObservable(s(), '39ms ^').toBe('40ms a|'); // trial succeeds: closes, backoff restarts
    expectObservable(f(), '41ms ^').toBe('42ms #', undefined, err);
    expectObservable(f(), '43ms ^').toBe('44ms #', undefined, err); // opens for 10 again
    flush();
    t.deepEqual(seen, [
      ['closed', 'open', 8],
      ['open', 'half-open', 18],
      ['half-open', 'open', 19],
      ['open', 'half-open', 39],
      ['half-open', 'closed', 40],
      ['closed', 'open', 44],
    ]);
    t.deepEqual(breaker.toJSON(), { state: 'open', openedAt: 44, until: 54, opens: 1 });
  });
});

test('marbles, count window: opens when the failure ratio of the last N calls reaches the threshold', (t) => {
  testScheduler(t).run(({ cold, expectObservable, flush }) => {
    const breaker = createCircuitBreaker({
      strategy: { type: 'count', ratio: 0.5, size: 4, minimumCalls: 3 },
      breakDuration: 5,
    });
    const seen = transitions(breaker);
    const err = new Error('e');
    const f = () => cold('-#', undefined, err).pipe(circuitBreaker(breaker));
    const s = () => cold('-a|').pipe(circuitBreaker(breaker));
    expectObservable(f(), '^').toBe('-#', undefined, err); // 1/1 but below minimumCalls
    expectObservable(s(), '2ms ^').toBe('3ms a|');
    expectObservable(s(), '4ms ^').toBe('5ms a|');
    expectObservable(s(), '6ms ^').toBe('7ms a|'); // window f s s s
    expectObservable(f(), '8ms ^').toBe('9ms #', undefined, err); // window s s s f: 1/4
    expectObservable(f(), '10ms ^').toBe('11ms #', undefined, err); // s s f f: 2/4 = 0.5: opens at 11
    expectObservable(s(), '12ms ^').toBe(
      '12ms #',
      undefined,
      new BrokenCircuitError('circuit-breaker', 'open', 4, err),
    );
    expectObservable(s(), '16ms ^').toBe('17ms a|');
    flush();
    t.deepEqual(seen, [
      ['closed', 'open', 11],
      ['open', 'half-open', 16],
      ['half-open', 'closed', 17],
    ]);
    t.deepEqual(breaker.toJSON(), { state: 'closed', window: { type: 'count', outcomes: [] } });
  });
});

test('marbles, time window: needs minimum throughput within the window; old buckets expire', (t) => {
  testScheduler(t).run(({ cold, expectObservable, flush }) => {
    const breaker = createCircuitBreaker({
      strategy: { type: 'time', ratio: 0.6, windowMs: 20, minimumThroughput: 3, buckets: 2 },
      breakDuration: 10,
    });
    const seen = transitions(breaker);
    const err = new Error('e');
    const f = () => cold('-#', undefined, err).pipe(circuitBreaker(breaker));
    const s = () => cold('-a|').pipe(circuitBreaker(breaker));
    expectObservable(f(), '^').toBe('-#', undefined, err); // bucket [1..11): 1 call
    expectObservable(f(), '2ms ^').toBe('3ms #', undefined, err); // 2 calls: below throughput
    expectObservable(s(), '20ms ^').toBe('21ms a|'); // the bucket from 1 expired at 21: 1 call, 0 failed
    expectObservable(f(), '22ms ^').toBe('23ms #', undefined, err); // 1/2
    expectObservable(f(), '24ms ^').toBe('25ms #', undefined, err); // 2/3 >= 0.6: opens at 25
    expectObservable(s(), '26ms ^').toBe(
      '26ms #',
      undefined,
      new BrokenCircuitError('circuit-breaker', 'open', 9, err),
    );
    expectObservable(s(), '35ms ^').toBe('36ms a|');
    flush();
    t.deepEqual(seen, [
      ['closed', 'open', 25],
      ['open', 'half-open', 35],
      ['half-open', 'closed', 36],
    ]);
  });
});

test('time window: the documented bucket expiry, with a manual clock', (t) => {
  let now = 1_000;
  const breaker = createCircuitBreaker({
    strategy: { type: 'time', ratio: 0.5, windowMs: 100, minimumThroughput: 4, buckets: 4 },
    now: () => now,
  });
  call(breaker, 'fail'); // bucket starting at 1000
  now = 1010;
  call(breaker, 'fail'); // same bucket (width 25)
  now = 1030;
  call(breaker, 'ok'); // new bucket at 1030
  t.deepEqual(breaker.toJSON(), {
    state: 'closed',
    window: {
      type: 'time',
      buckets: [
        { start: 1000, calls: 2, failures: 2 },
        { start: 1030, calls: 1, failures: 0 },
      ],
    },
  });
  now = 1100; // the bucket from 1000 expires (both its failures go)
  t.true(isBrokenCircuitError(call(breaker, 'fail')) === false);
  t.is(breaker.state, 'closed', '2 calls in the window: below minimumThroughput');
  now = 1101;
  call(breaker, 'fail');
  now = 1102;
  t.is((call(breaker, 'fail') as Error).message, 'fail');
  t.is(breaker.state, 'open', '4 calls, 3 failed');
});

test('half-open admits halfOpenCalls trials, rejects the rest, closes when all succeed', (t) => {
  let now = 0;
  const breaker = createCircuitBreaker({
    strategy: { type: 'consecutive', failures: 1 },
    breakDuration: 100,
    halfOpenCalls: 2,
    now: () => now,
  });
  call(breaker, 'fail');
  t.is(breaker.state, 'open');
  now = 100;
  t.is(breaker.state, 'half-open');
  const p1 = breaker.admit();
  const p2 = breaker.admit();
  const rejected = t.throws(() => breaker.admit(), { instanceOf: BrokenCircuitError });
  t.like(rejected, { state: 'half-open', retryAfterMs: 0 });
  p1.release(); // a cancelled trial frees its slot
  const p3 = breaker.admit();
  p2.success();
  t.is(breaker.state, 'half-open');
  p3.success();
  t.is(breaker.state, 'closed');

  // with a tolerated failure ratio
  const tolerant = createCircuitBreaker({
    strategy: { type: 'consecutive', failures: 1 },
    breakDuration: 10,
    halfOpenCalls: 4,
    halfOpenMaxFailureRatio: 0.25,
    now: () => now,
  });
  call(tolerant, 'fail');
  now += 10;
  const trials = [tolerant.admit(), tolerant.admit(), tolerant.admit(), tolerant.admit()];
  trials[0]!.failure(new Error('one bad trial'));
  t.is(tolerant.state, 'half-open');
  trials[1]!.success();
  trials[2]!.success();
  trials[3]!.success();
  t.is(tolerant.state, 'closed');
  call(tolerant, 'fail');
  now += 10;
  const again = [tolerant.admit(), tolerant.admit()];
  again[0]!.failure(new Error('a'));
  again[1]!.failure(new Error('b'));
  t.is(tolerant.state, 'open', 'two of four failed: over 0.25');
});

test('the `handle` filter: errors it does not handle count as successes', (t) => {
  class Transient extends Error {}
  const breaker = createCircuitBreaker({
    strategy: { type: 'consecutive', failures: 2 },
    handle: [Transient],
    now: () => 0,
  });
  call(breaker, new Transient('a'));
  call(breaker, new TypeError('bad input')); // not handled: resets the count
  call(breaker, new Transient('b'));
  t.is(breaker.state, 'closed');
  const last = new Transient('c');
  t.is(call(breaker, last), last, 'the failing call gets its own error');
  t.is(breaker.state, 'open');
  t.is(breaker.lastFailure, last);
  const rejected = call(breaker, 'ok');
  t.true(isBrokenCircuitError(rejected));
  t.is((rejected as BrokenCircuitError).cause, last);
  t.is((rejected as BrokenCircuitError).retryAfterMs, 10_000);
  t.regex(
    (rejected as Error).message,
    /circuit breaker 'circuit-breaker' is open; last failure: c/,
  );

  const predicate = createCircuitBreaker({
    strategy: { type: 'consecutive', failures: 1 },
    handle: (e) => e === 'boom',
  });
  call(predicate, 'other');
  t.is(predicate.state, 'closed');
  call(predicate, 'boom');
  t.is(predicate.state, 'open');
});

test('an open breaker never starts the work; unsubscribing in flight aborts the work and records nothing', async (t) => {
  const breaker = createCircuitBreaker({
    strategy: { type: 'consecutive', failures: 1 },
    now: () => 0,
  });
  call(breaker, 'fail');
  let started = 0;
  const work$ = fromWork(() => {
    started++;
    return 1;
  }).pipe(circuitBreaker(breaker));
  const errors: unknown[] = [];
  work$.subscribe({ error: (e: unknown) => errors.push(e) });
  t.is(started, 0);
  t.true(isBrokenCircuitError(errors[0]));

  const half = createCircuitBreaker({
    strategy: { type: 'consecutive', failures: 1 },
    breakDuration: 0,
  });
  call(half, 'fail');
  t.is(half.state, 'half-open');
  const parent = new AbortController();
  let signal: AbortSignal | undefined;
  const s = fromWork((sig) => {
    signal = sig;
    return new Promise<never>(() => {});
  }, parent.signal)
    .pipe(circuitBreaker(half))
    .subscribe();
  t.throws(() => half.admit(), { instanceOf: BrokenCircuitError }, 'the only trial slot is taken');
  s.unsubscribe();
  t.true(signal!.aborted);
  t.true(isCancelledError(signal!.reason));
  t.is(abortListeners(parent.signal), 0);
  t.is(half.state, 'half-open', 'a cancelled call is no outcome');
  t.notThrows(() => half.admit().release(), 'its trial slot was freed');
});

test('isolate() holds it open until every isolation is released; reset() closes from any state', (t) => {
  const breaker = createCircuitBreaker({ name: 'db', now: () => 0 });
  const seen = transitions(breaker);
  const a = breaker.isolate();
  const b = breaker.isolate();
  t.is(breaker.state, 'isolated');
  const rejected = call(breaker, 'ok');
  t.true(isIsolatedCircuitError(rejected));
  t.is((rejected as IsolatedCircuitError).breaker, 'db');
  t.false(isBrokenCircuitError(rejected));
  a.release();
  a.release(); // idempotent
  t.is(breaker.state, 'isolated');
  b.release();
  t.is(breaker.state, 'closed');
  t.is(call(breaker, 'ok'), 'ok');
  breaker.isolate();
  breaker.isolate();
  breaker.reset();
  t.is(breaker.state, 'closed');
  t.deepEqual(seen, [
    ['closed', 'isolated', 0],
    ['isolated', 'closed', 0],
    ['closed', 'isolated', 0],
    ['isolated', 'closed', 0],
  ]);
  const failing = createCircuitBreaker({
    strategy: { type: 'consecutive', failures: 1 },
    now: () => 0,
  });
  call(failing, 'fail');
  t.is(failing.state, 'open');
  failing.reset();
  t.is(failing.state, 'closed');
  t.deepEqual(failing.toJSON(), { state: 'closed', window: { type: 'consecutive', failures: 0 } });
});

test('late outcomes of calls admitted before a transition are ignored', (t) => {
  const breaker = createCircuitBreaker({
    strategy: { type: 'consecutive', failures: 1 },
    now: () => 0,
  });
  const early = breaker.admit();
  breaker.isolate();
  breaker.reset();
  early.failure(new Error('stale'));
  t.is(breaker.state, 'closed');
  t.is(breaker.lastFailure, undefined);
});

test('toJSON and initialState: every state round-trips through JSON', (t) => {
  let now = 5_000;
  const options = {
    strategy: { type: 'consecutive', failures: 3 } as const,
    breakDuration: { strategy: 'exponential' as const, baseMs: 100, maxMs: 10_000 },
    now: () => now,
  };
  const breaker = createCircuitBreaker(options);
  call(breaker, 'fail');
  call(breaker, 'fail');
  const closed = JSON.parse(JSON.stringify(breaker)) as CircuitBreakerSnapshot;
  t.deepEqual(closed, { state: 'closed', window: { type: 'consecutive', failures: 2 } });
  const restoredClosed = createCircuitBreaker({ ...options, initialState: closed });
  call(restoredClosed, 'fail');
  t.is(restoredClosed.state, 'open', 'the restored count of 2 plus one more failure opens it');

  call(breaker, 'fail');
  now = 5_050;
  const open = JSON.parse(JSON.stringify(breaker)) as CircuitBreakerSnapshot;
  t.deepEqual(open, { state: 'open', openedAt: 5_000, until: 5_100, opens: 1 });
  const restoredOpen = createCircuitBreaker({ ...options, initialState: open });
  t.is(restoredOpen.state, 'open');
  t.like(call(restoredOpen, 'ok'), { retryAfterMs: 50 });
  now = 5_100;
  t.is(restoredOpen.state, 'half-open');
  call(restoredOpen, 'fail');
  t.deepEqual(
    restoredOpen.toJSON(),
    { state: 'open', openedAt: 5_100, until: 5_300, opens: 2 },
    'backoff resumed: 200 ms',
  );

  const half = createCircuitBreaker({ ...options, initialState: { state: 'half-open', opens: 2 } });
  t.is(half.state, 'half-open');
  call(half, 'fail');
  t.like(half.toJSON(), { state: 'open', until: now + 400, opens: 3 });

  const isolated = createCircuitBreaker({ ...options, initialState: { state: 'isolated' } });
  t.is(isolated.state, 'isolated');
  t.true(isIsolatedCircuitError(call(isolated, 'ok')));
  isolated.reset();
  t.is(isolated.state, 'closed');

  const count = createCircuitBreaker({
    strategy: { type: 'count', ratio: 0.6, size: 4 },
    now: () => now,
  });
  for (const o of ['ok', 'fail', 'ok', 'ok', 'fail']) call(count, o);
  const saved = count.toJSON();
  t.deepEqual(saved, {
    state: 'closed',
    window: { type: 'count', outcomes: [true, false, false, true] },
  });
  const restoredCount = createCircuitBreaker({
    strategy: { type: 'count', ratio: 0.6, size: 4 },
    initialState: saved,
  });
  t.deepEqual(restoredCount.toJSON(), saved);
  // a saved window of another strategy is ignored
  const other = createCircuitBreaker({
    strategy: { type: 'consecutive', failures: 2 },
    initialState: saved,
  });
  t.deepEqual(other.toJSON(), { state: 'closed', window: { type: 'consecutive', failures: 0 } });

  const time = createCircuitBreaker({
    strategy: { type: 'time', ratio: 0.5, windowMs: 1000 },
    now: () => now,
    initialState: {
      state: 'closed',
      window: { type: 'time', buckets: [{ start: now - 10, calls: 9, failures: 4 }] },
    },
  });
  call(time, 'fail');
  t.is(time.state, 'open', 'restored 4/9 plus one failure is 5/10');

  for (const bad of [
    { state: 'open', openedAt: 'x', until: 1, opens: 1 },
    { state: 'open', openedAt: 1, until: 2, opens: 0 },
    { state: 'half-open', opens: -1 },
    { state: 'melted' },
    null,
  ]) {
    t.throws(() => createCircuitBreaker({ initialState: bad as never }), {
      instanceOf: TypeError,
      message: /initialState/,
    });
  }
});

test('a scheduler makes state$ announce half-open on time; reset cancels that timer', (t) => {
  const scheduler = testScheduler(t);
  const breaker = createCircuitBreaker({
    strategy: { type: 'consecutive', failures: 1 },
    breakDuration: 30,
    scheduler,
  });
  const seen: CircuitBreakerTransition[] = [];
  breaker.state$.subscribe((x) => seen.push(x));
  scheduler.schedule(() => call(breaker, 'fail'), 5);
  scheduler.flush();
  t.deepEqual(
    seen.map((x) => [x.from, x.to, x.at]),
    [
      ['closed', 'open', 5],
      ['open', 'half-open', 35],
    ],
  );
  t.is((seen[0]!.error as Error).message, 'fail');
  t.is(seen[0]!.name, 'circuit-breaker');
  call(breaker, 'fail');
  t.is(scheduler.actions.length, 1);
  breaker.reset();
  t.is(scheduler.actions.length, 0, 'no timer once closed');
});

test('records transitions on hartonomous.circuit_breaker.transitions and logs breaker events', async (t) => {
  const { meter, sum } = collectingMeter();
  const { logger, lines } = memoryLogger();
  let now = 0;
  const breaker = createCircuitBreaker({
    name: 'embed',
    strategy: { type: 'consecutive', failures: 1 },
    breakDuration: 10,
    now: () => now,
    meter,
    logger,
  });
  call(breaker, 'fail');
  now = 10;
  call(breaker, 'ok');
  breaker.isolate().release();
  t.is(
    await sum('hartonomous.circuit_breaker.transitions', {
      'circuit_breaker.name': 'embed',
      'circuit_breaker.from': 'closed',
      'circuit_breaker.to': 'open',
    }),
    1,
  );
  t.is(
    await sum('hartonomous.circuit_breaker.transitions', {
      'circuit_breaker.name': 'embed',
      'circuit_breaker.from': 'open',
      'circuit_breaker.to': 'half-open',
    }),
    1,
  );
  t.is(
    await sum('hartonomous.circuit_breaker.transitions', {
      'circuit_breaker.name': 'embed',
      'circuit_breaker.from': 'half-open',
      'circuit_breaker.to': 'closed',
    }),
    1,
  );
  t.is(
    await sum('hartonomous.circuit_breaker.transitions', {
      'circuit_breaker.name': 'embed',
      'circuit_breaker.to': 'isolated',
    }),
    1,
  );
  t.is(
    await sum('hartonomous.circuit_breaker.transitions', { 'circuit_breaker.name': 'embed' }),
    5,
  );
  t.deepEqual(
    lines().map((l) => [l.eventId, l.event, l.from]),
    [
      [1204, 'breaker.opened', 'closed'],
      [1205, 'breaker.half_opened', 'open'],
      [1206, 'breaker.closed', 'half-open'],
      [1204, 'breaker.opened', 'closed'],
      [1206, 'breaker.closed', 'isolated'],
    ],
  );
  t.like(lines()[0], { name: 'embed', isolated: false, opens: 1, breakMs: 10 });
  t.like(lines()[3], { isolated: true });
});

test('breakDuration as a function receives the consecutive openings and the error', (t) => {
  let now = 0;
  const seen: Array<[number, string]> = [];
  const breaker = createCircuitBreaker({
    strategy: { type: 'consecutive', failures: 1 },
    breakDuration: ({ opens, error }) => {
      seen.push([opens, (error as Error).message]);
      return opens * 7;
    },
    now: () => now,
  });
  call(breaker, 'fail');
  now = 7;
  call(breaker, 'fail');
  t.deepEqual(breaker.toJSON(), { state: 'open', openedAt: 7, until: 21, opens: 2 });
  t.deepEqual(seen, [
    [1, 'fail'],
    [2, 'fail'],
  ]);
  const bad = createCircuitBreaker({
    strategy: { type: 'consecutive', failures: 1 },
    breakDuration: () => -1,
  });
  const err = call(bad, 'fail');
  t.true(err instanceof TypeError, 'a bad breakDuration result surfaces as a TypeError');
});

test('validates its options with TypeError', (t) => {
  const bad: unknown[] = [
    { strategy: { type: 'consecutive', failures: 0 } },
    { strategy: { type: 'count', ratio: 0, size: 5 } },
    { strategy: { type: 'count', ratio: 0.5, size: 0 } },
    { strategy: { type: 'count', ratio: 0.5, size: 5, minimumCalls: 6 } },
    { strategy: { type: 'time', ratio: 1.5, windowMs: 10 } },
    { strategy: { type: 'time', ratio: 0.5, windowMs: 0 } },
    { strategy: { type: 'time', ratio: 0.5, windowMs: 10, buckets: 0 } },
    { strategy: { type: 'time', ratio: 0.5, windowMs: 10, minimumThroughput: 0 } },
    { strategy: { type: 'nope' } },
    { breakDuration: -1 },
    { breakDuration: { strategy: 'exponential', baseMs: -5 } },
    { halfOpenCalls: 0 },
    { halfOpenMaxFailureRatio: 1 },
    { handle: 'x' },
    { now: 5 },
  ];
  for (const options of bad) {
    t.throws(
      () => createCircuitBreaker(options as never),
      { instanceOf: TypeError },
      JSON.stringify(options),
    );
  }
  t.throws(() => createCircuitBreaker(0), { instanceOf: TypeError });
  t.throws(() => circuitBreaker({} as never), { instanceOf: TypeError });
  t.is(createCircuitBreaker(3).state, 'closed');
  t.true(isBrokenCircuitError(new BrokenCircuitError('x', 'open', 1)));
  t.false(isBrokenCircuitError(new IsolatedCircuitError('x')));
  t.deepEqual(new BrokenCircuitError('x', 'open', 5).toJSON(), {
    name: 'BrokenCircuitError',
    code: 'BROKEN_CIRCUIT',
    message: "circuit breaker 'x' is open",
    breaker: 'x',
    state: 'open',
    retryAfterMs: 5,
  });
});

test('a shared breaker guards many calls: retry inside sees one outcome per logical call', (t) => {
  const scheduler = testScheduler(t);
  const breaker = createCircuitBreaker({
    strategy: { type: 'consecutive', failures: 3 },
    now: () => scheduler.now(),
  });
  let attempts = 0;
  const logical = defer(() => {
    attempts++;
    return throwError(() => new Error('down'));
  });
  // imported lazily to keep this file about the breaker
  return import('../../lib/operators/retry.js').then(({ retry }) => {
    for (let i = 0; i < 2; i++) {
      logical
        .pipe(
          retry({ maxAttempts: 4, backoff: 'constant', baseDelayMs: 1, scheduler }),
          circuitBreaker(breaker),
        )
        .subscribe({ error: () => {} });
    }
    scheduler.flush();
    t.is(attempts, 8);
    t.is(breaker.state, 'closed', '2 logical failures < 3 even though 8 attempts failed');
  });
});
