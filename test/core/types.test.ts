import test from 'ava';
import { expectTypeOf } from 'expect-type';
import type { Observable, OperatorFunction } from 'rxjs';
import {
  type BatchContext,
  batchStep,
  circuitBreaker,
  createCircuitBreaker,
  type ItemFailure,
  itemFailure,
  type Outcome,
  type Pipeline,
  pipeline,
  retry,
  type Step,
  type StepContext,
  type StepInput,
  type StepOutput,
  step,
  timeout,
} from '../../lib/index.js';

// These checks run in `tsc --noEmit` (part of `npm test`); the ava test only keeps the file in the run.
const parse = step('parse', (s: string) => Number(s));
const square = step('square', (n: number) => n * n);
const show = step('show', async (n: number) => ({ n }));

expectTypeOf(parse).toEqualTypeOf<Step<string, number>>();
expectTypeOf(pipeline('p', parse, square)).toEqualTypeOf<Pipeline<string, number>>();
expectTypeOf(pipeline('p', parse, square, show)).toEqualTypeOf<Pipeline<string, { n: number }>>();
expectTypeOf(pipeline('p', parse).append(show)).toEqualTypeOf<Pipeline<string, { n: number }>>();
expectTypeOf(pipeline('p', parse, square).stream([])).toEqualTypeOf<
  Observable<Outcome<string, number>>
>();
expectTypeOf(pipeline('p', parse, square).operator()).toEqualTypeOf<
  OperatorFunction<string, Outcome<string, number>>
>();
expectTypeOf(pipeline('p', parse).run('1')).toEqualTypeOf<Promise<number>>();
expectTypeOf<StepInput<typeof parse>>().toEqualTypeOf<string>();
expectTypeOf<StepOutput<typeof parse>>().toEqualTypeOf<number>();

// a step's function gets the step context; a promise or an Observable output is unwrapped
step('ctx', (n: number, ctx) => {
  expectTypeOf(ctx).toEqualTypeOf<StepContext>();
  expectTypeOf(ctx.signal).toEqualTypeOf<AbortSignal>();
  return n;
});
expectTypeOf(step('async', async (n: number) => `${n}`)).toEqualTypeOf<Step<number, string>>();

// batchStep: the input is the array's element type, the output each result's type, with
// itemFailure markers left out
const lengths = batchStep('lengths', async (texts: string[]) => texts.map((t) => t.length));
expectTypeOf(lengths).toEqualTypeOf<Step<string, number>>();
const evens = batchStep('evens', (ns: number[], ctx) => {
  expectTypeOf(ctx).toEqualTypeOf<BatchContext>();
  return ns.map((n) => (n % 2 === 0 ? { n } : itemFailure(new Error('odd'))));
});
expectTypeOf(evens).toEqualTypeOf<Step<number, { n: number }>>();
expectTypeOf(itemFailure('x')).toEqualTypeOf<ItemFailure>();
expectTypeOf(pipeline('batched', parse, evens)).toEqualTypeOf<Pipeline<string, { n: number }>>();

// a policy's operators work on the step's output type
const breaker = createCircuitBreaker();
const guarded = step('guarded', async (s: string) => s.length, {
  policy: [timeout(1_000), retry(3), circuitBreaker(breaker)],
});
expectTypeOf(guarded).toEqualTypeOf<Step<string, number>>();
batchStep('guarded-batch', async (ns: number[]) => ns, {
  size: 10,
  policy: [retry(2), circuitBreaker(breaker)],
});

// Outcome narrows on `ok`
// biome-ignore lint/correctness/noUnusedVariables: type-only checks, never called
function narrowing(outcome: Outcome<string, number>): void {
  if (outcome.ok) {
    expectTypeOf(outcome.value).toEqualTypeOf<number>();
  } else {
    expectTypeOf(outcome.error).toEqualTypeOf<unknown>();
    expectTypeOf(outcome.failedStep).toEqualTypeOf<string>();
  }
  expectTypeOf(outcome.input).toEqualTypeOf<string>();
  expectTypeOf(outcome.index).toEqualTypeOf<number>();
  if (!outcome.ok) {
    // @ts-expect-error a failed outcome has no value
    void outcome.value;
  }
}

// a pipeline is a step, so it nests
const inner = pipeline(
  'inner',
  square,
  step('again', (n: number) => n * n),
);
expectTypeOf(pipeline('outer', parse, inner)).toEqualTypeOf<Pipeline<string, number>>();
// nested twice, with a batch step inside, and appended to
const lengthsOf = batchStep('digits', (ns: number[]) => ns.map((n) => `${n}`.length));
const twice = pipeline('twice', pipeline('once', inner, lengthsOf), show);
expectTypeOf(twice).toEqualTypeOf<Pipeline<number, { n: number }>>();
expectTypeOf(
  pipeline('p', parse, twice).append(step('n', (o: { n: number }) => o.n)),
).toEqualTypeOf<Pipeline<string, number>>();

// a step that accepts more (unknown) fits after anything
const log = step('log', (x: unknown) => String(x));
expectTypeOf(pipeline('p', parse, log)).toEqualTypeOf<Pipeline<string, string>>();

// never called: these lines only have to (not) compile
// biome-ignore lint/correctness/noUnusedVariables: type-only checks, never called
function mismatches(): void {
  // @ts-expect-error number output does not fit a string input
  pipeline('bad', square, parse);
  // @ts-expect-error the mismatch is caught in the middle of a chain too
  pipeline('bad', parse, square, parse);
  // @ts-expect-error append checks the joint as well
  pipeline('p', parse).append(parse);
  // @ts-expect-error a nested pipeline's input must fit the previous output too
  pipeline('bad', square, inner, parse);
  // @ts-expect-error a batch step's input is checked like any step's
  pipeline('bad', lengths, lengths);
  // @ts-expect-error a policy operator of another type does not fit the step's output
  step('bad', (s: string) => s.length, { policy: [circuitBreaker<string>(breaker)] });
}

test('type-level composition checks compile (see tsc)', (t) => {
  t.pass();
});
