import { getEventListeners } from 'node:events';
import { setImmediate as tick } from 'node:timers/promises';
import test from 'ava';
import { lastValueFrom, retry as rxRetry, Subject, takeUntil, toArray } from 'rxjs';
import { fromWork, isCancelledError, pipeline, retry, step, timeout } from '../../lib/index.js';

test('fromWork: each subscription runs the work with a fresh signal, aborted on unsubscribe', async (t) => {
  const signals: AbortSignal[] = [];
  let calls = 0;
  const work$ = fromWork((signal) => {
    signals.push(signal);
    calls++;
    if (calls < 3) return Promise.reject(new Error('again'));
    return new Promise<number>(() => {});
  });
  const stop = new Subject<void>();
  const done = lastValueFrom(work$.pipe(rxRetry(5), takeUntil(stop))).catch((e: unknown) => e);
  await tick();
  await tick();
  t.is(calls, 3);
  t.is(new Set(signals).size, 3);
  t.false(signals[2]?.aborted);
  stop.next();
  await done;
  t.true(signals[2]?.aborted && isCancelledError(signals[2]?.reason));
});

test('fromWork: a parent signal aborts the work and no listener stays on it', async (t) => {
  const parent = new AbortController();
  let seen: AbortSignal | undefined;
  const value = await lastValueFrom(
    fromWork((signal) => {
      seen = signal;
      return 7;
    }, parent.signal),
  );
  t.is(value, 7);
  t.false(seen?.aborted);
  t.is(getEventListeners(parent.signal, 'abort').length, 0);
  parent.abort(new Error('stop'));
  const e = await lastValueFrom(fromWork(async (_signal) => 1, parent.signal)).catch(
    (err: unknown) => err,
  );
  t.is((e as Error).message, 'stop');
});

test('fromWork: work that declares no signal gets none made, and still runs per subscription', async (t) => {
  const parent = new AbortController();
  let calls = 0;
  const work$ = fromWork(async () => ++calls, parent.signal);
  t.is(await lastValueFrom(work$), 1);
  t.is(await lastValueFrom(work$), 2);
  t.is(getEventListeners(parent.signal, 'abort').length, 0);
  parent.abort(new Error('gone'));
  const e = await lastValueFrom(work$).catch((err: unknown) => err);
  t.is((e as Error).message, 'gone');
  t.is(calls, 2, 'an aborted parent starts no more work');
});

test.serial(
  'a step with a policy gets an AbortController per attempt only if it reads its signal',
  async (t) => {
    const Original = globalThis.AbortController;
    let made = 0;
    globalThis.AbortController = class extends Original {
      constructor() {
        super();
        made++;
      }
    };
    try {
      const policy = [timeout<number>(60_000), retry<number>(2)];
      const blind = pipeline(
        'blind',
        step('blind', async (n: number) => n, { policy }),
      );
      const reader = pipeline(
        'reader',
        step('reader', async (n: number, { signal }) => (signal.aborted ? -1 : n), { policy }),
      );
      const items = Array.from({ length: 20 }, (_, i) => i);
      made = 0;
      const a = await lastValueFrom(blind.stream(items).pipe(toArray()));
      t.is(a.filter((o) => o.ok).length, 20);
      t.is(made, 1, 'only the stream’s own controller');
      made = 0;
      const b = await lastValueFrom(reader.stream(items).pipe(toArray()));
      t.deepEqual(
        b.map((o) => (o.ok ? o.value : -2)).sort((x, y) => x - y),
        items,
      );
      t.is(made, 21, 'the stream’s, and one per attempt that read its signal');
    } finally {
      globalThis.AbortController = Original;
    }
  },
);

test('a timed-out attempt aborts the signal the step read, and a late read sees it aborted', async (t) => {
  const seen: AbortSignal[] = [];
  let calls = 0;
  const slow = step(
    'slow',
    async (n: number, ctx) => {
      calls++;
      if (calls === 1) {
        await new Promise((resolve) => setTimeout(resolve, 40));
        seen.push(ctx.signal); // read only after the timeout fired
        return -1;
      }
      seen.push(ctx.signal);
      return n;
    },
    { policy: [timeout(10), retry({ maxAttempts: 2, baseDelayMs: 1, backoff: 'constant' })] },
  );
  t.is(await pipeline('late', slow).run(5), 5);
  await new Promise((resolve) => setTimeout(resolve, 60));
  t.is(seen.length, 2);
  t.true(seen.some((s) => s.aborted && isCancelledError(s.reason)));
  t.true(seen.some((s) => !s.aborted));
});
