import { setImmediate as tick } from 'node:timers/promises';
import test from 'ava';
import { lastValueFrom, range, tap, toArray } from 'rxjs';
import { isBufferOverflowError, LogEvents, pipeline, step } from '../../lib/index.js';
import { memoryLogger } from '../support/telemetry.js';

// A synchronous push source (range) floods the stream faster than any step can run: the
// stream admits `concurrency + buffer` items, its source buffer holds `buffer` more, and the
// next one overflows.
const N = 5_000_000;
const concurrency = 2;
const buffer = 3;
const admitted = concurrency + buffer;
const fits = admitted + buffer;

test("'error' mode: the stream stops taking items from a synchronous source at the first overflow", async (t) => {
  let emitted = 0;
  const p = pipeline(
    'flood',
    step('slow', async (n: number) => {
      await tick();
      return n;
    }),
  );
  const e = await lastValueFrom(
    p.stream(range(0, N).pipe(tap(() => emitted++)), { concurrency, buffer }).pipe(toArray()),
  ).catch((err: unknown) => err);
  t.true(isBufferOverflowError(e));
  // items 0..fits-1 were admitted or buffered, item `fits` overflowed: nothing after it was read
  t.is(emitted, fits + 1, 'the source emitted nothing after the overflowing item');
});

for (const overflow of ['dropNewest', 'dropOldest'] as const) {
  test(`'${overflow}' mode: every item is either processed or counted as dropped`, async (t) => {
    const { logger, lines } = memoryLogger('info');
    let dropped = 0;
    let lastDropped = -1;
    const p = pipeline(
      { name: 'lossy', logger },
      step('slow', async (n: number) => {
        await tick();
        return n;
      }),
    );
    const n = 1_000_000;
    const outcomes = await lastValueFrom(
      p
        .stream(range(0, n), {
          concurrency,
          buffer,
          overflow,
          onDrop: (x) => {
            dropped++;
            lastDropped = x;
          },
        })
        .pipe(toArray()),
    );
    const inputs = outcomes.map((o) => o.input).sort((a, b) => a - b);
    t.is(outcomes.length + dropped, n);
    t.is(outcomes.length, fits);
    t.true(outcomes.every((o) => o.ok));
    if (overflow === 'dropNewest') {
      t.deepEqual(inputs, [0, 1, 2, 3, 4, 5, 6, 7]);
      t.is(lastDropped, n - 1);
    } else {
      // the first `admitted` went straight in; the buffer kept the newest `buffer` items
      t.deepEqual(inputs, [0, 1, 2, 3, 4, n - 3, n - 2, n - 1]);
      t.is(lastDropped, n - 4);
    }
    const completed = lines().find((l) => l.eventId === LogEvents.streamCompleted.id);
    t.is(completed?.dropped, dropped);
    t.is(completed?.items, fits);
  });
}
