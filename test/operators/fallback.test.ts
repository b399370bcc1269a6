import test from 'ava';
import { expectTypeOf } from 'expect-type';
import {
  lastValueFrom,
  type MonoTypeOperatorFunction,
  type Observable,
  of,
  throwError,
  toArray,
} from 'rxjs';
import { fromWork } from '../../lib/core/from-work.js';
import {
  circuitBreaker,
  createCircuitBreaker,
  isBrokenCircuitError,
} from '../../lib/operators/circuit-breaker.js';
import { type FallbackEvent, fallback } from '../../lib/operators/fallback.js';
import { policy } from '../../lib/operators/policy.js';
import { memoryLogger } from '../support/telemetry.js';
import { collectingMeter, testScheduler } from './_resilience.js';

test('marbles: a value replaces the error; values before it are kept', (t) => {
  testScheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
    const source = cold('a-#');
    expectObservable(source.pipe(fallback('z'))).toBe('a-(z|)');
    expectSubscriptions(source.subscriptions).toBe('^-!');
  });
});

test('marbles: a factory gets the error and may switch to an Observable', (t) => {
  testScheduler(t).run(({ cold, expectObservable }) => {
    const seen: unknown[] = [];
    const out = cold('-#', undefined, 'boom').pipe(
      fallback((e) => {
        seen.push(e);
        return cold('--x|');
      }),
    );
    expectObservable(out).toBe('---x|');
    expectObservable(cold('-a|').pipe(fallback('never used'))).toBe('-a|');
    t.pass();
    void seen;
  });
});

test('a factory may return a promise or a plain value; arrays and functions are values', async (t) => {
  const fail = () => throwError(() => new Error('down'));
  t.is(await lastValueFrom(fail().pipe(fallback(() => Promise.resolve(7)))), 7);
  t.is(await lastValueFrom(fail().pipe(fallback((e) => (e as Error).message))), 'down');
  t.deepEqual(await lastValueFrom(fail().pipe(fallback<number[]>([1, 2]), toArray())), [[1, 2]]);
  const fn = () => 1;
  t.is(await lastValueFrom(fail().pipe(fallback<() => number>(() => fn))), fn);
  await t.throwsAsync(
    lastValueFrom(fail().pipe(fallback(() => Promise.reject(new Error('also down'))))),
    {
      message: 'also down',
    },
  );
});

test('handle: errors it does not handle pass through untouched', async (t) => {
  class Transient extends Error {}
  const bad = new TypeError('bad');
  await t.throwsAsync(
    lastValueFrom(throwError(() => bad).pipe(fallback(0, { handle: [Transient] }))),
    { is: bad },
  );
  t.is(
    await lastValueFrom(
      throwError(() => new Transient('x')).pipe(fallback(0, { handle: [Transient] })),
    ),
    0,
  );
  t.is(
    await lastValueFrom(throwError(() => 'x').pipe(fallback(1, { handle: (e) => e === 'x' }))),
    1,
  );
  t.throws(() => fallback(0, { handle: {} as never }), {
    instanceOf: TypeError,
    message: /handle/,
  });
  t.throws(() => fallback(0, null as never), { instanceOf: TypeError });
});

test('outermost, it also covers an open breaker', async (t) => {
  const breaker = createCircuitBreaker({ strategy: { type: 'consecutive', failures: 1 } });
  breaker.isolate();
  let started = false;
  const price = await lastValueFrom(
    fromWork(() => {
      started = true;
      return 100;
    }).pipe(circuitBreaker(breaker), fallback(42)),
  );
  t.is(price, 42);
  t.false(started);
  breaker.reset();
  const open = createCircuitBreaker({
    strategy: { type: 'consecutive', failures: 1 },
    now: () => 0,
  });
  await lastValueFrom(throwError(() => new Error('x')).pipe(circuitBreaker(open), fallback(0)));
  t.is(
    await lastValueFrom(
      of(5).pipe(circuitBreaker(open), fallback(-1, { handle: isBrokenCircuitError })),
    ),
    -1,
  );
});

test('counts uses on hartonomous.fallbacks, logs fallback.used and reports events', async (t) => {
  const { meter, sum } = collectingMeter();
  const { logger, lines } = memoryLogger();
  const events: FallbackEvent[] = [];
  const options = { name: 'price', meter, logger, onEvent: (e: FallbackEvent) => events.push(e) };
  const err = new Error('down');
  await lastValueFrom(throwError(() => err).pipe(fallback(0, options)));
  await lastValueFrom(of(1).pipe(fallback(0, options)));
  t.is(await sum('hartonomous.fallbacks', { 'fallback.name': 'price' }), 1);
  t.deepEqual(events, [{ type: 'fallback', name: 'price', error: err }]);
  t.deepEqual(
    lines().map((l) => [l.eventId, l.event, l.name, (l.error as { message: string }).message]),
    [[1209, 'fallback.used', 'price', 'down']],
  );
});

test('types: same-type fallback is a MonoTypeOperatorFunction; another type widens', (t) => {
  const n$ = of(1);
  expectTypeOf(fallback<number>(0)).toEqualTypeOf<MonoTypeOperatorFunction<number>>();
  expectTypeOf(n$.pipe(fallback(0))).toEqualTypeOf<Observable<number>>();
  expectTypeOf(n$.pipe(fallback(() => Promise.resolve(0)))).toEqualTypeOf<Observable<number>>();
  expectTypeOf(n$.pipe(fallback(null))).toEqualTypeOf<Observable<number | null>>();
  expectTypeOf(n$.pipe(fallback(() => of('x')))).toEqualTypeOf<Observable<string | number>>();
  expectTypeOf(n$.pipe(fallback<number, null>(null))).toEqualTypeOf<Observable<number | null>>();
  const steps: MonoTypeOperatorFunction<number>[] = [fallback(0), fallback<number>(1)];
  expectTypeOf(policy(...steps)).toEqualTypeOf<MonoTypeOperatorFunction<number>>();
  t.pass();
});
