import { setTimeout as delay } from 'node:timers/promises';
import test from 'ava';
import { boundedQueue, isCancelledError, pipeline, step, worker } from '../../lib/index.js';

test('a worker consumes a bounded queue until the queue completes, then stops itself', async (t) => {
  const queue = boundedQueue<number>(8);
  const seen: number[] = [];
  const w = worker({
    source: queue,
    pipeline: pipeline(
      'sq',
      step('sq', async (n: number) => n * n),
    ),
    concurrency: 4,
    onOutcome: (o) => {
      if (o.ok) seen.push(o.value);
    },
  });
  t.is(w.state, 'idle');
  w.start();
  t.is(w.state, 'running');
  for (let i = 0; i < 100; i++) await queue.write(i);
  queue.complete();
  const report = await w.done;
  t.is(w.state, 'stopped');
  t.deepEqual(report, { drained: true, abandoned: 0, processed: 100, failed: 0 });
  t.deepEqual(
    seen.sort((a, b) => a - b),
    Array.from({ length: 100 }, (_, i) => i * i),
  );
});

test('stop lets in-flight items finish, leaves unread items in the queue, and awaits onOutcome', async (t) => {
  const queue = boundedQueue<number>(100);
  for (let i = 0; i < 50; i++) await queue.write(i);
  let settled = 0;
  const w = worker({
    source: queue,
    pipeline: pipeline(
      'slow',
      step('slow', async (n: number) => {
        await delay(20);
        return n;
      }),
    ),
    concurrency: 2,
    buffer: 0,
    onOutcome: async () => {
      await delay(5);
      settled++;
    },
  });
  w.start();
  await delay(30);
  const report = await w.stop({ drainTimeoutMs: 5_000 });
  t.true(report.drained);
  t.is(report.abandoned, 0);
  t.is(settled, report.processed);
  t.true(report.processed >= 2 && report.processed < 50);
  t.is(queue.size, 50 - report.processed, 'nothing read was lost; the rest is still queued');
  t.is(w.health().inFlight, 0);
});

test('a drain timeout aborts what is left through its signals and hands it to onAbandon', async (t) => {
  const queue = boundedQueue<string>(10);
  const signals: AbortSignal[] = [];
  const abandoned: string[] = [];
  const w = worker({
    source: queue,
    pipeline: pipeline(
      'hang',
      step('hang', (_: string, ctx) => {
        signals.push(ctx.signal);
        return new Promise<string>(() => {});
      }),
    ),
    concurrency: 3,
    onAbandon: (s) => {
      abandoned.push(s);
    },
  });
  w.start();
  for (const s of ['a', 'b', 'c']) await queue.write(s);
  await delay(10);
  t.is(w.health().inFlight, 3);
  const report = await w.stop({ drainTimeoutMs: 20 });
  t.false(report.drained);
  t.is(report.abandoned, 3);
  t.deepEqual(abandoned.sort(), ['a', 'b', 'c']);
  t.true(signals.length === 3 && signals.every((s) => s.aborted && isCancelledError(s.reason)));
  t.is(w.state, 'stopped');
  t.is(await w.stop(), report, 'stop is idempotent');
  t.throws(() => w.start(), { instanceOf: TypeError });
});

test('health reports state, counts, failures and queue depth', async (t) => {
  const queue = boundedQueue<number>(10);
  const w = worker({
    name: 'health',
    source: queue,
    pipeline: pipeline(
      'maybe',
      step('maybe', (n: number) => {
        if (n < 0) throw new Error('negative');
        return n;
      }),
    ),
  });
  w.start();
  for (const n of [1, -1, 2]) await queue.write(n);
  await delay(10);
  const h = w.health();
  t.is(h.name, 'health');
  t.is(h.state, 'running');
  t.is(h.processed, 2);
  t.is(h.failed, 1);
  t.is(h.queueDepth, 0);
  t.is(h.lastError?.code, 'STEP_FAILED');
  await w.stop();
});

test('a plain async iterable works as a source too', async (t) => {
  async function* numbers() {
    for (let i = 0; i < 10; i++) yield i;
  }
  const w = worker({
    source: numbers(),
    pipeline: pipeline(
      'id',
      step('id', (n: number) => n),
    ),
  });
  w.start();
  const r = await w.done;
  t.is(r.processed, 10);
});
