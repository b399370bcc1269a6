import test from 'ava';
import fc from 'fast-check';
import { lastValueFrom, Observable, of, Subject } from 'rxjs';
import { isCancelledError } from '../../lib/core/errors.js';
import { fromWork } from '../../lib/core/from-work.js';
import {
  type BulkheadEvent,
  BulkheadRejectedError,
  bulkhead,
  createBulkhead,
  isBulkheadRejectedError,
} from '../../lib/operators/bulkhead.js';
import { memoryLogger } from '../support/telemetry.js';
import { collectingMeter, testScheduler } from './_resilience.js';

test('marbles: runs `limit` at once, queues `queue` FIFO, rejects the rest without subscribing', (t) => {
  testScheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
    const slots = createBulkhead({ limit: 2, queue: 1, name: 'api' });
    const a = cold('---a|');
    const b = cold('-----b|');
    const c = cold('-c|');
    const d = cold('d|');
    expectObservable(a.pipe(bulkhead(slots))).toBe('---a|');
    expectObservable(b.pipe(bulkhead(slots))).toBe('-----b|');
    expectObservable(c.pipe(bulkhead(slots))).toBe('5ms c|'); // waits for a's slot (freed at 4)
    expectObservable(d.pipe(bulkhead(slots))).toBe(
      '#',
      undefined,
      new BulkheadRejectedError('api', 2, 1),
    );
    expectSubscriptions(a.subscriptions).toBe('^---!');
    expectSubscriptions(b.subscriptions).toBe('^-----!');
    expectSubscriptions(c.subscriptions).toBe('4ms ^-!');
    expectSubscriptions(d.subscriptions).toBe([]);
  });
});

test('marbles: unsubscribing a waiting call removes it from the queue', (t) => {
  testScheduler(t).run(({ cold, expectObservable, expectSubscriptions }) => {
    const slots = createBulkhead({ limit: 1, queue: 2 });
    const a = cold('----a|');
    const b = cold('b|');
    const c = cold('c|');
    expectObservable(a.pipe(bulkhead(slots))).toBe('----a|');
    expectObservable(b.pipe(bulkhead(slots)), '^-!').toBe('---'); // gives up waiting at 2
    expectObservable(c.pipe(bulkhead(slots))).toBe('5ms c|'); // a's slot is free at 5
    expectSubscriptions(b.subscriptions).toBe([]);
    expectSubscriptions(c.subscriptions).toBe('5ms ^!');
  });
});

test('active and queued getters; errors free the slot; unsubscribing aborts running work', async (t) => {
  const slots = createBulkhead({ limit: 1, queue: 5 });
  const signals: AbortSignal[] = [];
  const hang = () =>
    fromWork(
      (signal) =>
        new Promise<never>(() => {
          signals.push(signal);
        }),
    ).pipe(bulkhead(slots));
  const first = hang().subscribe();
  const second = hang().subscribe();
  t.deepEqual([slots.active, slots.queued], [1, 1]);
  t.is(signals.length, 1, 'the second work has not started');
  first.unsubscribe();
  t.true(signals[0]!.aborted);
  t.true(isCancelledError(signals[0]!.reason));
  t.is(signals.length, 2, 'the freed slot went to the waiting call');
  t.deepEqual([slots.active, slots.queued], [1, 0]);
  second.unsubscribe();
  t.deepEqual([slots.active, slots.queued], [0, 0]);

  const boom = new Error('boom');
  await t.throwsAsync(
    lastValueFrom(
      fromWork(async () => {
        throw boom;
      }).pipe(bulkhead(slots)),
    ),
    { is: boom },
  );
  t.is(slots.active, 0, 'an error releases the slot');
});

test('keyed: each key has its own limit and queue; idle keys are dropped', (t) => {
  const slots = createBulkhead({ limit: 1, queue: 1, keyed: true, name: 'tenants' });
  const gates = new Map<string, Subject<void>>();
  const work = (key: string, id: string) =>
    new Observable<string>((s) => {
      const gate = new Subject<void>();
      gates.set(id, gate);
      const sub = gate.subscribe(() => {
        s.next(id);
        s.complete();
      });
      return () => sub.unsubscribe();
    }).pipe(bulkhead(slots, () => key));
  const results: unknown[] = [];
  const track = (o: Observable<string>) =>
    o.subscribe({ next: (v) => results.push(v), error: (e) => results.push(e) });
  track(work('a', 'a1'));
  track(work('a', 'a2'));
  track(work('a', 'a3'));
  track(work('b', 'b1'));
  t.is(slots.keys, 2);
  t.deepEqual(slots.stats('a'), { active: 1, queued: 1 });
  t.deepEqual(slots.stats('b'), { active: 1, queued: 0 });
  t.deepEqual(slots.stats('c'), { active: 0, queued: 0 });
  t.deepEqual([slots.active, slots.queued], [2, 1]);
  t.true(isBulkheadRejectedError(results[0]));
  t.like(results[0] as BulkheadRejectedError, {
    bulkhead: 'tenants',
    key: 'a',
    limit: 1,
    queue: 1,
  });
  gates.get('a1')!.next();
  gates.get('b1')!.next();
  t.is(slots.keys, 1, 'b is idle and forgotten');
  gates.get('a2')!.next();
  t.is(slots.keys, 0);
  t.deepEqual(results.slice(1), ['a1', 'b1', 'a2']);

  t.throws(() => bulkhead(slots), { instanceOf: TypeError, message: /keyed/ });
  t.throws(() => bulkhead(createBulkhead(1), 'k'), { instanceOf: TypeError, message: /not keyed/ });
  t.throws(() => slots.enter(), { instanceOf: TypeError });
});

test('a long queue of synchronous work drains without deep recursion', (t) => {
  const slots = createBulkhead({ limit: 1, queue: Number.POSITIVE_INFINITY });
  const gate = new Subject<number>();
  new Observable<number>((s) => gate.subscribe(s)).pipe(bulkhead(slots)).subscribe();
  const results: number[] = [];
  for (let i = 0; i < 20_000; i++)
    of(i)
      .pipe(bulkhead(slots))
      .subscribe((v) => results.push(v));
  t.is(slots.queued, 20_000);
  gate.complete();
  t.is(results.length, 20_000);
  t.deepEqual(results.slice(0, 3), [0, 1, 2], 'FIFO');
  t.is(slots.queued, 0);
});

test('metrics: queue depth and rejections; logs and events on rejection', async (t) => {
  const { meter, sum } = collectingMeter();
  const { logger, lines } = memoryLogger();
  const events: BulkheadEvent[] = [];
  const slots = createBulkhead({
    limit: 1,
    queue: 2,
    name: 'db',
    meter,
    logger,
    onEvent: (e) => events.push(e),
  });
  const gate = new Subject<number>();
  const blocked = () => new Observable<number>((s) => gate.subscribe(s)).pipe(bulkhead(slots));
  const subs = [0, 1, 2, 3, 4].map(() => blocked().subscribe({ error: () => {} }));
  t.is(await sum('hartonomous.bulkhead.queued', { 'bulkhead.name': 'db' }), 2);
  t.is(await sum('hartonomous.bulkhead.rejections', { 'bulkhead.name': 'db' }), 2);
  subs[1]!.unsubscribe();
  t.is(await sum('hartonomous.bulkhead.queued', { 'bulkhead.name': 'db' }), 1);
  gate.complete();
  t.is(await sum('hartonomous.bulkhead.queued', { 'bulkhead.name': 'db' }), 0);
  t.deepEqual(events, [
    { type: 'rejected', name: 'db' },
    { type: 'rejected', name: 'db' },
  ]);
  t.deepEqual(
    lines().map((l) => [l.eventId, l.event, l.name, l.limit, l.queue]),
    [
      [1207, 'bulkhead.rejected', 'db', 1, 2],
      [1207, 'bulkhead.rejected', 'db', 1, 2],
    ],
  );
});

test('validates its options with TypeError', (t) => {
  for (const bad of [0, -1, 1.5, Number.NaN])
    t.throws(() => createBulkhead(bad), { instanceOf: TypeError });
  t.throws(() => createBulkhead({ limit: 1, queue: -1 }), {
    instanceOf: TypeError,
    message: /queue/,
  });
  t.throws(() => createBulkhead({ limit: 1, queue: 0.5 }), {
    instanceOf: TypeError,
    message: /queue/,
  });
  t.throws(() => createBulkhead(null as never), { instanceOf: TypeError });
  t.throws(() => bulkhead({} as never), { instanceOf: TypeError });
  const defaults = createBulkhead(3);
  t.deepEqual(
    [defaults.limit, defaults.queue, defaults.keyed, defaults.name],
    [3, 0, false, 'bulkhead'],
  );
  t.is(
    new BulkheadRejectedError('x', 1, 0, 'k').message,
    "bulkhead 'x' (key 'k') is full: 1 running and 0 queued",
  );
});

interface Arrival {
  at: number;
  duration: number;
  key: number;
  cancelAfter: number | null;
}

const arrivals = fc.array(
  fc.record({
    at: fc.integer({ min: 0, max: 60 }),
    duration: fc.integer({ min: 1, max: 25 }),
    key: fc.integer({ min: 0, max: 2 }),
    cancelAfter: fc.option(fc.integer({ min: 0, max: 30 }), { nil: null }),
  }),
  { maxLength: 40 },
);

/** Simulates arrivals in virtual time; returns per-key max concurrency and other facts. */
function simulate(
  t: Parameters<typeof testScheduler>[0],
  limit: number,
  queue: number,
  calls: Arrival[],
  keyed: boolean,
) {
  const scheduler = testScheduler(t);
  const slots = createBulkhead({ limit, queue, keyed });
  const active = new Map<number, number>();
  const maxActive = new Map<number, number>();
  let violations = 0;
  const startOrder: number[] = [];
  const queuedOrder: number[] = [];
  let completed = 0;
  let rejected = 0;
  let cancelled = 0;
  calls.forEach((c, i) => {
    const k = keyed ? c.key : 0;
    scheduler.schedule(() => {
      const work = new Observable<number>((s) => {
        active.set(k, (active.get(k) ?? 0) + 1);
        maxActive.set(k, Math.max(maxActive.get(k) ?? 0, active.get(k)!));
        startOrder.push(i);
        const h = scheduler.schedule(() => {
          s.next(i);
          s.complete();
        }, c.duration);
        return () => {
          active.set(k, active.get(k)! - 1);
          h.unsubscribe();
        };
      });
      const before = keyed ? slots.stats(String(k)) : slots.stats();
      const sub = work.pipe(keyed ? bulkhead(slots, String(k)) : bulkhead(slots)).subscribe({
        complete: () => completed++,
        error: (e: unknown) => {
          rejected++;
          // rejected only when the lane was really full
          if (!isBulkheadRejectedError(e) || before.active !== limit || before.queued !== queue)
            violations++;
        },
      });
      if (!sub.closed && !startOrder.includes(i)) queuedOrder.push(i);
      if (c.cancelAfter !== null) {
        scheduler.schedule(() => {
          if (!sub.closed) {
            cancelled++;
            sub.unsubscribe();
          }
        }, c.cancelAfter);
      }
    }, c.at);
  });
  scheduler.flush();
  return {
    slots,
    maxActive,
    active,
    violations,
    startOrder,
    queuedOrder,
    completed,
    rejected,
    cancelled,
  };
}

test('property: bulkhead concurrency never exceeds its limit; FIFO; every call is accounted for', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 0, max: 4 }),
      arrivals,
      (limit, queue, calls) => {
        const r = simulate(t, limit, queue, calls, false);
        const max = r.maxActive.get(0) ?? 0;
        const startedFromQueue = r.startOrder.filter((i) => r.queuedOrder.includes(i));
        const queuedThatStarted = r.queuedOrder.filter((i) => r.startOrder.includes(i));
        return (
          max <= limit &&
          r.violations === 0 &&
          r.completed + r.rejected + r.cancelled === calls.length &&
          (r.active.get(0) ?? 0) === 0 &&
          r.slots.active === 0 &&
          r.slots.queued === 0 &&
          JSON.stringify(startedFromQueue) === JSON.stringify(queuedThatStarted)
        );
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});

test('property: a keyed bulkhead never exceeds the per-key limit and forgets idle keys', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 0, max: 3 }),
      arrivals,
      (limit, queue, calls) => {
        const r = simulate(t, limit, queue, calls, true);
        for (const max of r.maxActive.values()) if (max > limit) return false;
        return r.violations === 0 && r.slots.keys === 0 && r.slots.active === 0;
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});
