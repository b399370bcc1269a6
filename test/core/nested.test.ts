import { setTimeout as delay } from 'node:timers/promises';
import test from 'ava';
import { from, lastValueFrom, toArray } from 'rxjs';
import {
  batchStep,
  isStepError,
  itemFailure,
  type Outcome,
  pipeline,
  step,
} from '../../lib/index.js';
import { memoryTracer } from '../support/telemetry.js';

/** A nested pipeline whose steps count what the engine does to them. */
function probe() {
  const seen = { sizes: [] as number[], active: 0, peak: 0, deepSizes: [] as number[] };
  const limited = step(
    'limited',
    async (n: number) => {
      seen.active++;
      seen.peak = Math.max(seen.peak, seen.active);
      await delay(2);
      seen.active--;
      return n;
    },
    { concurrency: 2 },
  );
  const group = batchStep(
    'group',
    async (ns: number[]) => {
      seen.sizes.push(ns.length);
      return ns.map((n) => (n === 13 ? itemFailure(new Error('unlucky')) : n * 10));
    },
    { size: 5, timeMs: 60_000 },
  );
  const deep = pipeline(
    'deep',
    batchStep(
      'pairs',
      async (ns: number[]) => {
        seen.deepSizes.push(ns.length);
        return ns;
      },
      { size: 2, timeMs: 60_000 },
    ),
  );
  const inner = pipeline('inner', limited, group, deep);
  const outer = pipeline(
    'outer',
    step('inc', (n: number) => n + 1),
    inner,
    step('show', (n: number) => `#${n}`),
  );
  return { seen, outer };
}

const inputs = Array.from({ length: 20 }, (_, i) => i);

function check(
  t: import('ava').ExecutionContext,
  seen: ReturnType<typeof probe>['seen'],
  outcomes: Outcome<number, string>[],
): void {
  t.is(outcomes.length, 20);
  t.is(seen.peak, 2, 'the inner step ran at its own concurrency (2), not the stream’s (8)');
  t.deepEqual(seen.sizes, [5, 5, 5, 5], 'the inner batch step got full batches of its size');
  t.deepEqual(
    seen.deepSizes.reduce((a, b) => a + b, 0),
    19,
    'every item but the failed one reached the innermost batch step',
  );
  t.true(seen.deepSizes.every((s) => s <= 2) && seen.deepSizes.filter((s) => s === 2).length >= 9);
  const failed = outcomes.filter((o) => !o.ok);
  t.is(failed.length, 1);
  const f = failed[0];
  if (f && !f.ok) {
    t.is(f.input, 12);
    t.is(f.failedStep, 'group');
    t.true(isStepError(f.error) && f.error.pipeline === 'inner' && f.error.step === 'group');
  }
  t.deepEqual(
    outcomes
      .filter((o) => o.ok)
      .map((o) => (o.ok ? o.value : ''))
      .sort(),
    inputs
      .filter((i) => i !== 12)
      .map((i) => `#${(i + 1) * 10}`)
      .sort(),
  );
}

test('stream: a nested pipeline keeps its steps’ concurrency and batch sizes', async (t) => {
  const { seen, outer } = probe();
  const outcomes = await lastValueFrom(outer.stream(inputs, { concurrency: 8 }).pipe(toArray()));
  check(t, seen, outcomes);
});

test('operator(): a nested pipeline keeps its steps’ concurrency and batch sizes', async (t) => {
  const { seen, outer } = probe();
  const outcomes = await lastValueFrom(
    from(inputs).pipe(outer.operator({ concurrency: 8, buffer: 32 }), toArray()),
  );
  check(t, seen, outcomes);
});

test('run: a nested pipeline runs each step once, batches of one, without waiting for a batch to fill', async (t) => {
  const { seen, outer } = probe();
  t.is(await outer.run(3), '#40');
  t.deepEqual(seen.sizes, [1]);
  t.deepEqual(seen.deepSizes, [1]);
  t.is(seen.peak, 1);
  const e = await t.throwsAsync(outer.run(12));
  t.true(isStepError(e) && e.pipeline === 'inner' && e.step === 'group');
});

test('nested pipelines get a span of their own that parents their steps, in run and stream', async (t) => {
  const { tracer, spans } = memoryTracer();
  const inner = pipeline(
    'inner',
    step('a', async (n: number) => n + 1),
    step('b', (n: number) => n * 2),
  );
  const outer = pipeline(
    { name: 'outer', tracer },
    step('first', (n: number) => n),
    inner,
  );
  t.is(await outer.run(1), 4);
  await lastValueFrom(outer.stream([1, 2]).pipe(toArray()));
  const all = spans();
  const runs = all.filter((s) => s.name === 'pipeline outer');
  t.is(runs.length, 3);
  for (const run of runs) {
    const children = all.filter((s) => s.parentSpanContext?.spanId === run.spanContext().spanId);
    t.deepEqual(children.map((c) => c.name).sort(), ['step first', 'step inner']);
    const scope = children.find((c) => c.name === 'step inner');
    t.is(scope?.attributes['pipeline.name'], 'outer');
    const grandchildren = all.filter(
      (s) => s.parentSpanContext?.spanId === scope?.spanContext().spanId,
    );
    t.deepEqual(grandchildren.map((c) => c.name).sort(), ['step a', 'step b']);
    t.true(grandchildren.every((c) => c.attributes['pipeline.name'] === 'inner'));
  }
});
