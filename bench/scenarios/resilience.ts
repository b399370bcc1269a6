/**
 * Scenario 7: what a resilience policy adds per call when nothing fails, in a pipeline step:
 * the library's step `policy` against the same step calling cockatiel's `wrap(...)`, in both
 * policy orders, with and without a timeout. Every contender runs the same stream (an array,
 * concurrency 16) through one step; what a policy adds is 1/rate(step with it) − 1/rate(bare
 * step), round by round.
 */
import {
  circuitBreaker,
  createCircuitBreaker,
  pipeline,
  retry,
  step,
  timeout,
} from '@hartonomous/pipelines';
import {
  ConsecutiveBreaker,
  ConstantBackoff,
  circuitBreaker as cockatielBreaker,
  retry as cockatielRetry,
  timeout as cockatielTimeout,
  handleAll,
  type IPolicy,
  TimeoutStrategy,
  wrap,
} from 'cockatiel';
import { count, lastValueFrom } from 'rxjs';
import { type BenchContext, fmt, interleave, type Row, type ScenarioResult } from '../harness.js';
import { addedMicros, pairwise, rowsOf, samplesOf, timed } from '../support/measure.js';

const work = async (x: number): Promise<number> => x + 1;
/** The same work, reading its signal (so each attempt gets an AbortSignal of its own). */
const workWithSignal = async (x: number, signal: AbortSignal): Promise<number> =>
  signal.aborted ? -1 : x + 1;

/** cockatiel's parts, fresh per run (3 retries, 5 consecutive failures, 0 ms backoff). */
function cockatiel(): { retry: IPolicy; breaker: IPolicy; timeout: IPolicy } {
  return {
    retry: cockatielRetry(handleAll, { maxAttempts: 3, backoff: new ConstantBackoff(0) }),
    breaker: cockatielBreaker(handleAll, {
      halfOpenAfter: 10_000,
      breaker: new ConsecutiveBreaker(5),
    }),
    timeout: cockatielTimeout(1_000, TimeoutStrategy.Aggressive),
  };
}

export async function resilience(ctx: BenchContext): Promise<ScenarioResult> {
  // cockatiel's timeout makes an AbortController and a timer per call (tens of µs here): a
  // million calls of it take minutes per round, so fewer items (per-call figures do not need more)
  const n = ctx.full ? 200_000 : 100_000;
  const items = Array.from({ length: n }, (_, i) => i);
  const concurrency = 16;
  const through = (make: () => ReturnType<typeof pipeline<number, number>>) => async () => {
    const p = make();
    let done = 0;
    const r = await timed(n, async () => {
      done = await lastValueFrom(p.stream(items, { concurrency }).pipe(count((o) => o.ok)));
    });
    if (done !== n) throw new Error(`${p.name}: ${done} of ${n} items`);
    return r;
  };
  const b = () => createCircuitBreaker({ strategy: { type: 'consecutive', failures: 5 } });
  const contenders = [
    { name: 'bare step', run: through(() => pipeline('bare', step('work', work))) },
    {
      name: 'library: policy [retry(3), circuitBreaker(b)]',
      note: 'breaker outside retry',
      run: through(() =>
        pipeline('ours', step('work', work, { policy: [retry(3), circuitBreaker(b())] })),
      ),
    },
    {
      name: 'cockatiel: wrap(breaker, retry).execute, the same order',
      run: through(() => {
        const c = cockatiel();
        const guard = wrap(c.breaker, c.retry);
        return pipeline(
          'theirs',
          step('work', (x: number) => guard.execute(() => work(x))),
        );
      }),
    },
    {
      name: 'cockatiel: wrap(retry, breaker).execute',
      note: 'breaker inside retry',
      run: through(() => {
        const c = cockatiel();
        const guard = wrap(c.retry, c.breaker);
        return pipeline(
          'theirs',
          step('work', (x: number) => guard.execute(() => work(x))),
        );
      }),
    },
    {
      name: 'library: policy [timeout(1000), retry(3), circuitBreaker(b)]',
      note: 'timeout per attempt; the step does not read its signal',
      run: through(() =>
        pipeline(
          'ours-t',
          step('work', work, { policy: [timeout(1_000), retry(3), circuitBreaker(b())] }),
        ),
      ),
    },
    {
      name: 'library: same, the step reads its signal',
      note: 'an AbortController per attempt',
      run: through(() =>
        pipeline(
          'ours-ts',
          step('work', (x: number, { signal }) => workWithSignal(x, signal), {
            policy: [timeout(1_000), retry(3), circuitBreaker(b())],
          }),
        ),
      ),
    },
    {
      name: 'cockatiel: wrap(breaker, retry, timeout(1000)).execute, the same order',
      note: 'the call reads its signal',
      run: through(() => {
        const c = cockatiel();
        const guard = wrap(c.breaker, c.retry, c.timeout);
        return pipeline(
          'theirs-t',
          step('work', (x: number) => guard.execute(({ signal }) => workWithSignal(x, signal))),
        );
      }),
    },
    {
      name: 'cockatiel: wrap(timeout(1000), retry, breaker).execute',
      note: 'timeout over the whole call',
      run: through(() => {
        const c = cockatiel();
        const guard = wrap(c.timeout, c.retry, c.breaker);
        return pipeline(
          'theirs-t2',
          step('work', (x: number) => guard.execute(({ signal }) => workWithSignal(x, signal))),
        );
      }),
    },
  ];
  ctx.log(`resilience: ${n.toLocaleString('en-US')} items, concurrency ${concurrency}`);
  const results = await interleave(contenders, {
    rounds: ctx.full ? 6 : 5,
    warmup: 1,
    log: ctx.log,
  });
  const rows: Row[] = rowsOf(contenders, results, 'items/s');
  const s = (i: number) => samplesOf(results, contenders[i]?.name ?? '');
  const added = (i: number) => pairwise(s(0), s(i), addedMicros);
  const addedRatio = (i: number, j: number) =>
    pairwise(
      s(0).map((_, r) => addedMicros(s(0)[r] as number, s(i)[r] as number)),
      s(0).map((_, r) => addedMicros(s(0)[r] as number, s(j)[r] as number)),
      (a, b) => a / b,
    );
  for (let i = 1; i < contenders.length; i++) {
    rows.push({
      name: `added per call: ${contenders[i]?.name}`,
      figure: added(i),
      unit: 'µs/call',
      note: 'round by round vs the bare step',
    });
  }
  const ours = addedRatio(1, 2);
  const oursOther = addedRatio(1, 3);
  const oursT = addedRatio(4, 6);
  const oursTOther = addedRatio(4, 7);
  const oursTS = addedRatio(5, 7);
  rows.push(
    {
      name: 'library ÷ cockatiel, retry + breaker (same order)',
      figure: ours,
      unit: 'x added',
      note: 'goal <= 1.5',
    },
    {
      name: 'library ÷ cockatiel wrap(retry, breaker)',
      figure: oursOther,
      unit: 'x added',
      note: 'goal <= 1.5',
    },
    {
      name: 'library ÷ cockatiel, timeout + retry + breaker (same order)',
      figure: oursT,
      unit: 'x added',
      note: 'goal < 1',
    },
    {
      name: 'library ÷ cockatiel wrap(timeout, retry, breaker)',
      figure: oursTOther,
      unit: 'x added',
      note: 'goal < 1',
    },
    {
      name: 'library, step reading its signal ÷ cockatiel wrap(timeout, retry, breaker)',
      figure: oursTS,
      unit: 'x added',
      note: 'goal < 1',
    },
  );
  const says = (f: { median: number; min: number; max: number }, goal: number, strict: boolean) =>
    `${fmt(f.median, 2)}x (${fmt(f.min, 2)}–${fmt(f.max, 2)}; goal ${strict ? '<' : '<='} ${goal}: ${(strict ? f.median < goal : f.median <= goal) ? 'met' : 'NOT met'})`;
  return {
    title: '7. Resilience overhead when nothing fails',
    description: `${n.toLocaleString('en-US')} items through one trivial async step (\`x => x + 1\`) at concurrency ${concurrency}, from an array, bare or guarded: the library's step \`policy\` against the same step calling cockatiel ${'4'}'s \`wrap(...).execute\` (3 retries, a 5-consecutive-failures breaker, 0 ms backoff, an aggressive 1 s timeout). \`policy: [a, b, c]\` is innermost first, so \`[retry, circuitBreaker]\` is cockatiel's \`wrap(breaker, retry)\`; both orders are measured. A fresh breaker per run; the contenders' order rotates every round. Added per call = 1/rate(guarded) − 1/rate(bare), round by round.`,
    rows,
    findings: [
      `Retry + breaker: the library adds ${says(ours, 1.5, false)} what cockatiel adds in the same order, ${says(oursOther, 1.5, false)} against \`wrap(retry, breaker)\`.`,
      `With a timeout: ${says(oursT, 1, true)} cockatiel in the same order and ${says(oursTOther, 1, true)} \`wrap(timeout, retry, breaker)\`; when the step reads its signal (an AbortController per attempt, as cockatiel's timeout always makes), ${says(oursTS, 1, true)}.`,
      'How the library keeps a policy cheap: a step with a policy runs as one Observable of attempts the engine continues by callback (no promise per call); the attempt gets its own AbortSignal only if the step reads `ctx.signal` (a timeout or hedge can then abort it), otherwise nothing is made per attempt; `retry` keeps one observer per call and builds its backoff at the first failure; a closed breaker admits a call without reading the clock. What is left is RxJS: a subscriber per operator per call.',
    ],
  };
}
