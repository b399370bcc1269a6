/**
 * The core in one file: typed steps, a pipeline, `run` for one input, `stream` for many with
 * per-item outcomes and bounded concurrency, and the pipeline inside a plain RxJS `pipe`.
 *
 * Run: npx tsx examples/core-basics.ts
 */

import { batchStep, itemFailure, pipeline, step } from '@hartonomous/pipelines';
import { from, lastValueFrom, toArray } from 'rxjs';

const parse = step('parse', (line: string) => {
  const n = Number(line);
  if (!Number.isFinite(n)) throw new Error(`not a number: ${JSON.stringify(line)}`);
  return n;
});

const slowSquare = step(
  'square',
  async (n: number, { signal }) => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    signal.throwIfAborted();
    return n * n;
  },
  { concurrency: 4 },
);

// a batch step: called once per group of up to 8 items, one result (or failure) per item
const label = batchStep(
  'label',
  async (squares: number[]) =>
    squares.map((s) =>
      s > 400 ? itemFailure(new RangeError(`${s} is too large`)) : `square=${s}`,
    ),
  { size: 8, timeMs: 10 },
);

const squares = pipeline('squares', parse, slowSquare, label);

console.log('run:', await squares.run('12'));

const lines = ['1', '2', 'three', '4', '25', '6'];
const outcomes = await lastValueFrom(
  squares.stream(lines, { concurrency: 2, ordered: true }).pipe(toArray()),
);
for (const o of outcomes) {
  console.log(
    o.ok
      ? `ok   ${o.input} -> ${o.value}`
      : `fail ${o.input} at ${o.failedStep}: ${String(o.error)}`,
  );
}

const viaPipe = await lastValueFrom(
  from(['7', '8']).pipe(squares.operator({ ordered: true }), toArray()),
);
console.log('pipe:', viaPipe.map((o) => (o.ok ? o.value : 'failed')).join(', '));
