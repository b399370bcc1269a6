import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import test from 'ava';
import fc from 'fast-check';
import { asyncScheduler, from, lastValueFrom, range, Subject, take, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { batch } from '../../lib/operators/batch.js';

class TestReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

const testScheduler = (t: { deepEqual: (a: unknown, b: unknown) => void }) =>
  new TestScheduler((actual, expected) => t.deepEqual(actual, expected));

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

test('validates its options with TypeError', (t) => {
  for (const bad of [0, -1, 1.5, Number.NaN]) {
    t.throws(() => batch(bad), { instanceOf: TypeError, message: /size/ });
  }
  t.throws(() => batch({}), { instanceOf: TypeError, message: /at least one/ });
  t.throws(() => batch({ timeMs: 0 }), { instanceOf: TypeError, message: /timeMs/ });
  t.throws(() => batch({ timeMs: Number.POSITIVE_INFINITY }), { instanceOf: TypeError });
  t.throws(() => batch({ maxWeight: 0 }), { instanceOf: TypeError, message: /maxWeight/ });
  t.throws(() => batch<string>({ size: 3, weight: (s) => s.length }), {
    instanceOf: TypeError,
    message: /weight needs maxWeight/,
  });
  t.throws(() => batch({ size: 3, weight: 3 as never, maxWeight: 3 }), { instanceOf: TypeError });
  t.throws(() => batch({ size: 3, scheduler: {} as never }), { instanceOf: TypeError });
  t.throws(() => batch({ size: 3, name: '' }), { instanceOf: TypeError });
  t.throws(() => batch(null as never), { instanceOf: TypeError });
  t.notThrows(() => batch({ maxWeight: 10 }));
  t.notThrows(() => batch({ timeMs: 5 }));
});

test('flushes by count and emits the partial batch on completion', (t) => {
  testScheduler(t).run(({ cold, expectObservable }) => {
    const source = cold('a-b-c-d-e-|');
    expectObservable(source.pipe(batch(2))).toBe('--x---y---(z|)', {
      x: ['a', 'b'],
      y: ['c', 'd'],
      z: ['e'],
    });
  });
});

test('flushes timeMs after the FIRST item of the batch, not after the last one', (t) => {
  testScheduler(t).run(({ cold, expectObservable }) => {
    // items at 0,2,4 ms; a 5 ms window opened at 0 closes at 5 with three items;
    // the next item at 9 opens a window closing at 14
    const source = cold('a-b-c----d---------|');
    expectObservable(source.pipe(batch({ size: 10, timeMs: 5 }))).toBe('-----x--------y----|', {
      x: ['a', 'b', 'c'],
      y: ['d'],
    });
  });
});

test('an idle stream emits no empty batches', (t) => {
  testScheduler(t).run(({ cold, expectObservable }) => {
    const source = cold('a 50ms b 50ms |');
    expectObservable(source.pipe(batch({ timeMs: 10 }))).toBe('10ms x 50ms y 40ms |', {
      x: ['a'],
      y: ['b'],
    });
  });
});

test('a size flush restarts the time window at the next item', (t) => {
  testScheduler(t).run(({ cold, expectObservable }) => {
    const source = cold('ab--c-------|');
    expectObservable(source.pipe(batch({ size: 2, timeMs: 3 }))).toBe('-x-----y----|', {
      x: ['a', 'b'],
      y: ['c'],
    });
  });
});

test('on error the partial batch is emitted, then the error', (t) => {
  testScheduler(t).run(({ cold, expectObservable }) => {
    const source = cold('a-b-c-#', undefined, new Error('boom'));
    expectObservable(source.pipe(batch(2))).toBe(
      '--x---(y#)',
      { x: ['a', 'b'], y: ['c'] },
      new Error('boom'),
    );
  });
});

test('an error with nothing batched emits no empty batch', (t) => {
  testScheduler(t).run(({ cold, expectObservable }) => {
    expectObservable(cold('a-b-#').pipe(batch(2))).toBe('--x-#', { x: ['a', 'b'] });
    expectObservable(cold('|').pipe(batch(2))).toBe('|');
  });
});

test('flushes before an item would exceed maxWeight, and when the weight is reached', (t) => {
  testScheduler(t).run(({ cold, expectObservable }) => {
    const weights: Record<string, number> = { a: 3, b: 4, c: 4, d: 2, e: 1 };
    const source = cold('a-b-c-d-e-|');
    // a(3)+b(4)=7; c would make 11>10 -> flush [a,b]; c(4)+d(2)=6; e(1)=7; complete
    expectObservable(
      source.pipe(batch({ weight: (x: string) => weights[x] ?? 0, maxWeight: 10 })),
    ).toBe('----x-----(y|)', { x: ['a', 'b'], y: ['c', 'd', 'e'] });
    // reaching the limit exactly flushes at once
    expectObservable(cold('a-b-|').pipe(batch({ weight: () => 5, maxWeight: 10 }))).toBe('--x-|', {
      x: ['a', 'b'],
    });
  });
});

test('an item heavier than maxWeight goes in a batch of its own', (t) => {
  testScheduler(t).run(({ cold, expectObservable }) => {
    const weights: Record<string, number> = { a: 1, H: 50, b: 1 };
    const source = cold('a-H-b-|');
    expectObservable(
      source.pipe(batch({ weight: (x: string) => weights[x] ?? 0, maxWeight: 10 })),
    ).toBe('--(xy)(z|)', { x: ['a'], y: ['H'], z: ['b'] });
  });
});

test('a bad weight errors the stream after emitting the items batched so far', (t) => {
  testScheduler(t).run(({ cold, expectObservable }) => {
    const source = cold('a-b-|');
    const weight = (x: string) => (x === 'b' ? -1 : 1);
    expectObservable(source.pipe(batch({ weight, maxWeight: 10 }))).toBe(
      '--(x#)',
      { x: ['a'] },
      new TypeError('batch: weight(item) must be a finite number >= 0, got -1'),
    );
  });
});

test('unsubscribing cancels the pending time flush', (t) => {
  testScheduler(t).run(({ cold, expectObservable }) => {
    const source = cold('a---------|');
    expectObservable(source.pipe(batch({ timeMs: 5 })), '^-!').toBe('---');
  });
});

test('no real timer is left after completion, error or unsubscribe', async (t) => {
  const before = timers();
  const subject = new Subject<number>();
  const sub = subject.pipe(batch({ size: 10, timeMs: 60_000 })).subscribe();
  subject.next(1);
  t.is(timers(), before + 1, 'the first item started a timer');
  sub.unsubscribe();
  t.is(timers(), before, 'unsubscribe cleared it');

  const completing = new Subject<number>();
  const seen: number[][] = [];
  completing.pipe(batch({ size: 10, timeMs: 60_000 })).subscribe((b) => seen.push(b));
  completing.next(1);
  completing.complete();
  t.is(timers(), before);
  t.deepEqual(seen, [[1]]);

  const failing = new Subject<number>();
  failing
    .pipe(batch({ size: 10, timeMs: 60_000 }))
    .subscribe({ next: (b) => seen.push(b), error: () => {} });
  failing.next(2);
  failing.error(new Error('x'));
  t.is(timers(), before);
  t.deepEqual(seen, [[1], [2]]);

  const sized = new Subject<number>();
  sized.pipe(batch({ size: 1, timeMs: 60_000 })).subscribe();
  sized.next(1);
  t.is(timers(), before, 'a size flush cancels the timer');
});

test('a real-time flush happens with the default scheduler', async (t) => {
  const subject = new Subject<number>();
  const first = lastValueFrom(subject.pipe(batch({ timeMs: 5 }), take(1)));
  subject.next(1);
  subject.next(2);
  t.deepEqual(await first, [1, 2]);
});

test('stops an endless synchronous source when the subscriber leaves', async (t) => {
  function* naturals() {
    for (let i = 0; ; i++) yield i;
  }
  const batches = await lastValueFrom(from(naturals()).pipe(batch(3), take(2), toArray()));
  t.deepEqual(batches, [
    [0, 1, 2],
    [3, 4, 5],
  ]);
});

test('records each batch length in hartonomous.batch.size', async (t) => {
  const reader = new TestReader();
  const meter = new MeterProvider({ readers: [reader] }).getMeter('batch-test');
  await lastValueFrom(range(0, 10).pipe(batch({ size: 4, meter, name: 'embed' })));
  const { resourceMetrics } = await reader.collect();
  const metric = resourceMetrics.scopeMetrics
    .flatMap((s) => s.metrics)
    .find((m) => m.descriptor.name === 'hartonomous.batch.size');
  const point = metric?.dataPoints[0] as
    | { attributes: Record<string, unknown>; value: { count: number; sum: number } }
    | undefined;
  t.deepEqual(point?.attributes, { 'batch.name': 'embed' });
  t.is(point?.value.count, 3);
  t.is(point?.value.sum, 10);
});

test('never loses, duplicates or reorders items; batches are non-empty and within limits (property)', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 0, max: 12 }), { maxLength: 200 }),
      fc.option(fc.integer({ min: 1, max: 10 }), { nil: undefined }),
      fc.option(fc.integer({ min: 1, max: 30 }), { nil: undefined }),
      fc.boolean(),
      async (input, size, maxWeight, fail) => {
        if (size === undefined && maxWeight === undefined) size = 3;
        const options =
          maxWeight === undefined ? { size } : { size, maxWeight, weight: (x: number) => x };
        const source = new Subject<number>();
        const batches: number[][] = [];
        let error: unknown;
        let completed = false;
        source.pipe(batch(options)).subscribe({
          next: (b) => batches.push(b),
          error: (e) => {
            error = e;
          },
          complete: () => {
            completed = true;
          },
        });
        for (const x of input) source.next(x);
        if (fail) source.error('upstream');
        else source.complete();
        if (fail ? error !== 'upstream' : !completed) return false;
        if (JSON.stringify(batches.flat()) !== JSON.stringify(input)) return false;
        for (const b of batches) {
          if (b.length === 0) return false;
          if (size !== undefined && b.length > size) return false;
          const w = b.reduce((a, x) => a + x, 0);
          if (maxWeight !== undefined && w > maxWeight && b.length > 1) return false;
        }
        // no batch could have taken the next batch's first item (the flush was necessary)
        for (let i = 0; i + 1 < batches.length; i++) {
          const cur = batches[i]!;
          const next = batches[i + 1]![0]!;
          const full =
            (size !== undefined && cur.length >= size) ||
            (maxWeight !== undefined && cur.reduce((a, x) => a + x, 0) + next > maxWeight) ||
            (maxWeight !== undefined && cur.reduce((a, x) => a + x, 0) >= maxWeight);
          if (!full) return false;
        }
        return true;
      },
    ),
  );
  t.pass();
});

test('time-based batches keep every item in order and are never older than timeMs (property, virtual time)', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 40 }),
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 1, max: 8 }),
      (gaps, size, timeMs) => {
        const scheduler = new TestScheduler(() => {});
        const out: { at: number; items: number[] }[] = [];
        // item i arrives after gaps[i] idle frames; each item takes one frame of the marble
        const arrival: number[] = [];
        let frame = 0;
        let marble = '';
        gaps.forEach((gap, i) => {
          frame += gap;
          arrival.push(frame);
          frame++;
          marble += `${'-'.repeat(gap)}${i % 10}`;
        });
        const values = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [String(i), i]));
        const ids: number[] = [];
        let misplaced = false;
        scheduler.run(({ cold }) => {
          let next = 0;
          cold(`${marble}|`, values)
            .pipe(batch({ size, timeMs }))
            .subscribe((b) => {
              const items = b.map((value) => {
                const id = next++;
                if (value !== id % 10) misplaced = true;
                return id;
              });
              out.push({ at: scheduler.now(), items });
            });
        });
        for (const b of out) ids.push(...b.items);
        if (misplaced || ids.length !== gaps.length) return false;
        return out.every(
          (b) =>
            b.items.length > 0 && b.items.length <= size && b.at - arrival[b.items[0]!]! <= timeMs,
        );
      },
    ),
  );
  t.pass();
});

test('uses the scheduler it is given', (t) => {
  const scheduler = new TestScheduler(() => {});
  const out: number[][] = [];
  const subject = new Subject<number>();
  subject.pipe(batch({ timeMs: 10, scheduler })).subscribe((b) => out.push(b));
  subject.next(1);
  scheduler.flush();
  t.deepEqual(out, [[1]]);
  t.not(scheduler, asyncScheduler);
});
