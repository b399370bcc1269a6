import { getEventListeners } from 'node:events';
import { setImmediate as tick } from 'node:timers/promises';
import test from 'ava';
import { expectTypeOf } from 'expect-type';
import fc from 'fast-check';
import {
  count,
  from,
  lastValueFrom,
  Observable,
  of,
  range,
  Subject,
  take,
  throwError,
  toArray,
} from 'rxjs';
import { BufferOverflowError, isCancelledError } from '../../lib/core/errors.js';
import { mapConcurrent } from '../../lib/operators/map-concurrent.js';

const listeners = (signal: AbortSignal): number => getEventListeners(signal, 'abort').length;

/** A promise resolved from outside. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

test('validates its arguments with TypeError', (t) => {
  const id = (x: number) => x;
  for (const bad of [0, -1, 1.5, Number.NaN]) {
    t.throws(() => mapConcurrent(id, bad), { instanceOf: TypeError, message: /concurrency/ });
  }
  t.throws(() => mapConcurrent(id, { concurrency: 2, maxBuffer: -1 }), {
    instanceOf: TypeError,
    message: /maxBuffer/,
  });
  t.throws(() => mapConcurrent(id, { concurrency: 2, ordered: 'yes' as never }), {
    instanceOf: TypeError,
  });
  t.throws(() => mapConcurrent(id, { concurrency: 2, keyOf: 'id' as never }), {
    instanceOf: TypeError,
  });
  t.throws(() => mapConcurrent(null as never, 2), { instanceOf: TypeError, message: /project/ });
  t.throws(() => mapConcurrent(id, null as never), { instanceOf: TypeError });
  t.notThrows(() => mapConcurrent(id, Number.POSITIVE_INFINITY));
  t.notThrows(() => mapConcurrent(id, { concurrency: 1, maxBuffer: 0 }));
});

test('infers the result type from a sync or async project', (t) => {
  const asyncOp = mapConcurrent(async (x: number) => String(x), 2);
  const syncOp = mapConcurrent((x: number, _signal: AbortSignal, i: number) => x + i, 2);
  expectTypeOf(of(1).pipe(asyncOp)).toEqualTypeOf<Observable<string>>();
  expectTypeOf(of(1).pipe(syncOp)).toEqualTypeOf<Observable<number>>();
  // @ts-expect-error the project takes the item type of the source
  of('a').pipe(mapConcurrent(async (x: number) => x, 2));
  t.pass();
});

test('unordered emits results as they complete; ordered emits them in input order', async (t) => {
  const gates = [deferred<void>(), deferred<void>(), deferred<void>()];
  const run = (ordered: boolean) => {
    const out: number[] = [];
    const done = lastValueFrom(
      from([0, 1, 2]).pipe(
        mapConcurrent(
          async (i: number) => {
            await gates[i]!.promise;
            return i;
          },
          { concurrency: 3, ordered },
        ),
        toArray(),
      ),
    );
    return { out, done };
  };
  const unordered = run(false);
  const ordered = run(true);
  gates[2]!.resolve();
  await tick();
  gates[1]!.resolve();
  await tick();
  gates[0]!.resolve();
  t.deepEqual(await unordered.done, [2, 1, 0]);
  t.deepEqual(await ordered.done, [0, 1, 2]);
});

test('passes the input index; synchronous results are emitted at once', async (t) => {
  const calls: [string, number][] = [];
  const out = await lastValueFrom(
    from(['a', 'b', 'c']).pipe(
      mapConcurrent(
        (x: string, _signal, index) => {
          calls.push([x, index]);
          return `${x}${index}`;
        },
        { concurrency: 1, ordered: true },
      ),
      toArray(),
    ),
  );
  t.deepEqual(out, ['a0', 'b1', 'c2']);
  t.deepEqual(calls, [
    ['a', 0],
    ['b', 1],
    ['c', 2],
  ]);
});

test('never more calls in flight than the limit; buffered inputs wait their turn', async (t) => {
  const gates: ReturnType<typeof deferred<number>>[] = [];
  let running = 0;
  let maxRunning = 0;
  const result = lastValueFrom(
    range(0, 10).pipe(
      mapConcurrent((i: number) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        const d = deferred<number>();
        gates[i] = d;
        return d.promise.finally(() => running--);
      }, 3),
      toArray(),
    ),
  );
  t.is(gates.length, 3, 'only three started from a synchronous source of ten');
  for (let i = 0; i < 10; i++) {
    await tick();
    gates[i]!.resolve(i);
  }
  t.deepEqual(
    (await result).sort((a, b) => a - b),
    [...Array(10).keys()],
  );
  t.is(maxRunning, 3);
});

test('unsubscribing aborts the signals of in-flight calls and starts no more; no listener left', async (t) => {
  const signals: AbortSignal[] = [];
  let started = 0;
  const sub = range(0, 10)
    .pipe(
      mapConcurrent(
        (_i: number, signal) => {
          started++;
          signals.push(signal);
          return new Promise<number>(() => {}); // never settles by itself
        },
        { concurrency: 2 },
      ),
    )
    .subscribe();
  t.is(started, 2);
  const signal = signals[0]!;
  t.false(signal.aborted);
  sub.unsubscribe();
  t.true(signal.aborted);
  t.true(isCancelledError(signal.reason));
  t.is(listeners(signal), 0);
  await tick();
  t.is(started, 2, 'buffered inputs are discarded');
});

test('the operator leaves no abort listener on the signal after completion', async (t) => {
  const signals = new Set<AbortSignal>();
  const out = await lastValueFrom(
    range(0, 50).pipe(
      mapConcurrent(
        async (i: number, signal) => {
          signals.add(signal);
          await tick();
          return i;
        },
        { concurrency: 8 },
      ),
      count(),
    ),
  );
  t.is(out, 50);
  t.is(signals.size, 1, 'one signal per subscription');
  for (const s of signals) {
    t.is(listeners(s), 0);
    t.false(s.aborted, 'a completed stream aborts nothing');
  }
});

test('many concurrent calls may listen to the shared signal without a MaxListeners warning', async (t) => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  try {
    await lastValueFrom(
      range(0, 40).pipe(
        mapConcurrent(
          (i: number, signal) =>
            new Promise<number>((resolve) => {
              const onAbort = () => {};
              signal.addEventListener('abort', onAbort);
              setImmediate(() => {
                signal.removeEventListener('abort', onAbort);
                resolve(i);
              });
            }),
          40,
        ),
        count(),
      ),
    );
    await tick();
  } finally {
    process.off('warning', onWarning);
  }
  t.deepEqual(
    warnings.filter((w) => w.name === 'MaxListenersExceededWarning'),
    [],
  );
});

test('the first project error ends the stream and aborts the other in-flight calls', async (t) => {
  const boom = new Error('boom');
  const signals: AbortSignal[] = [];
  let started = 0;
  const failing = deferred<number>();
  const result = lastValueFrom(
    range(0, 10).pipe(
      mapConcurrent((i: number, signal) => {
        started++;
        signals.push(signal);
        return i === 1 ? failing.promise : new Promise<number>(() => {});
      }, 3),
    ),
  );
  failing.reject(boom);
  await t.throwsAsync(result, { is: boom });
  t.is(started, 3);
  t.true(signals[0]!.aborted);
  t.true(isCancelledError(signals[0]!.reason));
  t.is(listeners(signals[0]!), 0);
});

test('a project that throws synchronously errors the stream', async (t) => {
  const boom = new Error('sync boom');
  await t.throwsAsync(
    lastValueFrom(
      of(1, 2).pipe(
        mapConcurrent(() => {
          throw boom;
        }, 2),
      ),
    ),
    { is: boom },
  );
});

test('an upstream error ends the stream at once and aborts in-flight calls', async (t) => {
  const boom = new Error('upstream');
  const source = new Subject<number>();
  let seen: AbortSignal | undefined;
  const result = lastValueFrom(
    source.pipe(
      mapConcurrent((_: number, signal) => {
        seen = signal;
        return new Promise<number>(() => {});
      }, 2),
    ),
  );
  source.next(1);
  source.error(boom);
  await t.throwsAsync(result, { is: boom });
  t.true(seen?.aborted);
});

test('completion waits for every call to settle', async (t) => {
  const source = new Subject<number>();
  const gate = deferred<void>();
  let completed = false;
  const out: number[] = [];
  source
    .pipe(
      mapConcurrent(async (x: number) => {
        await gate.promise;
        return x * 2;
      }, 2),
    )
    .subscribe({ next: (x) => out.push(x), complete: () => (completed = true) });
  source.next(1);
  source.next(2);
  source.next(3);
  source.complete();
  await tick();
  t.false(completed);
  gate.resolve();
  await tick();
  t.true(completed);
  t.deepEqual(out.sort(), [2, 4, 6]);
});

test('maxBuffer: one input too many errors with BufferOverflowError and aborts in-flight calls', async (t) => {
  let seen: AbortSignal | undefined;
  const project = (_: number, signal: AbortSignal) => {
    seen = signal;
    return new Promise<number>(() => {});
  };
  const e = await t.throwsAsync(
    lastValueFrom(range(0, 4).pipe(mapConcurrent(project, { concurrency: 1, maxBuffer: 2 }))),
    { instanceOf: BufferOverflowError },
  );
  t.is(e?.capacity, 2);
  t.true(seen?.aborted);
  // exactly at the limit is fine
  const source = new Subject<number>();
  let failed = false;
  const sub = source
    .pipe(mapConcurrent(project, { concurrency: 1, maxBuffer: 2 }))
    .subscribe({ error: () => (failed = true) });
  source.next(0);
  source.next(1);
  source.next(2);
  t.false(failed);
  sub.unsubscribe();
  // maxBuffer 0 still runs inputs that find a free slot
  t.deepEqual(
    await lastValueFrom(
      of(1, 2).pipe(
        mapConcurrent((x: number) => x, { concurrency: 1, maxBuffer: 0 }),
        toArray(),
      ),
    ),
    [1, 2],
  );
});

test('keyOf errors end the stream', async (t) => {
  const boom = new Error('no key');
  await t.throwsAsync(
    lastValueFrom(
      of(1).pipe(
        mapConcurrent((x: number) => x, {
          concurrency: 2,
          keyOf: () => {
            throw boom;
          },
        }),
      ),
    ),
    { is: boom },
  );
});

test('keyed items run one at a time per key, in input order, while other keys run concurrently', async (t) => {
  const log: string[] = [];
  const gates = new Map<string, ReturnType<typeof deferred<void>>>();
  const items = ['a1', 'b1', 'a2', 'a3', 'b2'];
  const result = lastValueFrom(
    from(items).pipe(
      mapConcurrent(
        async (x: string) => {
          log.push(`start ${x}`);
          const d = deferred<void>();
          gates.set(x, d);
          await d.promise;
          log.push(`end ${x}`);
          return x;
        },
        { concurrency: 4, keyOf: (x) => x[0] },
      ),
      toArray(),
    ),
  );
  t.deepEqual([...gates.keys()], ['a1', 'b1']);
  gates.get('a1')!.resolve();
  await tick();
  t.deepEqual([...gates.keys()], ['a1', 'b1', 'a2']);
  gates.get('b1')!.resolve();
  gates.get('a2')!.resolve();
  await tick();
  gates.get('a3')!.resolve();
  gates.get('b2')!.resolve();
  t.deepEqual((await result).sort(), [...items].sort());
  t.true(log.indexOf('end a2') < log.indexOf('start a3'));
});

test('a million synchronous inputs all come through (O(1) input buffer)', async (t) => {
  const n = 1_000_000;
  let sum = 0;
  const total = await lastValueFrom(
    range(0, n).pipe(
      mapConcurrent(async (x: number) => x, { concurrency: 16, ordered: true }),
      count((x, i) => {
        if (x === i) sum += 1;
        return true;
      }),
    ),
  );
  t.is(total, n);
  t.is(sum, n, 'ordered results come in input order');
});

test('stops an endless synchronous source when the subscriber leaves', async (t) => {
  function* naturals() {
    for (let i = 0; ; i++) yield i;
  }
  t.deepEqual(
    await lastValueFrom(
      from(naturals()).pipe(
        mapConcurrent((x: number) => x * 2, 4),
        take(3),
        toArray(),
      ),
    ),
    [0, 2, 4],
  );
});

test('an error from a source that fails immediately propagates', async (t) => {
  await t.throwsAsync(
    lastValueFrom(throwError(() => new Error('nope')).pipe(mapConcurrent((x: number) => x, 1))),
    { message: 'nope' },
  );
});

interface Job {
  readonly id: number;
  readonly key: number;
  readonly sync: boolean;
}

test('no result lost or duplicated; order kept when ordered; limit and keys respected (property)', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.scheduler(),
      fc.array(fc.record({ key: fc.integer({ min: 0, max: 4 }), sync: fc.boolean() }), {
        maxLength: 40,
      }),
      fc.integer({ min: 1, max: 5 }),
      fc.boolean(),
      fc.boolean(),
      fc.boolean(),
      async (s, specs, concurrency, ordered, keyed, paced) => {
        const jobs: Job[] = specs.map((spec, id) => ({ id, ...spec }));
        let running = 0;
        let maxRunning = 0;
        let overlap = false;
        const runningKeys = new Set<number>();
        const startedPerKey = new Map<number, number[]>();
        const project = (
          job: Job,
          signal: AbortSignal,
          index: number,
        ): number | Promise<number> => {
          if (index !== job.id || signal.aborted) throw new Error('bad call');
          running++;
          maxRunning = Math.max(maxRunning, running);
          if (keyed) {
            if (runningKeys.has(job.key)) overlap = true;
            runningKeys.add(job.key);
            startedPerKey.set(job.key, [...(startedPerKey.get(job.key) ?? []), job.id]);
          }
          const finish = (): number => {
            running--;
            runningKeys.delete(job.key);
            return job.id;
          };
          if (job.sync) return finish();
          return s.schedule(Promise.resolve(), `job ${job.id}`).then(finish);
        };
        const source = paced
          ? new Observable<Job>((sub) => {
              void (async () => {
                for (const job of jobs) {
                  await s.schedule(Promise.resolve(), 'arrival');
                  sub.next(job);
                }
                sub.complete();
              })();
            })
          : from(jobs);
        const out = await s.waitFor(
          lastValueFrom(
            source.pipe(
              mapConcurrent(project, {
                concurrency,
                ordered,
                keyOf: keyed ? (job) => job.key : undefined,
              }),
              toArray(),
            ),
          ),
        );
        if (out.length !== jobs.length) return false;
        if (new Set(out).size !== jobs.length) return false;
        if (ordered && out.some((id, i) => id !== i)) return false;
        if (maxRunning > concurrency || overlap) return false;
        for (const ids of startedPerKey.values()) {
          if (ids.some((id, i) => i > 0 && id < ids[i - 1]!)) return false;
        }
        return true;
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});
