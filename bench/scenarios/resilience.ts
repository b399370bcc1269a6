/**
 * Scenario: what the resilience policy costs when nothing fails. A trivial async step through
 * `pipeline.stream` at concurrency 16, bare and wrapped in `[timeout(1000), retry(3),
 * circuitBreaker(b)]`; then the same comparison in plain RxJS outside a pipeline
 * (`mergeMap(x => fromWork(...))` over a paced source, with and without the same operators).
 */
import {
  circuitBreaker,
  createCircuitBreaker,
  fromWork,
  pipeline,
  retry,
  step,
  timeout,
} from '@hartonomous/pipelines';
import { count, from, lastValueFrom, type MonoTypeOperatorFunction, mergeMap } from 'rxjs';
import { type BenchContext, fmt, interleave, type Row, type ScenarioResult } from '../harness.js';
import { addedMicros, paced, pairwise, rowsOf, samplesOf, timed } from '../support/measure.js';

const work = async (x: number): Promise<number> => x + 1;

/** The policy under test, with a fresh breaker (innermost first). */
function guards(): MonoTypeOperatorFunction<number>[] {
  return [timeout<number>(1000), retry<number>(3), circuitBreaker<number>(createCircuitBreaker())];
}

export async function resilience(ctx: BenchContext): Promise<ScenarioResult> {
  const n = ctx.full ? 1_000_000 : 100_000;
  const items = Array.from({ length: n }, (_, i) => i);
  const concurrency = 16;
  const expectAll = (where: string, done: number): void => {
    if (done !== n) throw new Error(`${where}: ${done} of ${n} items`);
  };

  const throughPipeline = (guarded: boolean) => async () => {
    const p = pipeline(
      guarded ? 'guarded' : 'bare',
      step('work', work, guarded ? { policy: guards() } : {}),
    );
    let done = 0;
    const r = await timed(n, async () => {
      done = await lastValueFrom(p.stream(items, { concurrency }).pipe(count((o) => o.ok)));
    });
    expectAll('pipeline', done);
    return r;
  };
  const throughRx = (guarded: boolean) => async () => {
    const ops = guarded ? guards() : [];
    let done = 0;
    const r = await timed(n, async () => {
      done = await lastValueFrom(
        from(paced(items)).pipe(
          mergeMap(
            (x) =>
              ops.reduce(
                (o$, op) => op(o$),
                fromWork(() => work(x)),
              ),
            concurrency,
          ),
          count(),
        ),
      );
    });
    expectAll('rxjs', done);
    return r;
  };

  const contenders = [
    { name: 'pipeline.stream, bare step', run: throughPipeline(false) },
    {
      name: 'pipeline.stream, step policy [timeout(1000), retry(3), circuitBreaker(b)]',
      run: throughPipeline(true),
    },
    {
      name: 'RxJS: paced source, mergeMap(x => fromWork(work), 16)',
      run: throughRx(false),
    },
    {
      name: 'RxJS: same, fromWork(work).pipe(timeout(1000), retry(3), circuitBreaker(b))',
      run: throughRx(true),
    },
  ];
  ctx.log(`resilience: ${n.toLocaleString('en-US')} items, concurrency ${concurrency}`);
  const results = await interleave(contenders, {
    rounds: ctx.full ? 5 : 3,
    warmup: 1,
    log: ctx.log,
  });
  const rows: Row[] = rowsOf(contenders, results, 'items/s');
  const s = (i: number) => samplesOf(results, contenders[i]!.name);
  const inPipeline = pairwise(s(0), s(1), addedMicros);
  const inRx = pairwise(s(2), s(3), addedMicros);
  const pipeRatio = pairwise(s(1), s(0), (a, b) => a / b);
  const rxRatio = pairwise(s(3), s(2), (a, b) => a / b);
  rows.push(
    {
      name: 'added by the policy, in a pipeline',
      figure: inPipeline,
      unit: 'µs/item',
      note: 'round by round: 1/rate(policy) − 1/rate(bare)',
    },
    { name: 'added by the policy, plain RxJS', figure: inRx, unit: 'µs/item', note: 'same' },
  );
  return {
    title: '7. Resilience overhead when nothing fails',
    description: `${n.toLocaleString('en-US')} items, a trivial async step (\`x => x + 1\`) at concurrency ${concurrency}, with and without the policy \`[timeout(1000), retry(3), circuitBreaker(b)]\` (a fresh consecutive-failures breaker per run). The pipeline reads an array by demand; the RxJS contenders read an async generator (a paced source, so mergeMap's buffer stays small). Built package (dist/).`,
    rows,
    findings: [
      `In a pipeline the policy adds ${fmt(inPipeline.median, 2)} µs per item (${fmt(inPipeline.min, 2)}–${fmt(inPipeline.max, 2)}), the run going at ${fmt(pipeRatio.median, 2)}x the bare step's rate; in plain RxJS it adds ${fmt(inRx.median, 2)} µs per item (${fmt(inRx.min, 2)}–${fmt(inRx.max, 2)}; ${fmt(rxRatio.median, 2)}x). The two differ because a bare pipeline step is called directly (its fast path), while a step with a policy runs each call as \`fromWork\` (a fresh AbortSignal linked to the item's signal), the operators and \`lastValueFrom\`; the plain RxJS contenders pay for \`fromWork\` with or without the policy, so there the policy's own cost shows: a timer armed and cleared, two more subscriptions and a breaker permit.`,
      'Against real I/O (a loopback HTTP request or a database round trip is 100 µs or more) this is noise; on a CPU-trivial step it is most of the cost, so put policies on steps that do I/O, not on every step.',
    ],
  };
}
