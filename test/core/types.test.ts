import test from 'ava';
import { expectTypeOf } from 'expect-type';
import { type Outcome, type Pipeline, pipeline, type Step, step } from '../../lib/index.js';

// These checks run in `tsc --noEmit` (part of `npm test`); the ava test only keeps the file in the run.
const parse = step('parse', (s: string) => Number(s));
const square = step('square', (n: number) => n * n);
const show = step('show', async (n: number) => ({ n }));

expectTypeOf(parse).toEqualTypeOf<Step<string, number>>();
expectTypeOf(pipeline('p', parse, square)).toEqualTypeOf<Pipeline<string, number>>();
expectTypeOf(pipeline('p', parse, square, show)).toEqualTypeOf<Pipeline<string, { n: number }>>();
expectTypeOf(pipeline('p', parse).append(show)).toEqualTypeOf<Pipeline<string, { n: number }>>();
expectTypeOf(pipeline('p', parse, square).stream([])).toEqualTypeOf<
  import('rxjs').Observable<Outcome<string, number>>
>();

// a pipeline is a step, so it nests
const inner = pipeline(
  'inner',
  square,
  step('again', (n: number) => n * n),
);
expectTypeOf(pipeline('outer', parse, inner)).toEqualTypeOf<Pipeline<string, number>>();

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
}

test('type-level composition checks compile (see tsc)', (t) => {
  t.pass();
});
