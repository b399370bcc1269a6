import { getEventListeners } from 'node:events';
import { Writable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import test from 'ava';
import fc from 'fast-check';
import { pino } from 'pino';
import { firstValueFrom, lastValueFrom, map, take, toArray } from 'rxjs';
import { BufferOverflowError, isBufferOverflowError } from '../../lib/core/errors.js';
import type { OverflowPolicy } from '../../lib/core/source.js';
import {
  type BoundedQueue,
  boundedQueue,
  isQueueClosedError,
  QueueClosedError,
} from '../../lib/flow/bounded-queue.js';

class TestReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

function testMeter() {
  const reader = new TestReader();
  const provider = new MeterProvider({ readers: [reader] });
  const meter = provider.getMeter('bounded-queue-test');
  const points = async (name: string) => {
    const { resourceMetrics } = await reader.collect();
    const metric = resourceMetrics.scopeMetrics
      .flatMap((s) => s.metrics)
      .find((m) => m.descriptor.name === name);
    return (metric?.dataPoints ?? []) as { attributes: Record<string, unknown>; value: unknown }[];
  };
  return { meter, points };
}

const listeners = (signal: AbortSignal): number => getEventListeners(signal, 'abort').length;

async function drain<T>(q: BoundedQueue<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of q) out.push(item);
  return out;
}

test('validates its options with TypeError', (t) => {
  t.throws(() => boundedQueue(0), { instanceOf: TypeError, message: /capacity/ });
  t.throws(() => boundedQueue(1.5), { instanceOf: TypeError });
  t.throws(() => boundedQueue(Number.NaN), { instanceOf: TypeError });
  t.throws(() => boundedQueue(Number.POSITIVE_INFINITY), { instanceOf: TypeError });
  t.throws(() => boundedQueue({ capacity: 2, overflow: 'bogus' as OverflowPolicy }), {
    instanceOf: TypeError,
    message: /overflow/,
  });
  t.throws(() => boundedQueue({ capacity: 2, onDrop: 3 as never }), { instanceOf: TypeError });
  t.throws(() => boundedQueue({ capacity: 2, name: '' }), { instanceOf: TypeError });
  t.throws(() => boundedQueue(null as never), { instanceOf: TypeError });
  const q = boundedQueue<number>(3);
  t.is(q.capacity, 3);
  t.is(q.overflow, 'wait');
  t.is(q.name, 'queue');
});

test('items are read in the order they were written; size tracks them', async (t) => {
  const q = boundedQueue<string>(3);
  await q.write('a');
  t.true(q.tryWrite('b'));
  t.is(q.size, 2);
  t.deepEqual(await q.read(), { done: false, value: 'a' });
  t.deepEqual(q.tryRead(), { ok: true, value: 'b' });
  t.deepEqual(q.tryRead(), { ok: false });
  t.is(q.size, 0);
});

test("'wait' mode: writers wait while full and are admitted first come, first served", async (t) => {
  const q = boundedQueue<number>(2);
  await q.write(1);
  await q.write(2);
  t.false(q.tryWrite(99), 'tryWrite refuses when full in wait mode');
  const admitted: number[] = [];
  const w3 = q.write(3).then(() => admitted.push(3));
  const w4 = q.write(4).then(() => admitted.push(4));
  await tick();
  t.deepEqual(admitted, []);
  t.is(q.toJSON().waitingWriters, 2);
  t.is(q.size, 2);
  t.is((await q.read()).value, 1);
  await w3;
  t.deepEqual(admitted, [3]);
  t.is(q.size, 2);
  t.is((await q.read()).value, 2);
  await w4;
  t.deepEqual(admitted, [3, 4]);
  q.complete();
  t.deepEqual(await drain(q), [3, 4]);
});

test('a fast producer and a slow consumer: 100k items, in order, queue never above capacity', async (t) => {
  const capacity = 16;
  const total = 100_000;
  const q = boundedQueue<number>(capacity);
  let maxSize = 0;
  const producer = (async () => {
    for (let i = 0; i < total; i++) {
      await q.write(i);
      maxSize = Math.max(maxSize, q.size);
    }
    q.complete();
  })();
  let expected = 0;
  let outOfOrder = 0;
  for await (const item of q) {
    maxSize = Math.max(maxSize, q.size);
    if (item !== expected) outOfOrder++;
    expected++;
    if (item % 64 === 0) await tick(); // the slow part: yield to the event loop
  }
  await producer;
  t.is(expected, total);
  t.is(outOfOrder, 0);
  t.true(maxSize <= capacity, `max size ${maxSize}`);
  t.is(maxSize, capacity, 'the producer really was held back by a full queue');
  await q.completion;
});

test("'dropOldest' evicts the oldest item, reports it, and the write succeeds", async (t) => {
  const { meter, points } = testMeter();
  const dropped: number[] = [];
  const q = boundedQueue<number>({
    capacity: 2,
    overflow: 'dropOldest',
    onDrop: (x) => dropped.push(x),
    name: 'drop-oldest',
    meter,
  });
  await q.write(1);
  await q.write(2);
  await q.write(3);
  t.true(q.tryWrite(4));
  t.deepEqual(dropped, [1, 2]);
  t.is(q.size, 2);
  q.complete();
  t.deepEqual(await drain(q), [3, 4]);
  const droppedPoints = await points('hartonomous.queue.dropped');
  t.deepEqual(
    droppedPoints.map((p) => [p.attributes, p.value]),
    [[{ 'queue.name': 'drop-oldest' }, 2]],
  );
});

test("'dropNewest' drops the item being written and keeps what is held", async (t) => {
  const dropped: number[] = [];
  const q = boundedQueue<number>({
    capacity: 2,
    overflow: 'dropNewest',
    onDrop: (x) => dropped.push(x),
  });
  await q.write(1);
  await q.write(2);
  await q.write(3);
  t.true(q.tryWrite(4));
  t.deepEqual(dropped, [3, 4]);
  q.complete();
  t.deepEqual(await drain(q), [1, 2]);
});

test('an onDrop that throws rejects that write; the queue stays consistent', async (t) => {
  const boom = new Error('onDrop failed');
  const q = boundedQueue<number>({
    capacity: 1,
    overflow: 'dropNewest',
    onDrop: () => {
      throw boom;
    },
  });
  await q.write(1);
  await t.throwsAsync(q.write(2), { is: boom });
  t.is(q.size, 1);
  t.deepEqual(q.tryRead(), { ok: true, value: 1 });
});

test("'error' mode rejects a write into a full queue with BufferOverflowError", async (t) => {
  const q = boundedQueue<number>({ capacity: 1, overflow: 'error', name: 'strict' });
  await q.write(1);
  const e = await t.throwsAsync(q.write(2), { instanceOf: BufferOverflowError });
  t.true(isBufferOverflowError(e));
  t.is(e?.capacity, 1);
  t.regex(e?.where ?? '', /strict/);
  t.false(q.tryWrite(3));
  t.is(q.size, 1);
});

test('complete(): readers drain, then end; later writes reject with QueueClosedError', async (t) => {
  const q = boundedQueue<number>({ capacity: 4, name: 'jobs' });
  await q.write(1);
  await q.write(2);
  t.true(q.complete());
  t.false(q.complete(), 'idempotent');
  t.true(q.completed);
  const e = await t.throwsAsync(q.write(3), { instanceOf: QueueClosedError });
  t.true(isQueueClosedError(e));
  t.is(e?.queue, 'jobs');
  t.is(e?.code, 'QUEUE_CLOSED');
  t.false(q.tryWrite(3));
  let settled = false;
  void q.completion.then(() => {
    settled = true;
  });
  t.deepEqual(await q.read(), { done: false, value: 1 });
  await tick();
  t.false(settled, 'completion waits for the queue to drain');
  t.deepEqual(await q.read(), { done: false, value: 2 });
  t.deepEqual(await q.read(), { done: true, value: undefined });
  t.deepEqual(await q.read(), { done: true, value: undefined });
  t.false(await q.waitToRead());
  await q.completion;
  t.true(settled);
});

test('complete() rejects writers still waiting and ends readers still waiting', async (t) => {
  const full = boundedQueue<number>(1);
  await full.write(1);
  const waiting = full.write(2);
  full.complete();
  await t.throwsAsync(waiting, { instanceOf: QueueClosedError });
  t.deepEqual(await drain(full), [1], 'the waiting writer item was never enqueued');

  const empty = boundedQueue<number>(1);
  const reader = empty.read();
  const watcher = empty.waitToRead();
  empty.complete();
  t.deepEqual(await reader, { done: true, value: undefined });
  t.false(await watcher);
});

test('complete(error): readers drain, then every read throws the error', async (t) => {
  const boom = new Error('upstream failed');
  const q = boundedQueue<number>(4);
  const pendingRead = boundedQueue<number>(1);
  const early = pendingRead.read();
  pendingRead.complete(boom);
  await t.throwsAsync(early, { is: boom });

  await q.write(1);
  await q.write(2);
  q.complete(boom);
  const closed = await t.throwsAsync(q.write(3), { instanceOf: QueueClosedError });
  t.is(closed?.cause, boom);
  const seen: number[] = [];
  await t.throwsAsync(
    (async () => {
      for await (const x of q) seen.push(x);
    })(),
    { is: boom },
  );
  t.deepEqual(seen, [1, 2]);
  await t.throwsAsync(q.read(), { is: boom });
  await t.throwsAsync(q.waitToRead(), { is: boom });
  await t.throwsAsync(q.completion, { is: boom });
});

test('a write waiting for room is cancelled by its signal: rejected with the reason, removed, no listener left', async (t) => {
  const q = boundedQueue<string>(1);
  await q.write('held');
  const ac = new AbortController();
  const cancelled = q.write('cancelled', ac.signal);
  const after = q.write('after');
  await tick();
  t.is(listeners(ac.signal), 1);
  const reason = new Error('stop');
  ac.abort(reason);
  await t.throwsAsync(cancelled, { is: reason });
  t.is(listeners(ac.signal), 0);
  t.is(q.toJSON().waitingWriters, 1);
  t.is((await q.read()).value, 'held');
  await after;
  q.complete();
  t.deepEqual(await drain(q), ['after'], 'the cancelled item was never enqueued');
});

test('a write admitted before its signal aborts leaves no listener', async (t) => {
  const q = boundedQueue<number>(1);
  const ac = new AbortController();
  await q.write(1, ac.signal); // room: no wait, no listener
  t.is(listeners(ac.signal), 0);
  const waiting = q.write(2, ac.signal);
  t.is(listeners(ac.signal), 1);
  await q.read();
  await waiting;
  t.is(listeners(ac.signal), 0, 'listener removed when the writer was admitted');
  ac.abort();
  t.is(q.size, 1);
});

test('already-aborted signals reject at once and take or add nothing', async (t) => {
  const q = boundedQueue<number>(2);
  await q.write(1);
  const reason = new Error('already');
  const signal = AbortSignal.abort(reason);
  await t.throwsAsync(q.write(2, signal), { is: reason });
  await t.throwsAsync(q.read(signal), { is: reason });
  await t.throwsAsync(q.waitToRead(signal), { is: reason });
  t.is(q.size, 1);
  t.is(listeners(signal), 0);
});

test('a waiting read is cancelled by its signal and the next item is not lost', async (t) => {
  const q = boundedQueue<number>(2);
  const ac = new AbortController();
  const cancelled = q.read(ac.signal);
  const watch = new AbortController();
  const watching = q.waitToRead(watch.signal);
  t.is(listeners(ac.signal), 1);
  ac.abort();
  t.is(
    await cancelled.then(
      () => 'resolved',
      (e: unknown) => e,
    ),
    ac.signal.reason,
  );
  t.is(listeners(ac.signal), 0);
  t.is(q.toJSON().waitingReaders, 1);
  watch.abort(new Error('no longer'));
  await t.throwsAsync(watching, { message: 'no longer' });
  t.is(listeners(watch.signal), 0);
  t.is(q.toJSON().waitingReaders, 0);
  await q.write(7);
  t.is(q.size, 1, 'the write went into the queue, not to the cancelled reader');
  t.deepEqual(await q.read(), { done: false, value: 7 });
});

test('a read that got its item removes its listener', async (t) => {
  const q = boundedQueue<number>(2);
  const ac = new AbortController();
  const pending = q.read(ac.signal);
  await q.write(5);
  t.deepEqual(await pending, { done: false, value: 5 });
  t.is(listeners(ac.signal), 0);
  t.is(q.size, 0, 'handed straight to the waiting reader');
});

test('waitToRead resolves when an item arrives without taking it', async (t) => {
  const q = boundedQueue<number>(2);
  const ready = q.waitToRead();
  await q.write(1);
  t.true(await ready);
  t.is(q.size, 1);
  t.true(await q.waitToRead());
  t.deepEqual(q.tryRead(), { ok: true, value: 1 });
});

test('competing readers each get distinct items, all of them', async (t) => {
  const q = boundedQueue<number>(4);
  const total = 2_000;
  const consumers = [0, 1, 2].map(async (c) => {
    const got: number[] = [];
    for await (const x of q) {
      got.push(x);
      if ((x + c) % 7 === 0) await tick();
    }
    return got;
  });
  for (let i = 0; i < total; i++) await q.write(i);
  q.complete();
  const results = await Promise.all(consumers);
  const all = results.flat().sort((a, b) => a - b);
  t.deepEqual(
    all,
    Array.from({ length: total }, (_, i) => i),
  );
  for (const got of results) {
    t.true(got.length > 0, 'every consumer got work');
    t.deepEqual(
      got,
      [...got].sort((a, b) => a - b),
      'each consumer sees its items in queue order',
    );
  }
});

test('breaking out of for-await stops that iterator only; the queue stays open', async (t) => {
  const q = boundedQueue<number>(4);
  await q.write(1);
  await q.write(2);
  for await (const x of q) {
    t.is(x, 1);
    break;
  }
  t.false(q.completed);
  const it = q[Symbol.asyncIterator]();
  const pending = it.next();
  t.deepEqual(await pending, { done: false, value: 2 });
  const waiting = it.next();
  await it.return?.();
  t.deepEqual(await waiting, { done: true, value: undefined }, 'a pending next() ends on return()');
  t.deepEqual(await it.next(), { done: true, value: undefined });
  t.is(q.toJSON().waitingReaders, 0);
  await q.write(3);
  t.deepEqual(q.tryRead(), { ok: true, value: 3 }, 'nothing went to the returned iterator');
});

test('toObservable emits every item in order and completes after complete()', async (t) => {
  const q = boundedQueue<number>(3);
  const all = lastValueFrom(q.toObservable().pipe(toArray()));
  for (let i = 0; i < 50; i++) await q.write(i);
  q.complete();
  t.deepEqual(
    await all,
    Array.from({ length: 50 }, (_, i) => i),
  );
});

test('toObservable errors with the completion error after draining', async (t) => {
  const boom = new Error('failed');
  const q = boundedQueue<number>(3);
  await q.write(1);
  q.complete(boom);
  const seen: number[] = [];
  await t.throwsAsync(lastValueFrom(q.toObservable().pipe(map((x) => seen.push(x)))), { is: boom });
  t.deepEqual(seen, [1]);
});

test('toObservable takes an item only when it emits it: unsubscribing loses nothing', async (t) => {
  const q = boundedQueue<number>(8);
  for (let i = 0; i < 5; i++) await q.write(i);
  t.deepEqual(await lastValueFrom(q.toObservable().pipe(take(2), toArray())), [0, 1]);
  t.is(q.size, 3, 'only the two emitted items left the queue');

  // unsubscribing while the view waits on an empty queue cancels that wait
  const empty = boundedQueue<number>(2);
  const sub = empty.toObservable().subscribe();
  await tick();
  t.is(empty.toJSON().waitingReaders, 1);
  sub.unsubscribe();
  await tick();
  t.is(empty.toJSON().waitingReaders, 0);
  await empty.write(42);
  t.deepEqual(empty.tryRead(), { ok: true, value: 42 });
});

test('toObservable with a synchronous subscriber holds writers back at capacity', async (t) => {
  const capacity = 4;
  const q = boundedQueue<number>(capacity);
  let maxSize = 0;
  const producer = (async () => {
    for (let i = 0; i < 1_000; i++) {
      await q.write(i);
      maxSize = Math.max(maxSize, q.size);
    }
    q.complete();
  })();
  const received = await lastValueFrom(q.toObservable().pipe(toArray()));
  await producer;
  t.is(received.length, 1_000);
  t.true(maxSize <= capacity);
});

test('toObservable subscribers compete for items', async (t) => {
  const q = boundedQueue<number>(2);
  const a = firstValueFrom(q.toObservable());
  const b = firstValueFrom(q.toObservable());
  await q.write(1);
  await q.write(2);
  t.deepEqual([await a, await b].sort(), [1, 2]);
  t.is(q.size, 0);
});

test('hartonomous.queue.size goes up on enqueue and down on dequeue, with the queue name', async (t) => {
  const { meter, points } = testMeter();
  const q = boundedQueue<number>({ capacity: 4, name: 'sized', meter });
  await q.write(1);
  await q.write(2);
  await q.write(3);
  await q.read();
  const other = boundedQueue<number>({ capacity: 4, name: 'other', meter });
  await other.write(1);
  const size = await points('hartonomous.queue.size');
  const byQueue = Object.fromEntries(
    size.map((p) => [String(p.attributes['queue.name']), p.value]),
  );
  t.deepEqual(byQueue, { sized: 2, other: 1 });
  await q.read();
  await q.read();
  const after = await points('hartonomous.queue.size');
  t.is(after.find((p) => p.attributes['queue.name'] === 'sized')?.value, 0);
});

test('logs queue.full, queue.dropped and queue.completed from the catalog', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(JSON.parse(String(chunk)));
      callback();
    },
  });
  const logger = pino({ level: 'debug' }, sink);
  const dropping = boundedQueue<number>({
    capacity: 1,
    overflow: 'dropNewest',
    name: 'lg',
    logger,
  });
  await dropping.write(1);
  await dropping.write(2);
  dropping.complete();
  const waiting = boundedQueue<number>({ capacity: 1, name: 'lw', logger });
  await waiting.write(1);
  const blocked = waiting.write(2);
  await waiting.read();
  await blocked;
  await tick();
  t.deepEqual(
    lines.map((l) => [l.eventId, l.event, l.queue]),
    [
      [1302, 'queue.dropped', 'lg'],
      [1303, 'queue.completed', 'lg'],
      [1301, 'queue.full', 'lw'],
    ],
  );
});

test('toJSON describes the queue', async (t) => {
  const q = boundedQueue<number>({ capacity: 2, name: 'snap', overflow: 'dropOldest' });
  await q.write(1);
  t.deepEqual(q.toJSON(), {
    name: 'snap',
    capacity: 2,
    overflow: 'dropOldest',
    size: 1,
    waitingWriters: 0,
    waitingReaders: 0,
    completed: false,
  });
});

test('tryWrite/tryRead match a bounded-array model in every full mode (property)', (t) => {
  const cmd = fc.oneof(
    fc.record({ kind: fc.constant('write' as const), value: fc.integer() }),
    fc.record({ kind: fc.constant('read' as const) }),
  );
  fc.assert(
    fc.property(
      fc.constantFrom<OverflowPolicy>('wait', 'dropOldest', 'dropNewest', 'error'),
      fc.integer({ min: 1, max: 5 }),
      fc.array(cmd, { maxLength: 200 }),
      (overflow, capacity, cmds) => {
        const dropped: number[] = [];
        const modelDropped: number[] = [];
        const q = boundedQueue<number>({ capacity, overflow, onDrop: (x) => dropped.push(x) });
        const model: number[] = [];
        for (const c of cmds) {
          if (c.kind === 'write') {
            let accepted = true;
            if (model.length < capacity) model.push(c.value);
            else if (overflow === 'dropOldest') {
              modelDropped.push(model.shift()!);
              model.push(c.value);
            } else if (overflow === 'dropNewest') modelDropped.push(c.value);
            else accepted = false;
            if (q.tryWrite(c.value) !== accepted) return false;
          } else {
            const r = q.tryRead();
            const expected = model.shift();
            if (r.ok !== (expected !== undefined) || (r.ok && r.value !== expected)) return false;
          }
          if (q.size !== model.length || q.size > capacity) return false;
        }
        return JSON.stringify(dropped) === JSON.stringify(modelDropped);
      },
    ),
  );
  t.pass();
});

test('concurrent producers and consumers lose and duplicate nothing; FIFO per producer; size <= capacity (property)', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.scheduler(),
      fc.integer({ min: 1, max: 4 }),
      fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 1, maxLength: 4 }),
      fc.integer({ min: 1, max: 3 }),
      async (s, capacity, producers, consumerCount) => {
        const q = boundedQueue<[number, number]>(capacity);
        let maxSize = 0;
        const writers = producers.map(async (count, p) => {
          for (let i = 0; i < count; i++) {
            await s.schedule(Promise.resolve(), `producer ${p} pause`);
            await q.write([p, i]);
            maxSize = Math.max(maxSize, q.size);
          }
        });
        const done = Promise.all(writers).then(() => q.complete());
        const consumers = Array.from({ length: consumerCount }, async (_, c) => {
          const got: [number, number][] = [];
          for await (const item of q) {
            got.push(item);
            await s.schedule(Promise.resolve(), `consumer ${c} pause`);
          }
          return got;
        });
        const results = await s.waitFor(Promise.all([done, ...consumers]));
        const received = results.slice(1).flat() as [number, number][];
        if (maxSize > capacity) return false;
        const expected = producers.reduce((a, b) => a + b, 0);
        if (received.length !== expected) return false;
        const keys = new Set(received.map(([p, i]) => `${p}:${i}`));
        if (keys.size !== expected) return false;
        // per consumer, each producer's items arrive in increasing order (queue is FIFO)
        for (const got of results.slice(1) as [number, number][][]) {
          const last = new Map<number, number>();
          for (const [p, i] of got) {
            if ((last.get(p) ?? -1) >= i) return false;
            last.set(p, i);
          }
        }
        return true;
      },
    ),
    { numRuns: 150 },
  );
  t.pass();
});
