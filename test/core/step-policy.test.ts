import { getEventListeners } from 'node:events';
import test from 'ava';
import { lastValueFrom, toArray } from 'rxjs';
import {
  circuitBreaker,
  createCircuitBreaker,
  isBrokenCircuitError,
  isStepError,
  isTimeoutError,
  pipeline,
  retry,
  step,
  timeout,
} from '../../lib/index.js';

test('a step policy retries with a fresh signal per attempt and times out each attempt', async (t) => {
  const signals: AbortSignal[] = [];
  let calls = 0;
  const flaky = step(
    'flaky',
    (n: number, ctx) => {
      calls++;
      signals.push(ctx.signal);
      if (calls === 1) return new Promise<number>(() => {}); // hangs: the timeout must cancel it
      if (calls === 2) throw new Error('transient');
      return n * 2;
    },
    { policy: [timeout(30), retry({ maxAttempts: 3, baseDelayMs: 1, backoff: 'constant' })] },
  );
  const outer = new AbortController();
  t.is(await pipeline('p', flaky).run(21, { signal: outer.signal }), 42);
  t.is(calls, 3);
  t.is(new Set(signals).size, 3, 'each attempt had its own signal');
  t.true(signals[0]?.aborted, 'the timed-out attempt was aborted');
  t.false(signals[2]?.aborted);
  t.is(getEventListeners(outer.signal, 'abort').length, 0);
});

test('a policy that gives up fails the item with a StepError wrapping the operator error', async (t) => {
  const slow = step('slow', (_: number) => new Promise<number>(() => {}), {
    policy: [timeout(10)],
  });
  const e = await t.throwsAsync(pipeline('p', slow).run(1));
  t.true(isStepError(e) && e.step === 'slow' && isTimeoutError(e.cause));
});

test('a shared breaker opens across items of a stream and fails the rest fast', async (t) => {
  const breaker = createCircuitBreaker({
    strategy: { type: 'consecutive', failures: 3 },
    breakDuration: 60_000,
  });
  let calls = 0;
  const down = step(
    'down',
    async (_: number): Promise<number> => {
      calls++;
      throw new Error('service down');
    },
    { policy: [circuitBreaker(breaker)], concurrency: 1 },
  );
  const outcomes = await lastValueFrom(
    pipeline('p', down).stream([1, 2, 3, 4, 5, 6], { ordered: true }).pipe(toArray()),
  );
  t.is(calls, 3, 'after three failures the breaker stops calling the service');
  t.true(outcomes.every((o) => !o.ok));
  const causes = outcomes.map((o) => (!o.ok && isStepError(o.error) ? o.error.cause : undefined));
  t.is(causes.filter((c) => isBrokenCircuitError(c)).length, 3);
  t.is(breaker.state, 'open');
});
