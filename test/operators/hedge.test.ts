import test from 'ava';
import { defer, identity, lastValueFrom, NEVER, type Observable } from 'rxjs';
import { isCancelledError } from '../../lib/core/errors.js';
import { fromWork } from '../../lib/core/from-work.js';
import { type HedgeEvent, hedge } from '../../lib/operators/hedge.js';
import { memoryLogger } from '../support/telemetry.js';
import { collectingMeter, testScheduler } from './_resilience.js';

/** A cold source whose n-th subscription is the n-th observable given. */
const attempts = <T>(...list: Observable<T>[]): Observable<T> => {
  let n = 0;
  return defer(() => list[n++] ?? NEVER);
};

test('marbles: a slow first attempt is hedged after delayMs; the first value wins, the loser is unsubscribed', (t) => {
  testScheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
    const slow = cold('-----a|');
    const fast = cold('-b|');
    expectObservable(attempts(slow, fast).pipe(hedge(2))).toBe('3ms b|');
    expectSubscriptions(slow.subscriptions).toBe('^--!');
    expectSubscriptions(fast.subscriptions).toBe('2ms ^-!');
  });
});

test('marbles: an answer before delayMs starts no hedge', (t) => {
  testScheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
    const quick = cold('-a|');
    const spare = cold('b|');
    expectObservable(attempts(quick, spare).pipe(hedge(5))).toBe('-a|');
    expectSubscriptions(spare.subscriptions).toBe([]);
  });
});

test('marbles: a failure with nothing pending starts the next hedge at once', (t) => {
  testScheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
    const broken = cold('-#');
    const second = cold('--b|');
    expectObservable(attempts(broken, second).pipe(hedge(10))).toBe('3ms b|');
    expectSubscriptions(second.subscriptions).toBe('1ms ^--!');
  });
});

test('marbles: a failure while another attempt is pending waits for it', (t) => {
  testScheduler(t).run(({ cold, expectObservable }) => {
    const first = cold('---#');
    const second = cold('---b|');
    expectObservable(attempts(first, second).pipe(hedge(2))).toBe('5ms b|');
  });
});

test('marbles: errors only when every attempt failed, with the last error', (t) => {
  testScheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
    const a0 = cold('-----#', undefined, 'e0');
    const a1 = cold('--#', undefined, 'e1');
    const a2 = cold('---#', undefined, 'e2');
    // a0 at 0 (fails at 5), a1 at 2 (fails at 4), a2 at 4 (fails at 7)
    expectObservable(attempts(a0, a1, a2).pipe(hedge({ delayMs: 2, maxHedges: 2 }))).toBe(
      '7ms #',
      undefined,
      'e2',
    );
    expectSubscriptions(a0.subscriptions).toBe('^----!');
    expectSubscriptions(a1.subscriptions).toBe('2ms ^-!');
    expectSubscriptions(a2.subscriptions).toBe('4ms ^--!');
  });
});

test('marbles: delayMs as a function spaces the hedges; maxHedges bounds them', (t) => {
  testScheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
    const a = cold('----------a|');
    const b = cold('----------b|');
    const c = cold('--c|');
    const d = cold('d|');
    const out = attempts(a, b, c, d).pipe(hedge({ delayMs: (h) => h * 2, maxHedges: 2 }));
    // hedge 1 after 2 ms (at 2), hedge 2 after 4 more (at 6): c wins at 8
    expectObservable(out).toBe('8ms c|');
    expectSubscriptions(a.subscriptions).toBe('^-------!');
    expectSubscriptions(b.subscriptions).toBe('2ms ^-----!');
    expectSubscriptions(c.subscriptions).toBe('6ms ^--!');
    expectSubscriptions(d.subscriptions).toBe([]);
  });
});

test('marbles: an error not handled ends the call at once and cancels the others', (t) => {
  testScheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
    class Transient extends Error {}
    const bad = new TypeError('bad request');
    const a = cold('------a|');
    const b = cold('-#', undefined, bad);
    expectObservable(attempts(a, b).pipe(hedge({ delayMs: 2, handle: [Transient] }))).toBe(
      '3ms #',
      undefined,
      bad,
    );
    expectSubscriptions(a.subscriptions).toBe('^--!');
  });
});

test('marbles: the winner keeps streaming; a completion without value also wins', (t) => {
  testScheduler(t).run(({ cold, expectObservable }) => {
    expectObservable(attempts(cold('----a-b|'), cold('-x-y|')).pipe(hedge(1))).toBe('--x-y|');
    expectObservable(attempts(cold('----a|'), cold('-|')).pipe(hedge(1))).toBe('--|');
  });
});

test('with fromWork the losing attempt`s AbortSignal aborts', async (t) => {
  const signals: AbortSignal[] = [];
  const value = await lastValueFrom(
    fromWork((signal) => {
      signals.push(signal);
      return signals.length === 1 ? new Promise<string>(() => {}) : Promise.resolve('second');
    }).pipe(hedge(5)),
  );
  t.is(value, 'second');
  t.is(signals.length, 2);
  t.true(signals[0]!.aborted);
  t.true(isCancelledError(signals[0]!.reason));
  t.false(signals[1]!.aborted);
});

test('unsubscribing cancels every attempt and the hedge timer', (t) => {
  const scheduler = testScheduler(t);
  const signals: AbortSignal[] = [];
  const s = fromWork((signal) => {
    signals.push(signal);
    return new Promise<never>(() => {});
  })
    .pipe(hedge({ delayMs: 10, maxHedges: 2, scheduler }))
    .subscribe();
  scheduler.flush();
  t.is(signals.length, 3);
  s.unsubscribe();
  t.true(signals.every((x) => x.aborted));
  const s2 = NEVER.pipe(hedge({ delayMs: 10, scheduler })).subscribe();
  t.is(scheduler.actions.length, 1);
  s2.unsubscribe();
  t.is(scheduler.actions.length, 0);
});

test('counts hedged attempts, logs hedge.started and reports events', async (t) => {
  const { meter, sum } = collectingMeter();
  const { logger, lines } = memoryLogger();
  const events: HedgeEvent[] = [];
  testScheduler(t).run(({ cold, expectObservable }) => {
    const out = attempts(cold('-#'), cold('---a|'), cold('a|')).pipe(
      hedge({
        delayMs: 2,
        maxHedges: 2,
        name: 'read',
        meter,
        logger,
        onEvent: (e) => events.push(e),
      }),
    );
    // a0 fails at 1 -> hedge 1 at once; hedge 2 at 3 (2 after hedge 1) wins at 3
    expectObservable(out).toBe('3ms a|');
  });
  t.is(await sum('hartonomous.hedge.attempts', { 'hedge.name': 'read' }), 2);
  t.deepEqual(events, [
    { type: 'hedge', name: 'read', hedge: 1, reason: 'failure' },
    { type: 'hedge', name: 'read', hedge: 2, reason: 'delay' },
  ]);
  t.deepEqual(
    lines().map((l) => [l.eventId, l.event, l.hedge, l.reason]),
    [
      [1210, 'hedge.started', 1, 'failure'],
      [1210, 'hedge.started', 2, 'delay'],
    ],
  );
});

test('validates its options; maxHedges 0 is identity', (t) => {
  t.is(hedge({ delayMs: 5, maxHedges: 0 }), identity);
  for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    t.throws(() => hedge(bad), { instanceOf: TypeError, message: /delayMs/ });
  }
  t.throws(() => hedge({ delayMs: 1, maxHedges: -1 }), {
    instanceOf: TypeError,
    message: /maxHedges/,
  });
  t.throws(() => hedge({ delayMs: 1, maxHedges: 1.5 }), { instanceOf: TypeError });
  t.throws(() => hedge({ delayMs: 1, handle: 3 as never }), {
    instanceOf: TypeError,
    message: /handle/,
  });
  t.throws(() => hedge(null as never), { instanceOf: TypeError });
  const errors: unknown[] = [];
  NEVER.pipe(hedge({ delayMs: () => -1 })).subscribe({ error: (e: unknown) => errors.push(e) });
  t.true(errors[0] instanceof TypeError, 'a bad delay function errors the call');
});
